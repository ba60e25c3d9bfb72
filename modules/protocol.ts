/*
 * The wcm cloud session protocol, both sides: everything in wire.ts (the
 * device's half, which the firmware ships) plus the cloud's half: topic and
 * login password parsing, the strict parsers of device requests and status
 * reports, and the encoders of responses, notices and network changes.
 * The normative description is docs/protocol.md.
 */
import { fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from "./bytes";
import { WcmError } from "./errors";
import type { LoginKind } from "./derive";
import { checkHotspotRev, checkSsid, type HotspotProfile } from "./hotspots";
import { isSealPublicKey, SEAL_PUBLIC_KEY_BYTES, SEAL_VERSION } from "./seal";
import type { NetworkFailureReason } from "./ports";
import { base64url, check, decodeJson } from "./check";
import {
  APP_SUFFIX_PATTERN, decodeCloudMessage, DEVICE_ID_PATTERN, MAX_FAILURE_DETAIL, MAX_FAILURE_REPORTS,
  MAX_LOGIN_COUNTER, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, REQUEST_ID_PATTERN,
  type CloudNotice, type CloudResponse, type CredentialLabel, type DeviceRequest, type DeviceState, type DeviceStatus, type LoginPassword,
  type NetworkChange, type NetworkFailureReport, type NetworkKind, type NetworkResult,
} from "./wire";

export * from "./wire";

/** Throws CONFIG_INVALID/MESSAGE_INVALID unless `deviceId` matches DEVICE_ID_PATTERN. */
export function checkDeviceId(deviceId: unknown, code: "CONFIG_INVALID" | "MESSAGE_INVALID" = "MESSAGE_INVALID"): string {
  return check(deviceId, DEVICE_ID_PATTERN, "deviceId", code);
}

/** A JSON object of at most `limit` bytes with `v` 1 (errors name `what`). */
export function decodeObject(payload: Uint8Array, what: string, limit = MAX_MESSAGE_BYTES): Record<string, unknown> {
  const object = decodeJson(payload, limit, what);
  check(object.v, [PROTOCOL_VERSION, PROTOCOL_VERSION], `${what}.v`);
  return object;
}

/** Throws MESSAGE_INVALID naming the first field of `object` not in `allowed`. */
export function onlyKeys(object: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw new WcmError("MESSAGE_INVALID", "unexpected field", `${what}.${key}`);
  }
}

/** The request id of `object` (errors name `what`.rid). */
export const requestId = (object: Record<string, unknown>, what: string): string => check(object.rid, REQUEST_ID_PATTERN, `${what}.rid`);
/** A generation or sequence number: an integer 1..2^31-1. */
export const generation = (value: unknown, what: string): number => check(value, [1, 0x7fffffff], what);
/** Base64url of exactly `length` bytes. */
export const bytesField = (value: unknown, length: number, what: string): Uint8Array => check(value, base64url(length), what);
/** An integer 0..max. */
export const uint = (value: unknown, max: number, what: string): number => check(value, [0, max], what);

/**
 * Parses a cloud response strictly (a notice is not one); throws MESSAGE_TOO_LARGE or MESSAGE_INVALID.
 * Only a successful `config` response may be larger than MAX_MESSAGE_BYTES (up to MAX_CONFIG_BYTES).
 */
export function decodeResponse(payload: Uint8Array): CloudResponse {
  const message = decodeCloudMessage(payload);
  if ("notice" in message) throw new WcmError("MESSAGE_INVALID", "a notice, not a response", "response.notice");
  return message;
}

/** Every NetworkFailureReason (ports.ts), for validation. */
export const NETWORK_FAILURE_REASONS: readonly NetworkFailureReason[] = [
  "NETWORK-NOT-FOUND", "INCORRECT-PASSWORD", "EAP-REJECTED", "EAP-SERVER-UNTRUSTED", "EAP-TIMEOUT",
  "ASSOCIATION-FAILED", "DHCP-TIMEOUT", "INTERNET-NOT-REACHABLE", "CONNECTION-LOST",
];

/** Every NetworkResult, for validation. */
export const NETWORK_RESULTS: readonly NetworkResult[] = ["JOINED", "FAILED", "FORGOTTEN", "UNREADABLE"];

