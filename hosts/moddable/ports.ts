/*
 * The core's small ports on the Moddable SDK (lin simulator and ESP32 alike):
 * - DigestPort: native crypt Digest("SHA256"); HMAC built on it per RFC 2104
 *   (etc/hmac.js is not used: its sign() is broken);
 * - RandomPort: SHA-256 over a seed from crypt rng (esp_random on ESP32), the
 *   wall clock and ticks, and a counter;
 * - ClockPort: Time.ticks made monotonic; SchedulerPort: Timer.set;
 * - KeyValuePort: Preference in domain "wcm" (NVS on ESP32: 15-character keys,
 *   4000-byte values; the core's record store survives its erase-then-write).
 */
import { Digest } from "crypt";
import Preference from "preference";
import RNG from "rng";
import Time from "time";
import Timer from "timer";
import type { ClockPort, DigestPort, KeyValuePort, RandomPort, SchedulerPort } from "wcm/ports";

/** SHA-256 of the parts, one after another (the native digest reads ArrayBuffers, DataViews and byte arrays; a Float64Array throws "invalid buffer"). */
function sha256(...parts: (ArrayBuffer | ArrayBufferView)[]): Uint8Array {
  const digest = new Digest("SHA256");
  for (let i = 0; i < parts.length; i++) digest.write(parts[i] as ArrayBuffer);
  return new Uint8Array(digest.close());
}

/** SHA-256 and HMAC-SHA256 on the native digest. */
export const nativeDigest: DigestPort = {
  sha256,
  hmacSha256(key, data) {
    const block = new Uint8Array(64);
    block.set(key.length > 64 ? sha256(key) : key);
    const pad = (x: number) => block.map((b) => b ^ x);
    return sha256(pad(0x5c), sha256(pad(0x36), data));
  },
};

/** Randomness for request ids and retry jitter (the device never makes keys): SHA-256 of a boot seed, a counter and fresh rng bytes per 32 bytes. */
export function moddableRandom(): RandomPort {
  let counter = 0;
  const seed = sha256(RNG.get(32), new Uint8Array(new Float64Array([Date.now(), Time.ticks, Math.random()]).buffer));
  return {
    bytes(length) {
      const out = new Uint8Array(length);
      for (let filled = 0; filled < length; filled += 32) out.set(sha256(seed, new Uint8Array(new Float64Array([counter++]).buffer), RNG.get(8)).subarray(0, length - filled), filled);
      return out;
    },
  };
}

/** Time.ticks, never decreasing (ticks wrap on some ports). */
export function moddableClock(): ClockPort {
  let last = Time.ticks;
  let total = 0;
  return {
    now() {
      const ticks = Time.ticks;
      total += Math.max(0, Time.delta(last, ticks));
      last = ticks;
      return total;
    },
  };
}

/**
 * One-shot timers. Clearing a timer that already fired, or twice, does nothing
 * (modules/base/timer/modTimer.c forgets a one-shot timer once it has run).
 */
export const moddableScheduler: SchedulerPort = {
  after(delayMs, callback) {
    const timer = Timer.set(callback, Math.max(0, delayMs));
    return { cancel: () => Timer.clear(timer) };
  },
};

/** Preference-backed key-value store in one domain (at most 15 characters). */
export function preferenceStore(domain = "wcm"): KeyValuePort {
  return {
    get(key) {
      const value = Preference.get(domain, key);
      return value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
    },
    set: (key, value) => Preference.set(domain, key, value.slice().buffer as ArrayBuffer),
    delete: (key) => Preference.delete(domain, key),
  };
}
