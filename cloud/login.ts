/*
 * The login decision of the MQTT endpoint: who may connect, with which
 * credential, and which CONNACK code a refusal gets.
 *
 * Pure over the registry (no MQTT, no sockets): mqtt-server.ts calls
 * verifyLogin() from aedes' authenticate hook. Password logins are checked
 * with derive.ts and protocol.ts only; the stored login counter makes each
 * password single-use (replay protection), stored before CONNACK is sent.
 */
import type { X509Certificate } from "node:crypto";
import { constantTimeEqual } from "../modules/bytes";
import { deriveCloudLoginKey, deriveLoginProof, deriveTemporarySecret, type LoginKind } from "../modules/derive";
import type { DigestPort } from "../modules/ports";
import { CONNACK, DEVICE_ID_PATTERN, parseLoginPassword, type LoginPassword } from "../modules/protocol";
import { checkDeviceCertificate, type CertificateFailure } from "./auth/certificate";
import { issuedBy } from "./pki";
import { X509Certificate as NodeX509 } from "node:crypto";
import type { DeviceRow, Registry } from "./registry";

/** The credential a live session logged in with. */
export type SessionCredential = "certificate" | LoginKind;

/** What the cloud remembers about one authenticated MQTT session (in memory only). */
export interface Session {
  deviceId: string;
  credential: SessionCredential;
  /** the secret the session proved (s: active or just-committed secret; t: temporary secret) */
  loginSecret?: Uint8Array;
  /** generation of `loginSecret` (0 for the manufactured or temporary secret) */
  generation: number;
  /** the lot of a temporary session */
  lot?: string;
  /** SHA-256 fingerprint of the client certificate of a certificate session */
  certFingerprint?: string;
}

/** Short failure codes stored in devices.last_failure and the audit log. Catalogue: cloud/README.md. */
export type LoginFailure =
  | "BAD_LOGIN" | "UNKNOWN_DEVICE" | "BAD_PROOF" | "REPLAY" | "REVOKED" | "TEMP_RETIRED" | "LOT_RETIRED" | "NOT_ALLOWED"
  | CertificateFailure | "INTERNAL"
  | "LOT_REVOKED" | "RATE_LIMITED" | "LOCKED_OUT";

/**
 * The abuse limits a login passes before any proof is verified (cloud/limits.ts
 * LoginGuard behind it): a locked-out id is refused with CONNACK 5 LOCKED_OUT,
 * an id or lot over its login rate with CONNACK 3 RATE_LIMITED (the device
 * retries with its network back-off).
 */
export interface LoginGate {
  /** ms clock of the lockouts */
  now(): number;
  /** the end of an in-memory lock of an id with no device row */
  memoryLockedUntil(id: string): number | undefined;
  /** takes a login token of the device id; false = over its rate */
  admitDevice(id: string): boolean;
  /** takes a temporary-login token of the lot; false = over its rate */
  admitLot(lot: string): boolean;
}

/** The outcome of a login. */
export type LoginResult =
  | { ok: true; session: Session }
  | { ok: false; connack: 3 | 4 | 5; failure: LoginFailure; detail: string };

/** One CONNECT as the broker saw it. */
export interface LoginAttempt {
  clientId: string;
  username: string | undefined;
  password: Uint8Array | undefined;
  /** the client certificate presented in the TLS handshake, if any */
  peerCertificate: X509Certificate | undefined;
}

function refuse(connack: 3 | 4 | 5, failure: LoginFailure, detail: string): LoginResult {
  return { ok: false, connack, failure, detail };
}

function proofMatches(digest: DigestPort, secret: Uint8Array, id: string, login: LoginPassword): boolean {
  const expected = deriveLoginProof(digest, deriveCloudLoginKey(digest, secret), id, login.kind, login.counter);
  return constantTimeEqual(expected, login.proof);
}

