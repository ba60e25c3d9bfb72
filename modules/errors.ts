/*
 * Typed errors of the portable core.
 *
 * Every failure the core reports is a WcmError with a stable code that hosts,
 * the cloud and tests can branch on. Messages name the field and the rule that
 * failed, never a secret value.
 */

/** Stable error codes. The catalogue lives in docs/protocol.md ("Error codes"). */
export type WcmErrorCode =
  | "CONFIG_INVALID"
  | "MESSAGE_INVALID"
  | "MESSAGE_TOO_LARGE"
  | "STORE_LIMIT"
  | "STORE_FAILED"
  | "CREDENTIAL_INVALID"
  | "PROTOCOL_VIOLATION"
  | "STATE_INVALID"
  | "KEY_UNAVAILABLE";

/** An error raised by the core: `code` is stable, `field` names the offending input when there is one. */
export class WcmError extends Error {
  // a field, not `this.name = …`: in a preloaded (frozen) firmware image the
  // inherited Error.prototype.name is read-only, and assigning it throws
  override name = "WcmError";
  declare readonly code: WcmErrorCode;
  declare readonly field: string | undefined;

  constructor(code: WcmErrorCode, message: string, field?: string) {
    super(`${code}: ${field ? `${field}: ` : ""}${message}`);
    this.code = code;
    this.field = field;
  }
}

/** True when `error` is a WcmError with the given code. */
export function isWcmError(error: unknown, code?: WcmErrorCode): error is WcmError {
  return error instanceof WcmError && (code === undefined || error.code === code);
}
