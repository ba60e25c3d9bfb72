/*
 * The local onboarding service's messages (docs/protocol.md 15.4), both
 * halves: the device's (device-messages.ts, re-exported: what the firmware
 * ships) and the owner's client's: the parsers of the device's answers and the
 * client's encoders. Same rules: size first, then exact fields and types;
 * WcmError MESSAGE_TOO_LARGE / MESSAGE_INVALID naming the field.
 */
import { fromBase64Url, toBase64Url, utf8Decode } from "../bytes";
import { WcmError } from "../errors";
import { checkSsid } from "../hotspots";
import type { NetworkSecurity } from "../ports";
import { NETWORK_FAILURE_REASONS } from "../protocol";
import {
  json, MAX_CALL_PLAINTEXT, MAX_LOCAL_BODY, MAX_ONBOARD_NETWORKS, MAX_SCAN_ENTRIES, SEALED_MAX,
  type CallMessage, type CallRequest, type CallResponse, type ConfirmMessage, type OnboardState, type StartMessage,
} from "./device-messages";

export * from "./device-messages";

function invalid(field: string, rule: string): never {
  throw new WcmError("MESSAGE_INVALID", rule, field);
}

/** A JSON object of at most `max` bytes with exactly the fields `required` (+ `optional`). */
function object(bytes: Uint8Array, max: number, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
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

function version(o: Record<string, unknown>): void {
  if (o.v !== 1) invalid("v", "must be 1");
}

function bytesField(o: Record<string, unknown>, field: string, length: number | [number, number]): Uint8Array {
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

function counter(o: Record<string, unknown>, field: string): number {
  const n = o[field];
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 0x7fffffff) invalid(field, "must be 1..2^31-1");
  return n;
}

/** The answer to /v1/start (client side). */
export function parseStartAnswer(bytes: Uint8Array): { b: Uint8Array; t: Uint8Array } {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "b", "t"]);
  version(o);
  return { b: bytesField(o, "b", 32), t: bytesField(o, "t", 32) };
}

/** The answer to /v1/call (client side). */
export function parseCallAnswer(bytes: Uint8Array): { n: number; c: Uint8Array } {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "n", "c"]);
  version(o);
  return { n: counter(o, "n"), c: bytesField(o, "c", [16, SEALED_MAX]) };
}

/** An error answer (client side); undefined when the body is not one. */
export function parseErrorAnswer(bytes: Uint8Array): { error: string; detail: string } | undefined {
  try {
    const o = object(bytes, MAX_LOCAL_BODY, ["v", "error"], ["detail"]);
    if (typeof o.error !== "string" || !/^[A-Z_]{1,32}$/.test(o.error)) return undefined;
    return { error: o.error, detail: typeof o.detail === "string" ? o.detail.slice(0, 200) : "" };
  } catch {
    return undefined;
  }
}

/** GET /v1/info answer (client side). */
export function parseInfo(bytes: Uint8Array): { id: string; pake: string; locked: boolean } {
  const o = object(bytes, MAX_LOCAL_BODY, ["v", "id", "pake", "locked"]);
  version(o);
  if (typeof o.id !== "string" || o.id.length > 64) invalid("id", "must be a device id");
  if (typeof o.pake !== "string" || o.pake.length > 32) invalid("pake", "must be a name");
  if (typeof o.locked !== "boolean") invalid("locked", "must be true or false");
  return { id: o.id, pake: o.pake, locked: o.locked };
}

export const encodeStart = (m: StartMessage) => json({ v: 1, sid: toBase64Url(m.sid), a: toBase64Url(m.a) });
export const encodeConfirm = (m: ConfirmMessage) => json({ v: 1, sid: toBase64Url(m.sid), t: toBase64Url(m.t) });
export const encodeCall = (m: CallMessage) => json({ v: 1, sid: toBase64Url(m.sid), n: m.n, c: toBase64Url(m.c) });
export const encodeCallRequest = (request: CallRequest) => json(request);

const STATES: readonly string[] = ["WAITING", "JOINING", "JOINED", "FAILED"];
const SECURITIES: readonly string[] = ["open", "psk", "enterprise"];

/** The opened plaintext of an answer (client side). */
export function parseCallResponse(plaintext: Uint8Array): CallResponse {
  const o = object(plaintext, MAX_CALL_PLAINTEXT, ["op"], ["state", "ssid", "reason", "online", "networks", "stored"]);
  const only = (...fields: string[]) => {
    for (const key of Object.keys(o)) if (key !== "op" && !fields.includes(key)) invalid(key, "unexpected field");
  };
  switch (o.op) {
    case "status": {
      only("state", "ssid", "reason", "online");
      if (typeof o.state !== "string" || !STATES.includes(o.state)) invalid("state", "unknown state");
      if (typeof o.online !== "boolean") invalid("online", "must be true or false");
      if (o.reason !== undefined && !NETWORK_FAILURE_REASONS.includes(o.reason as never) && o.reason !== "STORE_FAILED") invalid("reason", "unknown reason");
      const out: CallResponse = { op: "status", state: o.state as OnboardState, online: o.online };
      if (o.ssid !== undefined) out.ssid = checkSsid(o.ssid, "ssid", "MESSAGE_INVALID");
      if (o.reason !== undefined) out.reason = o.reason as string;
      return out;
    }
    case "scan": {
      only("networks");
      if (!Array.isArray(o.networks) || o.networks.length > MAX_SCAN_ENTRIES) invalid("networks", `must be at most ${MAX_SCAN_ENTRIES} entries`);
      return {
        op: "scan",
        networks: o.networks.map((entry: unknown, i) => {
          const e = entry as Record<string, unknown>;
          if (typeof e !== "object" || e === null || Object.keys(e).some((k) => !["ssid", "rssi", "security"].includes(k))) invalid(`networks[${i}]`, "must be {ssid, rssi, security}");
          if (typeof e.rssi !== "number" || !Number.isInteger(e.rssi) || e.rssi < -127 || e.rssi > 0) invalid(`networks[${i}].rssi`, "must be -127..0");
          if (typeof e.security !== "string" || !SECURITIES.includes(e.security)) invalid(`networks[${i}].security`, "unknown security");
          return { ssid: checkSsid(e.ssid, `networks[${i}].ssid`, "MESSAGE_INVALID"), rssi: e.rssi, security: e.security as NetworkSecurity };
        }),
      };
    }
    case "networks":
      only("stored");
      if (typeof o.stored !== "number" || !Number.isInteger(o.stored) || o.stored < 1 || o.stored > MAX_ONBOARD_NETWORKS) invalid("stored", "must be 1..4");
      return { op: "networks", stored: o.stored };
    case "end":
      only();
      return { op: "end" };
    default:
      return invalid("op", "unknown op");
  }
}
