// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[global_allocator]
static ALLOC: anonchat_desktop::scrub::ZeroOnFree = anonchat_desktop::scrub::ZeroOnFree;

fn main() {
    anonchat_desktop::scrub::scrub_freed_memory();
    anonchat_desktop::run()
}
