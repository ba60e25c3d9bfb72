/*
 * The credential rules, one copy for every front end: which stored credential
 * a login proves, and why not. Pure over a CredentialStore (the registry's
 * credential rows; no sockets, no limiter state, no audit): authenticator.ts
 * wraps these with lockouts, rates and the refusal audit.
 *
 * - MQTT password: `v1:<s|t>:<counter>:<proof>` (protocol.ts), the counter
 *   makes each password single-use (stored before CONNACK).
 * - Hotspot password (RADIUS TTLS/PAP): derive.deriveHotspotPassword of the
 *   active, pending or (while usable) temporary secret; nothing is written.
 * - Client certificate (MQTT mTLS, RADIUS EAP-TLS): certificate.ts's
 *   checkDeviceCertificate, behind checkCertificate() here.
 *
 * Every proof is verified before `budget` (the per-device and per-lot login
 * rates) is charged, so someone who knows only an id cannot spend the budget
 * of the device that holds the credential.
 */
import type { X509Certificate } from "node:crypto";
import { constantTimeEqual, utf8Encode } from "../../modules/bytes";
import { deriveCloudLoginKey, deriveHotspotPassword, deriveLoginProof, deriveTemporarySecret } from "../../modules/derive";
import type { DigestPort } from "../../modules/ports";
import { DEVICE_ID_PATTERN, parseLoginPassword, type LoginPassword } from "../../modules/protocol";
import { issuedBy } from "../pki";
import type { ClaimSource, DeviceRow, Registry } from "../registry";
import { caCertificate, checkDeviceCertificate } from "./certificate";
import type { AuthFailure } from "./failures";

/**
 * What the rules read and write of the registry: the one place the credential
 * decision touches storage. Asynchronous (SQLite or PostgreSQL behind it);
 * every write here is atomic in the database (cloud/registry.ts).
 */
export type CredentialStore = Pick<Registry,
  "device" | "lot" | "lotKey" | "lotsAllowing" | "lotAllows" | "ca" | "cas" | "activeSecret" | "pendingSecret"
  | "acceptLoginCounter" | "commitPending" | "insertTemporaryDevice" | "recordClaim" | "touch" | "now" | "certificateRevocation">;

/** The login rates, charged only once a proof has been verified. */
export interface Budget {
  /** takes a login token of the device id; false = over its rate */
  device(id: string): boolean | Promise<boolean>;
  /** takes a temporary-login token of the lot; false = over its rate */
  lot(lot: string): boolean | Promise<boolean>;
}

/** Which stored credential a login proved. */
export type CredentialUsed = "secret" | "pending" | "temporary" | "certificate";

/** The outcome of the rules. */
export type RuleResult =
  | { ok: true; deviceId: string; used: CredentialUsed; secret?: Uint8Array; generation: number; lot?: string; certFingerprint?: string }
  | { ok: false; deviceId: string | undefined; failure: AuthFailure; detail: string };

/** One MQTT CONNECT as the broker saw it. */
export interface MqttCredential {
  clientId: string;
  username: string | undefined;
  password: Uint8Array | undefined;
  /** the client certificate of the TLS handshake, if any */
  peerCertificate: X509Certificate | undefined;
  /** the connection's address and TLS parameters, audited with a first claim (device.claim) */
  claim?: ClaimSource;
}

function refuse(deviceId: string | undefined, failure: AuthFailure, detail: string): RuleResult {
  return { ok: false, deviceId, failure, detail };
}

const OVER_DEVICE_RATE = "device id over its login rate";
const OVER_LOT_RATE = "provisioning key over its login rate";

/** Whether `leaf` comes from any registered, unrevoked product CA (to tell UNKNOWN_DEVICE from UNKNOWN_CA). */
export async function fromKnownCa(store: CredentialStore, leaf: X509Certificate): Promise<boolean> {
  return (await store.cas()).some((ca) => !ca.revoked && issuedBy(leaf, caCertificate(ca.cert_pem)));
}

/**
 * A registered certificate device's login, the same on MQTT and RADIUS: not
 * revoked, then the one certificate check (certificate.ts), then the rate.
 * `touch` records the login (MQTT; RADIUS writes nothing).
 */
export async function checkCertificate(store: CredentialStore, row: DeviceRow, leaf: X509Certificate | undefined, budget: Budget, touch: boolean): Promise<RuleResult> {
  const id = row.id;
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  const decision = await checkDeviceCertificate(store as Registry, row, leaf);
  if (!decision.ok) return refuse(id, decision.failure, decision.detail);
  if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
  if (touch) (await store.touch(id));
  return { ok: true, deviceId: id, used: "certificate", generation: 0, certFingerprint: decision.fingerprint };
}

