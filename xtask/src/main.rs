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

/// mimalloc's `mi_option_purge_delay`: the option's place in `mi_option_e` (mimalloc.h, v3,
/// the version `libmimalloc-sys` 0.1.49 builds), which the crate does not name.
const MI_OPTION_PURGE_DELAY: mi::mi_option_t = 15;

/// Never hand freed memory back to the kernel. By default mimalloc purges pages left free for
/// a second of wall time, and a run that needs them again faults them back in, each zeroed by
/// the kernel: `bench scenarios kvraft` took 5 100 page faults instead of 400, and one
/// profile put 7 % of its time in the kernel's `clear_page` (BENCHMARKS.md, session 10). The
/// process peaks at about 100 MB, so keeping it is cheap. Purging follows the wall clock but
/// changes no run: only which pages back the blocks.
fn keep_freed_memory() {
    // SAFETY: called first thing in `main`, before any other thread exists (the option is
    // not synchronised).
    unsafe { mi::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    simlab_cli::main(scenarios::catalogue())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_the_option_it_names() {
        // SAFETY: reads an option; tests may run in parallel, but none sets options.
        let default = unsafe { mi::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // v3's default purge delay is 1 000 ms (options.c); another option at this index would
        // have another default.
        assert_eq!(default, 1000, "option {MI_OPTION_PURGE_DELAY} is not mimalloc's purge delay");
    }
}
