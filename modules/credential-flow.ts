/*
 * The credential flow, as pure functions over CredentialState: which secret the
 * device logs in with, and how it gets a permanent one.
 *
 * - picks the credential: certificate, the stored issued secret, the configured
 *   shared secret, or the temporary secret (temporary-secret.ts: stored, from
 *   hardware, or derived from the provisioning key); once, after the cloud
 *   refused an unconfirmed issued secret, the credential it replaces;
 * - makes the login password: a counter-based proof (no clock needed); the
 *   counters are reserved in blocks, and a block's end is stored before any
 *   counter in it is used (the caller stores it first: `reserve`);
 * - issuance and rotation: unwraps the issued secret, returns what to store
 *   (keeping the secret it replaces until the commit) and the commit proof,
 *   and marks it confirmed once the cloud has it.
 * No I/O: what to store is returned; the state machine makes it an effect.
 */
import type { DeviceConfig } from "./config";
import { COUNTER_BLOCK, type StoredSecret } from "./credential-store";
import { constantTimeEqual } from "./bytes";
import { deriveCloudLoginKey, deriveCommitProof, deriveLoginProof, deriveWrapKey, unwrapSecret, type LoginKind } from "./derive";
import type { DigestPort, TemporarySecretPort } from "./ports";
import { formatLoginPassword, MAX_LOGIN_COUNTER, type CloudResponse, type CredentialLabel } from "./wire";

/** The credential of the current (or next) session. */
export interface ActiveCredential {
  label: CredentialLabel;
  /** the login proof's kind: "s" for a shared or issued secret, "t" for the temporary one */
  kind?: LoginKind;
  secret?: Uint8Array;
}

/** What the flow keeps between events. */
export interface CredentialState {
  /** the issued secret as stored */
  readonly stored?: StoredSecret;
  /** the credential of the last login */
  readonly active?: ActiveCredential;
  /** try the credential an unconfirmed issued secret replaces, at the next login */
  readonly fallback?: boolean;
  /** the next login counter, and the end of the stored reservation */
  readonly next: number;
  readonly upTo: number;
  /** while a "confirmed" write is out: the record it replaces (restored if the write fails) */
  readonly undo?: StoredSecret;
}

/** What the flow computes with (deterministic). */
export interface CredentialContext {
  readonly config: DeviceConfig;
  readonly digest: DigestPort;
  /** the temporary secret (temporary devices only) */
  readonly temporary?: TemporarySecretPort;
}

/** The label before the first login: "permanent" once an issued secret is stored. */
export function initialLabel(config: DeviceConfig, state: CredentialState): CredentialLabel {
  return config.option === "certificate" ? "certificate" : state.stored ? "permanent" : config.option;
}

/**
 * The credential to log in with now.
 * @throws WcmError KEY_UNAVAILABLE when the temporary secret cannot be computed
 */
export function chooseCredential(ctx: CredentialContext, state: CredentialState): ActiveCredential {
  const config = ctx.config;
  if (config.option === "certificate") return { label: "certificate" };
  const stored = state.stored;
  if (stored && !state.fallback) return { label: "permanent", kind: "s", secret: stored.secret };
  if (stored?.previous) return { label: "permanent", kind: "s", secret: stored.previous.secret };
  if (config.option === "secret") return { label: "secret", kind: "s", secret: config.secret };
  return { label: "temporary", kind: "t", secret: (ctx.temporary as TemporarySecretPort).temporarySecret(config.deviceId) };
}

/**
 * The next session's credential and login password.
 * @returns the new state, the label, the password (none for a certificate) and
 *   `reserve`: a counter reservation end to store before the password is used;
 *   or `limit` when the counter is exhausted
 * @throws WcmError KEY_UNAVAILABLE (chooseCredential)
 */
