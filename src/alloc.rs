//! The process's memory allocator: mimalloc for small blocks, the system's for large ones.
//!
//! Ingesting many small reports allocates and frees millions of short strings, most of
//! them freed on another thread than the one that made them (parse workers allocate, the
//! writer's helper frees); mimalloc does that about 10 % faster end to end than glibc.
//! But mimalloc grows a huge buffer (quick-xml holding a 200 MiB text node) by copying it,
//! and keeps the old one mapped for a while, where glibc remaps it in place: large blocks
//! stay with the system allocator so that memory budgets hold.
//!
//! Which allocator owns a block follows from its size alone, which Rust hands back on
//! every free and resize, so no bookkeeping is needed.
//!
//! This is the crate's only `unsafe` code: a global allocator cannot be written without it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this size and larger come from the system allocator.
pub const LARGE: usize = 1 << 20;

pub struct Hybrid;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

/// Whether mimalloc's plain `mi_malloc` already gives a block the alignment: every block
/// is aligned to at least a word. The `mimalloc` crate asks `mi_malloc_aligned` for every
/// block, whose checks, and whose slow path for blocks over 1 KiB, ingest paid on each of
/// its millions of allocations (1.75M on the 12,465-file demo).
fn is_word_aligned(layout: Layout) -> bool {
    layout.align() <= std::mem::size_of::<usize>()
}

// SAFETY: every block is freed and resized by the allocator that made it, which is
// decided by its size; both allocators are themselves sound `GlobalAlloc`s. mimalloc
// frees and resizes its blocks alike whether `mi_malloc` or `mi_malloc_aligned` made
// them, and `mi_malloc` aligns every block to at least a word.
unsafe impl GlobalAlloc for Hybrid {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            System.alloc(layout)
        } else if is_word_aligned(layout) {
            libmimalloc_sys::mi_malloc(layout.size()).cast()
        } else {
            MiMalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(layout.size()) {
            System.alloc_zeroed(layout)
        } else if is_word_aligned(layout) {
            libmimalloc_sys::mi_zalloc(layout.size()).cast()
        } else {
            MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(layout.size()) {
            System.dealloc(ptr, layout)
        } else {
            MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (is_large(layout.size()), is_large(new_size)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) if is_word_aligned(layout) => {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            }
            (false, false) => MiMalloc.realloc(ptr, layout, new_size),
            // Crossing the line: move the block to the other allocator.
            _ => {
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grow a block across the line and back, through every path, keeping its bytes.
    #[test]
    fn blocks_keep_their_bytes_when_they_move_between_allocators() {
        let a = Hybrid;
        unsafe {
            let small = Layout::from_size_align(1000, 8).unwrap();
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..1000 {
                *p.add(i) = (i % 251) as u8;
            }
            let big = LARGE * 3;
            let p = a.realloc(p, small, big);
            assert!(!p.is_null());
            let big_layout = Layout::from_size_align(big, 8).unwrap();
            *p.add(big - 1) = 7;
            let p = a.realloc(p, big_layout, big * 2);
            let bigger = Layout::from_size_align(big * 2, 8).unwrap();
            assert_eq!(*p.add(big - 1), 7);
            let p = a.realloc(p, bigger, 500);
            for i in 0..500 {
                assert_eq!(*p.add(i), (i % 251) as u8, "byte {i}");
            }
            a.dealloc(p, Layout::from_size_align(500, 8).unwrap());

            let z = a.alloc_zeroed(Layout::from_size_align(LARGE, 64).unwrap());
            assert_eq!(z as usize % 64, 0);
            assert!((0..LARGE).step_by(4096).all(|i| *z.add(i) == 0));
            a.dealloc(z, Layout::from_size_align(LARGE, 64).unwrap());
        }
    }

    /// Every size and alignment gets a block aligned as asked, zeroed when asked, that
    /// keeps its bytes when resized within mimalloc: plain blocks (word alignment or less)
    /// and aligned ones alike.
    #[test]
    fn small_blocks_are_aligned_as_asked_and_keep_their_bytes() {
        let a = Hybrid;
        for align in [1usize, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..3000).step_by(37) {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0), "zeroed {size} {align}");
                    a.dealloc(z, layout);
                    let p = a.alloc(layout);
                    assert_eq!(p as usize % align, 0, "{size} {align}");
                    for i in 0..size {
                        *p.add(i) = (i % 253) as u8;
                    }
                    let grown = size * 3 + 5;
                    let q = a.realloc(p, layout, grown);
                    assert_eq!(q as usize % align, 0, "grown {size} {align}");
                    assert!((0..size).all(|i| *q.add(i) == (i % 253) as u8));
                    a.dealloc(q, Layout::from_size_align(grown, align).unwrap());
                }
            }
        }
    }
}
