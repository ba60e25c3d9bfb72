/*
 * The local onboarding service's messages (docs/protocol.md 15.4), both
 * halves: the device's (device-messages.ts, re-exported: what the firmware
 * ships) and the owner's client's: the parsers of the device's answers and the
 * client's encoders. Same rules: size first, then exact fields and types;
 * WcmError MESSAGE_TOO_LARGE / MESSAGE_INVALID naming the field.
 */
import { jsonBytes as json, toBase64Url } from "../bytes";
import { base64url, check, decodeJson, fail, list, optional, text, VERSION, type Check, type Shape } from "../check";
import { checkSsid } from "../hotspots";
import { NETWORK_FAILURE_REASONS } from "../protocol";
import {
  COUNTER, MAX_CALL_PLAINTEXT, MAX_LOCAL_BODY, MAX_ONBOARD_NETWORKS, MAX_SCAN_ENTRIES, message, SEALED_MAX,
  type CallMessage, type CallRequest, type CallResponse, type ConfirmMessage, type StartMessage,
} from "./device-messages";

export * from "./device-messages";

/** The answer to /v1/start (client side). */
export const parseStartAnswer = (bytes: Uint8Array): { b: Uint8Array; t: Uint8Array } =>
  message(bytes, MAX_LOCAL_BODY, { v: VERSION, b: base64url(32), t: base64url(32) });

/** The answer to /v1/call (client side). */
export const parseCallAnswer = (bytes: Uint8Array): { n: number; c: Uint8Array } =>
  message(bytes, MAX_LOCAL_BODY, { v: VERSION, n: COUNTER, c: base64url(16, SEALED_MAX) });

/** Present, whatever its value (left out of the result). */
const PRESENT: Check = (value, field, code) => void (value === undefined && fail(code, "missing", field));

/** An error answer (client side); undefined when the body is not one. */
export function parseErrorAnswer(bytes: Uint8Array): { error: string; detail: string } | undefined {
  try {
    return message(bytes, MAX_LOCAL_BODY, { v: PRESENT, error: /^[A-Z_]{1,32}$/, detail: (detail) => typeof detail === "string" ? detail.slice(0, 200) : "" });
  } catch {
    return undefined;
  }
}

/** GET /v1/info answer (client side). */
export const parseInfo = (bytes: Uint8Array): { id: string; pake: string; locked: boolean } =>
  message(bytes, MAX_LOCAL_BODY, { v: VERSION, id: text(64), pake: text(32), locked: [true, false] });

export const encodeStart = (m: StartMessage) => json({ v: 1, sid: toBase64Url(m.sid), a: toBase64Url(m.a) });
export const encodeConfirm = (m: ConfirmMessage) => json({ v: 1, sid: toBase64Url(m.sid), t: toBase64Url(m.t) });
export const encodeCall = (m: CallMessage) => json({ v: 1, sid: toBase64Url(m.sid), n: m.n, c: toBase64Url(m.c) });
export const encodeCallRequest = (request: CallRequest) => json(request);

/** The fields of each answer, by op. */
const ANSWERS: Record<string, Shape> = {
  status: {
    op: ["status"], state: ["WAITING", "JOINING", "JOINED", "FAILED"], online: [true, false],
    reason: optional([...NETWORK_FAILURE_REASONS, "STORE_FAILED"]), ssid: optional(checkSsid),
  },
  scan: { op: ["scan"], networks: list({ ssid: checkSsid, rssi: [-127, 0], security: ["open", "psk", "enterprise"] }, 0, MAX_SCAN_ENTRIES) },
  networks: { op: ["networks"], stored: [1, MAX_ONBOARD_NETWORKS] },
  end: { op: ["end"] },
};

/** The opened plaintext of an answer (client side). */
export function parseCallResponse(plaintext: Uint8Array): CallResponse {
  const o = decodeJson(plaintext, MAX_CALL_PLAINTEXT, "body");
  return check(o, Object.hasOwn(ANSWERS, o.op) ? ANSWERS[o.op] : { op: Object.keys(ANSWERS) }, "");
}
