/*
 * Clock, randomness and timers for the Node host: real ones for the demo and
 * benchmarks, deterministic ones for tests (a seeded random source, a manual
 * clock whose timers run only when the test advances time).
 */
import { randomBytes } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import type { ClockPort, RandomPort, ScheduledTask, SchedulerPort } from "../../modules/ports";

/** Cryptographic randomness from node:crypto. */
export const systemRandom: RandomPort = { bytes: (length) => new Uint8Array(randomBytes(length)) };

/** performance.now() as the monotonic clock. */
export const systemClock: ClockPort = { now: () => performance.now() };

/** setTimeout-backed timers. */
export const systemScheduler: SchedulerPort = {
  after(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A reproducible random source: SHA-256 of (seed, counter). Not for production keys. */
export function seededRandom(seed: string): RandomPort {
  let counter = 0;
  let pool = new Uint8Array(0);
  return {
    bytes(length) {
      const out = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        if (pool.length === 0) pool = sha256(new TextEncoder().encode(`${seed}/${counter++}`));
        const take = Math.min(pool.length, length - filled);
        out.set(pool.subarray(0, take), filled);
        pool = pool.subarray(take);
        filled += take;
      }
      return out;
    },
  };
}

/** A clock and scheduler that move only when advance() is called. */
export class ManualTime implements ClockPort, SchedulerPort {
  #now = 0;
  #tasks: { at: number; seq: number; callback: () => void; cancelled: boolean }[] = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  after(delayMs: number, callback: () => void): ScheduledTask {
    const task = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, callback, cancelled: false };
    this.#tasks.push(task);
    return { cancel: () => { task.cancelled = true; } };
  }

  /** Runs every timer due within `ms`, in time order, moving the clock as it goes. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#tasks = this.#tasks.filter((task) => !task.cancelled);
      this.#tasks.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#tasks[0];
      if (!next || next.at > end) break;
      this.#tasks.shift();
      this.#now = next.at;
      next.callback();
    }
    this.#now = end;
  }

  /** Timers still waiting. */
  get pending(): number {
    return this.#tasks.filter((task) => !task.cancelled).length;
  }
}
