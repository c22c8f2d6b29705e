//! Windows: a hidden window of our own, on a thread of its own, told of this session's lock
//! (`WTSRegisterSessionNotification`) and of suspend (`WM_POWERBROADCAST`, sent to every top-level
//! window). It is never shown and inhibits nothing.

use std::sync::OnceLock;

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::RemoteDesktop::{
    WTSRegisterSessionNotification, NOTIFY_FOR_THIS_SESSION,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DispatchMessageW, GetMessageW, RegisterClassW,
    TranslateMessage, MSG, WNDCLASSW, WS_EX_TOOLWINDOW, WS_OVERLAPPED,
};

use super::{windows_meaning, OnSignal};

/// The window procedure has no context argument: the one listener lives here.
static ON: OnceLock<OnSignal> = OnceLock::new();

unsafe extern "system" fn window_proc(
    hwnd: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    if let (Some(signal), Some(on)) = (windows_meaning(message, wparam), ON.get()) {
        on(signal);
    }
    // SAFETY: the arguments are the ones Windows passed to this window's procedure.
    unsafe { DefWindowProcW(hwnd, message, wparam, lparam) }
}

pub fn watch(on: OnSignal) {
    if ON.set(on).is_err() {
        return;
    }
    let started = std::thread::Builder::new()
        .name("os-lock".into())
        .spawn(|| {
            if let Err(e) = run() {
                tracing::info!(error = e, "no session lock or suspend notifications");
            }
        });
    if let Err(e) = started {
        tracing::info!(error = %e, "no session lock or suspend notifications");
    }
}

fn run() -> Result<(), &'static str> {
    let class: Vec<u16> = "AnonChatOsLock\0".encode_utf16().collect();
    // SAFETY: every pointer handed over points to live memory for the call (`class` outlives the
    // window and the loop); the window and its class belong to this thread, which only loops.
    unsafe {
        let instance = GetModuleHandleW(std::ptr::null());
        let mut wc: WNDCLASSW = std::mem::zeroed();
        wc.lpfnWndProc = Some(window_proc);
        wc.hInstance = instance;
        wc.lpszClassName = class.as_ptr();
        if RegisterClassW(&wc) == 0 {
            return Err("RegisterClassW failed");
        }
        // Top-level (not message-only): only top-level windows get the power broadcast.
        let hwnd = CreateWindowExW(
            WS_EX_TOOLWINDOW,
            class.as_ptr(),
            class.as_ptr(),
            WS_OVERLAPPED,
            0,
            0,
            0,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            instance,
            std::ptr::null(),
        );
        if hwnd.is_null() {
            return Err("CreateWindowExW failed");
        }
        if WTSRegisterSessionNotification(hwnd, NOTIFY_FOR_THIS_SESSION) == 0 {
            tracing::info!("no session lock notifications (suspend still locks)");
        }
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
    }
    Ok(())
}
