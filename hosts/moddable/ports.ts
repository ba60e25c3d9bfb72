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

const BLOCK = 64;

function sha256(...parts: Uint8Array[]): Uint8Array {
  const digest = new Digest("SHA256");
  for (const part of parts) digest.write(part as unknown as ArrayBuffer);
  return new Uint8Array(digest.close());
}

/** SHA-256 and HMAC-SHA256 on the native digest. */
export const nativeDigest: DigestPort = {
  sha256: (data) => sha256(data),
  hmacSha256(key, data) {
    const block = new Uint8Array(BLOCK);
    block.set(key.length > BLOCK ? sha256(key) : key);
    const inner = new Uint8Array(BLOCK);
    const outer = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) {
      inner[i] = block[i] ^ 0x36;
      outer[i] = block[i] ^ 0x5c;
    }
    return sha256(outer, sha256(inner, data));
  },
};

/** Randomness for request ids and retry jitter (the device never makes keys). */
export function moddableRandom(): RandomPort {
  let counter = 0;
  const now = new Float64Array([Date.now(), Time.ticks, Math.random()]);
  const seed = sha256(new Uint8Array(RNG.get(32)), new Uint8Array(now.buffer));
  return {
    bytes(length) {
      const out = new Uint8Array(length);
      for (let filled = 0; filled < length; filled += 32) {
        const block = sha256(seed, Uint8Array.of(counter >>> 24, counter >>> 16, counter >>> 8, counter), new Uint8Array(RNG.get(8)));
        counter++;
        out.set(block.subarray(0, Math.min(32, length - filled)), filled);
      }
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
      const step = Time.delta(last, ticks);
      last = ticks;
      if (step > 0) total += step;
      return total;
    },
  };
}

/** One-shot timers. */
export const moddableScheduler: SchedulerPort = {
  after(delayMs, callback) {
    let timer: Timer | undefined = Timer.set(() => {
      timer = undefined;
      callback();
    }, Math.max(0, delayMs));
    return {
      cancel() {
        if (timer) Timer.clear(timer);
        timer = undefined;
      },
    };
  },
};

/** Preference-backed key-value store in one domain (at most 15 characters). */
export function preferenceStore(domain = "wcm"): KeyValuePort {
  return {
    get(key) {
      const value = Preference.get(domain, key);
      return value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
    },
    set(key, value) {
      Preference.set(domain, key, value.slice().buffer as ArrayBuffer);
    },
    delete(key) {
      Preference.delete(domain, key);
    },
  };
}
