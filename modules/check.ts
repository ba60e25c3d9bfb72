/*
 * The core's one validator: rules are data, check() interprets them, and every
 * failure is a WcmError with the caller's code naming the field (never echoing
 * the value). wire.ts, config.ts, hotspots.ts, the stores and the onboarding
 * messages describe their inputs with these rules instead of code per field.
 *
 * A Rule is one of:
 *   RegExp              a string that matches it
 *   [min, max]          an integer min..max
 *   [a, b, ...]         one of these values (strings or booleans)
 *   Check               a function: returns the value to keep (undefined: leave it out) or throws
 *   Shape               an object with exactly these fields, each with its rule, checked in order
 * Written small on purpose: it ships in the firmware's XS bytecode.
 */
import { fromBase64Url, utf8Decode } from "./bytes";
import { WcmError, type WcmErrorCode } from "./errors";

/** A custom rule: returns the value to keep (undefined: left out of a shape's result) or throws. */
export type Check = (value: any, field: string, code: WcmErrorCode) => any;
/** A rule for one value (see the file header). */
export type Rule = RegExp | readonly [number, number] | readonly (string | boolean)[] | Check | Shape;
/** The fields of an object, each with its rule, in the order they are checked. */
export interface Shape { readonly [field: string]: Rule }

/** Throws WcmError(code, rule, field). */
// a declaration, not a const arrow: TypeScript narrows after a call to it only then
export function fail(code: WcmErrorCode, rule: string, field?: string): never {
  throw new WcmError(code, rule, field);
}

/** `value` as a plain (non-array) object, or fails with `code` naming `field`. */
export const object = (value: unknown, field: string, code: WcmErrorCode): Record<string, any> => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(code, "must be an object", field);
  return value as Record<string, any>;
};

/**
 * Checks the fields `shape` lists (other fields are not looked at); a sub-field is
 * named `field.name` (just `name` when `field` is "").
 * @returns a new object with the checked values that are not undefined, in shape order
 */
export const fields = (value: unknown, shape: Shape, field: string, code: WcmErrorCode): any => {
  const input = object(value, field, code);
  const out: Record<string, unknown> = {};
  Object.keys(shape).forEach((name) => {
    const checked = check(input[name], shape[name], field ? field + "." + name : name, code);
    if (checked !== undefined) out[name] = checked;
  });
  return out;
};

/**
 * Checks `value` against `rule`.
 * @param field - the name errors carry (e.g. "response.gen")
 * @param code - the error code (MESSAGE_INVALID by default)
 * @returns the value (for a Shape: a new object with exactly its fields)
 * @example check(JSON.parse(text), { v: [1, 1], rid: /^[A-Za-z0-9_-]{1,32}$/ }, "response")
 */
export const check = (value: any, rule: Rule, field: string, code: WcmErrorCode = "MESSAGE_INVALID"): any => {
  if (typeof rule === "function") return rule(value, field, code);
  if (rule instanceof RegExp) return typeof value === "string" && rule.test(value) ? value : fail(code, "must match " + rule, field);
  if (Array.isArray(rule)) {
    if (typeof rule[0] !== "number") return rule.includes(value) ? value : fail(code, "must be one of " + rule, field);
    return Number.isInteger(value) && value >= rule[0] && value <= rule[1] ? value : fail(code, "must be an integer " + rule[0] + ".." + rule[1], field);
  }
  const out = fields(value, rule as Shape, field, code);
  Object.keys(value).forEach((name) => Object.hasOwn(rule, name) || fail(code, "unexpected field", field ? field + "." + name : name));
  return out;
};

/** `value` when it passes `rule`, else `otherwise` (for what a store reads back: a bad record is no record). */
export const valid = <T>(value: unknown, rule: Rule, otherwise: T): T => {
  try {
    return check(value, rule, "", "STATE_INVALID");
  } catch {
    return otherwise;
  }
};

/** Optional: undefined gives `absent`, anything else must pass `rule`. */
export const optional = (rule: Rule, absent?: unknown): Check => (value, field, code) => value === undefined ? absent : check(value, rule, field, code);

/** An array of `min` to `max` items, each passing `rule` (named `field[i]`). */
export const list = (rule: Rule, min: number, max: number): Check => (value, field, code) =>
  Array.isArray(value) && value.length >= min && value.length <= max
    ? value.map((item, i) => check(item, rule, field + "[" + i + "]", code))
    : fail(code, "must be an array of " + min + " to " + max + " items", field);

/** A string of at most `max` characters that matches `pattern`. */
export const text = (max: number, pattern = /(?:)/): Check => (value, field, code) =>
  typeof value === "string" && value.length <= max && pattern.test(value) ? value : fail(code, "must be at most " + max + " characters matching " + pattern, field);

/** Unpadded base64url of `min` to `max` bytes (the text is bounded before it is decoded); gives the bytes. */
export const base64url = (min: number, max = min): Check => (value, field, code) => {
  const bytes = typeof value === "string" && value.length <= Math.ceil((max * 4) / 3) ? valid<Uint8Array | undefined>(value, fromBase64Url, undefined) : undefined;
  return bytes && bytes.length >= min && bytes.length <= max ? bytes : fail(code, "must be base64url of " + min + " to " + max + " bytes", field);
};

/** The protocol version field: must be 1, left out of the result. */
export const VERSION: Check = (value, field, code) => void check(value, [1, 1], field, code);

/**
 * A JSON object of at most `max` bytes of strict UTF-8: throws MESSAGE_TOO_LARGE,
 * or MESSAGE_INVALID (not JSON, not an object) naming `field`.
 */
export const decodeJson = (bytes: Uint8Array, max: number, field: string): Record<string, any> => {
  if (bytes.length > max) fail("MESSAGE_TOO_LARGE", "larger than " + max + " bytes", field);
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(bytes));
  } catch {
    fail("MESSAGE_INVALID", "not JSON", field);
  }
  return object(value, field, "MESSAGE_INVALID");
};
