/*
 * The wcm cloud session protocol as the device speaks it: topics, login
 * password, messages and reason codes, the device's encoders and its bounded,
 * strict parsers of what the cloud sends.
 *
 * With protocol.ts (the cloud's side: it re-exports this module and adds the
 * parsers of what devices send) this is the only code that knows the wire
 * format; the firmware ships this half only. The normative description is
 * docs/protocol.md.
 * MQTT 3.1.1 at QoS 0: every request carries a request id (rid) and every
 * operation is idempotent, so a device may resend a request whose response it
 * did not see.
 */
import { fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from "./bytes";
import { WcmError } from "./errors";
import type { LoginKind } from "./derive";
import { checkHotspotRev, checkSsid, validateHotspotProfiles, type HotspotProfile } from "./hotspots";
import type { NetworkFailureReason } from "./ports";
import { SEAL_OVERHEAD } from "./seal";

/** Protocol version carried in every message (`v`) and the topic prefix. */
export const PROTOCOL_VERSION = 1;
/** Largest message, in bytes, either side accepts on any wcm topic. */
export const MAX_MESSAGE_BYTES = 1024;
/**
 * Largest `config` response (the hotspot profile set with its envelope): the one
 * message allowed over MAX_MESSAGE_BYTES, and only cloud -> device.
 */
export const MAX_CONFIG_BYTES = 4096;
/** Largest application message payload, in bytes. */
export const MAX_APP_PAYLOAD_BYTES = 4096;
/** Device ids: 1 to 64 characters of [A-Za-z0-9._-], starting with a letter or digit. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Request ids: 1 to 32 characters of [A-Za-z0-9_-]. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
/** Application topic suffixes: 1 to 64 characters of [A-Za-z0-9_/-], no empty levels. */
export const APP_SUFFIX_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/** The error of a message that breaks a rule (`rule`) in its field `what`. */
function invalid(rule: string, what: string): WcmError {
  return new WcmError("MESSAGE_INVALID", rule, what);
}

/** Throws CONFIG_INVALID/MESSAGE_INVALID unless `deviceId` matches DEVICE_ID_PATTERN. */
export function checkDeviceId(deviceId: unknown, code: "CONFIG_INVALID" | "MESSAGE_INVALID" = "MESSAGE_INVALID"): string {
  if (typeof deviceId !== "string" || !DEVICE_ID_PATTERN.test(deviceId)) {
    throw new WcmError(code, "must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", "deviceId");
  }
  return deviceId;
}

/** The per-device topics. Each device may use only its own. */
export interface DeviceTopics {
  /** device -> cloud requests */
  request: string;
  /** cloud -> device responses */
  response: string;
  /** device -> cloud status reports */
  status: string;
  /** prefix of the product's own messages, both directions (`<app>/<suffix>`) */
  app: string;
}

/** The topics of `deviceId`: `wcm/v1/<deviceId>/{req,res,status,app/...}`. */
export function deviceTopics(deviceId: string): DeviceTopics {
  const base = `wcm/v${PROTOCOL_VERSION}/${deviceId}`;
  return { request: `${base}/req`, response: `${base}/res`, status: `${base}/status`, app: `${base}/app` };
}

/** The application topic `wcm/v1/<deviceId>/app/<suffix>`; throws MESSAGE_INVALID for a bad suffix. */
export function appTopic(deviceId: string, suffix: string): string {
  if (suffix.length > 64 || !APP_SUFFIX_PATTERN.test(suffix)) {
    throw invalid("must be 1-64 characters of A-Z a-z 0-9 _ - separated by /", "topic");
  }
  return `${deviceTopics(deviceId).app}/${suffix}`;
}

// ---------------------------------------------------------------- login

/** The MQTT CONNECT password of a secret-based login: `v1:<kind>:<counter>:<base64url proof>`. */
export interface LoginPassword {
  kind: LoginKind;
  counter: number;
  proof: Uint8Array;
}

/** Largest login counter (2^48 - 1): a device can never run out. */
export const MAX_LOGIN_COUNTER = 2 ** 48 - 1;

/** Formats a login password. */
export function formatLoginPassword(login: LoginPassword): string {
  return `v${PROTOCOL_VERSION}:${login.kind}:${login.counter}:${toBase64Url(login.proof)}`;
}

/** MQTT 3.1.1 CONNACK return codes the cloud uses, and what the device does with each. */
export const CONNACK = {
  accepted: 0,
  /** the cloud is overloaded or failed: retry with back-off like a network failure */
  serverUnavailable: 3,
  /** unknown device, wrong secret, stale counter (replay): an authentication failure */
  badCredentials: 4,
  /** revoked device, retired credential, id not allowed for the provisioning key */
  notAuthorized: 5,
} as const;

// ---------------------------------------------------------------- messages

/** Reason codes carried in `reason` of a refused response. Catalogue: docs/protocol.md. */
export type ReasonCode =
  | "BAD_REQUEST"
  | "TOO_LARGE"
  | "UNKNOWN_OP"
  | "NOTHING_TO_ISSUE"
  | "BAD_PROOF"
  | "GENERATION_MISMATCH"
  | "RATE_LIMITED"
  | "NOTHING_PENDING"
  | "INTERNAL";

/** @internal */
export const REASON_CODES: readonly ReasonCode[] = [
  "BAD_REQUEST", "TOO_LARGE", "UNKNOWN_OP", "NOTHING_TO_ISSUE", "BAD_PROOF", "GENERATION_MISMATCH", "RATE_LIMITED", "NOTHING_PENDING", "INTERNAL",
];

/** Which kind of network a report is about. */
export type NetworkKind = "private" | "hotspot";

/** One network failure as a device reports it in `hello` (consecutive repeats counted in `n`). */
export interface NetworkFailureReport {
  kind: NetworkKind;
  ssid: string;
  reason: NetworkFailureReason;
  /** e.g. the RADIUS Reply-Message; at most 64 characters */
  detail?: string;
  /** how many times in a row (1..9999) */
  n: number;
}

/** Most failure reports in one `hello`. */
export const MAX_FAILURE_REPORTS = 4;
/** Longest `detail` of a failure report. */
export const MAX_FAILURE_DETAIL = 64;

/** Outcomes of a private network change, reported with `network-result`. */
export type NetworkResult = "JOINED" | "FAILED" | "FORGOTTEN" | "UNREADABLE";
/** Device -> cloud, on the request topic. */
export type DeviceRequest =
  | { v: 1; rid: string; op: "issue" }
  | { v: 1; rid: string; op: "commit"; gen: number; proof: Uint8Array }
  | {
      v: 1; rid: string; op: "hello";
      /** the hotspot profile revision the device holds (0 = firmware's or none) */
      rev: number;
      /**
       * the sealing format the device opens: 3 (P-256 + AES-128-GCM, `key` is a
       * 65-byte uncompressed point); absent on older firmware: format 2 (`key` is
       * a 32-byte X25519 key)
       */
      seal?: 3;
      /** the device's sealing public key */
      key: Uint8Array;
      /** the network the device is on now */
      net?: { kind: NetworkKind; ssid: string };
      /** network failures since the last acknowledged hello */
      failures?: NetworkFailureReport[];
    }
  | { v: 1; rid: string; op: "config" }
  | { v: 1; rid: string; op: "network" }
  | { v: 1; rid: string; op: "network-result"; seq: number; result: NetworkResult; reason?: NetworkFailureReason; detail?: string };

/** Cloud -> device, on the response topic. */
export type CloudResponse =
  | { v: 1; rid: string; op: "issue"; ok: true; gen: number; nonce: Uint8Array; secret: Uint8Array; tag: Uint8Array }
  /**
   * A rotation to a device that registered a format-3 sealing key: nonce || secret || tag
   * of the plain form (80 bytes), sealed to that key with purpose "rotation" (docs/protocol.md 9.5)
   */
  | { v: 1; rid: string; op: "issue"; ok: true; gen: number; sealed: Uint8Array }
  | { v: 1; rid: string; op: "commit"; ok: true; gen: number }
  | {
      v: 1; rid: string; op: "hello"; ok: true;
      /** the cloud's wall clock, Unix seconds */
      time: number;
      /** the current hotspot profile revision (0 = none set) */
      rev: number;
      /** true when a sealed network change waits for the device */
      network: boolean;
    }
  | { v: 1; rid: string; op: "config"; ok: true; rev: number; hotspots: HotspotProfile[] }
  | { v: 1; rid: string; op: "network"; ok: true; seq: number; sealed: Uint8Array }
  | { v: 1; rid: string; op: "network-result"; ok: true; seq: number }
  | { v: 1; rid: string; op: string; ok: false; reason: ReasonCode; detail?: string };

/** Manager states reported in status messages and to the app. */
export type DeviceState = "STOPPED" | "SCANNING" | "JOINING" | "CONNECTING" | "ISSUING" | "ONLINE" | "RETRY_WAIT" | "AUTH_FAILED";
/** The credential a device is using. */
export type CredentialLabel = "certificate" | "secret" | "temporary" | "permanent";

/** Device -> cloud, on the status topic (fire and forget). */
export interface DeviceStatus {
  v: 1;
  state: DeviceState;
  credential: CredentialLabel;
  /** the most recent failure since boot, if any */
  lastFailure?: { reason: string; detail?: string };
}

/** @internal shared with protocol.ts (the cloud side) */
export function decodeObject(payload: Uint8Array, what: string, limit = MAX_MESSAGE_BYTES): Record<string, unknown> {
  if (payload.length > limit) {
    throw new WcmError("MESSAGE_TOO_LARGE", `larger than ${limit} bytes`, what);
  }
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(payload));
  } catch {
    throw invalid("not JSON", what);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid("not a JSON object", what);
  }
  const object = value as Record<string, unknown>;
  if (object.v !== PROTOCOL_VERSION) throw invalid("unsupported version", `${what}.v`);
  return object;
}

