// (field) The same lock as accounts-fixed.rs, made the plain way: a new `failures` field in
// `Account`. It lands in the struct's padding (Rust orders fields by alignment; the struct stays
// 24 bytes), so no offset and no size changes, but accounts the running guest already holds have
// junk there: `diff` refuses it (LAYOUT_CHANGED, padding 20-23 filled). See README.md.
mod hotpatch_shadow;

pub struct Account {
    id: u32,
    pin: u32,
    balance: u64,
    logins: u32,
    failures: u32,
}

/// A new account; the host keeps the handle.
#[no_mangle]
pub extern "C" fn account_open(id: u32, pin: u32, balance: u64) -> *mut Account {
    Box::into_raw(Box::new(Account { id, pin, balance, logins: 0, failures: 0 }))
}

/// 1 if `pin` is the account's PIN (and counts the login), else 0.
#[no_mangle]
pub extern "C" fn login(account: &mut Account, pin: u32) -> i32 {
    if account.failures >= 3 {
        return -1;
    }
    if account.pin != pin {
        account.failures += 1;
        return 0;
    }
    account.failures = 0;
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
