/*
 * Admin bulk work off the event loop that serves devices (issue 9 item 6): a
 * bundle or CSV import runs in a worker thread (node:worker_threads) with its own
 * registry connection (its own SQLite connection to the same WAL file, or its
 * own PostgreSQL pool).
 *
 * - The worker parses and checks the bundle, seals the secrets and writes the
 *   rows in short transactions (cloud/bundle.ts importBundle, cloud/csv-import.ts); the main thread
 *   only hands it the bytes and waits. Its nice value is raised (Linux: per
 *   thread) so, when the cores are busy, the device listeners' thread comes first.
 * - The master key reaches the worker in the start message (memory, never
 *   argv, the environment or a file); each side zeroes its copy when done.
 * - Errors come back as the same CloudError (code, message, field, line) the
 *   in-process call throws; anything else as INTERNAL without its text.
 * - One job at a time per AdminWorker; a second waits for the first.
 *
 * The same file is the worker's entry: `new Worker(<this module's URL>)`. Under
 * tsx (development, tests) the worker first registers tsx's loader; in the
 * esbuild bundle (dist/wcm.mjs) this module's URL is the bundle itself.
 */
import { isMainThread, parentPort, threadId, Worker, workerData } from "node:worker_threads";
import { createRequire } from "node:module";
import { setPriority } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { CLOUD_ERROR_CODES, CloudError, type CloudErrorCode } from "./errors";
import { importBundle, type BundleImportResult } from "./bundle";
import { importCsv, type CsvImportResult } from "./csv-import";
import { Registry, type RegistryLocation } from "./registry";

/** How much lower the worker thread's priority is than the cloud's (nice increment). */
export const ADMIN_WORKER_NICE = 10;

/** A job: a bundle (its checksum) or a CSV (its CA and lot); the bytes follow as chunks. */
type Job = { job: "import-bundle"; checksum: string } | { job: "import-csv"; caName?: string; lot?: string };

/** What the worker is started with (workerData). */
type JobData = Job & {
  wcmAdminWorker: 1;
  location: RegistryLocation;
  actor: string;
  nice: number;
};

/** Worker to main. */
type WorkerReply =
  | { kind: "ready" }
  | { kind: "result"; result: BundleImportResult | CsvImportResult; threadId: number }
  | { kind: "error"; error: { code: string; message: string; field?: string; line?: number } };

/** Main to worker. */
type MainMessage = { kind: "key"; key: Uint8Array } | { kind: "chunk"; bytes: Uint8Array } | { kind: "end" };

/** A bundle import's result, and the worker thread that ran it. */
export type WorkerImportResult = BundleImportResult & { threadId: number };

/** Options of AdminWorker. */
export interface AdminWorkerOptions {
  /** the registry the cloud serves (the worker opens its own connection to it) */
  location: RegistryLocation;
  /** the master key (copied; zeroed by close()) */
  masterKey: Uint8Array;
  /** nice increment of the worker thread (default ADMIN_WORKER_NICE; 0 = none) */
  nice?: number;
}

/** How the worker's module is loaded: this file (under tsx: through tsx's loader) or the bundle it is part of. */
function workerEntry(): { entry: string | URL; eval: boolean } {
  const self = import.meta.url;
  if (!self.endsWith(".ts")) return { entry: new URL(self), eval: false };
  // the ESM build of tsx's API (its "import" export; the CommonJS one cannot register from a worker)
  const tsx = pathToFileURL(join(dirname(createRequire(self).resolve("tsx/package.json")), "dist/esm/api/index.mjs")).href;
  return { entry: `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(self)}); })`, eval: true };
}

/** Runs admin bulk jobs in worker threads, one at a time. */
export class AdminWorker {
  readonly #location: RegistryLocation;
  readonly #key: Buffer;
  readonly #nice: number;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #running = new Set<Worker>();
  #closed = false;

  constructor(options: AdminWorkerOptions) {
    this.#location = options.location.database !== undefined ? { database: options.location.database } : { dataDir: options.location.dataDir };
    this.#key = Buffer.from(options.masterKey);
    this.#nice = options.nice ?? ADMIN_WORKER_NICE;
  }