/** @internal shared with protocol.ts (the cloud side) */
export function onlyKeys(object: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw invalid("unexpected field", `${what}.${key}`);
  }
}

/** @internal shared with protocol.ts (the cloud side) */
export function requestId(object: Record<string, unknown>, what: string): string {
  const rid = object.rid;
  if (typeof rid !== "string" || !REQUEST_ID_PATTERN.test(rid)) {
    throw invalid("must be 1-32 characters of A-Z a-z 0-9 _ -", `${what}.rid`);
  }
  return rid;
}

/** @internal shared with protocol.ts (the cloud side) */
export function generation(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
    throw invalid("must be an integer 1..2^31-1", what);
  }
  return value;
}

/** @internal shared with protocol.ts (the cloud side) */
export function bytesField(value: unknown, length: number, what: string): Uint8Array {
  if (typeof value !== "string") throw invalid("must be base64url", what);
  const bytes = fromBase64Url(value);
  if (bytes.length !== length) throw invalid(`must be ${length} bytes`, what);
  return bytes;
}

/** @internal shared with protocol.ts (the cloud side) */
export function uint(value: unknown, max: number, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`must be an integer 0..${max}`, what);
  }
  return value;
}

function failureJson(failure: NetworkFailureReport): Record<string, unknown> {
  const out: Record<string, unknown> = { kind: failure.kind, ssid: failure.ssid, reason: failure.reason };
  if (failure.detail !== undefined) out.detail = failure.detail.slice(0, MAX_FAILURE_DETAIL);
  out.n = Math.min(Math.max(1, Math.floor(failure.n)), 9999);
  return out;
}

