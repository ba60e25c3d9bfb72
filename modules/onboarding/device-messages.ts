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
import { jsonBytes, toBase64Url } from "../bytes";
import { base64url, check, decodeJson, fail, list, optional, VERSION, type Shape } from "../check";
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
export const SEALED_MAX = MAX_CALL_PLAINTEXT + 16;
/** @internal */
export const json = jsonBytes;

/** @internal A JSON body of at most `max` bytes with exactly the fields of `shape` (errors name the field alone). */
export const message = (bytes: Uint8Array, max: number, shape: Shape): any => check(decodeJson(bytes, max, "body"), shape, "");

/** The parser of an outer message (a body of at most MAX_LOCAL_BODY bytes) with the fields of `shape`. */
const outer = (shape: Shape) => (bytes: Uint8Array): any => message(bytes, MAX_LOCAL_BODY, { v: VERSION, ...shape });

/** The sid of every outer message. */
const SID = base64url(SID_BYTES);

/** POST /v1/start body. */
export const parseStart: (bytes: Uint8Array) => StartMessage = outer({ sid: SID, a: base64url(32) });

/** POST /v1/confirm body. */
export const parseConfirm: (bytes: Uint8Array) => ConfirmMessage = outer({ sid: SID, t: base64url(32) });

/** @internal Call counters: 1..2^31-1. */
export const COUNTER = [1, 0x7fffffff] as const;

/** POST /v1/call body. */
export const parseCall: (bytes: Uint8Array) => CallMessage = outer({ sid: SID, n: COUNTER, c: base64url(16, SEALED_MAX) });

export const encodeStartAnswer = (b: Uint8Array, t: Uint8Array) => json({ v: 1, b: toBase64Url(b), t: toBase64Url(t) });
export const encodeCallAnswer = (n: number, c: Uint8Array) => json({ v: 1, n, c: toBase64Url(c) });
export const encodeInfo = (id: string, pake: string, locked: boolean) => json({ v: 1, id, pake, locked });
export const encodeError = (error: string, detail: string) => json({ v: 1, error, detail });

/** A `networks` call: 1 to MAX_ONBOARD_NETWORKS networks. */
const NETWORKS: Shape = {
  op: ["networks"],
  networks: list({ ssid: checkSsid, password: checkNetworkPassword, priority: optional([0, MAX_NETWORK_PRIORITY], DEFAULT_ONBOARD_PRIORITY) }, 1, MAX_ONBOARD_NETWORKS),
};
const OTHER_CALL: Shape = { op: ["status", "scan", "end", "networks"] };

/** The opened plaintext of a call (device side). */
export function parseCallRequest(plaintext: Uint8Array): CallRequest {
  const o = decodeJson(plaintext, MAX_CALL_PLAINTEXT, "body");
  const request = check(o, o.op === "networks" ? NETWORKS : OTHER_CALL, "");
  if (request.networks && new Set(request.networks.map((n: OnboardNetwork) => n.ssid)).size < request.networks.length) fail("MESSAGE_INVALID", "an SSID appears twice", "networks");
  return request;
}

export const encodeCallResponse = (response: CallResponse) => json(response);
