/*
 * A crash-safe record over a KeyValuePort: two slots, a generation counter and a
 * checksum, so a power cut during any write never loses the last good value.
 *
 * Slot layout (all integers big-endian):
 *   "WR" magic (2) | format 1 (1) | generation u32 (4) | length u16 (2) | payload | SHA-256(previous bytes)[0..8)
 * write() puts the new generation in the slot that does NOT hold the newest valid
 * record, so the newest one is never erased or overwritten; read() takes the valid
 * slot with the highest generation. Keys are `<name>.0` and `<name>.1`, so `name`
 * is at most 13 characters (ESP32 NVS keys are at most 15).
 */
import { concatBytes } from "./bytes";
import { WcmError } from "./errors";
import type { DigestPort, KeyValuePort } from "./ports";

/** Largest value Moddable Preference stores on ESP32. */
export const MAX_VALUE_BYTES = 4000;
/** Longest key Moddable Preference accepts on ESP32. */
export const MAX_KEY_LENGTH = 15;
const HEADER = 9;
const CHECKSUM = 8;
/** Largest payload a record can hold. */
export const MAX_RECORD_PAYLOAD = MAX_VALUE_BYTES - HEADER - CHECKSUM;

/** What read() found. */
export interface RecordValue {
  payload: Uint8Array;
  generation: number;
}

/** A named two-slot record. */
export class RecordStore {
  readonly #kv: KeyValuePort;
  readonly #digest: DigestPort;
  readonly #keys: [string, string];

  /**
   * @param kv - the key-value port (Preference on Moddable)
   * @param digest - SHA-256 for the checksum
   * @param name - 1-13 characters of [a-z0-9_]
   */
  constructor(kv: KeyValuePort, digest: DigestPort, name: string) {
    if (!/^[a-z0-9_]{1,13}$/.test(name)) throw new WcmError("STORE_LIMIT", "record name must be 1-13 of [a-z0-9_]", "name");
    this.#kv = kv;
    this.#digest = digest;
    this.#keys = [`${name}.0`, `${name}.1`];
  }

  /** The newest valid record, or undefined when neither slot holds one. */
  read(): RecordValue | undefined {
    const [a, b] = [this.#readSlot(0), this.#readSlot(1)];
    if (a && b) return a.generation >= b.generation ? a : b;
    return a ?? b;
  }

  /**
   * Stores `payload` as the next generation. On return the new record is the one
   * read() gives; if the write is cut, read() still gives the previous record.
   * @throws WcmError STORE_LIMIT when the payload is too large, STORE_FAILED when the port fails
   */
  write(payload: Uint8Array): RecordValue {
    if (payload.length > MAX_RECORD_PAYLOAD) {
      throw new WcmError("STORE_LIMIT", `payload larger than ${MAX_RECORD_PAYLOAD} bytes`, "payload");
    }
    const slots = [this.#readSlot(0), this.#readSlot(1)];
    let newest = -1;
    if (slots[0] && (!slots[1] || slots[0].generation >= slots[1].generation)) newest = 0;
    else if (slots[1]) newest = 1;
    const generation = newest < 0 ? 1 : (slots[newest] as RecordValue).generation + 1;
    if (generation > 0xffffffff) throw new WcmError("STORE_LIMIT", "generation exhausted", "generation");
    const target = newest === 0 ? 1 : 0;
    const header = new Uint8Array(HEADER);
    header[0] = 0x57; // W
    header[1] = 0x52; // R
    header[2] = 1;
    new DataView(header.buffer).setUint32(3, generation);
    new DataView(header.buffer).setUint16(7, payload.length);
    const body = concatBytes(header, payload);
    const value = concatBytes(body, this.#digest.sha256(body).subarray(0, CHECKSUM));
    try {
      this.#kv.set(this.#keys[target], value);
    } catch (error) {
      throw new WcmError("STORE_FAILED", `write failed (${describe(error)})`, this.#keys[target]);
    }
    return { payload, generation };
  }

  /** Removes both slots (factory reset). */
  clear(): void {
    try {
      this.#kv.delete(this.#keys[0]);
      this.#kv.delete(this.#keys[1]);
    } catch (error) {
      throw new WcmError("STORE_FAILED", `delete failed (${describe(error)})`, this.#keys[0]);
    }
  }

  #readSlot(index: 0 | 1): RecordValue | undefined {
    let value: Uint8Array | undefined;
    try {
      value = this.#kv.get(this.#keys[index]);
    } catch {
      return undefined;
    }
    if (!value || value.length < HEADER + CHECKSUM || value.length > MAX_VALUE_BYTES) return undefined;
    if (value[0] !== 0x57 || value[1] !== 0x52 || value[2] !== 1) return undefined;
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    const generation = view.getUint32(3);
    const length = view.getUint16(7);
    if (HEADER + length + CHECKSUM !== value.length || generation === 0) return undefined;
    const body = value.subarray(0, HEADER + length);
    const expected = this.#digest.sha256(body).subarray(0, CHECKSUM);
    const actual = value.subarray(HEADER + length);
    for (let i = 0; i < CHECKSUM; i++) if (expected[i] !== actual[i]) return undefined;
    return { payload: value.slice(HEADER, HEADER + length), generation };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message.slice(0, 80) : "unknown";
}