/**
 * Serialises a device request. A `hello` whose failure list would make it larger
 * than MAX_MESSAGE_BYTES is sent with fewer failures (the oldest kept).
 */
export function encodeRequest(request: DeviceRequest): Uint8Array {
  switch (request.op) {
    case "commit":
      return utf8Encode(JSON.stringify({ v: 1, rid: request.rid, op: "commit", gen: request.gen, proof: toBase64Url(request.proof) }));
    case "hello": {
      const out: Record<string, unknown> = { v: 1, rid: request.rid, op: "hello", rev: request.rev, key: toBase64Url(request.key) };
      if (request.seal !== undefined) out.seal = request.seal;
      if (request.net) out.net = { kind: request.net.kind, ssid: request.net.ssid };
      const failures = (request.failures ?? []).slice(0, MAX_FAILURE_REPORTS).map(failureJson);
      for (let count = failures.length; ; count--) {
        if (count > 0) out.failures = failures.slice(0, count);
        else delete out.failures;
        const bytes = utf8Encode(JSON.stringify(out));
        if (bytes.length <= MAX_MESSAGE_BYTES || count === 0) return bytes;
      }
    }
    case "network-result": {
      const out: Record<string, unknown> = { v: 1, rid: request.rid, op: request.op, seq: request.seq, result: request.result };
      if (request.reason !== undefined) out.reason = request.reason;
      if (request.detail !== undefined) out.detail = request.detail.slice(0, MAX_FAILURE_DETAIL);
      return utf8Encode(JSON.stringify(out));
    }
    default:
      return utf8Encode(JSON.stringify({ v: 1, rid: request.rid, op: request.op }));
  }
}