function proofMatches(digest: DigestPort, secret: Uint8Array | undefined, id: string, login: LoginPassword): boolean {
  if (!secret) return false;
  const expected = deriveLoginProof(digest, deriveCloudLoginKey(digest, secret), id, login.kind, login.counter);
  return constantTimeEqual(expected, login.proof);
}

/** `row`: the device's row as mqttRules read it for this login (read once per login; every write below is conditional in the database). */
async function verifySecret(store: CredentialStore, digest: DigestPort, row: DeviceRow | undefined, id: string, login: LoginPassword, budget: Budget): Promise<RuleResult> {
  if (!row) return refuse(id, "UNKNOWN_DEVICE", "no such device");
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  const active = store.activeSecret(row);
  if (proofMatches(digest, active, id, login)) {
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    if (!(await store.acceptLoginCounter(id, login.counter))) return refuse(id, "REPLAY", "login counter not above the last one");
    return { ok: true, deviceId: id, used: "secret", secret: active, generation: row.generation };
  }
  const pending = store.pendingSecret(row);
  if (row.pending_generation !== null && proofMatches(digest, pending, id, login)) {
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    // The device stored the issued secret but its commit was lost: this login is the proof of possession.
    if (!(await store.commitPending(id, row.pending_generation, "mqtt", login.counter))) return refuse(id, "REPLAY", "login counter not above the last one");
    return { ok: true, deviceId: id, used: "pending", secret: pending, generation: row.pending_generation };
  }
  return refuse(id, "BAD_PROOF", "wrong secret");
}

/** Why the lot of a temporary row no longer allows its temporary credential, if it does not. */
async function temporaryBlocked(store: CredentialStore, row: DeviceRow): Promise<RuleResult | undefined> {
  const lot = row.lot === null ? undefined : (await store.lot(row.lot));
  if (lot?.revoked) return refuse(row.id, "LOT_REVOKED", "provisioning key revoked");
  if (!lot || lot.retired) return refuse(row.id, "LOT_RETIRED", "provisioning key retired");
  if (!(await store.lotAllows(lot, row.id))) return refuse(row.id, "NOT_ALLOWED", "id not allowed for the provisioning key");
  return undefined;
}

async function verifyTemporary(store: CredentialStore, digest: DigestPort, row: DeviceRow | undefined, id: string, login: LoginPassword, budget: Budget, claim: ClaimSource | undefined): Promise<RuleResult> {
  if (row) {
    if (row.revoked) return refuse(id, "REVOKED", "device revoked");
    if (row.kind !== "temporary") {
      return row.temp_retired
        ? refuse(id, "TEMP_RETIRED", "temporary credential retired: the device holds a permanent secret")
        : refuse(id, "NOT_ALLOWED", "device has no temporary credential");
    }
    const blocked = await temporaryBlocked(store, row);
    if (blocked) return blocked;
    const lot = (await store.lot(row.lot!))!;
    const temporary = deriveTemporarySecret(digest, store.lotKey(lot), id);
    if (!proofMatches(digest, temporary, id, login)) return refuse(id, "BAD_PROOF", "wrong temporary secret");
    if (!(await budget.lot(lot.lot))) return refuse(id, "RATE_LIMITED", OVER_LOT_RATE);
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    if (!(await store.acceptLoginCounter(id, login.counter))) return refuse(id, "REPLAY", "login counter not above the last one");
    // a reprovisioned id (no claim since) is claimed by this login
    if (row.claimed_at === null) (await store.recordClaim(id, claim));
    return { ok: true, deviceId: id, used: "temporary", secret: temporary, generation: 0, lot: lot.lot };
  }
  const allowing = await store.lotsAllowing(id);
  if (allowing.length === 0) return refuse(id, "NOT_ALLOWED", "id not allowed for any provisioning key");
  for (const lot of allowing) {
    const temporary = deriveTemporarySecret(digest, store.lotKey(lot), id);
    if (!proofMatches(digest, temporary, id, login)) continue;
    if (!(await budget.lot(lot.lot))) return refuse(id, "RATE_LIMITED", OVER_LOT_RATE);
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    if (!(await store.insertTemporaryDevice(id, lot.lot, login.counter, claim))) return refuse(id, "INTERNAL", "concurrent first login");
    return { ok: true, deviceId: id, used: "temporary", secret: temporary, generation: 0, lot: lot.lot };
  }
  return refuse(id, "BAD_PROOF", "wrong temporary secret");
}

/**
 * The rules of an MQTT CONNECT (client id = user name = device id).
 * @returns ok with the credential proved, or the refusal
 * @example mqttRules(registry, nodeDigest, { clientId: "lamp-1", username: "lamp-1", password, peerCertificate: undefined }, budget)
 */
