/** Every stable error code wasm-hotpatch can throw; tests and callers switch on these. */
export type HotpatchErrorCode =
  // input bytes
  | 'E_NOT_WASM'
  | 'E_INVALID_WASM'
  | 'E_UNSUPPORTED_FEATURE'
  // prepare
  | 'E_ALREADY_PREPARED'
  | 'E_BAD_OPTIONS'
  | 'E_NOTHING_TO_PATCH'
  | 'E_WRONG_BUILD'
  | 'E_BAD_PROFILE'
  // manifests
  | 'E_NOT_A_BASELINE'
  | 'E_MANIFEST_MISSING'
  | 'E_MANIFEST_INVALID'
  | 'E_BASELINE_TAMPERED'
  // patch validation (collected as problems of E_PATCH_REJECTED)
  | 'E_PATCH_REJECTED'
  | 'E_BASELINE_MISMATCH'
  | 'E_UNKNOWN_FUNCTION'
  | 'E_AMBIGUOUS_FUNCTION'
  | 'E_NOT_PATCHABLE'
  | 'E_DUPLICATE_TARGET'
  | 'E_MISSING_EXPORT'
  | 'E_SIGNATURE_MISMATCH'
  | 'E_IMPORT_UNRESOLVED'
  | 'E_ORIGINALS_UNAVAILABLE'
  | 'E_IMPORT_NOT_ALLOWED'
  | 'E_IMPORT_TYPE_MISMATCH'
  | 'E_PATCH_HAS_START'
  | 'E_PATCH_WRITES_BASELINE'
  | 'E_BAD_HOOK'
  | 'E_INSTANTIATE_FAILED'
  // patch stack
  | 'E_ALREADY_LOADED'
  | 'E_ALREADY_APPLIED'
  | 'E_DOWNGRADE'
  | 'E_UNKNOWN_PATCH'
  | 'E_NOT_APPLIED'
  | 'E_WRONG_GUEST'
  | 'E_VETOED'
  | 'E_ROLLED_BACK'
  | 'E_ACTIVE'
  | 'E_QUIESCENCE_TIMEOUT'
  | 'E_HOOK_TRAPPED'
  | 'E_CLOSED'
  // host side
  | 'E_UNSIGNED'
  | 'E_UNTRUSTED_KEY'
  | 'E_BAD_SIGNATURE'
  | 'E_PATCH_TOO_LARGE'
  | 'E_NO_WEBCRYPTO'
  | 'E_INTERNAL'
  | 'E_REFUSED'
  | 'E_STORE_CORRUPT'
  | 'E_STORE_UNSAFE'
  | 'E_STORE_LOCKED'
  | 'E_STORE_UNKNOWN_PATCH'
  | 'E_APPLIED_NOT_RECORDED'
  | 'E_ENDPOINT_IN_USE'
  | 'E_GUEST_STUCK'
  | 'E_EXISTS'
  | 'E_IO'
  | 'E_TIMEOUT'
  | 'E_TRANSITION_TIMEOUT'
  | 'E_TRANSITION_FAILED'
  | 'E_GUEST_EXITED'
  // fleet
  | 'E_CONFLICT'
  | 'E_DIGEST_MISMATCH'
  | 'E_USAGE';

/** One problem found while validating; a rejection carries all of them. */
export interface Problem {
  readonly code: HotpatchErrorCode;
  readonly message: string;
  /** Where the problem is, e.g. `targets[2].function` or `import live.parse`. */
  readonly path?: string;
}

/** The one error class of wasm-hotpatch: a stable `code`, a readable message, and every problem found. */
export class HotpatchError extends Error {
  override readonly name = 'HotpatchError';
  readonly code: HotpatchErrorCode;
  readonly problems: readonly Problem[];

  constructor(code: HotpatchErrorCode, message: string, options: { cause?: unknown; problems?: readonly Problem[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.problems = options.problems ?? [{ code, message }];
  }

  /** A plain-data form for `--json` output and logs. */
  toJSON(): { code: HotpatchErrorCode; message: string; problems: readonly Problem[] } {
    return { code: this.code, message: this.message, problems: this.problems };
  }
}

/** One message that states every problem: `what: reason`, or `what for N reasons:` and a list. */
export function formatProblems(what: string, problems: readonly Problem[]): string {
  if (problems.length === 1) return `${what}: ${problems[0]!.message}`;
  return `${what} for ${problems.length} reasons:\n${problems.map((p) => `  - ${p.message}`).join('\n')}`;
}

/** Throws one error carrying every collected problem, or returns when there are none. */
export function throwProblems(code: HotpatchErrorCode, what: string, problems: readonly Problem[]): void {
  if (problems.length > 0) throw new HotpatchError(code, formatProblems(what, problems), { problems });
}

/**
 * The one way a patch is refused for what it is: E_PATCH_REJECTED naming the patch (when it got
 * far enough to have an id) and carrying every problem found.
 */
export function patchRejected(id: string | undefined, problems: readonly Problem[], cause?: unknown): HotpatchError {
  const what = id === undefined ? 'patch rejected' : `patch "${id}" rejected`;
  return new HotpatchError('E_PATCH_REJECTED', formatProblems(what, problems), { problems, ...(cause === undefined ? {} : { cause }) });
}