/** Largest sealed network change in a `network` response (bytes before base64url). */
export const MAX_SEALED_BYTES = 512;

/** Bytes of a sealed rotation: nonce (16) || wrapped secret (32) || tag (32), sealed in format 3. */
export const SEALED_ROTATION_BYTES = 80 + SEAL_OVERHEAD;
/** Largest Unix time the cloud may send (year 36812; rejects garbage, not the far future). */
export const MAX_TIME_SECONDS = 2 ** 40;

/**
 * Parses a cloud response strictly; throws MESSAGE_TOO_LARGE or MESSAGE_INVALID.
 * Only a successful `config` response may be larger than MAX_MESSAGE_BYTES (up to MAX_CONFIG_BYTES).
 */
export function decodeResponse(payload: Uint8Array): CloudResponse {
  const object = decodeObject(payload, "response", MAX_CONFIG_BYTES);
  return responseFrom(object, payload.length);
}

function responseFrom(object: Record<string, unknown>, size: number): CloudResponse {
  if (size > MAX_MESSAGE_BYTES && !(object.op === "config" && object.ok === true)) {
    throw new WcmError("MESSAGE_TOO_LARGE", `larger than ${MAX_MESSAGE_BYTES} bytes`, "response");
  }
  const rid = requestId(object, "response");
  const op = object.op;
  if (typeof op !== "string" || op.length > 16) throw invalid("must be a short string", "response.op");
  if (object.ok === false) {
    onlyKeys(object, ["v", "rid", "op", "ok", "reason", "detail"], "response");
    const reason = object.reason;
    if (typeof reason !== "string" || !REASON_CODES.includes(reason as ReasonCode)) {
      throw invalid("unknown reason code", "response.reason");
    }
    const detail = object.detail;
    if (detail !== undefined && (typeof detail !== "string" || detail.length > 200)) {
      throw invalid("must be a string of at most 200 characters", "response.detail");
    }
    return { v: 1, rid, op, ok: false, reason: reason as ReasonCode, ...(detail !== undefined ? { detail } : {}) };
  }
  if (object.ok !== true) throw invalid("must be true or false", "response.ok");
  const fields = op === "issue" && object.sealed !== undefined ? SEALED_ISSUE : Object.hasOwn(OK_FIELDS, op) ? OK_FIELDS[op] : undefined;
  if (!fields) throw invalid("unknown operation", "response.op");
  onlyKeys(object, ["v", "rid", "op", "ok", ...Object.keys(fields)], "response");
  const out: Record<string, unknown> = { v: 1, rid, op, ok: true };
  for (const [name, check] of Object.entries(fields)) out[name] = check(object[name], `response.${name}`);
  return out as CloudResponse;
}

/** Checks one field of a response (the value and its name, e.g. `response.gen`) and returns it as the response carries it. */
type FieldCheck = (value: unknown, what: string) => unknown;
const bytes = (length: number): FieldCheck => (value, what) => bytesField(value, length, what);
const rev: FieldCheck = (value, what) => checkHotspotRev(value, what, "MESSAGE_INVALID");

/** The fields of each successful response besides v, rid, op and ok, all required, with their checks, in the order they are checked. */
const OK_FIELDS: Record<string, Record<string, FieldCheck>> = {
  issue: { gen: generation, nonce: bytes(16), secret: bytes(32), tag: bytes(32) },
  commit: { gen: generation },
  hello: {
    network: (value, what) => {
      if (typeof value !== "boolean") throw invalid("must be true or false", what);
      return value;
    },
    time: (value, what) => uint(value, MAX_TIME_SECONDS, what),
    rev,
  },
  config: { rev, hotspots: (value, what) => validateHotspotProfiles(value, what, "MESSAGE_INVALID") },
  network: {
    sealed: (value, what) => {
      if (typeof value !== "string" || value.length > Math.ceil((MAX_SEALED_BYTES * 4) / 3)) {
        throw invalid(`must be base64url of at most ${MAX_SEALED_BYTES} bytes`, what);
      }
      return fromBase64Url(value);
    },
    seq: generation,
  },
  "network-result": { seq: generation },
};
/** An `issue` response with `sealed`: a rotation sealed to the device's key. */
const SEALED_ISSUE: Record<string, FieldCheck> = { gen: generation, sealed: bytes(SEALED_ROTATION_BYTES) };

