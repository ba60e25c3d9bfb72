/*
 * Typed errors of the reference cloud.
 *
 * Every refusal by the registry, the admin services, the CLI and the HTTP API is
 * a CloudError with a stable code from CLOUD_ERROR_CODES (catalogue: cloud/README.md,
 * checked by a test) and the HTTP status the admin API answers with. Messages name
 * the field and the rule, never a secret value.
 */

/** Every code a CloudError may carry, with its HTTP status. */
export const CLOUD_ERROR_CODES = {
  MASTER_KEY_MISSING: 500,
  MASTER_KEY_INVALID: 500,
  MASTER_KEY_WRONG: 500,
  FILE_INSECURE: 500,
  ADMIN_TOKEN_INVALID: 500,
  ADMIN_TLS_REQUIRED: 500,
  LISTEN_FAILED: 500,
  CONFIG_INVALID: 500,
  REGISTRY_MISSING: 500,
  ADMIN_UNREACHABLE: 503,
  REDIS_UNAVAILABLE: 500,
  SCHEMA_TOO_NEW: 500,
  BACKUP_INVALID: 400,
  REGISTRY_IN_USE: 409,
  FILE_UNREADABLE: 400,
  INVALID_INPUT: 400,
  TOO_LARGE: 413,
  CSV_INVALID: 400,
  BUNDLE_INVALID: 400,
  CERT_INVALID: 400,
  DEVICE_EXISTS: 409,
  DEVICE_NOT_FOUND: 404,
  DEVICE_REVOKED: 409,
  CA_EXISTS: 409,
  CA_NOT_FOUND: 404,
  CA_REVOKED: 409,
  CA_HAS_NO_KEY: 409,
  UNKNOWN_CA: 400,
  LOT_EXISTS: 409,
  LOT_NOT_FOUND: 404,
  LOT_RETIRED: 409,
  NAS_EXISTS: 409,
  NAS_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHORIZED: 401,
  HOST_REFUSED: 403,
  ORIGIN_REFUSED: 403,
  INTERNAL: 500,
} as const;

/** A stable cloud error code. */
export type CloudErrorCode = keyof typeof CLOUD_ERROR_CODES;

/** An error raised by the cloud: `code` is stable, `field` names the offending input, `line` the CSV line. */
export class CloudError extends Error {
  readonly code: CloudErrorCode;
  readonly field: string | undefined;
  readonly line: number | undefined;

  constructor(code: CloudErrorCode, message: string, options: { field?: string; line?: number } = {}) {
    super(`${code}: ${options.line !== undefined ? `line ${options.line}: ` : ""}${options.field ? `${options.field}: ` : ""}${message}`);
    this.name = "CloudError";
    this.code = code;
    this.field = options.field;
    this.line = options.line;
  }

  /** The HTTP status the admin API answers this error with. */
  get httpStatus(): number {
    return CLOUD_ERROR_CODES[this.code];
  }
}

/** True when `error` is a CloudError (with the given code, if one is passed). */
export function isCloudError(error: unknown, code?: CloudErrorCode): error is CloudError {
  return error instanceof CloudError && (code === undefined || error.code === code);
}
