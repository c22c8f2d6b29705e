//! C functions this executable defines for the whole process. Its own definitions come first in the
//! dynamic linker's search, so every library's calls land here.
//!
//! - `free`, `realloc`, `reallocarray`: GLib's, GTK's, WebKit's (on `Malloc=1`) and libstdc++'s
//!   blocks are zeroed, then glibc gets them back under its own names (`__libc_free`,
//!   `__libc_malloc`). glibc's `M_PERTURB` alone would miss the blocks its per-thread cache keeps,
//!   which a process can only turn off with a tunable read at exec. Anything glibc frees past these
//!   names still gets `M_PERTURB` (set in `main`).
//! - `getenv`: the allocator switch WebKit reads in its constructors, before `main` could set
//!   anything, answers as [`EARLY`] says, whatever the environment holds.

use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{compiler_fence, Ordering};

extern "C" {
    fn __libc_free(p: *mut c_void);
    fn __libc_malloc(n: usize) -> *mut c_void;
    static environ: *const *const c_char;
}

/// WebKit's heap (bmalloc) on the system allocator: it decides once, in its library's constructors.
/// (GLib's `G_SLICE=always-malloc` was tried too: with it the app crashed in a panic, in release
/// builds, inside GTK/WebKit; GLib 2.76 and later allocate slices with `malloc` anyway.)
pub(super) const EARLY: [(&CStr, &CStr); 1] = [(c"Malloc", c"1")];

/// # Safety
/// `getenv`'s contract: `name` is null or a NUL-terminated string. Like glibc's, the answer points
/// into the environment and must not be written.
#[no_mangle]
pub unsafe extern "C" fn getenv(name: *const c_char) -> *mut c_char {
    if name.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `getenv`'s contract; `environ` is the C runtime's NULL-terminated array (or null
    // before the runtime set it up).
    unsafe {
        let wanted = CStr::from_ptr(name);
        if let Some((_, value)) = EARLY.iter().find(|(n, _)| *n == wanted) {
            return value.as_ptr().cast_mut();
        }
        let len = wanted.to_bytes().len();
        let mut e = environ;
        if len == 0 || e.is_null() {
            return std::ptr::null_mut();
        }
        while !(*e).is_null() {
            let entry = *e;
            if libc::strncmp(entry, name, len) == 0 && *entry.add(len) == b'=' as c_char {
                return entry.add(len + 1).cast_mut();
            }
            e = e.add(1);
        }
        std::ptr::null_mut()
    }
}

/// glibc's chunk header flag for a block that has pages of its own, given back to the kernel on
/// free (its size word sits just before the block; ptmalloc's layout since the 1990s).
const IS_MMAPPED: usize = 0x2;

/// Zeroes a live block from glibc's allocator, all of its usable size.
///
/// # Safety
/// `p` is a non-null block from glibc's `malloc` family, not yet freed.
unsafe fn wipe(p: *mut c_void) {
    // SAFETY: the caller's contract; the size word precedes every glibc block.
    unsafe {
        // Pages unmapped on free leave the process (the kernel zeroes them before any reuse):
        // nothing to scrub, and they are the big blocks (images, buffers).
        if *(p as *const usize).sub(1) & IS_MMAPPED != 0 {
            return;
        }
        let n = libc::malloc_usable_size(p);
        std::ptr::write_bytes(p as *mut u8, 0, n);
    }
    // The zeroing must happen before the block is handed back, whatever the optimiser thinks.
    compiler_fence(Ordering::SeqCst);
}

/// # Safety
/// `free`'s contract: null, or a live block from glibc's `malloc` family.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `free`'s contract.
    unsafe {
        wipe(p);
        __libc_free(p);
    }
}

/// Never lets glibc move a block and free the old one unwiped: a block that still fits is kept as
/// it is (never shrunk, so no tail is freed unwiped either); else a new one, copy, wipe, free.
///
/// # Safety
/// `realloc`'s contract.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: `realloc`'s contract: `p` is null or a live block from glibc.
    unsafe {
        if p.is_null() {
            return __libc_malloc(n);
        }
        if n == 0 {
            // glibc's `realloc(p, 0)` frees and returns null.
            free(p);
            return std::ptr::null_mut();
        }
        let have = libc::malloc_usable_size(p);
        if n <= have {
            return p;
        }
        let new = __libc_malloc(n);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(p as *const u8, new as *mut u8, have);
            free(p);
        }
        // On failure `p` stays as it was, as `realloc` promises (`errno` is glibc's ENOMEM).
        new
    }
}

/// # Safety
/// `reallocarray`'s contract.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: `reallocarray`'s contract is `realloc`'s.
        Some(n) => unsafe { realloc(p, n) },
        None => {
            // SAFETY: writing this thread's errno.
            unsafe { *libc::__errno_location() = libc::ENOMEM };
            std::ptr::null_mut()
        }
    }
}
