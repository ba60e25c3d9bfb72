/*
 * The device's durable credential state, on two crash-safe records:
 *   "cred"  the issued permanent secret (generation, whether the cloud confirmed it)
 *   "ctr"   the login counter reservation
 *
 * The login counter makes every cloud login unique without a clock: the cloud
 * accepts a counter only if it is larger than the last one it saw. The device
 * reserves counters in blocks (one flash write per block) and persists the end
 * of the block BEFORE it uses any counter in it, so after any power cut the
 * next counter is larger than every counter ever sent.
 */
import { fromBase64Url, toBase64Url } from "./bytes";
import { base64url, check, fail, valid } from "./check";
import type { DigestPort, KeyValuePort } from "./ports";
import { MAX_LOGIN_COUNTER } from "./wire";
import { RecordStore } from "./record-store";

/** An issued secret as the device keeps it. */
export interface StoredSecret {
  deviceId: string;
  secret: Uint8Array;
  /** the cloud's generation number for this secret (1 = first permanent secret) */
  generation: number;
  /** true once the cloud confirmed the commit (or a login with it succeeded) */
  confirmed: boolean;
  /**
   * While unconfirmed after a rotation: the secret it replaces, kept so the
   * device can still log in if the cloud never saw the commit.
   */
  previous?: { secret: Uint8Array; generation: number };
}

/** How many counters one flash write reserves. */
export const COUNTER_BLOCK = 32;

/** A stored secret: 16 to 64 bytes. */
const SECRET = base64url(16, 64);

/** Durable credential state of one device. */
export class CredentialStore {
  declare private readonly secret: RecordStore;
  declare private readonly counter: RecordStore;
  declare private readonly deviceId: string;
  declare private nextCounter: number | undefined;
  /** set with nextCounter on the first nextLoginCounter() */
  declare private reservedUpTo: number;

  /**
   * @param kv - the key-value port
   * @param digest - SHA-256 for record checksums
   * @param deviceId - records written for another device id are ignored
   */
  constructor(kv: KeyValuePort, digest: DigestPort, deviceId: string) {
    this.secret = new RecordStore(kv, digest, "cred");
    this.counter = new RecordStore(kv, digest, "ctr");
    this.deviceId = deviceId;
  }

  /** The stored issued secret for this device, if any valid one exists. */
  loadSecret(): StoredSecret | undefined {
    const value = this.secret.load(this.deviceId) ?? {};
    try {
      const loaded: StoredSecret = { deviceId: this.deviceId, secret: check(value.s, SECRET, "s"), generation: check(value.g, [1, Infinity], "g"), confirmed: value.c === true };
      if (typeof value.p === "string" && Number.isInteger(value.pg) && value.pg >= 1) {
        const previous = fromBase64Url(value.p);
        if (previous.length >= 16 && previous.length <= 64) loaded.previous = { secret: previous, generation: value.pg };
      }
      return loaded;
    } catch {
      return undefined;
    }
  }

  /**
   * Stores an issued secret crash-safely. When this returns, loadSecret() gives it;
   * if it is cut by a power failure, loadSecret() gives what it gave before.
   * @throws WcmError STORE_FAILED / STORE_LIMIT
   */
  saveSecret(secret: StoredSecret): void {
    if (secret.deviceId !== this.deviceId) fail("STATE_INVALID", "secret for another device", "deviceId");
    const previous = secret.confirmed ? undefined : secret.previous;
    this.secret.save(this.deviceId, {
      s: toBase64Url(secret.secret), g: secret.generation, c: secret.confirmed,
      p: previous && toBase64Url(previous.secret), pg: previous?.generation,
    });
  }

  /**
   * The next login counter, strictly larger than any returned before, across
   * restarts and power cuts.
   * @throws WcmError STORE_FAILED when the reservation cannot be persisted (no counter is used then)
   */
  nextLoginCounter(): number {
    if (this.nextCounter === undefined) this.reservedUpTo = this.nextCounter = this.loadReservation();
    const counter = this.nextCounter;
    if (counter >= MAX_LOGIN_COUNTER) fail("STORE_LIMIT", "login counter exhausted", "counter");
    if (counter >= this.reservedUpTo) {
      const end = Math.min(counter + COUNTER_BLOCK, MAX_LOGIN_COUNTER);
      this.saveReservation(end);
      this.reservedUpTo = end;
    }
    this.nextCounter = counter + 1;
    return counter;
  }

  /** Stores the end of a counter reservation: every counter below it may have been used. @throws WcmError STORE_FAILED */
  saveReservation(end: number): void {
    this.counter.save(this.deviceId, { n: end });
  }

  /** The stored reservation's end (1 when none): the first counter that is safe to use after a restart. */
  loadReservation(): number {
    return valid(this.counter.load(this.deviceId)?.n, [1, MAX_LOGIN_COUNTER], 1);
  }
}
