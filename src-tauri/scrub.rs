//! Freed memory is scrubbed, so chat text that passed through buffers we do not own (IPC bodies,
//! serialized events, WebKit's strings in this process) does not linger in the heap after a wipe.
//!
//! - Rust allocations: [`ZeroOnFree`] wipes every block before handing it back (all platforms).
//! - C allocations on Linux (GLib, GTK, WebKit's UI side): glibc's `M_PERTURB` overwrites freed
//!   blocks, and WebKit's own allocator is told to use the system one (`Malloc=1`) so the same holds
//!   for it; child processes (WebKit's web process) inherit both through the environment.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, zeroing each block as it is freed.
pub struct ZeroOnFree;

unsafe impl GlobalAlloc for ZeroOnFree {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes from `alloc` (GlobalAlloc contract);
        // zeroing it before freeing touches only that block.
        unsafe {
            zeroize::Zeroize::zeroize(std::slice::from_raw_parts_mut(ptr, layout.size()));
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the system move a block without wiping the old one: allocate, copy, free.
        // SAFETY: same contract as `GlobalAlloc::realloc`; the new layout is valid because the
        // caller guarantees `new_size` fits the alignment.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// The glibc tunables that make `free` overwrite every block: perturb freed bytes, and no
/// per-thread cache (glibc keeps small blocks freed into its tcache as they are, unperturbed).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TUNABLES: &str = "glibc.malloc.perturb=90:glibc.malloc.tcache_count=0";

/// The variables the app runs under (the glibc tunables, WebKit on the system allocator, WebKit
/// drawing without GL unless the user chose otherwise), as `NAME=value\0` strings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SCRUB_ENV: [&[u8]; 3] = [
    b"GLIBC_TUNABLES=glibc.malloc.perturb=90:glibc.malloc.tcache_count=0\0",
    b"Malloc=1\0",
    b"WEBKIT_DISABLE_COMPOSITING_MODE=1\0",
];

/// Runs from the executable's `.preinit_array`: after the dynamic loader mapped the libraries but
/// before any of their constructors (GLib's, GTK's, WebKit's, Mesa's LLVM) ran, so starting again
/// with the scrubbing environment costs a fraction of what it does from `main` (issue 17: every
/// start paid for the libraries' start-up twice). No allocation, no Rust runtime: raw pointers into
/// a fixed array, then `execve`. If anything does not fit, `main` does it the slow way.
///
/// # Safety
/// Called by glibc with the process's `argc`, `argv` and `envp`, nothing else.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub unsafe extern "C" fn preinit(
    _argc: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) {
    const MAX: usize = 1024;
    let starts = |p: *const libc::c_char, prefix: &[u8]| {
        // SAFETY: `p` is a NUL-terminated string from `envp`; at most its length is read.
        unsafe { libc::strncmp(p, prefix.as_ptr().cast(), prefix.len()) == 0 }
    };
    if envp.is_null() || argv.is_null() {
        return;
    }
    let mut env: [*const libc::c_char; MAX] = [std::ptr::null(); MAX];
    let mut n = 0;
    let mut compositing_set = false;
    let mut i = 0;
    loop {
        // SAFETY: `envp` is a NULL-terminated array (the C runtime's contract).
        let e = unsafe { *envp.add(i) };
        if e.is_null() {
            break;
        }
        i += 1;
        if starts(e, &SCRUB_ENV[0][..SCRUB_ENV[0].len() - 1]) {
            return; // Already running with them.
        }
        if starts(e, b"GLIBC_TUNABLES=") || starts(e, b"Malloc=") {
            continue; // Replaced below.
        }
        compositing_set |= starts(e, b"WEBKIT_DISABLE_COMPOSITING_MODE=");
        if n + SCRUB_ENV.len() + 1 >= MAX {
            return;
        }
        env[n] = e;
        n += 1;
    }
    for (k, var) in SCRUB_ENV.iter().enumerate() {
        // A user's own compositing setting wins.
        if k == 2 && compositing_set {
            continue;
        }
        env[n] = var.as_ptr().cast();
        n += 1;
    }
    // SAFETY: both arrays are NULL-terminated and outlive the call; on success it does not return.
    unsafe {
        libc::execve(c"/proc/self/exe".as_ptr(), argv, env.as_ptr());
    }
    // On failure, `main` tries again with `Command`.
}

/// Call first thing in `main`, before any thread or library starts. On Linux, glibc reads its
/// tunables only when a process starts, so the app re-executes itself once with them set (and with
/// WebKit told to use the system allocator and to draw without GL); WebKit's child processes
/// inherit all of it. [`preinit`] normally did that already, earlier and cheaper; this is the
/// fallback.
pub fn scrub_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains(TUNABLES));
        if !set {
            if let Ok(exe) = std::env::current_exe() {
                let mut cmd = std::process::Command::new(exe);
                cmd.args(std::env::args_os().skip(1))
                    .env("GLIBC_TUNABLES", TUNABLES)
                    .env("Malloc", "1");
                // WebKit draws the page on the CPU, in its own (scrubbed) memory: no copies of chat
                // pixels in GL buffers, and no Mesa software-GL compositor, which crashed WebKit's
                // compositor thread on machines without a GPU. A user's own setting wins.
                if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
                    cmd.env("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
                }
                let err = cmd.exec();
                // Only reached if the exec failed: go on with the weaker in-process setting.
                eprintln!("AnonChat: could not restart with memory scrubbing: {err}");
            }
            // SAFETY: `mallopt` only sets a malloc parameter; no other thread exists yet.
            unsafe {
                libc::mallopt(libc::M_PERTURB, 90);
            }
        }
    }
}
