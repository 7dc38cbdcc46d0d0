// A storage quota service: tenants reserve space, the service refuses what would exceed the
// quota. State (how much each tenant uses) lives in linear memory for the life of the guest.
//
// The fixed build: `reserve` compares `len` with the room left, which cannot overflow (the service
// keeps used <= QUOTA). Nothing else differs.
#![no_std]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

const TENANTS: usize = 16;
const QUOTA: u32 = 1 << 20;

static mut USED: [u32; TENANTS] = [0; TENANTS];
static mut GRANTED: u64 = 0;

#[no_mangle]
pub extern "C" fn used(tenant: u32) -> u32 {
    unsafe { USED[tenant as usize % TENANTS] }
}

/// Total bytes ever granted, in 64 bits: what the service actually handed out.
#[no_mangle]
pub extern "C" fn granted() -> u64 {
    unsafe { GRANTED }
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn reserve(tenant: u32, len: u32) -> i32 {
    let t = tenant as usize % TENANTS;
    unsafe {
        if len > QUOTA - USED[t] {
            return -1;
        }
        USED[t] += len;
        GRANTED += len as u64;
    }
    0
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn release(tenant: u32, len: u32) -> i32 {
    let t = tenant as usize % TENANTS;
    unsafe {
        if len > USED[t] {
            return -1;
        }
        USED[t] -= len;
    }
    0
}
