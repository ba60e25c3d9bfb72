/*
 * The local onboarding service's messages as the device speaks them
 * (docs/protocol.md 15.4): strict, bounded parsers of what the owner's client
 * sends and the encoders of the device's answers. The firmware ships this half
 * only; messages.ts re-exports it and adds the client's half (the parsers of the
 * device's answers, the client's encoders), as protocol.ts does for wire.ts.
 *
 * Outer messages (HTTP bodies, JSON, at most MAX_LOCAL_BODY bytes):
 *   POST /v1/start    {"v":1,"sid":b64u(16),"a":b64u(32)}   -> {"v":1,"b":b64u(32),"t":b64u(32)}
 *   POST /v1/confirm  {"v":1,"sid":...,"t":b64u(32)}         -> {"v":1,"ok":true}
 *   POST /v1/call     {"v":1,"sid":...,"n":1..2^31-1,"c":b64u(sealed)} -> {"v":1,"n":n,"c":...}
 *   GET  /v1/info     -> {"v":1,"id":deviceId,"pake":"cpace-p256-v1","locked":bool}
 *   errors            -> {"v":1,"error":CODE,"detail":text}
 * Inner messages (the sealed plaintext of a call, at most MAX_CALL_PLAINTEXT bytes):
 *   {"op":"status"} | {"op":"scan"} | {"op":"end"}
 *   {"op":"networks","networks":[{"ssid","password","priority"?}, ... 1..4]}
 * Every parser checks the size first, then exact fields and types, and throws
 * WcmError MESSAGE_TOO_LARGE / MESSAGE_INVALID naming the field; none echoes a value.
 */
import { fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from "../bytes";
import { WcmError } from "../errors";
import { checkSsid } from "../hotspots";
import type { NetworkSecurity } from "../ports";
import { checkNetworkPassword, MAX_NETWORK_PRIORITY } from "../wire";
import { SID_BYTES } from "./cpace";

/** Largest HTTP body the service reads. */
export const MAX_LOCAL_BODY = 1536;
/** Largest plaintext of one call (either way). */
export const MAX_CALL_PLAINTEXT = 1024;
/** Most networks in one `networks` call (the device keeps 4). */
export const MAX_ONBOARD_NETWORKS = 4;
/** Most access points in a scan answer. */
export const MAX_SCAN_ENTRIES = 12;
/** Priority of a network handed over without one (above the cloud's default of 0). */
export const DEFAULT_ONBOARD_PRIORITY = 50;

/** What the owner's client sends to open a handshake. */
export interface StartMessage { sid: Uint8Array; a: Uint8Array }
/** The client's confirmation. */
export interface ConfirmMessage { sid: Uint8Array; t: Uint8Array }
/** One sealed call (or its answer, without sid). */
export interface CallMessage { sid: Uint8Array; n: number; c: Uint8Array }

/** A network handed over locally. */
export interface OnboardNetwork { ssid: string; password: string; priority: number }

/** A sealed request. */
export type CallRequest = { op: "status" } | { op: "scan" } | { op: "end" } | { op: "networks"; networks: OnboardNetwork[] };

/** Where onboarding is, as the client sees it. */
export type OnboardState = "WAITING" | "JOINING" | "JOINED" | "FAILED";

/** One access point in a scan answer. */
export interface ScanEntry { ssid: string; rssi: number; security: NetworkSecurity }

/** A sealed answer. */
export type CallResponse =
  | { op: "status"; state: OnboardState; ssid?: string; reason?: string; online: boolean }
  | { op: "scan"; networks: ScanEntry[] }
  | { op: "networks"; stored: number }
  | { op: "end" };

/** @internal */
export function invalid(field: string, rule: string): never {
  throw new WcmError("MESSAGE_INVALID", rule, field);
}

/** @internal Parses a JSON object of at most `max` bytes with exactly the fields `required` (+ `optional`). */
export function object(bytes: Uint8Array, max: number, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (bytes.length > max) throw new WcmError("MESSAGE_TOO_LARGE", `more than ${max} bytes`, "body");
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(bytes));
  } catch {
    invalid("body", "not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid("body", "must be a JSON object");
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!required.includes(key) && !optional.includes(key)) invalid(key, "unexpected field");
  for (const key of required) if (o[key] === undefined) invalid(key, "missing");
  return o;
}