  /**
   * Imports a bundle (cloud/bundle.ts importBundle) in a worker thread.
   * @param bundle - the bundle bytes, whole or as the chunks a request body arrived in (copied)
   * @throws the CloudError of importBundle; INTERNAL when the worker failed otherwise
   */
  importBundle(actor: string, bundle: Uint8Array | readonly Uint8Array[], checksum: string): Promise<WorkerImportResult> {
    if (this.#closed) return Promise.reject(new CloudError("INTERNAL", "the admin worker is closed"));
    const chunks = bundle instanceof Uint8Array ? [bundle] : bundle;
    return this.#enqueue<WorkerImportResult>({ job: "import-bundle", checksum }, actor, chunks);
  }

  /**
   * Imports a registration CSV (cloud/csv-import.ts importCsv) in a worker thread.
   * @throws the CloudError of importCsv; INTERNAL when the worker failed otherwise
   */
  importCsv(actor: string, csv: string, caName: string | undefined, lot: string | undefined): Promise<CsvImportResult> {
    if (this.#closed) return Promise.reject(new CloudError("INTERNAL", "the admin worker is closed"));
    return this.#enqueue<CsvImportResult & { threadId: number }>({ job: "import-csv", ...(caName !== undefined ? { caName } : {}), ...(lot !== undefined ? { lot } : {}) }, actor, [Buffer.from(csv, "utf8")])
      .then(({ threadId: _thread, ...counts }) => counts);
  }

  #enqueue<T>(job: Job, actor: string, chunks: readonly Uint8Array[]): Promise<T> {
    const run = this.#queue.then(() => this.#run<T>(job, actor, chunks));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #run<T>(job: Job, actor: string, chunks: readonly Uint8Array[]): Promise<T> {
    if (this.#closed) return Promise.reject(new CloudError("INTERNAL", "the admin worker is closed"));
    const data: JobData = { ...job, wcmAdminWorker: 1, location: this.#location, actor, nice: this.#nice };
    const { entry, eval: isEval } = workerEntry();
    const worker = new Worker(entry, { eval: isEval, workerData: data });
    this.#running.add(worker);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | undefined, result?: T) => {
        if (settled) return;
        settled = true;
        this.#running.delete(worker);
        void worker.terminate();
        if (error) reject(error);
        else resolve(result!);
      };
      worker.on("message", (reply: WorkerReply) => {
        if (reply.kind === "ready") {
          const key = new Uint8Array(this.#key);
          worker.postMessage({ kind: "key", key } satisfies MainMessage, [key.buffer]);
          void (async () => {
            let sinceYield = 0;
            for (const chunk of chunks) {
              if (settled) return;
              // a copy of its own, moved (not cloned) to the worker: a request chunk may share its memory with others
              const bytes = new Uint8Array(chunk);
              worker.postMessage({ kind: "chunk", bytes } satisfies MainMessage, [bytes.buffer]);
              // copying 100 MiB at once would hold this loop for tens of ms: let the device traffic in every 4 MiB
              if ((sinceYield += bytes.byteLength) >= 4 << 20) {
                sinceYield = 0;
                await new Promise((resolve) => setImmediate(resolve));
              }
            }
            if (!settled) worker.postMessage({ kind: "end" } satisfies MainMessage);
          })();
        } else if (reply.kind === "result") {
          settle(undefined, { ...reply.result, threadId: reply.threadId } as T);
        } else {
          const code = reply.error.code in CLOUD_ERROR_CODES ? (reply.error.code as CloudErrorCode) : "INTERNAL";
          settle(new CloudError(code, reply.error.message, {
            ...(reply.error.field !== undefined ? { field: reply.error.field } : {}), ...(reply.error.line !== undefined ? { line: reply.error.line } : {}),
          }));
        }
      });
      worker.on("error", () => settle(new CloudError("INTERNAL", "the admin worker failed")));
      worker.on("exit", (code) => settle(new CloudError("INTERNAL", `the admin worker stopped (exit ${code}) before it answered`)));
    });
  }

  /** Stops a running job (its import stays resumable: cloud/bundle.ts) and zeroes the key. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#key.fill(0);
    await Promise.all([...this.#running].map((worker) => worker.terminate()));
  }
}

// ------------------------------------------------------------------ the worker side

/** The message a CloudError was made with (its text without the `CODE: line N: field: ` prefix). */
function bareMessage(error: CloudError): string {
  const prefix = `${error.code}: ${error.line !== undefined ? `line ${error.line}: ` : ""}${error.field ? `${error.field}: ` : ""}`;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}

async function workerMain(port: NonNullable<typeof parentPort>, data: JobData): Promise<void> {
  if (data.nice > 0) {
    try {
      // on Linux the nice value is per thread: this lowers this worker only
      setPriority(0, Math.min(19, data.nice));
    } catch {
      // not permitted here: run at the cloud's priority
    }
  }
  let key: Uint8Array | undefined;
  const chunks: Buffer[] = [];
  const ended = new Promise<void>((resolve) => {
    port.on("message", (message: MainMessage) => {
      if (message.kind === "key") key = message.key;
      else if (message.kind === "chunk") chunks.push(Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength));
      else resolve();
    });
  });
  port.postMessage({ kind: "ready" } satisfies WorkerReply);
  await ended;
  try {
    if (!key) throw new CloudError("INTERNAL", "no master key reached the admin worker");
    let registry: Registry;
    try {
      registry = await Registry.at(data.location, key);
    } finally {
      key.fill(0);
    }
    try {
      const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      chunks.length = 0;
      const result = data.job === "import-bundle"
        ? await importBundle(registry, data.actor, bytes, data.checksum)
        : await importCsv(registry, data.actor, bytes.toString("utf8"), data.caName, data.lot);
      port.postMessage({ kind: "result", result, threadId } satisfies WorkerReply);
    } finally {
      await registry.close();
    }
  } catch (error) {
    const known = error instanceof CloudError;
    port.postMessage({
      kind: "error",
      error: known
        ? { code: error.code, message: bareMessage(error), ...(error.field !== undefined ? { field: error.field } : {}), ...(error.line !== undefined ? { line: error.line } : {}) }
        : { code: "INTERNAL", message: "the admin worker failed" },
    } satisfies WorkerReply);
  }
}

if (!isMainThread && parentPort && (workerData as Partial<JobData> | undefined)?.wcmAdminWorker === 1) {
  void workerMain(parentPort, workerData as JobData);
}
