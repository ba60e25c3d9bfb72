/*
 * The fuzz loop for one harness: seeded mutation of its recorded seeds, every
 * input run once, and three kinds of finding:
 *   crash  the decoder threw something that is not its own typed error
 *          (or a property of what it accepted broke);
 *   slow   one input took longer than the per-input bound (confirmed by
 *          re-running it alone, so a GC pause or a busy machine is not a finding);
 *   heap   the heap after a full GC grew by more than the bound between the
 *          first and the last part of the run (state kept across inputs);
 *   seed   a recorded seed is refused by its own decoder (the corpus is stale).
 *   hang   (pool.ts) an input never returned: the watchdog of the worker thread
 *          this loop runs in ended it.
 * Findings keep the first inputs (hex), shrunk when cheap: halves, then bytes,
 * removed while the same kind of failure remains.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { mutate, Prng } from "./mutate";
import type { Corpus } from "./corpus";
import type { Harness } from "./harnesses";

/** One finding. */
export interface Finding {
  harness: string;
  kind: "crash" | "slow" | "hang" | "heap" | "seed";
  /** error name and message, or the time / growth */
  detail: string;
  /** the (minimised) input, hex */
  inputHex: string;
}

/** What a run of one harness gave. */
export interface HarnessReport {
  harness: string;
  target: string;
  seeds: number;
  inputs: number;
  /** inputs the decoder accepted (returned without throwing) */
  accepted: number;
  /** inputs refused with the decoder's typed error */
  refused: number;
  ms: number;
  slowestMs: number;
  heapGrowthBytes: number;
  findings: Finding[];
}

/** Limits of a run. */
export interface RunLimits {
  /** per-input time bound, ms */
  slowMs: number;
  /** allowed heap growth after GC between the first and the last tenth of the run, bytes */
  heapBytes: number;
  /** findings kept per harness */
  maxFindings: number;
}

export const DEFAULT_LIMITS: RunLimits = { slowMs: 250, heapBytes: 4 * 1024 * 1024, maxFindings: 8 };

let gcFunction: (() => void) | undefined;

/** A full GC (exposed at run time, so no command-line flag is needed). */
export function fullGc(): void {
  if (!gcFunction) {
    setFlagsFromString("--expose-gc");
    gcFunction = runInNewContext("gc") as () => void;
  }
  gcFunction();
  gcFunction();
}

function heapAfterGc(): number {
  fullGc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

type Outcome = { kind: "ok" } | { kind: "refused" } | { kind: "crash"; detail: string };

async function classify(harness: Harness, run: (input: Uint8Array) => void | Promise<void>, input: Uint8Array): Promise<Outcome> {
  try {
    await run(input);
    return { kind: "ok" };
  } catch (error) {
    if (harness.expected(error)) return { kind: "refused" };
    const e = error as Error;
    return { kind: "crash", detail: `${e?.name ?? typeof error}: ${String(e?.message ?? error).slice(0, 300)}` };
  }
}

async function timeOf(run: (input: Uint8Array) => void | Promise<void>, input: Uint8Array): Promise<number> {
  const start = performance.now();
  try {
    await run(input);
  } catch {
    // timed only
  }
  return performance.now() - start;
}

/** Shrinks `input` while `fails` holds (bounded work: at most ~2000 tries). */
export async function minimise(input: Uint8Array, fails: (candidate: Uint8Array) => Promise<boolean>): Promise<Uint8Array> {
  let best = input;
  let tries = 0;
  for (let chunk = best.length >> 1; chunk >= 1 && tries < 2000; chunk >>= 1) {
    for (let at = 0; at + chunk <= best.length && tries < 2000;) {
      const candidate = new Uint8Array(best.length - chunk);
      candidate.set(best.subarray(0, at));
      candidate.set(best.subarray(at + chunk), at);
      tries++;
      if (await fails(candidate)) best = candidate;
      else at += chunk;
    }
  }
  return best;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/**
 * Runs `count` mutated inputs through `harness`.
 * @param onInput - called with each input before it runs (the worker keeps it for the watchdog)
 */
export async function runHarness(harness: Harness, corpus: Corpus, requested: number, seed: number, limits: RunLimits = DEFAULT_LIMITS, onInput?: (input: Uint8Array, index: number) => void): Promise<HarnessReport> {
  const seeds = harness.seeds(corpus);
  if (seeds.length === 0) throw new Error(`harness ${harness.name}: the corpus has no seeds for it`);
  const count = Math.max(1, Math.round(requested * (harness.weight ?? 1)));
  const { run, close } = harness.setup(corpus);
  const rng = new Prng(seed ^ hashName(harness.name));
  const findings: Finding[] = [];
  const crashes = new Set<string>();
  let accepted = 0;
  let refused = 0;
  let slowest = 0;
  const warmup = Math.min(2000, Math.floor(count / 10));
  let heapStart = 0;
  const started = performance.now();
  try {
    // the seeds themselves must be accepted: a corpus the decoder refuses tests nothing
    for (const s of seeds) {
      const outcome = await classify(harness, run, s);
      if (outcome.kind === "crash") findings.push({ harness: harness.name, kind: "crash", detail: `seed: ${outcome.detail}`, inputHex: hex(s) });
      if (outcome.kind === "refused") findings.push({ harness: harness.name, kind: "seed", detail: "a recorded seed is refused (record the corpus again: npm run fuzz -- --record)", inputHex: hex(s) });
    }
    for (let i = 0; i < count; i++) {
      if (i === warmup) heapStart = heapAfterGc();
      const input = mutate(seeds, rng);
      onInput?.(input, i);
      const t0 = performance.now();
      const outcome = await classify(harness, run, input);
      const ms = performance.now() - t0;
      if (ms > slowest) slowest = ms;
      if (outcome.kind === "ok") accepted++;
      else if (outcome.kind === "refused") refused++;
      else if (findings.length < limits.maxFindings && !crashes.has(outcome.detail)) {
        crashes.add(outcome.detail);
        const same = async (candidate: Uint8Array) => {
          const again = await classify(harness, run, candidate);
          return again.kind === "crash" && again.detail.split(":")[0] === outcome.detail.split(":")[0];
        };
        findings.push({ harness: harness.name, kind: "crash", detail: outcome.detail, inputHex: hex(await minimise(input, same)) });
      }
      if (ms > limits.slowMs && findings.length < limits.maxFindings) {
        const again = Math.min(await timeOf(run, input), await timeOf(run, input), await timeOf(run, input));
        if (again > limits.slowMs) findings.push({ harness: harness.name, kind: "slow", detail: `${again.toFixed(0)} ms for one input of ${input.length} bytes`, inputHex: hex(input) });
      }
    }
    const heapGrowth = count > warmup ? heapAfterGc() - heapStart : 0;
    if (heapGrowth > limits.heapBytes) {
      findings.push({ harness: harness.name, kind: "heap", detail: `heap grew ${(heapGrowth / 1048576).toFixed(1)} MiB after GC over ${count - warmup} inputs`, inputHex: "" });
    }
    return {
      harness: harness.name, target: harness.target, seeds: seeds.length, inputs: count, accepted, refused,
      ms: performance.now() - started, slowestMs: slowest, heapGrowthBytes: heapGrowth, findings,
    };
  } finally {
    await close?.();
  }
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}
