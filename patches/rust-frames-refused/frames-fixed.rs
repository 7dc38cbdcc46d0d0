// A frame decoder for a small binary protocol: [kind u8][len u8][payload len bytes]…, frames back
// to back in a 256-byte receive buffer the host fills. The service keeps running totals.
//
// The fixed build: a frame whose payload runs past the data received is malformed (-1), as it
// should have been. Nothing else differs.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

static mut RX: [u8; 256] = [0; 256];
static mut FRAMES: u32 = 0;
static mut BYTES: u32 = 0;

#[no_mangle]
pub extern "C" fn rx_buffer() -> *mut u8 {
    unsafe { RX.as_mut_ptr() }
}

#[no_mangle]
pub extern "C" fn frames_seen() -> u32 {
    unsafe { FRAMES }
}

#[no_mangle]
pub extern "C" fn bytes_seen() -> u32 {
    unsafe { BYTES }
}

#[inline(never)]
fn checksum(payload: &[u8]) -> u32 {
    payload.iter().fold(0u32, |acc, &b| acc.rotate_left(5) ^ b as u32)
}

/// Decodes `received` bytes of the receive buffer; returns the xor of the payload checksums, or
/// -1 for a malformed stream.
#[no_mangle]
#[inline(never)]
pub extern "C" fn decode(received: u32) -> i32 {
    let data: &[u8] = unsafe { &RX[..(received as usize).min(256)] };
    let mut at = 0usize;
    let mut sum = 0u32;
    while at + 2 <= data.len() {
        let len = data[at + 1] as usize;
        let end = at + 2 + len;
        if end > data.len() {
            return -1;
        }
        sum ^= checksum(&data[at + 2..end]);
        unsafe {
            FRAMES += 1;
            BYTES += len as u32;
        }
        at = end;
    }
    sum as i32
}
