//! `cargo xtask`: this project's command line — the library `simlab_cli` serving this
//! project's catalogue (`scenarios::catalogue()`), the same entry point a downstream crate
//! calls with a catalogue of its own.

use libmimalloc_sys as mi;
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// mimalloc as the global allocator, taking its plain `mi_malloc` path whenever that path's
/// alignment is enough, as the standard library's `System` does with `malloc`: like any C
/// `malloc`, `mi_malloc` aligns a block of 16 bytes or more to 16 bytes, and a smaller
/// block to its size class. The `mimalloc` crate's `MiMalloc` calls `mi_malloc_aligned`
/// for every allocation, which costs about twice the instructions (measured in
/// BENCHMARKS.md); the blocks and their reuse are the same, so no run changes.
struct MiMalloc;

/// The alignment every `mi_malloc` block of at least this size has (x86-64 and AArch64).
const MIN_ALIGN: usize = 16;

/// Whether a block of `size` bytes aligned to `align` can take mimalloc's plain path: every `mi_malloc` block is aligned to
/// `MIN_ALIGN`, and a block of size `n` to `n` when `n` is smaller.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

// SAFETY: every pointer returned comes from mimalloc with at least the layout's alignment
// (the plain path is taken only where mimalloc guarantees it), and is freed by mimalloc.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size and a power-of-two alignment.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; the new block keeps the layout's alignment.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    simlab_cli::main(scenarios::catalogue())
}
