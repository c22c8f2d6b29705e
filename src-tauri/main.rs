// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[global_allocator]
static ALLOC: anonchat_client::zero_on_free::ZeroOnFree = anonchat_desktop::scrub::ALLOCATOR;

fn main() {
    // Before anything holds a secret: a crash must not leave a core with chat in it.
    if let Err(e) = anonchat_client::hardening::forbid_core_dumps() {
        eprintln!("AnonChat: {e}");
    }
    anonchat_desktop::scrub::scrub_freed_memory();
    anonchat_desktop::run()
}