/** @internal */
export function version(o: Record<string, unknown>): void {
  if (o.v !== 1) invalid("v", "must be 1");
}

/** @internal */
export function bytesField(o: Record<string, unknown>, field: string, length: number | [number, number]): Uint8Array {
  const value = o[field];
  const [min, max] = typeof length === "number" ? [length, length] : length;
  if (typeof value !== "string" || value.length > Math.ceil((max * 4) / 3)) invalid(field, "must be base64url");
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(value);
  } catch {
    invalid(field, "must be base64url");
  }
  if (bytes.length < min || bytes.length > max) invalid(field, min === max ? `must be ${min} bytes` : `must be ${min} to ${max} bytes`);
  return bytes;
}

/** @internal */
export function counter(o: Record<string, unknown>, field: string): number {
  const n = o[field];
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 0x7fffffff) invalid(field, "must be 1..2^31-1");
  return n;
}

/** @internal */
export const SEALED_MAX = MAX_CALL_PLAINTEXT + 16;
/** @internal */
export const json = (value: unknown) => utf8Encode(JSON.stringify(value));

/** POST /v1/start body. */
export function parseStart(bytes: Uint8Array): StartMessage {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "sid", "a"]);
  version(o);
  return { sid: bytesField(o, "sid", SID_BYTES), a: bytesField(o, "a", 32) };
}

/** POST /v1/confirm body. */
export function parseConfirm(bytes: Uint8Array): ConfirmMessage {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "sid", "t"]);
  version(o);
  return { sid: bytesField(o, "sid", SID_BYTES), t: bytesField(o, "t", 32) };
}

/** POST /v1/call body. */
export function parseCall(bytes: Uint8Array): CallMessage {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "sid", "n", "c"]);
  version(o);
  return { sid: bytesField(o, "sid", SID_BYTES), n: counter(o, "n"), c: bytesField(o, "c", [16, SEALED_MAX]) };
}

export const encodeStartAnswer = (b: Uint8Array, t: Uint8Array) => json({ v: 1, b: toBase64Url(b), t: toBase64Url(t) });
export const encodeCallAnswer = (n: number, c: Uint8Array) => json({ v: 1, n, c: toBase64Url(c) });
export const encodeInfo = (id: string, pake: string, locked: boolean) => json({ v: 1, id, pake, locked });
export const encodeError = (error: string, detail: string) => json({ v: 1, error, detail });

function network(input: unknown, field: string): OnboardNetwork {
  if (typeof input !== "object" || input === null || Array.isArray(input)) invalid(field, "must be an object");
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!["ssid", "password", "priority"].includes(key)) invalid(`${field}.${key}`, "unexpected field");
  const priority = o.priority === undefined ? DEFAULT_ONBOARD_PRIORITY : o.priority;
  if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > MAX_NETWORK_PRIORITY) {
    invalid(`${field}.priority`, `must be 0..${MAX_NETWORK_PRIORITY}`);
  }
  return {
    ssid: checkSsid(o.ssid, `${field}.ssid`, "MESSAGE_INVALID"),
    password: checkNetworkPassword(o.password, `${field}.password`, "MESSAGE_INVALID"),
    priority,
  };
}

/** The opened plaintext of a call (device side). */
export function parseCallRequest(plaintext: Uint8Array): CallRequest {
  const peek = object(plaintext, MAX_CALL_PLAINTEXT, ["op"], ["networks"]);
  switch (peek.op) {
    case "status":
    case "scan":
    case "end":
      if (peek.networks !== undefined) invalid("networks", "unexpected field");
      return { op: peek.op };
    case "networks": {
      const list = peek.networks;
      if (!Array.isArray(list) || list.length < 1 || list.length > MAX_ONBOARD_NETWORKS) invalid("networks", `must be 1 to ${MAX_ONBOARD_NETWORKS} networks`);
      const networks = list.map((n, i) => network(n, `networks[${i}]`));
      if (new Set(networks.map((n) => n.ssid)).size !== networks.length) invalid("networks", "an SSID appears twice");
      return { op: "networks", networks };
    }
    default:
      return invalid("op", "must be status, scan, networks or end");
  }
}

export const encodeCallResponse = (response: CallResponse) => json(response);