export function login(ctx: CredentialContext, state: CredentialState): { state: CredentialState; label: CredentialLabel; password?: string; reserve?: number; limit?: true } {
  const active = chooseCredential(ctx, state);
  const base = { ...state, active, fallback: false };
  if (!(active.kind && active.secret)) return { state: base, label: active.label };
  const counter = state.next;
  if (counter >= MAX_LOGIN_COUNTER) return { state: base, label: active.label, limit: true };
  const reserve = counter >= state.upTo ? Math.min(counter + COUNTER_BLOCK, MAX_LOGIN_COUNTER) : undefined;
  const proof = deriveLoginProof(ctx.digest, deriveCloudLoginKey(ctx.digest, active.secret), ctx.config.deviceId, active.kind, counter);
  return {
    state: { ...base, next: counter + 1, upTo: reserve ?? state.upTo },
    label: active.label,
    password: formatLoginPassword({ kind: active.kind, counter, proof }),
    ...(reserve ? { reserve } : {}),
  };
}

/** True when the active credential is the stored issued secret and the cloud has not confirmed it. */
function unconfirmed(state: CredentialState): state is CredentialState & { stored: StoredSecret } {
  const active = state.active;
  return active?.label === "permanent" && !!state.stored && !state.stored.confirmed && !!active.secret && constantTimeEqual(active.secret, state.stored.secret);
}

/** The record that marks `stored` confirmed, and the state holding it. */
export function confirm(state: CredentialState, stored: StoredSecret): { state: CredentialState; record: StoredSecret } {
  const record: StoredSecret = { deviceId: stored.deviceId, secret: stored.secret, generation: stored.generation, confirmed: true };
  return { state: { ...state, stored: record, undo: state.stored }, record };
}

/**
 * The cloud accepted the login: an unconfirmed issued secret it accepted is to be marked confirmed.
 * @returns the accepted label ("temporary": issuance follows) and, when due, the confirmed record to store
 */
export function accepted(state: CredentialState): { state: CredentialState; label: CredentialLabel; record?: StoredSecret } {
  const label = (state.active as ActiveCredential).label;
  return unconfirmed(state) ? { label, ...confirm(state, state.stored) } : { state, label };
}

/**
 * The cloud refused the login (bad credentials or not authorized).
 * @returns the state that tries the replaced credential once, when the refused one is an unconfirmed issued secret; else undefined
 */
export function fallBack(config: DeviceConfig, state: CredentialState): CredentialState | undefined {
  // The cloud never saw the proof for this secret (it lost the pending one): the credential it replaces is still the live one.
  return unconfirmed(state) && config.option !== "certificate" ? { ...state, fallback: true } : undefined;
}

/**
 * The `issue` response: unwraps the secret.
 * @param opened - for a sealed rotation: the blob opened with the device's sealing key (undefined when it did not open)
 * @returns the record to store before the commit and the commit proof; or `bad`, why it cannot be used (BAD_WRAP)
 */
export function issued(
  ctx: CredentialContext,
  state: CredentialState,
  response: Extract<CloudResponse, { op: "issue"; ok: true }>,
  opened?: Uint8Array,
): { record: StoredSecret; proof: Uint8Array } | { bad: string } {
  const active = state.active as ActiveCredential;
  let wrapped: { nonce: Uint8Array; secret: Uint8Array; tag: Uint8Array };
  if ("sealed" in response) {
    // A rotation sealed to this device's key: the current secret alone does not open it (9.5).
    if (!opened || opened.length !== 80) return { bad: "rotated secret does not open with this device's sealing key" };
    wrapped = { nonce: opened.subarray(0, 16), secret: opened.subarray(16, 48), tag: opened.subarray(48, 80) };
  } else {
    wrapped = response;
  }
  const deviceId = ctx.config.deviceId;
  const secret = unwrapSecret(ctx.digest, deriveWrapKey(ctx.digest, active.secret as Uint8Array), deviceId, wrapped.nonce, { ciphertext: wrapped.secret, tag: wrapped.tag });
  if (!secret) return { bad: "issued secret failed its integrity check" };
  const record: StoredSecret = { deviceId, secret, generation: response.gen, confirmed: false };
  // a rotation of an issued secret: keep the one it replaces until the commit is confirmed
  if (active.label === "permanent" && state.stored) record.previous = { secret: active.secret as Uint8Array, generation: state.stored.generation };
  return { record, proof: deriveCommitProof(ctx.digest, secret, deviceId, response.gen) };
}
