//! Freed memory is scrubbed, so chat text that passed through buffers we do not own (IPC bodies,
//! serialized events, WebKit's strings in this process) does not linger in the heap after a wipe.
//!
//! - Rust allocations: [`ZeroOnFree`] wipes every block before handing it back (all platforms).
//! - C allocations on Linux (GLib, GTK, WebKit's UI side): this executable defines `free` and
//!   `realloc` itself (`scrub/interpose.rs`), so every library's call lands here and the block is zeroed
//!   before glibc gets it back — glibc's per-thread cache included, which its own `M_PERTURB` skips.
//!   WebKit's own allocator is told to use the system one (`Malloc=1`) so the same holds for it;
//!   it decides in constructors that run before `main`, so the executable's own `getenv` answers.
//! - WebKit's child processes (web, network) are other executables: they get glibc's free-time
//!   perturbation with the per-thread cache off, and `Malloc=1`, through the environment
//!   [`scrub_freed_memory`] sets. Nothing restarts: the app used to execute itself a second time
//!   to have glibc read those tunables for its own process, which cost ~60 ms of every start.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod interpose;
#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests;

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
            // On Linux the system allocator's `free` is ours and zeroes the whole block already.
            #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
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

/// The variables the app and WebKit's processes run under: glibc's tunables that make `free`
/// overwrite every block in the child processes (perturb freed bytes, and no per-thread cache,
/// which glibc fills with blocks as they were), WebKit on the system allocator, and WebKit drawing
/// without GL unless the user chose otherwise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SCRUB_ENV: [(&str, &str); 3] = [
    (
        "GLIBC_TUNABLES",
        "glibc.malloc.perturb=90:glibc.malloc.tcache_count=0",
    ),
    ("Malloc", "1"),
    // WebKit draws the page on the CPU, in its own (scrubbed) memory: no copies of chat pixels in
    // GL buffers, and no Mesa software-GL compositor, which crashed WebKit's compositor thread on
    // machines without a GPU.
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
];

/// What [`scrub_freed_memory`] sets: all of [`SCRUB_ENV`], but a user's own compositing setting
/// wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn scrub_vars(compositing_set: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    SCRUB_ENV
        .into_iter()
        .filter(move |(name, _)| !(compositing_set && *name == "WEBKIT_DISABLE_COMPOSITING_MODE"))
}

/// Call first thing in `main`, before any thread starts. WebKit reads `Malloc` when its heap first
/// allocates, and the compositing setting when the window is built, both later; the child
/// processes get all of it when they start.
pub fn scrub_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let compositing_set = std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_some();
        for (name, value) in scrub_vars(compositing_set) {
            std::env::set_var(name, value);
        }
        // For the frees glibc makes inside itself, which do not come through `free` above.
        // SAFETY: `mallopt` only sets a malloc parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_PERTURB, 90);
        }
    }
}
