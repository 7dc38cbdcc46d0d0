// A tiny account service, the guest of the examples and the demo. Requests arrive through a
// shared buffer; state (accounts, balances, counters) lives in linear memory for the guest's life.
//
// The bug: set_name copies one byte too many (`i <= len`, meant to copy a C string's NUL). A
// 16-byte name plus one extra payload byte lands in `role`, right after the name buffer, and an
// ordinary user makes itself an administrator.
typedef unsigned char u8;
typedef unsigned int u32;

// -nostdlib: the compiler may still turn a clearing loop into a call to memset.
void *memset(void *d, int c, unsigned long n) {
  u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}

enum { ROLE_USER = 1, ROLE_ADMIN = 7 };
enum { REQ_SET_NAME = 1, REQ_DEPOSIT = 2, REQ_WITHDRAW = 3, REQ_AUDIT = 4, REQ_BALANCE = 5, REQ_NOTE = 6 };
enum { OK = 0, E_BAD_ACCOUNT = -1, E_TOO_LONG = -2, E_FUNDS = -3, E_DENIED = -4, E_BAD_REQUEST = -5, E_NO_MEMORY = -6 };
#define ACCOUNTS 64
#define NAME_MAX 16

struct account {
  char name[NAME_MAX];
  u8 role;
  u8 pad[3];
  u32 balance;
};

static struct account accounts[ACCOUNTS];
static u32 requests_served;
static u32 audits_run;
static u8 request[256];
static u8 arena[4096];
static u32 arena_top;
static u8 *notes[ACCOUNTS];

__attribute__((export_name("request_buffer"))) u8 *request_buffer(void) { return request; }

__attribute__((export_name("init"))) void init(void) {
  for (u32 i = 0; i < ACCOUNTS; i++) {
    accounts[i].role = i == 0 ? ROLE_ADMIN : ROLE_USER;
    accounts[i].balance = 100;
    for (u32 j = 0; j < NAME_MAX; j++) accounts[i].name[j] = 0;
  }
  requests_served = 0;
  audits_run = 0;
  arena_top = 0;
  for (u32 i = 0; i < ACCOUNTS; i++) notes[i] = 0;
}


__attribute__((noinline)) static struct account *lookup(u32 id) { return id < ACCOUNTS ? &accounts[id] : 0; }

// The service's allocator: a bump arena. Returns 0 when it is full.
__attribute__((noinline)) static void *arena_alloc(u32 size) {
  if (size > sizeof arena - arena_top) return 0;
  void *p = arena + arena_top;
  arena_top += (size + 7) & ~7u;
  return p;
}

// Attaches a note (the request payload, `len` bytes) to an account; returns its length.
__attribute__((noinline)) static int add_note(u32 id, u32 len) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  if (len > 200) return E_TOO_LONG;
  u8 *p = arena_alloc(len + 1);
  if (!p) return E_NO_MEMORY;
  for (u32 i = 0; i < len; i++) p[i] = request[i];
  p[len] = 0;
  notes[id] = p;
  return (int)len;
}

__attribute__((export_name("set_name"), noinline)) int set_name(u32 id, const u8 *src, u32 len) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  if (len > NAME_MAX) return E_TOO_LONG;
  for (u32 i = 0; i <= len; i++) a->name[i] = src[i]; // BUG: copies len + 1 bytes
  return OK;
}

__attribute__((noinline)) static int deposit(u32 id, u32 amount) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  a->balance += amount;
  return OK;
}

__attribute__((noinline)) static int withdraw(u32 id, u32 amount) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  if (a->balance < amount) return E_FUNDS;
  a->balance -= amount;
  return OK;
}

// Administrators may audit: it reports the sum of all balances. Anyone else is refused.
__attribute__((noinline)) static int audit(u32 id) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  if (a->role != ROLE_ADMIN) return E_DENIED;
  audits_run++;
  u32 total = 0;
  for (u32 i = 0; i < ACCOUNTS; i++) total += accounts[i].balance;
  return (int)total;
}

// One request: kind, account, and either an amount or `len` bytes of payload in the buffer.
__attribute__((export_name("handle"))) int handle(u32 kind, u32 id, u32 arg) {
  requests_served++;
  switch (kind) {
    case REQ_SET_NAME: return set_name(id, request, arg);
    case REQ_DEPOSIT: return deposit(id, arg);
    case REQ_WITHDRAW: return withdraw(id, arg);
    case REQ_AUDIT: return audit(id);
    case REQ_BALANCE: { struct account *a = lookup(id); return a ? (int)a->balance : E_BAD_ACCOUNT; }
    case REQ_NOTE: return add_note(id, arg);
    default: return E_BAD_REQUEST;
  }
}