/** Every DeviceState, for validation. */
export const STATES: readonly DeviceState[] = ["STOPPED", "SCANNING", "JOINING", "CONNECTING", "ISSUING", "ONLINE", "RETRY_WAIT", "AUTH_FAILED"];
/** Every CredentialLabel, for validation. */
export const CREDENTIALS: readonly CredentialLabel[] = ["certificate", "secret", "temporary", "permanent"];

export function shortText(value: unknown, max: number, what: string): string {
  if (typeof value !== "string" || value.length > max) throw new WcmError("MESSAGE_INVALID", `must be a string of at most ${max} characters`, what);
  return value;
}

export function networkReason(value: unknown, what: string): NetworkFailureReason {
  if (!NETWORK_FAILURE_REASONS.includes(value as NetworkFailureReason)) throw new WcmError("MESSAGE_INVALID", "unknown network failure reason", what);
  return value as NetworkFailureReason;
}

export function networkKind(value: unknown, what: string): NetworkKind {
  if (value !== "private" && value !== "hotspot") throw new WcmError("MESSAGE_INVALID", "must be private or hotspot", what);
  return value;
}

/** Parses a topic into its device id and kind; undefined when it is not a wcm device topic. */
export function parseTopic(topic: string): { deviceId: string; kind: "req" | "res" | "status" | "app"; suffix?: string } | undefined {
  const parts = topic.split("/");
  if (parts.length < 4 || parts[0] !== "wcm" || parts[1] !== `v${PROTOCOL_VERSION}`) return undefined;
  const deviceId = parts[2];
  if (!DEVICE_ID_PATTERN.test(deviceId)) return undefined;
  const kind = parts[3];
  if ((kind === "req" || kind === "res" || kind === "status") && parts.length === 4) return { deviceId, kind };
  if (kind === "app" && parts.length > 4) {
    const suffix = parts.slice(4).join("/");
    if (suffix.length <= 64 && APP_SUFFIX_PATTERN.test(suffix)) return { deviceId, kind, suffix };
  }
  return undefined;
}


/** Parses a login password; throws MESSAGE_TOO_LARGE above 128 characters, MESSAGE_INVALID when malformed. */
export function parseLoginPassword(password: string): LoginPassword {
  if (password.length > 128) throw new WcmError("MESSAGE_TOO_LARGE", "longer than 128 characters", "password");
  const match = /^v1:([st]):(0|[1-9][0-9]{0,14}):([A-Za-z0-9_-]{43})$/.exec(password);
  if (!match) throw new WcmError("MESSAGE_INVALID", "not v1:<s|t>:<counter>:<proof>", "password");
  const counter = Number(match[2]);
  if (counter > MAX_LOGIN_COUNTER) throw new WcmError("MESSAGE_INVALID", "counter out of range", "password");
  return { kind: match[1] as LoginKind, counter, proof: fromBase64Url(match[3]) };
}


