// A generated AssemblyScript program that reaches much of the standard library: per numeric type,
// Array, typed array, StaticArray, Set and Map instantiations with their common methods; strings;
// Math and Mathf; DataView; URI coding. Every generic instantiation is its own code, so it is large
// (thousands of lines of source after expansion, hundreds of functions), as real programs that
// use many element types are.

const TYPES: readonly (readonly [string, string])[] = [
  ['i8', 'Int8Array'],
  ['u8', 'Uint8Array'],
  ['i16', 'Int16Array'],
  ['u16', 'Uint16Array'],
  ['i32', 'Int32Array'],
  ['u32', 'Uint32Array'],
  ['i64', 'Int64Array'],
  ['u64', 'Uint64Array'],
  ['f32', 'Float32Array'],
  ['f64', 'Float64Array'],
];

const perType = (t: string, ta: string): string => `
export function arrays_${t}(n: i32): f64 {
  const a = new Array<${t}>();
  for (let i = 0; i < n; i++) a.push(<${t}>((i * 7919) % 1000));
  a.sort((x: ${t}, y: ${t}): i32 => (x < y ? -1 : x > y ? 1 : 0));
  const b = a.map<${t}>((x: ${t}): ${t} => <${t}>(x + <${t}>1)).filter((x: ${t}): bool => x % <${t}>3 != <${t}>0);
  const sum = b.reduce<f64>((acc: f64, x: ${t}): f64 => acc + <f64>x, 0);
  const c = a.slice(1).concat(b);
  c.reverse();
  const t = new ${ta}(n);
  for (let i = 0; i < n; i++) t[i] = <${t}>((i * 31) % 977);
  t.reverse();
  t.sort();
  const u = t.subarray(1, n - 1).map((x: ${t}): ${t} => <${t}>(x / <${t}>2));
  const s = new StaticArray<${t}>(n);
  for (let i = 0; i < n; i++) s[i] = a[i];
  const set = new Set<${t}>();
  const map = new Map<${t}, string>();
  for (let i = 0; i < n; i++) {
    set.add(a[i]);
    map.set(a[i], a[i].toString());
  }
  const joined = a.join(',');
  let parsed: f64 = 0;
  const parts = joined.split(',');
  for (let i = 0; i < parts.length; i++) parsed += parseFloat(parts[i]);
  return sum + parsed + <f64>set.size + <f64>map.size + <f64>c.length + <f64>a.indexOf(<${t}>5) + (a.includes(<${t}>7) ? 1.0 : 0.0) +
    <f64>u.length + <f64>t.lastIndexOf(<${t}>0) + <f64>s.indexOf(<${t}>9) + <f64>u.reduce<f64>((acc: f64, x: ${t}): f64 => acc + <f64>x, 0);
}
`;

const STRINGS = `
export function strings(n: i32): f64 {
  let text = '';
  for (let i = 0; i < n; i++) text += 'line ' + i.toString() + ': The Quick Brown Fox, ' + (<f64>i / 7.0).toString() + '\\n';
  const lines = text.split('\\n');
  let score: f64 = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    score += <f64>l.toUpperCase().indexOf('QUICK') + <f64>l.toLowerCase().lastIndexOf('fox');
    score += <f64>l.replaceAll('o', '0').length + <f64>l.trim().padStart(80, '.').length + <f64>l.padEnd(90).length;
    score += l.startsWith('line') ? 1 : 0;
    score += l.endsWith('5') ? 1 : 0;
    score += <f64>l.substring(3, 9).repeat(2).length + <f64>l.slice(-4).charCodeAt(0);
    score += <f64>l.localeCompare('line 5') + <f64>l.codePointAt(0) + <f64>String.fromCodePoint(0x1f600 + (i % 10)).length;
    score += <f64>encodeURIComponent(l).length + <f64>decodeURIComponent(encodeURIComponent(l)).length + <f64>encodeURI(l).length;
    score += <f64>String.UTF8.byteLength(l) + <f64>String.UTF16.byteLength(l) + <f64>String.UTF8.decode(String.UTF8.encode(l)).length;
  }
  return score;
}
`;

const MATH = `
export function math(n: i32): f64 {
  let r: f64 = 0;
  let rf: f32 = 0;
  for (let i = 1; i <= n; i++) {
    const x = <f64>i / <f64>n;
    r += Math.sin(x) + Math.cos(x) + Math.tan(x) + Math.asin(x) + Math.acos(x) + Math.atan(x) + Math.atan2(x, 1 - x);
    r += Math.sinh(x) + Math.cosh(x) + Math.tanh(x) + Math.asinh(x) + Math.acosh(1 + x) + Math.atanh(x * 0.5);
    r += Math.exp(x) + Math.expm1(x) + Math.log(x) + Math.log10(x) + Math.log2(x) + Math.log1p(x);
    r += Math.pow(x, 1.5) + Math.cbrt(x) + Math.hypot(x, 2) + Math.sqrt(x) + Math.fround(x) + Math.trunc(x * 10) + Math.sign(x - 0.5);
    const y = <f32>x;
    rf += Mathf.sin(y) + Mathf.cos(y) + Mathf.tan(y) + Mathf.asin(y) + Mathf.acos(y) + Mathf.atan(y) + Mathf.atan2(y, 1 - y);
    rf += Mathf.exp(y) + Mathf.expm1(y) + Mathf.log(y) + Mathf.log10(y) + Mathf.log2(y) + Mathf.log1p(y) + Mathf.pow(y, 1.5) + Mathf.cbrt(y) + Mathf.hypot(y, 2);
    rf += Mathf.sinh(y) + Mathf.cosh(y) + Mathf.tanh(y) + Mathf.asinh(y) + Mathf.acosh(1 + y) + Mathf.atanh(y * 0.5);
  }
  return r + <f64>rf;
}
`;

const DATAVIEW = `
export function dataview(n: i32): f64 {
  const buffer = new ArrayBuffer(n * 8 + 8);
  const view = new DataView(buffer);
  let r: f64 = 0;
  for (let i = 0; i < n; i++) {
    view.setInt8(i, <i8>i);
    view.setUint16(i, <u16>(i * 3), true);
    view.setInt32(i, i * 7, false);
    view.setFloat32(i, <f32>i * 0.5, true);
    view.setFloat64(i, <f64>i * 0.25, false);
    view.setInt64(i, <i64>i * 11, true);
    r += <f64>view.getInt8(i) + <f64>view.getUint8(i) + <f64>view.getInt16(i, true) + <f64>view.getUint16(i, false);
    r += <f64>view.getInt32(i, true) + <f64>view.getUint32(i) + <f64>view.getFloat32(i) + view.getFloat64(i, true);
    r += <f64>view.getInt64(i) + <f64>view.getUint64(i, true);
  }
  return r;
}
`;

/** The program's source. */
export function stdWideSource(): string {
  return [...TYPES.map(([t, ta]) => perType(t, ta)), STRINGS, MATH, DATAVIEW].join('');
}

/** Calls every export with `n`, and sums what they answer. */
export function runAll(exports: WebAssembly.Exports, n: number): number {
  let sum = 0;
  for (const fn of Object.values(exports)) if (typeof fn === 'function') sum += Number((fn as (n: number) => number)(n));
  return sum;
}
