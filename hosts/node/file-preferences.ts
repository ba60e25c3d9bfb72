/*
 * A KeyValuePort that behaves like Moddable Preference on ESP32 (NVS), backed
 * by a JSON file so a "device" keeps its flash across restarts:
 * - keys at most 15 characters, values at most 4000 bytes (STORE_LIMIT otherwise);
 * - every set erases the key, then writes it (as Moddable's ESP32 Preference does);
 * - scriptable power cuts: cutPowerAtWrite(n) makes the n-th next set stop after
 *   the erase or after a torn (partial) write, and throw PowerCut; the file then
 *   holds exactly what a real flash would after the cut, and every later access
 *   throws PowerCut too (the CPU stopped) until restorePower() (the reboot).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { WcmError } from "../../modules/errors";
import type { KeyValuePort } from "../../modules/ports";
import { MAX_KEY_LENGTH, MAX_VALUE_BYTES } from "../../modules/record-store";

/** Thrown by a set() that a simulated power cut interrupted. */
export class PowerCut extends Error {
  constructor(readonly key: string, readonly mode: "erased" | "torn") {
    super(`power cut while writing ${key} (${mode})`);
    this.name = "PowerCut";
  }
}

/** How a cut write leaves the key: erased (absent) or torn (a prefix of the new value). */
export type CutMode = "erased" | "torn";

/** Moddable-Preference-like store in memory, optionally persisted to a file. */
export class SimulatedFlash implements KeyValuePort {
  readonly #file: string | undefined;
  #entries: Map<string, Uint8Array>;
  #cutAt = 0;
  #cutMode: CutMode = "erased";
  /** how many set() calls completed or were cut, since creation */
  writes = 0;
  #powerLost = false;

  /** @param file - a JSON file to persist to (omit for memory only) */
  constructor(file?: string) {
    this.#file = file;
    this.#entries = new Map();
    if (file && existsSync(file)) {
      const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
      for (const [key, value] of Object.entries(raw)) this.#entries.set(key, new Uint8Array(Buffer.from(value, "base64")));
    }
  }

  /** Makes the `n`-th set() from now (1 = the next) be cut by a power failure. 0 disarms. */
  cutPowerAtWrite(n: number, mode: CutMode = "erased"): void {
    this.#cutAt = n;
    this.#cutMode = mode;
  }

  /** True from a simulated power cut until restorePower(). */
  get powerLost(): boolean {
    return this.#powerLost;
  }

  /** Ends a simulated outage: the device reboots with what the flash holds. */
  restorePower(): void {
    this.#powerLost = false;
  }

  get(key: string): Uint8Array | undefined {
    this.#checkPower(key);
    this.#checkKey(key);
    const value = this.#entries.get(key);
    return value ? value.slice() : undefined;
  }

  set(key: string, value: Uint8Array): void {
    this.#checkPower(key);
    this.#checkKey(key);
    if (value.length > MAX_VALUE_BYTES) throw new WcmError("STORE_LIMIT", `value larger than ${MAX_VALUE_BYTES} bytes`, key);
    this.writes++;
    this.#entries.delete(key); // erase first, as NVS-backed Preference does
    if (this.#cutAt > 0 && --this.#cutAt === 0) {
      if (this.#cutMode === "torn" && value.length > 1) this.#entries.set(key, value.slice(0, Math.floor(value.length / 2)));
      this.#persist();
      this.#powerLost = true;
      throw new PowerCut(key, this.#cutMode);
    }
    this.#entries.set(key, value.slice());
    this.#persist();
  }

  delete(key: string): void {
    this.#checkPower(key);
    this.#checkKey(key);
    this.#entries.delete(key);
    this.#persist();
  }

  /** The keys present (for tests and inspection). */
  keys(): string[] {
    return [...this.#entries.keys()];
  }

  #checkPower(key: string): void {
    if (this.#powerLost) throw new PowerCut(key, this.#cutMode);
  }

  #checkKey(key: string): void {
    if (key.length < 1 || key.length > MAX_KEY_LENGTH) {
      throw new WcmError("STORE_LIMIT", `key must be 1-${MAX_KEY_LENGTH} characters`, "key");
    }
  }

  #persist(): void {
    if (!this.#file) return;
    const out: Record<string, string> = {};
    for (const [key, value] of this.#entries) out[key] = Buffer.from(value).toString("base64");
    const temporary = `${this.#file}.tmp`;
    writeFileSync(temporary, JSON.stringify(out), { mode: 0o600 });
    renameSync(temporary, this.#file);
  }
}
