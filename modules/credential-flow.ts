/*
 * The credential flow: which secret the device logs in with, and how it gets
 * a permanent one.
 *
 * - picks the credential: certificate, the stored issued secret, the configured
 *   shared secret, or the temporary secret (temporary-secret.ts: stored, from
 *   hardware, or derived from the provisioning key);
 *   once, after the cloud refused an unconfirmed issued secret, the credential
 *   it replaces;
 * - makes the login password: a counter-based proof (no clock needed), the
 *   counter persisted before use;
 * - issuance and rotation: unwraps the issued secret, stores it crash-safely
 *   (keeping the secret it replaces until the commit), proves possession
 *   (commit), and marks it confirmed once the cloud has it.
 * It sends through the host's request channel and reports failures to the host.
 */
import type { DeviceConfig } from "./config";
import { CredentialStore, type StoredSecret } from "./credential-store";
import {
  deriveCloudLoginKey,
  deriveCommitProof,
  deriveLoginProof,
  deriveWrapKey,
  unwrapSecret,
  type LoginKind,
} from "./derive";
import { isWcmError } from "./errors";
import type { DigestPort, KeyValuePort, TemporarySecretPort } from "./ports";
import { formatLoginPassword, type CloudResponse, type CredentialLabel, type DeviceRequest } from "./protocol";
import type { FailureClass } from "./retry";
import { temporarySecretPort } from "./temporary-secret";

/** The credential of the current (or next) session. */
export interface ActiveCredential {
  label: CredentialLabel;
  /** the login proof's kind: "s" for a shared or issued secret, "t" for the temporary one */
  kind?: LoginKind;
  secret?: Uint8Array;
}

/** What the flow needs from the manager. */
export interface CredentialFlowHost {
  /** a failure that ends the session (the manager retries) */
  fail(cls: FailureClass, reason: string, detail?: string): void;
  /** sends a request on the session's request channel */
  send(request: DeviceRequest): void;
  newRequestId(): string;
  /**
   * opens a rotation sealed to the device's own sealing key (purpose "rotation");
   * undefined when the device has no key or the blob does not open
   */
  openRotation(sealed: Uint8Array): Uint8Array | undefined;
  /** the cloud confirmed the issued secret of `generation`: the device is ONLINE as PERMANENT */
  committed(generation: number): void;
  log(level: "debug" | "info" | "warn" | "error", message: string): void;
}

/**
 * Chooses the login credential and runs issuance and rotation.
 * @example
 *   const flow = new CredentialFlow(config, ports.kv, ports.digest, host);
 *   const login = flow.login();          // before connecting
 *   if (flow.accepted() === "temporary") flow.issue();  // after the login
 */
export class CredentialFlow {
  readonly #config: DeviceConfig;
  readonly #digest: DigestPort;
  readonly #store: CredentialStore;
  readonly #host: CredentialFlowHost;
  #credential: ActiveCredential | undefined;
  #stored: StoredSecret | undefined;
  readonly #temporary: TemporarySecretPort | undefined;
  #useFallbackOnce = false;

  /** @param hardware - the host's TemporarySecretPort, for temporarySecretFrom "hardware" */
  constructor(config: DeviceConfig, kv: KeyValuePort, digest: DigestPort, host: CredentialFlowHost, hardware?: TemporarySecretPort) {
    this.#config = config;
    this.#digest = digest;
    this.#store = new CredentialStore(kv, digest, config.deviceId);
    this.#host = host;
    this.#temporary = config.option === "temporary" ? temporarySecretPort(config, digest, hardware) : undefined;
  }

