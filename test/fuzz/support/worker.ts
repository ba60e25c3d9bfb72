/*
 * Worker-thread side of a fuzz run (started by pool.ts): runs the harnesses it
 * is given, one after another, and before each input copies it into shared
 * memory and bumps a counter, so the parent's watchdog can see progress and,
 * when one input never returns, which input hung.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadCorpus } from "./corpus";
import { runHarness, type RunLimits } from "./engine";
import { harness } from "./harnesses";

/** What the parent passes. */
export interface WorkerJob {
  harnesses: string[];
  count: number;
  seed: number;
  corpusFile?: string;
  limits: RunLimits;
  /** [0] progress (inputs run), [1] index of the harness running, [2] length of the current input, [3] 1 once loaded; bytes from offset 16 */
  shared: SharedArrayBuffer;
}

const job = workerData as WorkerJob;
const counters = new Int32Array(job.shared, 0, 4);
const bytes = new Uint8Array(job.shared, 16);
const corpus = loadCorpus(job.corpusFile);
Atomics.store(counters, 3, 1); // loaded: the watchdog starts now
for (let h = 0; h < job.harnesses.length; h++) {
  Atomics.store(counters, 1, h);
  Atomics.store(counters, 2, 0);
  Atomics.add(counters, 0, 1); // progress: a harness starts (its setup counts towards the bound)
  const report = await runHarness(harness(job.harnesses[h]), corpus, job.count, job.seed, job.limits, (input) => {
    const n = Math.min(input.length, bytes.length);
    bytes.set(input.subarray(0, n));
    Atomics.store(counters, 2, n);
    Atomics.add(counters, 0, 1);
  });
  parentPort!.postMessage({ type: "report", report });
}
parentPort!.postMessage({ type: "done" });
