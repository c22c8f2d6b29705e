// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[global_allocator]
static ALLOC: anonchat_desktop::scrub::ZeroOnFree = anonchat_desktop::scrub::ZeroOnFree;

/// Restarts with the scrubbing environment before the libraries' constructors run (`scrub.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".preinit_array"]
static PREINIT: unsafe extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = anonchat_desktop::scrub::preinit;

fn main() {
    // Before anything holds a secret: a crash must not leave a core with chat in it.
    if let Err(e) = anonchat_client::hardening::forbid_core_dumps() {
        eprintln!("AnonChat: {e}");
    }
    anonchat_desktop::scrub::scrub_freed_memory();
    anonchat_desktop::run()
}