function decodeFailures(value: unknown): NetworkFailureReport[] {
  if (!Array.isArray(value) || value.length > MAX_FAILURE_REPORTS) {
    throw new WcmError("MESSAGE_INVALID", `must be an array of at most ${MAX_FAILURE_REPORTS} reports`, "request.failures");
  }
  return value.map((item, i) => {
    const what = `request.failures[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw new WcmError("MESSAGE_INVALID", "must be an object", what);
    const object = item as Record<string, unknown>;
    onlyKeys(object, ["kind", "ssid", "reason", "detail", "n"], what);
    const report: NetworkFailureReport = {
      kind: networkKind(object.kind, `${what}.kind`),
      ssid: checkSsid(object.ssid, `${what}.ssid`, "MESSAGE_INVALID"),
      reason: networkReason(object.reason, `${what}.reason`),
      n: uint(object.n, 9999, `${what}.n`),
    };
    if (report.n < 1) throw new WcmError("MESSAGE_INVALID", "must be at least 1", `${what}.n`);
    if (object.detail !== undefined) report.detail = shortText(object.detail, MAX_FAILURE_DETAIL, `${what}.detail`);
    return report;
  });
}

function decodeHello(object: Record<string, unknown>, rid: string): DeviceRequest {
  onlyKeys(object, ["v", "rid", "op", "rev", "seal", "key", "net", "failures"], "request");
  if (object.seal !== undefined && object.seal !== SEAL_VERSION) throw new WcmError("MESSAGE_INVALID", `must be ${SEAL_VERSION} or absent`, "request.seal");
  const request: Extract<DeviceRequest, { op: "hello" }> = {
    v: 1, rid, op: "hello",
    rev: checkHotspotRev(object.rev, "request.rev", "MESSAGE_INVALID"),
    key: bytesField(object.key, object.seal === SEAL_VERSION ? SEAL_PUBLIC_KEY_BYTES : 32, "request.key"),
  };
  if (object.seal === SEAL_VERSION) {
    if (!isSealPublicKey(request.key)) throw new WcmError("MESSAGE_INVALID", "not a P-256 point", "request.key");
    request.seal = SEAL_VERSION;
  }
  if (object.net !== undefined) {
    const net = object.net;
    if (typeof net !== "object" || net === null || Array.isArray(net)) throw new WcmError("MESSAGE_INVALID", "must be an object", "request.net");
    onlyKeys(net as Record<string, unknown>, ["kind", "ssid"], "request.net");
    const { kind, ssid } = net as Record<string, unknown>;
    request.net = { kind: networkKind(kind, "request.net.kind"), ssid: checkSsid(ssid, "request.net.ssid", "MESSAGE_INVALID") };
  }
  if (object.failures !== undefined) request.failures = decodeFailures(object.failures);
  return request;
}

function decodeNetworkResult(object: Record<string, unknown>, rid: string): DeviceRequest {
  onlyKeys(object, ["v", "rid", "op", "seq", "result", "reason", "detail"], "request");
  if (!NETWORK_RESULTS.includes(object.result as NetworkResult)) throw new WcmError("MESSAGE_INVALID", "unknown result", "request.result");
  const request: Extract<DeviceRequest, { op: "network-result" }> = {
    v: 1, rid, op: "network-result", seq: generation(object.seq, "request.seq"), result: object.result as NetworkResult,
  };
  if (object.reason !== undefined) request.reason = networkReason(object.reason, "request.reason");
  if (object.detail !== undefined) request.detail = shortText(object.detail, MAX_FAILURE_DETAIL, "request.detail");
  if ((request.result === "FAILED") !== (request.reason !== undefined)) {
    throw new WcmError("MESSAGE_INVALID", "a reason comes with FAILED and only with FAILED", "request.reason");
  }
  return request;
}

/**
 * Parses a device request strictly. Throws WcmError MESSAGE_TOO_LARGE or
 * MESSAGE_INVALID; the error carries `rid` when one could be read so the cloud
 * can answer it.
 */
export function decodeRequest(payload: Uint8Array): DeviceRequest {
  const object = decodeObject(payload, "request");
  const rid = requestId(object, "request");
  switch (object.op) {
    case "issue":
      onlyKeys(object, ["v", "rid", "op"], "request");
      return { v: 1, rid, op: "issue" };
    case "commit":
      onlyKeys(object, ["v", "rid", "op", "gen", "proof"], "request");
      return { v: 1, rid, op: "commit", gen: generation(object.gen, "request.gen"), proof: bytesField(object.proof, 32, "request.proof") };
    case "hello":
      return decodeHello(object, rid);
    case "config":
    case "network":
      onlyKeys(object, ["v", "rid", "op"], "request");
      return { v: 1, rid, op: object.op };
    case "network-result":
      return decodeNetworkResult(object, rid);
    default:
      throw new WcmError("MESSAGE_INVALID", "unknown operation", "request.op");
  }
}

/** Best effort: the request id of a payload that failed to parse, so the refusal can name it. */
export function peekRequestId(payload: Uint8Array): string | undefined {
  if (payload.length > MAX_MESSAGE_BYTES) return undefined;
  try {
    const value = JSON.parse(utf8Decode(payload)) as { rid?: unknown };
    return typeof value?.rid === "string" && REQUEST_ID_PATTERN.test(value.rid) ? value.rid : undefined;
  } catch {
    return undefined;
  }
}

/** Serialises a cloud response. */
export function encodeResponse(response: CloudResponse): Uint8Array {
  if (!response.ok) {
    const out: Record<string, unknown> = { v: 1, rid: response.rid, op: response.op, ok: false, reason: response.reason };
    if (response.detail !== undefined) out.detail = response.detail.slice(0, 200);
    return utf8Encode(JSON.stringify(out));
  }
  switch (response.op) {
    case "issue":
      if ("sealed" in response) return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "issue", ok: true, gen: response.gen, sealed: toBase64Url(response.sealed) }));
      return utf8Encode(JSON.stringify({
        v: 1, rid: response.rid, op: "issue", ok: true, gen: response.gen,
        nonce: toBase64Url(response.nonce), secret: toBase64Url(response.secret), tag: toBase64Url(response.tag),
      }));
    case "hello":
      return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "hello", ok: true, time: response.time, rev: response.rev, network: response.network }));
    case "config":
      return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "config", ok: true, rev: response.rev, hotspots: hotspotProfilesJson(response.hotspots) }));
    case "network":
      return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "network", ok: true, seq: response.seq, sealed: toBase64Url(response.sealed) }));
    case "network-result":
      return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "network-result", ok: true, seq: response.seq }));
    default:
      return utf8Encode(JSON.stringify({ v: 1, rid: response.rid, op: "commit", ok: true, gen: response.gen }));
  }
}


/** Serialises a notice. */
export function encodeNotice(notice: CloudNotice): Uint8Array {
  return utf8Encode(JSON.stringify({ v: 1, notice: notice.notice }));
}


/** Serialises a network change for sealing. */
export function encodeNetworkChange(change: NetworkChange): Uint8Array {
  return utf8Encode(JSON.stringify(change.action === "set"
    ? { v: 1, seq: change.seq, action: "set", ssid: change.ssid, password: change.password, priority: change.priority }
    : { v: 1, seq: change.seq, action: "forget", ssid: change.ssid }));
}


/** Parses a status report strictly; throws MESSAGE_TOO_LARGE or MESSAGE_INVALID. */
export function decodeStatus(payload: Uint8Array): DeviceStatus {
  const object = decodeObject(payload, "status");
  onlyKeys(object, ["v", "state", "credential", "lastFailure"], "status");
  if (!STATES.includes(object.state as DeviceState)) throw new WcmError("MESSAGE_INVALID", "unknown state", "status.state");
  if (!CREDENTIALS.includes(object.credential as CredentialLabel)) {
    throw new WcmError("MESSAGE_INVALID", "unknown credential", "status.credential");
  }
  const status: DeviceStatus = { v: 1, state: object.state as DeviceState, credential: object.credential as CredentialLabel };
  const failure = object.lastFailure;
  if (failure !== undefined) {
    if (typeof failure !== "object" || failure === null || Array.isArray(failure)) {
      throw new WcmError("MESSAGE_INVALID", "must be an object", "status.lastFailure");
    }
    const { reason, detail } = failure as Record<string, unknown>;
    onlyKeys(failure as Record<string, unknown>, ["reason", "detail"], "status.lastFailure");
    if (typeof reason !== "string" || !/^[A-Z0-9_-]{1,40}$/.test(reason)) {
      throw new WcmError("MESSAGE_INVALID", "must be an upper-case code", "status.lastFailure.reason");
    }
    if (detail !== undefined && (typeof detail !== "string" || detail.length > 200)) {
      throw new WcmError("MESSAGE_INVALID", "must be a string of at most 200 characters", "status.lastFailure.detail");
    }
    status.lastFailure = detail === undefined ? { reason } : { reason, detail: detail as string };
  }
  return status;
}

/**
 * The canonical JSON of a profile list (field order fixed; absent fields are undefined, which JSON leaves out):
 * what the cloud sends in `config`, the same as validateHotspotProfiles gives on the device.
 */
export function hotspotProfilesJson(profiles: readonly HotspotProfile[]): unknown[] {
  return profiles.map((p) => ({
    name: p.name, ssid: p.ssid, roamingConsortium: p.roamingConsortium?.slice(), anonymousIdentity: p.anonymousIdentity,
    radius: { serverName: p.radius.serverName, ca: p.radius.ca },
  }));
}