export async function mqttRules(store: CredentialStore, digest: DigestPort, attempt: MqttCredential, budget: Budget): Promise<RuleResult> {
  const id = attempt.clientId;
  if (!DEVICE_ID_PATTERN.test(id)) return refuse(undefined, "BAD_LOGIN", "client id is not a device id");
  if (attempt.username !== id) return refuse(id, "BAD_LOGIN", "user name must equal the client id");
  const row = await store.device(id);
  if (row && row.kind === "certificate") return await checkCertificate(store, row, attempt.peerCertificate, budget, true);
  if (attempt.password === undefined || attempt.password.length === 0) {
    if (attempt.peerCertificate && !row) {
      return (await fromKnownCa(store, attempt.peerCertificate))
        ? refuse(id, "UNKNOWN_DEVICE", "certificate device not registered")
        : refuse(id, "UNKNOWN_CA", "certificate not issued by a registered CA");
    }
    return refuse(id, row ? "BAD_LOGIN" : "UNKNOWN_DEVICE", "no password");
  }
  if (attempt.password.length > 128) return refuse(id, "BAD_LOGIN", "password too long");
  let login: LoginPassword;
  try {
    login = parseLoginPassword(Buffer.from(attempt.password).toString("latin1"));
  } catch {
    return refuse(id, "BAD_LOGIN", "password is not v1:<s|t>:<counter>:<proof>");
  }
  return login.kind === "s" ? (await verifySecret(store, digest, row, id, login, budget)) : (await verifyTemporary(store, digest, row, id, login, budget, attempt.claim));
}

function hotspotMatches(digest: DigestPort, secret: Uint8Array | undefined, id: string, password: Uint8Array): boolean {
  if (!secret) return false;
  return constantTimeEqual(utf8Encode(deriveHotspotPassword(digest, secret, id)), password);
}

/**
 * The rules of a hotspot password (RADIUS EAP-TTLS/PAP inner login). The same
 * state reads the same reason as over MQTT: a certificate device gets
 * CERT_REQUIRED, a temporary device of a revoked lot LOT_REVOKED.
 * @param userName - the inner User-Name (the device id)
 * @param password - the inner User-Password, zero padding removed
 */
export async function hotspotRules(store: CredentialStore, digest: DigestPort, userName: string, password: Uint8Array, budget: Budget): Promise<RuleResult> {
  if (!DEVICE_ID_PATTERN.test(userName)) return refuse(undefined, "BAD_LOGIN", "inner User-Name is not a device id");
  const id = userName;
  const row = await store.device(id);
  if (!row) {
    const lots = await store.lotsAllowing(id);
    if (lots.length === 0) return refuse(id, "UNKNOWN_DEVICE", "no such device and no provisioning key allows the id");
    for (const lot of lots) {
      if (!hotspotMatches(digest, deriveTemporarySecret(digest, store.lotKey(lot), id), id, password)) continue;
      if (!(await budget.lot(lot.lot))) return refuse(id, "RATE_LIMITED", OVER_LOT_RATE);
      if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
      return { ok: true, deviceId: id, used: "temporary", generation: 0, lot: lot.lot };
    }
    return refuse(id, "BAD_PROOF", "wrong temporary hotspot password");
  }
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  if (row.kind === "certificate") return refuse(id, "CERT_REQUIRED", "certificate device: use EAP-TLS");
  for (const [used, secret] of [["secret", store.activeSecret(row)], ["pending", store.pendingSecret(row)]] as const) {
    if (!hotspotMatches(digest, secret, id, password)) continue;
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    return { ok: true, deviceId: id, used, generation: used === "secret" ? row.generation : row.pending_generation ?? 0 };
  }
  const lot = row.lot === null ? undefined : (await store.lot(row.lot));
  if (row.kind === "temporary") {
    const blocked = await temporaryBlocked(store, row);
    if (blocked) return blocked;
    if (!hotspotMatches(digest, deriveTemporarySecret(digest, store.lotKey(lot!), id), id, password)) return refuse(id, "BAD_PROOF", "wrong temporary hotspot password");
    if (!(await budget.lot(lot!.lot))) return refuse(id, "RATE_LIMITED", OVER_LOT_RATE);
    if (!(await budget.device(id))) return refuse(id, "RATE_LIMITED", OVER_DEVICE_RATE);
    return { ok: true, deviceId: id, used: "temporary", generation: 0, lot: lot!.lot };
  }
  if (lot && hotspotMatches(digest, deriveTemporarySecret(digest, store.lotKey(lot), id), id, password)) {
    return row.temp_retired
      ? refuse(id, "TEMP_RETIRED", "temporary credential retired: the device holds a permanent secret")
      : refuse(id, "NOT_ALLOWED", "device has no temporary credential");
  }
  return refuse(id, "BAD_PROOF", "wrong hotspot password");
}
