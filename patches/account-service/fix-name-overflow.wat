;; Security fix for the account service: set_name copied one byte past the name buffer, into
;; `role`, so a 16-byte name plus one crafted byte made any user an administrator.
;;
;; The fix wraps the original: names that leave no room for the terminating byte are refused,
;; and the byte after the payload is zeroed, so the original copy (len + 1 bytes) ends with the
;; NUL it was written to copy. Accounts, balances and counters stay where they are.
(module
  (import "baseline" "memory" (memory 1))
  (import "original" "set_name" (func $set_name (param i32 i32 i32) (result i32)))

  (func (export "set_name") (param $id i32) (param $src i32) (param $len i32) (result i32)
    (if (i32.ge_u (local.get $len) (i32.const 16))
      (then (return (i32.const -2)))) ;; E_TOO_LONG, as the service reports it
    (i32.store8 (i32.add (local.get $src) (local.get $len)) (i32.const 0))
    (call $set_name (local.get $id) (local.get $src) (local.get $len))))
