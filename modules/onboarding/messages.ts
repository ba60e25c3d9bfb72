/*
 * The local onboarding service's messages (docs/protocol.md 15.4), both
 * halves: the device's (device-messages.ts, re-exported: what the firmware
 * ships) and the owner's client's: the parsers of the device's answers and the
 * client's encoders. Same rules: size first, then exact fields and types;
 * WcmError MESSAGE_TOO_LARGE / MESSAGE_INVALID naming the field.
 */
import { toBase64Url } from "../bytes";
import { checkSsid } from "../hotspots";
import type { NetworkSecurity } from "../ports";
import { NETWORK_FAILURE_REASONS } from "../protocol";
import {
  bytesField, counter, invalid, json, MAX_CALL_PLAINTEXT, MAX_LOCAL_BODY, MAX_ONBOARD_NETWORKS, MAX_SCAN_ENTRIES, object, SEALED_MAX, version,
  type CallMessage, type CallRequest, type CallResponse, type ConfirmMessage, type OnboardState, type StartMessage,
} from "./device-messages";

export * from "./device-messages";

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
