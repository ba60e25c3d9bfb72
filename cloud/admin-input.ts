/*
 * Validation of what the admin services take (CLI, HTTP API, in-process
 * callers): each helper returns the typed value or throws CloudError
 * INVALID_INPUT naming the field, before anything is stored.
 */
import { checkDeviceId } from "../modules/protocol";
import { CloudError } from "./errors";

/** Names of CAs, lots and NAS clients: 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Throws INVALID_INPUT for `field`. */
export function invalid(field: string, rule: string): never {
  throw new CloudError("INVALID_INPUT", rule, { field });
}

/** The input as a plain object (INVALID_INPUT "body" otherwise). */
export function object(input: unknown): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) invalid("body", "must be an object");
  return input as Record<string, unknown>;
}

/** A device id (protocol.checkDeviceId's rule). */
export function deviceId(value: unknown, field = "deviceId"): string {
  try {
    return checkDeviceId(value);
  } catch {
    invalid(field, "must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
  }
}

/** A CA, lot or NAS client name (NAME_PATTERN). */
export function name(value: unknown, field: string): string {
  if (typeof value !== "string" || !NAME_PATTERN.test(value)) invalid(field, "must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
  return value;
}

/** A secret of 16 to 64 bytes written as hex. */
export function secretHex(value: unknown, field = "secretHex"): Uint8Array {
  if (typeof value !== "string" || !/^([0-9a-fA-F]{2}){16,64}$/.test(value)) invalid(field, "must be 16 to 64 bytes written as hex");
  return Uint8Array.from(Buffer.from(value, "hex"));
}

/** An integer in [min, max], or `fallback` when absent. */
export function optionalInt(value: unknown, field: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) invalid(field, `must be an integer ${min}..${max}`);
  return value;
}

/** A time filter: ISO 8601 text or ms since the epoch. */
export function time(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
  if (typeof value === "string" && /^[0-9]{1,15}$/.test(value)) return Number(value);
  if (typeof value === "string" && value.length <= 40 && /^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  invalid(field, "must be an ISO 8601 time or ms since the epoch");
}
