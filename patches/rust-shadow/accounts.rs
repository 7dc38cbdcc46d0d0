// Accounts of a login service, each a boxed `Account` the host holds by address (a wasm-bindgen
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

/// 1 if `pin` is the account's PIN (and counts the login), else 0.
#[no_mangle]
pub extern "C" fn login(account: &mut Account, pin: u32) -> i32 {
    if account.pin != pin {
        return 0;
    }
    account.logins += 1;
    1
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
