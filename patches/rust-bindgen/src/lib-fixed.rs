// A record store exported through #[wasm_bindgen]: the JS glue copies the payload into guest
// memory through __wbindgen_malloc and calls `put`; `get` returns the stored payload as a Vec
// (through a return pointer, freed by the glue with __wbindgen_free).
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn warn(message: &str);
}

static mut STORE: [[u8; 64]; 8] = [[0; 64]; 8];
static mut LENGTHS: [usize; 8] = [0; 8];

/// Stores `payload` as the record for `kind` (mod 8); tells whether it was stored. The bug: a
/// payload longer than a slot (64 bytes) is cut to 64 without a word, and the caller is told it
/// was stored: a truncated record passes for a whole one.
#[wasm_bindgen]
pub fn put(kind: u8, payload: &[u8]) -> bool {
    let k = kind as usize % 8;
    if payload.is_empty() {
        warn("put: record refused");
        return false;
    }
    // A payload longer than a slot is refused instead of cut short.
    if payload.len() > 64 {
        warn("put: record refused");
        return false;
    }
    store(k, payload);
    true
}

#[inline(never)]
fn store(k: usize, payload: &[u8]) {
    let n = payload.len().min(64);
    unsafe {
        STORE[k][..n].copy_from_slice(&payload[..n]);
        LENGTHS[k] = n;
    }
}

/// The payload stored for `kind`.
#[wasm_bindgen]
pub fn get(kind: u8) -> Vec<u8> {
    let k = kind as usize % 8;
    unsafe { STORE[k][..LENGTHS[k]].to_vec() }
}

/// Sum of the bytes stored for `kind`.
#[wasm_bindgen]
pub fn checksum(kind: u8) -> u32 {
    let k = kind as usize % 8;
    unsafe { STORE[k][..LENGTHS[k]].iter().map(|&b| b as u32).sum() }
}

/// The byte at `i` of the payload stored for `kind` (panics when out of range).
#[wasm_bindgen]
pub fn byte_at(kind: u8, i: usize) -> u8 {
    let k = kind as usize % 8;
    unsafe { STORE[k][..LENGTHS[k]][i] }
}
