/*
 * Runs harnesses in a worker thread under a watchdog (a decoder stuck in a
 * loop cannot be interrupted on its own thread): when no input completes for
 * `hangMs`, the worker is terminated, the input it was on becomes a "hang"
 * finding, and the remaining harnesses go on in a fresh worker.
 */
import { Worker } from "node:worker_threads";
import { DEFAULT_LIMITS, type HarnessReport, type RunLimits } from "./engine";
import type { WorkerJob } from "./worker";

/** Options of a pooled run. */
export interface PoolOptions {
  harnesses: string[];
  count: number;
  seed: number;
  corpusFile?: string;
  limits?: RunLimits;
  /** ms without a finished input after which the current one counts as hung (default 5000) */
  hangMs?: number;
  /** called as each harness finishes */
  onReport?: (report: HarnessReport) => void;
}

const WORKER_FILE = new URL("./worker.ts", import.meta.url).href;
const MAX_INPUT = 70_000;

function startWorker(job: WorkerJob): Worker {
  // tsx's loader does not reach worker threads by itself: register it first
  const boot = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(WORKER_FILE)}); })`;
  return new Worker(boot, { eval: true, workerData: job });
}

/** Runs every harness; resolves with one report per harness (a hung harness reports a "hang" finding). */
export async function runPooled(options: PoolOptions): Promise<HarnessReport[]> {
  const reports: HarnessReport[] = [];
  let remaining = [...options.harnesses];
  const hangMs = options.hangMs ?? 5000;
  while (remaining.length > 0) {
    const shared = new SharedArrayBuffer(16 + MAX_INPUT);
    const counters = new Int32Array(shared, 0, 4);
    const job: WorkerJob = { harnesses: remaining, count: options.count, seed: options.seed, corpusFile: options.corpusFile, limits: options.limits ?? DEFAULT_LIMITS, shared };
    const worker = startWorker(job);
    const outcome = await new Promise<{ hung?: number; error?: Error }>((resolve) => {
      let last = -1;
      let lastChange = Date.now();
      const timer = setInterval(() => {
        const seen = Atomics.load(counters, 0);
        if (Atomics.load(counters, 3) === 0) {
          lastChange = Date.now(); // still loading (tsx compiles the harnesses: seconds on a busy machine)
        } else if (seen !== last) {
          last = seen;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > hangMs) {
          clearInterval(timer);
          resolve({ hung: Atomics.load(counters, 1) });
        }
      }, 100);
      worker.on("message", (message: { type: string; report?: HarnessReport }) => {
        if (message.type === "report") {
          reports.push(message.report!);
          options.onReport?.(message.report!);
          lastChange = Date.now();
        } else if (message.type === "done") {
          clearInterval(timer);
          resolve({});
        }
      });
      worker.on("error", (error) => {
        clearInterval(timer);
        resolve({ error });
      });
    });
    await worker.terminate();
    if (outcome.error) throw outcome.error;
    if (outcome.hung === undefined) break;
    const name = remaining[outcome.hung];
    const length = Atomics.load(counters, 2);
    const input = Buffer.from(new Uint8Array(shared, 16, length)).toString("hex");
    const report: HarnessReport = {
      harness: name, target: name, seeds: 0, inputs: 0, accepted: 0, refused: 0, ms: 0, slowestMs: hangMs, heapGrowthBytes: 0,
      findings: [{ harness: name, kind: "hang", detail: `no input finished for ${hangMs} ms`, inputHex: input }],
    };
    reports.push(report);
    options.onReport?.(report);
    remaining = remaining.slice(outcome.hung + 1);
  }
  return reports;
}
