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
import { jsonBytes, toBase64Url } from "./bytes";
import { base64url, check, decodeJson, fail, optional, text, VERSION, type Shape } from "./check";
import type { WcmErrorCode } from "./errors";
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
export const deviceTopics = (deviceId: string): DeviceTopics => {
  const base = "wcm/v" + PROTOCOL_VERSION + "/" + deviceId;
  return { request: base + "/req", response: base + "/res", status: base + "/status", app: base + "/app" };
};

/** The application topic `wcm/v1/<deviceId>/app/<suffix>`; throws MESSAGE_INVALID for a bad suffix. */
export const appTopic = (deviceId: string, suffix: string): string => {
  check(suffix, text(64, APP_SUFFIX_PATTERN), "topic");
  return deviceTopics(deviceId).app + "/" + suffix;
};

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
export const formatLoginPassword = (login: LoginPassword): string => {
  return "v" + PROTOCOL_VERSION + ":" + login.kind + ":" + login.counter + ":" + toBase64Url(login.proof);
};

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

/** Every ReasonCode. */
export const REASON_CODES = "BAD_REQUEST TOO_LARGE UNKNOWN_OP NOTHING_TO_ISSUE BAD_PROOF GENERATION_MISMATCH RATE_LIMITED NOTHING_PENDING INTERNAL".split(" ") as readonly ReasonCode[];

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

/** Largest `detail` of a refusal or a status report's last failure. */
const MAX_DETAIL = 200;
/** Generations and sequence numbers: 1..2^31-1. */
const GEN = [1, 0x7fffffff] as const;

/**
 * Serialises a device request. A `hello` whose failure list would make it larger
 * than MAX_MESSAGE_BYTES is sent with fewer failures (the oldest kept).
 */
export const encodeRequest = (request: DeviceRequest): Uint8Array => {
  const r = request as Partial<Record<string, any>>;
  // the request's own fields in its order (v, rid, op first), the binary ones as base64url, texts cut to their bounds
  const out: Record<string, unknown> = {
    v: 1, rid: r.rid, ...r,
    proof: r.proof && toBase64Url(r.proof), key: r.key && toBase64Url(r.key), net: r.net && { kind: r.net.kind, ssid: r.net.ssid },
    detail: r.detail?.slice(0, MAX_FAILURE_DETAIL),
  };
  const failures = ((r.failures ?? []) as NetworkFailureReport[]).slice(0, MAX_FAILURE_REPORTS).map((f) => ({
    kind: f.kind, ssid: f.ssid, reason: f.reason, detail: f.detail?.slice(0, MAX_FAILURE_DETAIL), n: Math.min(Math.max(1, Math.floor(f.n)), 9999),
  }));
  for (let count = failures.length; ; count--) {
    out.failures = count ? failures.slice(0, count) : undefined;
    const bytes = jsonBytes(out);
    if (bytes.length <= MAX_MESSAGE_BYTES || !count) return bytes;
  }
};

/** Largest sealed network change in a `network` response (bytes before base64url). */
export const MAX_SEALED_BYTES = 512;

/** Bytes of a sealed rotation: nonce (16) || wrapped secret (32) || tag (32), sealed in format 3. */
export const SEALED_ROTATION_BYTES = 80 + SEAL_OVERHEAD;
/** Largest Unix time the cloud may send (year 36812; rejects garbage, not the far future). */
export const MAX_TIME_SECONDS = 2 ** 40;

/** The rules of `v` (kept in the result) and of a boolean. */
const V1 = [1, 1] as const;
const BOOLEAN = [true, false];
/** The fields of each successful response besides the head (v, rid, op, ok), all required, in the order they are checked. */
const OK_FIELDS: Record<string, Shape> = {
  issue: { gen: GEN, nonce: base64url(16), secret: base64url(32), tag: base64url(32) },
  commit: { gen: GEN },
  hello: { network: BOOLEAN, time: [0, MAX_TIME_SECONDS], rev: checkHotspotRev },
  config: { rev: checkHotspotRev, hotspots: validateHotspotProfiles },
  network: { sealed: base64url(0, MAX_SEALED_BYTES), seq: GEN },
  "network-result": { seq: GEN },
};

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
 * Parses anything the cloud sends on the response topic strictly: a response, or a
 * notice (an object with a `notice` field). Throws MESSAGE_TOO_LARGE or MESSAGE_INVALID.
 * Only a successful `config` response may be larger than MAX_MESSAGE_BYTES (up to MAX_CONFIG_BYTES).
 */
export const decodeCloudMessage = (payload: Uint8Array): CloudResponse | CloudNotice => {
  const o = decodeJson(payload, MAX_CONFIG_BYTES, "response");
  const what = "notice" in o ? "notice" : "response";
  const ok = o.ok === true;
  if (payload.length > MAX_MESSAGE_BYTES && !(ok && o.op === "config" && what === "response")) fail("MESSAGE_TOO_LARGE", "larger than " + MAX_MESSAGE_BYTES + " bytes", what);
  const op = o.op;
  return check(o, what === "notice" ? { v: V1, notice: ["rotate", "config", "network"] } : {
    v: V1, rid: REQUEST_ID_PATTERN, op: text(16), ok: BOOLEAN,
    // a refusal; a rotation sealed to the device's key; a response of its op
    ...(o.ok === false ? { reason: REASON_CODES, detail: optional(text(MAX_DETAIL)) }
      : !ok ? {}
      : op === "issue" && o.sealed !== undefined ? { gen: GEN, sealed: base64url(SEALED_ROTATION_BYTES) }
      : Object.hasOwn(OK_FIELDS, op) ? OK_FIELDS[op]
      : { op: (_: unknown, field: string, code: WcmErrorCode) => fail(code, "unknown operation", field) }),
  }, what);
};

// ---------------------------------------------------------------- sealed network changes

/** A private network change as sealed by the cloud (the plaintext of `network`'s `sealed`). */
export type NetworkChange =
  | { seq: number; action: "set"; ssid: string; password: string; priority: number }
  | { seq: number; action: "forget"; ssid: string };

/** Highest private network priority (higher is tried first). */
export const MAX_NETWORK_PRIORITY = 100;

const PASSWORD = /^(?:|[\x20-\x7e]{8,63}|[0-9a-fA-F]{64})$/;

/**
 * Throws a WcmError with `code` unless `password` is "" (an open network), a
 * WPA2 passphrase (8-63 printable ASCII characters) or a raw PSK (64 hex digits).
 */
export const checkNetworkPassword = (password: unknown, field: string, code: WcmErrorCode): string => check(password, PASSWORD, field, code);


/** Parses an opened network change strictly; throws MESSAGE_INVALID. */
export const decodeNetworkChange = (plaintext: Uint8Array): NetworkChange => {
  const o = decodeJson(plaintext, MAX_MESSAGE_BYTES, "change");
  return check(o, { v: VERSION, seq: GEN, action: ["set", "forget"], ssid: checkSsid, ...(o.action === "set" && { password: PASSWORD, priority: [0, MAX_NETWORK_PRIORITY] }) }, "change");
};

/** Serialises a status report. */
export const encodeStatus = (status: DeviceStatus): Uint8Array => {
  const last = status.lastFailure;
  return jsonBytes({ v: 1, state: status.state, credential: status.credential, lastFailure: last && { reason: last.reason, detail: last.detail?.slice(0, MAX_DETAIL) } });
};
