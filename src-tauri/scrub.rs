//! Freed memory is scrubbed, so chat text that passed through buffers we do not own (IPC bodies,
//! serialized events, WebKit's strings in this process) does not linger in the heap after a wipe.
//!
//! - Rust allocations: [`ALLOCATOR`] wipes every block before handing it back (all platforms).
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

/// The Rust side of it: the engine's allocator, told whether this process's C `free` zeroes
/// already (on Linux it is ours, below).
pub const ALLOCATOR: anonchat_client::zero_on_free::ZeroOnFree =
    anonchat_client::zero_on_free::ZeroOnFree {
        free_zeroes: cfg!(all(target_os = "linux", target_env = "gnu")),
    };

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