  /** The label to show before the first login: "permanent" once an issued secret is stored. */
  initialLabel(): CredentialLabel {
    if (this.#config.option === "certificate") return "certificate";
    const stored = this.#store.loadSecret();
    if (stored) return "permanent";
    return this.#config.option;
  }

  /**
   * The credential to log in with now (reloads the stored secret).
   * @throws WcmError KEY_UNAVAILABLE when the temporary secret cannot be computed
   */
  choose(): ActiveCredential {
    const config = this.#config;
    if (config.option === "certificate") return { label: "certificate" };
    this.#stored = this.#store.loadSecret();
    if (this.#stored && !this.#useFallbackOnce) {
      return { label: "permanent", kind: "s", secret: this.#stored.secret };
    }
    if (this.#stored?.previous) return { label: "permanent", kind: "s", secret: this.#stored.previous.secret };
    if (config.option === "secret") return { label: "secret", kind: "s", secret: config.secret };
    return { label: "temporary", kind: "t", secret: (this.#temporary as TemporarySecretPort).temporarySecret(config.deviceId) };
  }

  /**
   * Chooses the credential of the next session and makes its login password.
   * @returns the label and the password (none for a certificate), or undefined when
   *   the login counter could not be stored (the host was told: STORE_FAILED) or the
   *   temporary secret could not be computed (KEY_UNAVAILABLE, retried as an
   *   authentication failure: a missing key does not appear by retrying fast)
   */
  login(): { label: CredentialLabel; password?: string } | undefined {
    let credential: ActiveCredential;
    try {
      credential = this.choose();
    } catch (error) {
      if (!isWcmError(error, "KEY_UNAVAILABLE")) throw error;
      this.#host.fail("auth", "KEY_UNAVAILABLE", error.message);
      return undefined;
    }
    this.#useFallbackOnce = false;
    this.#credential = credential;
    if (!(credential.kind && credential.secret)) return { label: credential.label };
    let counter: number;
    try {
      counter = this.#store.nextLoginCounter();
    } catch (error) {
      this.#host.fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
      return undefined;
    }
    const config = this.#config;
    const loginKey = deriveCloudLoginKey(this.#digest, credential.secret);
    const proof = deriveLoginProof(this.#digest, loginKey, config.deviceId, credential.kind, counter);
    return { label: credential.label, password: formatLoginPassword({ kind: credential.kind, counter, proof }) };
  }

  /**
   * The cloud accepted the login: an unconfirmed issued secret it accepted is
   * marked confirmed (the cloud has committed it).
   * @returns the label of the accepted credential ("temporary": issuance follows)
   */
  accepted(): CredentialLabel {
    const credential = this.#credential as ActiveCredential;
    if (credential.label === "permanent" && this.#stored && !this.#stored.confirmed && credential.secret === this.#stored.secret) {
      this.#saveConfirmed(this.#stored);
    }
    return credential.label;
  }

  /** Asks the cloud to issue a permanent secret. */
  issue(): void {
    this.#host.send({ v: 1, rid: this.#host.newRequestId(), op: "issue" });
  }

  /**
   * The cloud holds a rotated secret: fetch it with the request id `rid`
   * (only when logged in with a shared or issued secret).
   */
  rotate(rid: string): void {
    if (this.#credential?.kind === "s") this.#host.send({ v: 1, rid, op: "issue" });
  }

  /**
   * The cloud refused the login (bad credentials or not authorized).
   * @returns true when the refused credential is an unconfirmed issued secret: the
   *   credential it replaces is tried once at the next login
   */
  fallBackAfterRefusal(): boolean {
    const credential = this.#credential;
    if (credential?.label === "permanent" && this.#stored && !this.#stored.confirmed
      && credential.secret === this.#stored.secret && this.#config.option !== "certificate") {
      // The cloud never saw the proof for this secret (it lost the pending one):
      // the credential it replaces (the previous secret, the configured secret
      // or the temporary one) is still the live one. Try it once, now.
      this.#useFallbackOnce = true;
      return true;
    }
    return false;
  }

  /** The `issue` response: unwrap, store, then prove possession (`commit`). */
  onIssued(response: Extract<CloudResponse, { op: "issue"; ok: true }>): void {
    const credential = this.#credential as ActiveCredential;
    let wrapped: { nonce: Uint8Array; secret: Uint8Array; tag: Uint8Array };
    if ("sealed" in response) {
      // A rotation sealed to this device's key: the current secret alone does not open it (9.5).
      const opened = this.#host.openRotation(response.sealed);
      if (!opened || opened.length !== 80) {
        this.#host.fail("server", "BAD_WRAP", "rotated secret does not open with this device's sealing key");
        return;
      }
      wrapped = { nonce: opened.subarray(0, 16), secret: opened.subarray(16, 48), tag: opened.subarray(48, 80) };
    } else {
      wrapped = response;
    }
    const wrapKey = deriveWrapKey(this.#digest, credential.secret as Uint8Array);
    const secret = unwrapSecret(this.#digest, wrapKey, this.#config.deviceId, wrapped.nonce, {
      ciphertext: wrapped.secret,
      tag: wrapped.tag,
    });
    if (!secret) {
      this.#host.fail("server", "BAD_WRAP", "issued secret failed its integrity check");
      return;
    }
    const stored: StoredSecret = { deviceId: this.#config.deviceId, secret, generation: response.gen, confirmed: false };
    if (credential.label === "permanent" && this.#stored) {
      // a rotation of an issued secret: keep the one it replaces until the commit is confirmed
      stored.previous = { secret: credential.secret as Uint8Array, generation: this.#stored.generation };
    }
    try {
      // Stored before the proof is sent: the cloud retires the temporary secret
      // only after the proof, and accepts a login with this one from now on.
      this.#store.saveSecret(stored);
    } catch (error) {
      this.#host.fail("network", "STORE_FAILED", isWcmError(error) ? error.code : "store");
      return;
    }
    this.#stored = stored;
    const proof = deriveCommitProof(this.#digest, secret, this.#config.deviceId, response.gen);
    this.#host.send({ v: 1, rid: this.#host.newRequestId(), op: "commit", gen: response.gen, proof });
  }

  /** The `commit` response: the issued secret of `generation` is the device's credential now. */
  onCommitted(generation: number): void {
    const stored = this.#stored;
    if (!stored || stored.generation !== generation) {
      this.#host.fail("server", "PROTOCOL_VIOLATION", "commit of an unknown generation");
      return;
    }
    this.#saveConfirmed(stored);
    this.#credential = { label: "permanent", kind: "s", secret: stored.secret };
    this.#host.committed(generation);
    this.#host.log("info", `secret generation ${generation} committed`);
  }

  #saveConfirmed(stored: StoredSecret): void {
    const confirmed: StoredSecret = { deviceId: stored.deviceId, secret: stored.secret, generation: stored.generation, confirmed: true };
    try {
      this.#store.saveSecret(confirmed);
      this.#stored = confirmed;
    } catch {
      // Not fatal: an unconfirmed secret is confirmed again at the next login.
      this.#host.log("warn", "could not mark the issued secret confirmed; will retry at next login");
    }
  }
}
