;; The same fix as accounts-fixed.rs, written by hand: a wrapper around the original `login` that
;; keeps the count of wrong PINs in a row in a shadow field (id 1) of each account, and locks the
;; account after 3. The post-revert hook frees every counter through the guest's allocator.
(module
  (import "hotpatch.shadow" "get_or_alloc" (func $get_or_alloc (param i32 i32 i32) (result i32)))
  (import "hotpatch.shadow" "free_all" (func $free_all (param i32)))
  (import "original" "login" (func $login (param i32 i32) (result i32)))
  (import "baseline" "memory" (memory 17))

  (func (export "login") (param $account i32) (param $pin i32) (result i32)
    (local $failures i32) (local $ok i32)
    (local.set $failures (call $get_or_alloc (local.get $account) (i32.const 1) (i32.const 4)))
    (if (i32.eqz (local.get $failures)) (then (return (i32.const -1)))) ;; out of memory: refuse
    (if (i32.ge_u (i32.load (local.get $failures)) (i32.const 3)) (then (return (i32.const -1))))
    (local.set $ok (call $login (local.get $account) (local.get $pin)))
    (i32.store (local.get $failures)
      (select (i32.const 0) (i32.add (i32.load (local.get $failures)) (i32.const 1)) (local.get $ok)))
    (local.get $ok))

  (func (export "hotpatch_post_revert") (call $free_all (i32.const 1))))