__attribute__((export_name("role"))) u32 role(u32 id) { struct account *a = lookup(id); return a ? a->role : 0; }
__attribute__((export_name("requests_served"))) u32 get_requests_served(void) { return requests_served; }
__attribute__((export_name("audits_run"))) u32 get_audits_run(void) { return audits_run; }
__attribute__((export_name("state"))) const struct account *state(void) { return accounts; }
__attribute__((export_name("state_size"))) u32 state_size(void) { return sizeof accounts; }
__attribute__((export_name("note"))) const u8 *note(u32 id) { return id < ACCOUNTS ? notes[id] : 0; }

// The demo's traffic: handles `n` requests from simulated clients (n == 0: forever, the guest
// never returns), one in 200 from an attacker trying the role overwrite. The intrusion monitor
// demotes an account as soon as an escalation works. Counters let the host watch from outside.
static u32 rng_state = 0x9e3779b9;
static u32 started, simulated, attempts, escalations, stop_requested;
static long long bank_expected;

__attribute__((noinline)) static u32 rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

__attribute__((export_name("simulate"))) void simulate(u32 n) {
  if (bank_expected == 0) bank_expected = 100LL * ACCOUNTS;
  stop_requested = 0;
  for (u32 i = 0; (n == 0 || i < n) && !stop_requested; i++) {
    started++;
    u32 r = rng();
    u32 id = 1 + (r >> 8) % (ACCOUNTS - 1);
    if (r % 200 == 0) {
      for (u32 k = 0; k < NAME_MAX; k++) request[k] = 'A';
      request[NAME_MAX] = ROLE_ADMIN;
      handle(REQ_SET_NAME, id, NAME_MAX);
      attempts++;
      if (handle(REQ_AUDIT, id, 0) != E_DENIED) {
        escalations++;
        accounts[id].role = ROLE_USER;
      }
    } else if (r % 4 == 0) {
      if (handle(REQ_DEPOSIT, id, 10) == OK) bank_expected += 10;
    } else if (r % 4 == 1) {
      if (handle(REQ_WITHDRAW, id, 7) == OK) bank_expected -= 7;
    } else if (r % 4 == 2) {
      request[0] = 'u'; request[1] = '0' + r % 10;
      handle(REQ_SET_NAME, id, 2);
    } else {
      handle(REQ_BALANCE, id, 0);
    }
    simulated++;
  }
}

// The demo's main: a fresh service, then traffic forever.
__attribute__((export_name("run"))) void run(void) {
  init();
  simulate(0);
}

// Ends simulate() after the request in hand: the host's way to quiesce the guest.
__attribute__((export_name("stop"))) void stop(void) { stop_requested = 1; }
// Requests begun but not finished: 0 whenever the guest is between requests.
__attribute__((export_name("in_flight"))) u32 in_flight(void) { return started - simulated; }
__attribute__((export_name("started"))) u32 get_started(void) { return started; }
__attribute__((export_name("simulated"))) u32 get_simulated(void) { return simulated; }
__attribute__((export_name("attempts"))) u32 get_attempts(void) { return attempts; }
__attribute__((export_name("escalations"))) u32 get_escalations(void) { return escalations; }
// 1 when every account's balance adds up to what the handled deposits and withdrawals say.
__attribute__((export_name("bank_ok"))) u32 bank_ok(void) {
  long long total = 0;
  for (u32 i = 0; i < ACCOUNTS; i++) total += accounts[i].balance;
  return total == bank_expected;
}
__attribute__((export_name("state_checksum"))) u32 state_checksum(void) {
  u32 h = 0x811c9dc5;
  const u8 *p = (const u8 *)accounts;
  for (u32 i = 0; i < sizeof accounts; i++) h = (h ^ p[i]) * 0x01000193;
  return h;
}

// The operator's console: demote (or promote) an account, e.g. after an intrusion was detected.
__attribute__((export_name("set_role"))) int set_role(u32 id, u32 new_role) {
  struct account *a = lookup(id);
  if (!a) return E_BAD_ACCOUNT;
  a->role = (u8)new_role;
  return OK;
}
