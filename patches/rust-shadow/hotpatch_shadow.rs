//! Shadow state for hotpatches (livepatch's `klp_shadow_*`): a new field attached to an existing
//! object by its address, provided by the host as the `hotpatch.shadow` import module. Copy this
//! file into a crate and `mod hotpatch_shadow;` it from the build you ship as the baseline: it also
//! exports the allocator the host allocates fields with (`shadow_malloc`, `shadow_free`: give the
//! guest `shadow: { malloc: 'shadow_malloc', free: 'shadow_free' }`), which must be in the running
//! guest before any patch needs it. A patch's code then uses `get`, `alloc`,
//! `get_or_alloc`, and frees its fields from its `hotpatch_post_revert` hook with `free_all`.
//! The imports appear only in builds that call them: a baseline does not need the host's module.
#![allow(dead_code)]

use core::mem::{align_of, size_of};
use std::alloc::{alloc_zeroed, dealloc, Layout};

#[link(wasm_import_module = "hotpatch.shadow")]
extern "C" {
    #[link_name = "get"]
    fn import_get(obj: *const u8, id: u32) -> *mut u8;
    #[link_name = "alloc"]
    fn import_alloc(obj: *const u8, id: u32, size: u32) -> *mut u8;
    #[link_name = "get_or_alloc"]
    fn import_get_or_alloc(obj: *const u8, id: u32, size: u32) -> *mut u8;
    #[link_name = "free"]
    fn import_free(obj: *const u8, id: u32);
    #[link_name = "free_all"]
    fn import_free_all(id: u32);
}

/// The field `id` of `obj`, if it has one. Fields are zeroed when allocated, so `T` must be
/// valid as all zeroes (integers, bools, plain structs of them) and at most 8-aligned.
pub fn get<O, T>(obj: &O, id: u32) -> Option<&'static mut T> {
    debug_assert!(align_of::<T>() <= 8);
    unsafe { import_get(obj as *const O as *const u8, id).cast::<T>().as_mut() }
}

/// A new zeroed field `id` for `obj`; `None` if it has one already or memory ran out.
pub fn alloc<O, T>(obj: &O, id: u32) -> Option<&'static mut T> {
    unsafe { import_alloc(obj as *const O as *const u8, id, size_of::<T>() as u32).cast::<T>().as_mut() }
}

/// The field `id` of `obj`, allocated (zeroed) if it has none; `None` if memory ran out.
pub fn get_or_alloc<O, T>(obj: &O, id: u32) -> Option<&'static mut T> {
    unsafe { import_get_or_alloc(obj as *const O as *const u8, id, size_of::<T>() as u32).cast::<T>().as_mut() }
}

/// Frees the field `id` of `obj`, if it has one.
pub fn free<O>(obj: &O, id: u32) {
    unsafe { import_free(obj as *const O as *const u8, id) }
}

/// Frees the field `id` of every object (call it from `hotpatch_post_revert`).
pub fn free_all(id: u32) {
    unsafe { import_free_all(id) }
}

// The allocator the host allocates fields with: 8-aligned blocks with their size in front, since
// Rust's `dealloc` needs the size and the host's `free` passes only the pointer.
const HEADER: usize = 8;

/// Allocates `size` zeroed bytes for the host (null if out of memory).
#[no_mangle]
pub extern "C" fn shadow_malloc(size: usize) -> *mut u8 {
    let layout = match Layout::from_size_align(size + HEADER, 8) {
        Ok(layout) => layout,
        Err(_) => return core::ptr::null_mut(),
    };
    unsafe {
        let p = alloc_zeroed(layout);
        if p.is_null() {
            return p;
        }
        (p as *mut usize).write(size);
        p.add(HEADER)
    }
}

/// Frees a block `shadow_malloc` gave.
#[no_mangle]
pub extern "C" fn shadow_free(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    unsafe {
        let p = ptr.sub(HEADER);
        let size = (p as *const usize).read();
        dealloc(p, Layout::from_size_align_unchecked(size + HEADER, 8));
    }
}
