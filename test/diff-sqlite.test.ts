// Upstream-style fixes to SQLite (emscripten -O2, no names, no relocations): each patch is made by
// `diff` and applied live to the library running its own workload through its own glue.
import { beforeAll, describe, expect, it } from 'vitest';
import { diffBuilds, type Hotpatchable, type NotHotpatchable } from '../src/build/diff.js';
import { prepare } from '../src/prepare/prepare.js';
import { build, digest, seed, startSqlite } from '../patches/sqlite-fixes/example.js';

const TOO_BIG = 'error: string or blob too big';
let old: Uint8Array;
let baseline: Uint8Array;

beforeAll(async () => {
  old = build('sqlite');
  baseline = (await prepare(old)).bytes;
});

const diff = async (fix: string, options: { allowLayoutChange?: boolean; carryLineNumbers?: boolean } = {}) => diffBuilds(old, build(`sqlite-${fix}`), { baseline, id: fix, ...options });

/** Applies the fix's patch while the database is open, checks the fix and the data, reverts. */
async function live(fix: string, before: (q: (sql: string) => string) => void, after: (q: (sql: string) => string) => void): Promise<Hotpatchable> {
  const result = await diff(fix);
  expect(result.hotpatchable, JSON.stringify((result as NotHotpatchable).reasons)).toBe(true);
  const patchable = result as Hotpatchable;
  const db = await startSqlite(baseline);
  const data = seed(db);
  before(db.query);
  const patch = db.guest.apply(await db.guest.load(patchable.patch.bytes));
  expect(digest(db)).toBe(data);
  after(db.query);
  db.query("INSERT INTO item VALUES (5000, 'late', 1.5, 'z')");
  db.guest.revert(patch);
  before(db.query);
  expect(db.query('SELECT name FROM item WHERE id = 5000')).toBe('late\n');
  db.query('DELETE FROM item WHERE id = 5000');
  expect(digest(db)).toBe(data);
  return patchable;
}

describe('diff on SQLite: line numbers that moved are left out, never refused', () => {
  it('lines added (zeroblob() refuses more than 1 MB): one function patched, the line-number-only ones left out and listed', async () => {
    const result = await live(
      'lines-added',
      (q) => expect(q('SELECT length(zeroblob(2000000))')).toBe('2000000\n'),
      (q) => {
        expect(q('SELECT length(zeroblob(2000000))')).toBe(TOO_BIG);
        expect(q('SELECT length(zeroblob(1000))')).toBe('1000\n');
      },
    );
    expect(result.changed).toHaveLength(1);
    expect(result.mode).toEqual({ statics: 'heuristic', names: false });
    expect(result.leftOut.length).toBeGreaterThan(5);
    for (const left of result.leftOut) {
      expect(left.reason).toBe('LINE_NUMBERS');
      for (const c of left.constants) expect(c.new - c.old).toBe(4); // four lines added above them
    }
  }, 240_000);

  it('carryLineNumbers carries them instead', async () => {
    const left = (await diff('lines-added')) as Hotpatchable;
    const carried = (await diff('lines-added', { carryLineNumbers: true })) as Hotpatchable;
    expect(carried.changed).toHaveLength(1 + left.leftOut.length);
    expect(carried.leftOut).toEqual(left.leftOut.map((l) => ({ ...l, message: expect.stringContaining('carried as asked') })));
  }, 240_000);
});

describe('diff on SQLite: lines removed, a new helper', () => {
  it('lines removed (char() maps surrogates to U+FFFD): patched live, the shifted line numbers left out', async () => {
    const result = await live(
      'lines-removed',
      (q) => expect(q('SELECT hex(char(55296, 65))')).toBe('EDA08041\n'),
      (q) => expect(q('SELECT hex(char(55296, 65))')).toBe('EFBFBD41\n'),
    );
    expect(result.changed).toHaveLength(1);
    expect(result.leftOut.length).toBeGreaterThan(5);
    expect(result.leftOut.flatMap((l) => l.constants.map((c) => c.new - c.old))).toEqual(expect.arrayContaining([-1]));
  }, 240_000);

  it('a new helper (randomblob() and zeroblob() share a new size check): the helper travels with the patch', async () => {
    const result = await live(
      'new-helper',
      (q) => expect(q('SELECT length(randomblob(2000000))')).toBe('2000000\n'),
      (q) => {
        expect(q('SELECT length(randomblob(2000000))')).toBe(TOO_BIG);
        expect(q('SELECT length(randomblob(16))')).toBe('16\n');
        expect(q('SELECT length(zeroblob(2000000))')).toBe(TOO_BIG);
      },
    );
    expect(result.changed).toHaveLength(2); // randomblob() and zeroblob() both call it
    expect(result.added).toHaveLength(1);
  }, 240_000);
});

describe('diff on SQLite: shadow state instead of a new struct field', () => {
  it('a per-connection randomblob() budget lives in a shadow field of the connection; the post-revert hook frees it', async () => {
    const result = (await diff('shadow')) as Hotpatchable;
    expect(result).toMatchObject({ hotpatchable: true, hooks: ['hotpatch_post_revert'], shadow: expect.arrayContaining(['hotpatch.shadow.get_or_alloc', 'hotpatch.shadow.free_all']) });
    expect(result.changed).toHaveLength(1);
    const db = await startSqlite(baseline);
    const data = seed(db);
    const BUDGET = 0x524e4442;
    const patch = db.guest.apply(await db.guest.load(result.patch.bytes));
    expect(db.shadow.count()).toBe(0);
    expect(db.query('SELECT length(randomblob(600000))')).toBe('600000\n');
    expect(db.shadow.count(BUDGET)).toBe(1);
    expect(db.query('SELECT length(randomblob(600000))')).toBe(TOO_BIG);
    expect(db.query('SELECT length(randomblob(300000))')).toBe('300000\n');
    expect(digest(db)).toBe(data);
    db.guest.revert(patch);
    expect(db.shadow.count()).toBe(0);
    expect(db.query('SELECT length(randomblob(600000))')).toBe('600000\n');
    // A second apply starts a fresh budget: the old field was freed, not kept.
    const again = db.guest.apply(await db.guest.load(result.patch.bytes));
    expect(db.query('SELECT length(randomblob(900000))')).toBe('900000\n');
    db.guest.revert(again);
    expect(digest(db)).toBe(data);
  }, 240_000);
});

describe('diff on SQLite: a struct layout change', () => {
  it('is refused as LAYOUT_CHANGED, naming offsets and functions and what to do; allowed only when confirmed', async () => {
    const refused = (await diff('layout')) as NotHotpatchable;
    expect(refused.hotpatchable).toBe(false);
    expect(refused.reasons.map((r) => r.code)).toEqual(['LAYOUT_CHANGED', 'LAYOUT_CHANGED']);
    const [reason, size] = refused.reasons;
    expect(reason!.message).toMatch(/offset \d+ → \d+ \(#\d+/);
    expect(reason!.message).toMatch(/shadow state/);
    // The new field also makes struct sqlite3 larger: sqlite3_open's allocation (inlined in wl_open).
    expect(size).toMatchObject({ item: 'size 536 → 544', message: expect.stringContaining('passed by `wl_open`') });
    const confirmed = (await diff('layout', { allowLayoutChange: true })) as Hotpatchable;
    expect(confirmed.hotpatchable).toBe(true);
    expect(confirmed.warnings.map((w) => w.code)).toEqual(['LAYOUT_CHANGED', 'LAYOUT_CHANGED']);
    expect(confirmed.changed.length).toBeGreaterThan(100);
  }, 240_000);
});
