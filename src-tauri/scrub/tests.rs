//! The scrubbing as a library sees it: GLib's own `g_free`/`g_realloc` (calls made from another
//! shared object, through the dynamic linker) and the environment WebKit's processes inherit.
//! Freed blocks are read back on purpose: nothing else on this thread allocates in between.

use std::ffi::c_void;

use super::interpose;

extern "C" {
    fn g_malloc(n: usize) -> *mut c_void;
    fn g_realloc(p: *mut c_void, n: usize) -> *mut c_void;
    fn g_free(p: *mut c_void);
}

const CANARY: u8 = 0xA5;

/// Bytes of a freed block past glibc's own bookkeeping (the first 16: its free-list links).
fn canaries_left(p: *const u8, len: usize) -> usize {
    (16..len)
        // SAFETY: the block was ours a moment ago and is still mapped (a small heap block).
        .filter(|&i| unsafe { std::ptr::read_volatile(p.add(i)) } == CANARY)
        .count()
}

#[test]
fn every_library_finds_our_free_and_realloc_first() {
    for (name, ours) in [
        (c"free", interpose::free as *const c_void),
        (c"realloc", interpose::realloc as *const c_void),
        (c"reallocarray", interpose::reallocarray as *const c_void),
        (c"getenv", interpose::getenv as *const c_void),
    ] {
        // SAFETY: a lookup in the global scope, as a library's first call to `free` makes.
        let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        assert_eq!(found as *const c_void, ours, "{name:?}");
    }
}

#[test]
fn a_block_glib_frees_is_zeroed_even_when_glibc_caches_it() {
    // Small enough for glibc's per-thread cache, which keeps blocks as they were freed.
    for len in [24, 100, 1000] {
        // SAFETY: a fresh block of `len` bytes, filled, then freed by GLib.
        let left = unsafe {
            let p = g_malloc(len) as *mut u8;
            std::ptr::write_bytes(p, CANARY, len);
            g_free(p.cast());
            canaries_left(p, len)
        };
        assert_eq!(left, 0, "{len}-byte block");
    }
}

#[test]
fn a_block_glib_moves_by_growing_is_zeroed_where_it_was() {
    // SAFETY: two live blocks (the second keeps the first from growing in place), one moved.
    let (moved, left, kept) = unsafe {
        let p = g_malloc(64) as *mut u8;
        let fence = g_malloc(64);
        std::ptr::write_bytes(p, CANARY, 64);
        let q = g_realloc(p.cast(), 8192) as *mut u8;
        let left = canaries_left(p, 64);
        // The copy holds what the block held.
        let kept = (0..64).all(|i| *q.add(i) == CANARY);
        g_free(q.cast());
        g_free(fence);
        (q != p, left, kept)
    };
    assert!(moved, "the block grew in place; the test proves nothing");
    assert!(kept, "realloc lost the block's bytes");
    assert_eq!(left, 0);
}

#[test]
fn a_block_that_still_fits_is_not_moved_and_shrinking_frees_no_tail() {
    // SAFETY: one live block, resized within its usable size, then freed.
    unsafe {
        let p = g_malloc(200);
        assert_eq!(g_realloc(p, 20), p);
        assert_eq!(g_realloc(p, 150), p);
        g_free(p);
        let fresh = g_realloc(std::ptr::null_mut(), 10);
        assert!(!fresh.is_null());
        g_free(fresh);
    }
}

#[test]
fn realloc_keeps_c_semantics_at_the_edges() {
    // Called as a library calls them: the optimiser knows C's names and would elide an
    // allocation whose only use is a null check.
    type Realloc = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
    type ReallocArray = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
    let realloc: Realloc = std::hint::black_box(interpose::realloc);
    let reallocarray: ReallocArray = std::hint::black_box(interpose::reallocarray);
    // SAFETY: C's contracts: null grows into a new block, zero frees, an overflow fails cleanly.
    unsafe {
        let p = realloc(std::ptr::null_mut(), 32);
        assert!(!p.is_null());
        assert!(realloc(p, 0).is_null());
        let q = libc::malloc(8);
        assert!(reallocarray(q, usize::MAX, 2).is_null());
        assert_eq!(*libc::__errno_location(), libc::ENOMEM);
        interpose::free(q);
        // A block with pages of its own goes back to the kernel as it is.
        let big = libc::malloc(4 << 20) as *mut u8;
        std::ptr::write_bytes(big, CANARY, 4 << 20);
        interpose::free(big.cast());
        interpose::free(std::ptr::null_mut());
    }
}

#[test]
fn webkit_inherits_the_scrubbing_unless_the_user_chose_compositing() {
    let all: Vec<_> = super::scrub_vars(false).collect();
    assert_eq!(
        all,
        [
            (
                "GLIBC_TUNABLES",
                "glibc.malloc.perturb=90:glibc.malloc.tcache_count=0"
            ),
            ("Malloc", "1"),
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ]
    );
    let theirs: Vec<_> = super::scrub_vars(true).map(|(name, _)| name).collect();
    assert_eq!(theirs, ["GLIBC_TUNABLES", "Malloc"]);
}

#[test]
fn libraries_read_the_allocator_switches_and_the_rest_of_the_environment() {
    extern "C" {
        fn g_getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
    }
    let read = |name: &std::ffi::CStr| {
        // SAFETY: GLib's getenv, with a NUL-terminated name; the answer is NUL-terminated.
        let v = unsafe { g_getenv(name.as_ptr()) };
        // SAFETY: as above.
        (!v.is_null()).then(|| {
            unsafe { std::ffi::CStr::from_ptr(v) }
                .to_string_lossy()
                .into_owned()
        })
    };
    assert_eq!(read(c"Malloc").as_deref(), Some("1"));
    // Everything else is what the process was started with.
    let started = std::fs::read("/proc/self/environ").expect("own environment");
    let path = started
        .split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(b"PATH="))
        .map(|v| String::from_utf8_lossy(v).into_owned());
    assert!(path.is_some(), "the test runs with a PATH");
    assert_eq!(read(c"PATH"), path);
    assert_eq!(read(c"ANONCHAT_NO_SUCH_VARIABLE"), None);
    assert_eq!(read(c"PAT"), None, "a prefix is not a name");
    assert_eq!(read(c""), None);
}