/**
 * Cloud -> device, on the response topic, unsolicited: "rotate" says the cloud
 * holds a new secret for the device (an operator rotation); the device fetches
 * it with an `issue` request and commits it as in issuance. "config": the hotspot
 * profile set changed (fetch it with `config`). "network": a sealed private
 * network change waits (fetch it with `network`).
 */
export interface CloudNotice {
  v: 1;
  notice: "rotate" | "config" | "network";
}

/**
 * Parses anything the cloud sends on the response topic: a response, or a
 * notice (an object with a `notice` field). Throws MESSAGE_TOO_LARGE or MESSAGE_INVALID.
 */
export function decodeCloudMessage(payload: Uint8Array): CloudResponse | CloudNotice {
  const object = decodeObject(payload, "response", MAX_CONFIG_BYTES);
  if (!("notice" in object)) return responseFrom(object, payload.length);
  if (payload.length > MAX_MESSAGE_BYTES) throw new WcmError("MESSAGE_TOO_LARGE", `larger than ${MAX_MESSAGE_BYTES} bytes`, "notice");
  onlyKeys(object, ["v", "notice"], "notice");
  if (object.notice !== "rotate" && object.notice !== "config" && object.notice !== "network") {
    throw invalid("unknown notice", "notice.notice");
  }
  return { v: 1, notice: object.notice };
}

// ---------------------------------------------------------------- sealed network changes

/** A private network change as sealed by the cloud (the plaintext of `network`'s `sealed`). */
export type NetworkChange =
  | { seq: number; action: "set"; ssid: string; password: string; priority: number }
  | { seq: number; action: "forget"; ssid: string };

/** Highest private network priority (higher is tried first). */
export const MAX_NETWORK_PRIORITY = 100;

/**
 * Throws a WcmError with `code` unless `password` is "" (an open network), a
 * WPA2 passphrase (8-63 printable ASCII characters) or a raw PSK (64 hex digits).
 */
export function checkNetworkPassword(password: unknown, field: string, code: "MESSAGE_INVALID" | "CONFIG_INVALID"): string {
  if (typeof password !== "string" || !(password === "" || /^[\x20-\x7e]{8,63}$/.test(password) || /^[0-9a-fA-F]{64}$/.test(password))) {
    throw new WcmError(code, "must be empty (open), 8-63 printable ASCII characters or 64 hex digits", field);
  }
  return password;
}

/** Parses an opened network change strictly; throws MESSAGE_INVALID. */
export function decodeNetworkChange(plaintext: Uint8Array): NetworkChange {
  const object = decodeObject(plaintext, "change");
  const seq = generation(object.seq, "change.seq");
  const ssid = checkSsid(object.ssid, "change.ssid", "MESSAGE_INVALID");
  if (object.action === "forget") {
    onlyKeys(object, ["v", "seq", "action", "ssid"], "change");
    return { seq, action: "forget", ssid };
  }
  if (object.action !== "set") throw invalid("must be set or forget", "change.action");
  onlyKeys(object, ["v", "seq", "action", "ssid", "password", "priority"], "change");
  return {
    seq, action: "set", ssid,
    password: checkNetworkPassword(object.password, "change.password", "MESSAGE_INVALID"),
    priority: uint(object.priority, MAX_NETWORK_PRIORITY, "change.priority"),
  };
}

/** Serialises a status report. */
export function encodeStatus(status: DeviceStatus): Uint8Array {
  const out: Record<string, unknown> = { v: 1, state: status.state, credential: status.credential };
  if (status.lastFailure) {
    out.lastFailure = status.lastFailure.detail === undefined
      ? { reason: status.lastFailure.reason }
      : { reason: status.lastFailure.reason, detail: status.lastFailure.detail.slice(0, 200) };
  }
  return utf8Encode(JSON.stringify(out));
}

