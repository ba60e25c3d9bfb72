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
import { constantTimeEqual, jsonBytes, utf8Decode } from "./bytes";
import { fail } from "./check";
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

/** The newer of two slots' records (the first when both have the same generation). */
const newer = (a?: RecordValue, b?: RecordValue) => a && (!b || a.generation >= b.generation) ? a : b;

/** A named two-slot record. */
export class RecordStore {
  // TypeScript-private, not #private: the same on XS for ~40 B less each
  declare private readonly kv: KeyValuePort;
  declare private readonly digest: DigestPort;
  declare private readonly name: string;

  /**
   * @param kv - the key-value port (Preference on Moddable)
   * @param digest - SHA-256 for the checksum
   * @param name - 1-13 characters of [a-z0-9_]
   */
  constructor(kv: KeyValuePort, digest: DigestPort, name: string) {
    if (!/^[a-z0-9_]{1,13}$/.test(name)) fail("STORE_LIMIT", "record name must be 1-13 of [a-z0-9_]", "name");
    this.kv = kv;
    this.digest = digest;
    this.name = name;
  }

  /** The newest valid record, or undefined when neither slot holds one. */
  read(): RecordValue | undefined {
    return newer(this.slot(0), this.slot(1));
  }

  /**
   * Stores `payload` as the next generation. On return the new record is the one
   * read() gives; if the write is cut, read() still gives the previous record.
   * @throws WcmError STORE_LIMIT when the payload is too large, STORE_FAILED when the port fails
   */
  write(payload: Uint8Array): RecordValue {
    if (payload.length > MAX_RECORD_PAYLOAD) fail("STORE_LIMIT", "payload larger than " + MAX_RECORD_PAYLOAD + " bytes", "payload");
    const a = this.slot(0);
    const newest = newer(a, this.slot(1));
    const generation = (newest ? newest.generation : 0) + 1;
    if (generation > 0xffffffff) fail("STORE_LIMIT", "generation exhausted", "generation");
    // the slot that does not hold the newest record
    const key = this.name + "." + (a && newest === a ? 1 : 0);
    this.port(key, this.frame(generation, payload));
    return { payload, generation };
  }

  /** The newest record's JSON object when its `id` is `id` (a record of another device, or not JSON, gives undefined). */
  load(id: string): Record<string, any> | undefined {
    const record = this.read();
    if (record) {
      try {
        const value = JSON.parse(utf8Decode(record.payload));
        if (value.id === id) return value;
      } catch {
        // not JSON (or null): no record
      }
    }
    return undefined;
  }

  /** Stores `{ id, ...fields }` as JSON (write()'s guarantees and errors). */
  save(id: string, fields: object): void {
    this.write(jsonBytes({ id, ...fields }));
  }

  /** Removes both slots (factory reset). */
  clear(): void {
    this.port(this.name + ".0");
    this.port(this.name + ".1");
  }

  /** Writes `value` to `key` (deletes `key` without one); throws STORE_FAILED naming the key, with the port's message (at most 80 characters). */
  private port(key: string, value?: Uint8Array): void {
    try {
      value ? this.kv.set(key, value) : this.kv.delete(key);
    } catch (error) {
      fail("STORE_FAILED", (value ? "write" : "delete") + " failed (" + (error instanceof Error ? error.message.slice(0, 80) : "unknown") + ")", key);
    }
  }

  private slot(index: number): RecordValue | undefined {
    let value: Uint8Array | undefined;
    try {
      value = this.kv.get(this.name + "." + index);
    } catch {
      return undefined;
    }
    if (!value || value.length > MAX_VALUE_BYTES) return undefined;
    // valid when it is exactly what write() makes of its generation and payload (magic, format, length, checksum)
    const payload = value.slice(HEADER, value.length - CHECKSUM);
    const generation = value[3] * 2 ** 24 + (value[4] << 16 | value[5] << 8 | value[6]);
    return generation && constantTimeEqual(this.frame(generation, payload), value) ? { payload, generation } : undefined;
  }

  /** The slot bytes of `payload` at `generation`: header, payload, checksum. */
  private frame(generation: number, payload: Uint8Array): Uint8Array {
    const length = payload.length;
    const value = new Uint8Array(HEADER + length + CHECKSUM);
    // "WR", format 1, generation u32, length u16 (set() keeps the low 8 bits of each)
    value.set(Uint8Array.of(0x57, 0x52, 1, generation / 2 ** 24, generation >> 16, generation >> 8, generation, length >> 8, length));
    value.set(payload, HEADER);
    value.set(this.digest.sha256(value.subarray(0, HEADER + length)).subarray(0, CHECKSUM), HEADER + length);
    return value;
  }
}