/** CONNACK of each certificate failure: 5 for a revocation (as REVOKED), 4 otherwise. */
const CERTIFICATE_CONNACK: Record<CertificateFailure, 4 | 5> = {
  CERT_REQUIRED: CONNACK.badCredentials, UNKNOWN_CA: CONNACK.notAuthorized, CA_REVOKED: CONNACK.notAuthorized,
  CERT_EXPIRED: CONNACK.badCredentials, CERT_USAGE: CONNACK.badCredentials, CERT_REVOKED: CONNACK.notAuthorized,
  CERT_MISMATCH: CONNACK.badCredentials,
};

function verifyCertificate(registry: Registry, row: DeviceRow, leaf: X509Certificate | undefined): LoginResult {
  const decision = checkDeviceCertificate(registry, row, leaf);
  if (!decision.ok) {
    // not issued by the device's (registered) CA: 4, as before; an unregistered CA: 5
    const connack = decision.failure === "UNKNOWN_CA" && row.ca_name !== null && registry.ca(row.ca_name) ? CONNACK.badCredentials : CERTIFICATE_CONNACK[decision.failure];
    return refuse(connack, decision.failure, decision.detail);
  }
  registry.touch(row.id);
  return { ok: true, session: { deviceId: row.id, credential: "certificate", generation: 0, certFingerprint: decision.fingerprint } };
}

function verifySecret(registry: Registry, digest: DigestPort, id: string, login: LoginPassword): LoginResult {
  const row = registry.device(id);
  if (!row) return refuse(CONNACK.badCredentials, "UNKNOWN_DEVICE", "no such device");
  if (row.revoked) return refuse(CONNACK.notAuthorized, "REVOKED", "device revoked");
  const active = registry.activeSecret(row);
  if (active && proofMatches(digest, active, id, login)) {
    if (!registry.acceptLoginCounter(id, login.counter)) return refuse(CONNACK.badCredentials, "REPLAY", "login counter not above the last one");
    return { ok: true, session: { deviceId: id, credential: "s", loginSecret: active, generation: row.generation } };
  }
  const pending = registry.pendingSecret(row);
  if (pending && row.pending_generation !== null && proofMatches(digest, pending, id, login)) {
    // The device stored the issued secret but its commit was lost: this login is the proof of possession.
    if (!registry.commitPending(id, row.pending_generation, "mqtt", login.counter)) {
      return refuse(CONNACK.badCredentials, "REPLAY", "login counter not above the last one");
    }
    return { ok: true, session: { deviceId: id, credential: "s", loginSecret: pending, generation: row.pending_generation } };
  }
  return refuse(CONNACK.badCredentials, "BAD_PROOF", "wrong secret");
}

function verifyTemporary(registry: Registry, digest: DigestPort, id: string, login: LoginPassword, gate: LoginGate | undefined): LoginResult {
  const row = registry.device(id);
  if (row) {
    if (row.revoked) return refuse(CONNACK.notAuthorized, "REVOKED", "device revoked");
    if (row.kind !== "temporary") {
      return row.temp_retired
        ? refuse(CONNACK.notAuthorized, "TEMP_RETIRED", "temporary credential retired: the device holds a permanent secret")
        : refuse(CONNACK.notAuthorized, "NOT_ALLOWED", "device has no temporary credential");
    }
    const lot = row.lot === null ? undefined : registry.lot(row.lot);
    if (lot?.revoked) return refuse(CONNACK.notAuthorized, "LOT_REVOKED", "provisioning key revoked");
    if (!lot || lot.retired) return refuse(CONNACK.notAuthorized, "LOT_RETIRED", "provisioning key retired");
    if (!registry.lotAllows(lot, id)) return refuse(CONNACK.notAuthorized, "NOT_ALLOWED", "id not allowed for the provisioning key");
    if (gate && !gate.admitLot(lot.lot)) return refuse(CONNACK.serverUnavailable, "RATE_LIMITED", "provisioning key over its login rate");
    const temporary = deriveTemporarySecret(digest, registry.lotKey(lot), id);
    if (!proofMatches(digest, temporary, id, login)) return refuse(CONNACK.badCredentials, "BAD_PROOF", "wrong temporary secret");
    if (!registry.acceptLoginCounter(id, login.counter)) return refuse(CONNACK.badCredentials, "REPLAY", "login counter not above the last one");
    return { ok: true, session: { deviceId: id, credential: "t", loginSecret: temporary, generation: 0, lot: lot.lot } };
  }
  const allowing = registry.lotsAllowing(id);
  if (allowing.length === 0) return refuse(CONNACK.notAuthorized, "NOT_ALLOWED", "id not allowed for any provisioning key");
  const lots = gate ? allowing.filter((lot) => gate.admitLot(lot.lot)) : allowing;
  if (lots.length === 0) return refuse(CONNACK.serverUnavailable, "RATE_LIMITED", "provisioning key over its login rate");
  for (const lot of lots) {
    const temporary = deriveTemporarySecret(digest, registry.lotKey(lot), id);
    if (proofMatches(digest, temporary, id, login)) {
      if (!registry.insertTemporaryDevice(id, lot.lot, login.counter)) {
        return refuse(CONNACK.serverUnavailable, "INTERNAL", "concurrent first login");
      }
      return { ok: true, session: { deviceId: id, credential: "t", loginSecret: temporary, generation: 0, lot: lot.lot } };
    }
  }
  return refuse(CONNACK.badCredentials, "BAD_PROOF", "wrong temporary secret");
}

