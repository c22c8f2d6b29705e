//! The allocator every front-end installs (`#[global_allocator]`): freed memory is wiped, so chat
//! text that passed through buffers nobody zeroizes by hand (a JSON line read or printed, serde's
//! intermediate strings, a `Vec` that grew and moved) does not stay in the heap after the chat
//! ended (P4).

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, zeroing each block as it is freed, and before `realloc` could move it.
pub struct ZeroOnFree {
    /// The process's C `free` zeroes every block already (the desktop app defines its own on
    /// Linux): the Rust side then need not wipe twice.
    pub free_zeroes: bool,
}

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
            if !self.free_zeroes {
                zeroize::Zeroize::zeroize(std::slice::from_raw_parts_mut(ptr, layout.size()));
            }
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

// Whether freed blocks are wiped can only be seen in a running process's memory, not from safe
// code: `tests/core.rs` dumps the CLI's after a chat ended.
#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::ZeroOnFree;

    #[test]
    fn realloc_keeps_the_content_and_moves_through_a_wiped_block() {
        let a = ZeroOnFree { free_zeroes: false };
        let layout = Layout::from_size_align(16, 8).expect("layout");
        // SAFETY: as above; the grown block is freed with its own layout.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::copy_nonoverlapping(b"0123456789abcdef".as_ptr(), p, 16);
            let q = a.realloc(p, layout, 4096);
            assert!(!q.is_null());
            assert_eq!(std::slice::from_raw_parts(q, 16), b"0123456789abcdef");
            a.dealloc(q, Layout::from_size_align(4096, 8).expect("layout"));
        }
    }
}
