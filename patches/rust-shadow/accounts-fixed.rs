// (fixed) Accounts of a login service, each a boxed `Account` the host holds by address (a wasm-bindgen
// style handle). `login` checks a PIN. The bug: nothing limits wrong guesses, so a 4-digit PIN
// falls to 10 000 tries. The fix (accounts-fixed.rs) locks an account after 3 wrong PINs in a row,
// which needs a per-account counter: `Account` has no room for it, and accounts the running guest
// already holds cannot grow, so the counter is a shadow field (hotpatch_shadow.rs).
mod hotpatch_shadow;

pub struct Account {
    id: u32,
    pin: u32,
    balance: u64,
    logins: u32,
}

/// A new account; the host keeps the handle.
#[no_mangle]
pub extern "C" fn account_open(id: u32, pin: u32, balance: u64) -> *mut Account {
    Box::into_raw(Box::new(Account { id, pin, balance, logins: 0 }))
}

/// The shadow field counting wrong PINs in a row (an id of this crate's choosing).
const FAILURES: u32 = 1;

/// 1 if `pin` is the account's PIN (and counts the login), else 0; after 3 wrong PINs in a row
/// the account is locked: -1, whatever the PIN.
#[no_mangle]
pub extern "C" fn login(account: &mut Account, pin: u32) -> i32 {
    let failures = match hotpatch_shadow::get_or_alloc::<_, u32>(account, FAILURES) {
        Some(failures) => failures,
        None => return -1, // out of memory: refuse rather than not count
    };
    if *failures >= 3 {
        return -1;
    }
    if account.pin != pin {
        *failures += 1;
        return 0;
    }
    *failures = 0;
    account.logins += 1;
    1
}

/// Run by the engine after the patch is reverted: the counters go back to the guest's allocator.
#[no_mangle]
pub extern "C" fn hotpatch_post_revert() {
    hotpatch_shadow::free_all(FAILURES);
}

/// The account's balance.
#[no_mangle]
pub extern "C" fn balance(account: &Account) -> u64 {
    account.balance
}

/// How many logins succeeded.
#[no_mangle]
pub extern "C" fn logins(account: &Account) -> u32 {
    account.logins
}

/// The account's id.
#[no_mangle]
pub extern "C" fn account_id(account: &Account) -> u32 {
    account.id
}
