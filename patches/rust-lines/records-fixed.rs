// A record store in the style of a wasm-bindgen crate (a cdylib with an allocator export the
// host writes input through): the host copies a record into guest memory and calls `put`.
// A record is [kind: u8][len: u8][payload: len bytes]; the store keeps the last payload per kind.

static mut STORE: [[u8; 64]; 8] = [[0; 64]; 8];
static mut LENGTHS: [usize; 8] = [0; 8];

#[no_mangle]
pub extern "C" fn __wbindgen_malloc(size: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(size);
    let p = v.as_mut_ptr();
    core::mem::forget(v);
    p
}

/// Stores a record; returns the payload length stored. The bug: a payload longer than a slot
/// (64 bytes) is cut to 64 without a word, and the caller is told 64 bytes were stored: a
/// truncated record passes for a whole one.
#[no_mangle]
pub extern "C" fn put(ptr: *const u8, n: usize) -> i32 {
    let record = unsafe { core::slice::from_raw_parts(ptr, n) };
    let kind = record[0] as usize % 8;
    let len = record[1] as usize;
    let payload = &record[2..2 + len];
    // A payload longer than a slot is refused instead of cut short.
    if payload.len() > 64 {
        return -2;
    }
    store(kind, payload)
}

#[inline(never)]
fn store(kind: usize, payload: &[u8]) -> i32 {
    let n = payload.len().min(64);
    unsafe {
        STORE[kind][..n].copy_from_slice(&payload[..n]);
        LENGTHS[kind] = n;
    }
    n as i32
}

/// Sum of the bytes stored for `kind`.
#[no_mangle]
pub extern "C" fn checksum(kind: usize) -> u32 {
    let k = kind % 8;
    unsafe { STORE[k][..LENGTHS[k]].iter().map(|&b| b as u32).sum() }
}

/// The byte at `i` of the payload stored for `kind` (panics when out of range).
#[no_mangle]
pub extern "C" fn byte_at(kind: usize, i: usize) -> u32 {
    let k = kind % 8;
    unsafe { STORE[k][..LENGTHS[k]][i] as u32 }
}
