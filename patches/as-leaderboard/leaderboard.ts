// A leaderboard kept in linear memory: 16 score slots, then a `locked` word the operator sets
// when the season ends (locked boards refuse new scores).
//
// The bug: `setScore` checks `slot <= SLOTS` instead of `slot < SLOTS`, so slot 16 writes the word
// right after the table: the `locked` flag. Anyone can end a live season (freeze the board) with
// an ordinary score request.

const SLOTS: u32 = 16;
const TABLE: usize = memory.data(4 * 16 + 4, 16); // 16 scores, then `locked`
const LOCKED: usize = TABLE + 4 * 16;

export function setScore(slot: u32, score: i32): i32 {
  if (load<i32>(LOCKED) !== 0) return -2;
  if (slot > SLOTS) return -1;
  store<i32>(TABLE + ((<usize>slot) << 2), score);
  return 0;
}

export function score(slot: u32): i32 {
  return slot < SLOTS ? load<i32>(TABLE + ((<usize>slot) << 2)) : 0;
}

export function best(): i32 {
  let top = i32.MIN_VALUE;
  for (let i: u32 = 0; i < SLOTS; i++) top = max(top, load<i32>(TABLE + ((<usize>i) << 2)));
  return top;
}

export function lock(): void {
  store<i32>(LOCKED, 1);
}

export function locked(): i32 {
  return load<i32>(LOCKED);
}