/**
 * Decides a CONNECT.
 * @param registry - the registry (counters and first-login rows are written here)
 * @param digest - HMAC for derive.ts
 * @param attempt - client id, user name, password bytes and TLS client certificate
 * @param gate - lockouts and login rates, checked before any proof (none: no limits)
 * @returns ok with the session, or the CONNACK code (3, 4 or 5) and a failure code
 * @example verifyLogin(registry, nodeDigest, { clientId: "lamp-1", username: "lamp-1", password, peerCertificate: undefined })
 */
export function verifyLogin(registry: Registry, digest: DigestPort, attempt: LoginAttempt, gate?: LoginGate): LoginResult {
  const id = attempt.clientId;
  if (!DEVICE_ID_PATTERN.test(id)) return refuse(CONNACK.badCredentials, "BAD_LOGIN", "client id is not a device id");
  const row = registry.device(id);
  if (gate) {
    const now = gate.now();
    const lockedUntil = row ? (row.locked_until !== null && row.locked_until > now ? row.locked_until : undefined) : gate.memoryLockedUntil(id);
    if (lockedUntil !== undefined) return refuse(CONNACK.notAuthorized, "LOCKED_OUT", `locked out until ${new Date(lockedUntil).toISOString()}`);
    if (!gate.admitDevice(id)) return refuse(CONNACK.serverUnavailable, "RATE_LIMITED", "device id over its login rate");
  }
  if (attempt.username !== id) return refuse(CONNACK.badCredentials, "BAD_LOGIN", "user name must equal the client id");
  if (row && row.kind === "certificate") {
    if (row.revoked) return refuse(CONNACK.notAuthorized, "REVOKED", "device revoked");
    return verifyCertificate(registry, row, attempt.peerCertificate);
  }
  if (attempt.password === undefined || attempt.password.length === 0) {
    if (attempt.peerCertificate && !row) {
      const known = registry.cas().some((ca) => issuedBy(attempt.peerCertificate!, new NodeX509(ca.cert_pem)));
      return known
        ? refuse(CONNACK.badCredentials, "UNKNOWN_DEVICE", "certificate device not registered")
        : refuse(CONNACK.badCredentials, "UNKNOWN_CA", "certificate not issued by a registered CA");
    }
    return refuse(CONNACK.badCredentials, row ? "BAD_LOGIN" : "UNKNOWN_DEVICE", "no password");
  }
  if (attempt.password.length > 128) return refuse(CONNACK.badCredentials, "BAD_LOGIN", "password too long");
  let login: LoginPassword;
  try {
    login = parseLoginPassword(Buffer.from(attempt.password).toString("latin1"));
  } catch {
    return refuse(CONNACK.badCredentials, "BAD_LOGIN", "password is not v1:<s|t>:<counter>:<proof>");
  }
  return login.kind === "s" ? verifySecret(registry, digest, id, login) : verifyTemporary(registry, digest, id, login, gate);
}
