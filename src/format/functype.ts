import { HotpatchError } from '../errors.js';
import type { FuncType, ValType } from './module.js';

const VALTYPES = new Set<ValType>(['i32', 'i64', 'f32', 'f64', 'v128', 'funcref', 'externref']);

/**
 * Parses signature text as the manifest writes it, `(i32, i64) -> (f64)`.
 * @throws HotpatchError E_MANIFEST_INVALID
 */
export function parseSignature(text: string): FuncType {
  const m = /^\((.*)\) -> \((.*)\)$/.exec(text);
  const list = (s: string): ValType[] => (s.trim() === '' ? [] : s.split(',').map((x) => x.trim() as ValType));
  const type = m ? { params: list(m[1]!), results: list(m[2]!) } : undefined;
  if (!type || ![...type.params, ...type.results].every((t) => VALTYPES.has(t))) {
    throw new HotpatchError('E_MANIFEST_INVALID', `not a signature: ${text}`);
  }
  return type;
}
