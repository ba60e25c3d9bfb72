/*
 * `serve --workers N`: the cloud on every core of one machine (node:cluster).
 * The default stays one process (N = 1): `serve`'s drain on SIGTERM and its
 * per-listener start-up lines are a single process's; N = coreCount() uses
 * every core.
 *
 * - The primary process holds no registry and no key: it forks the workers,
 *   hands each its role, relays notices between them and prints the lead's
 *   start-up summary once every worker listens.
 * - Every worker runs startCloud on the same data folder (SQLite in WAL mode
 *   with a 5 s busy timeout: readers run in parallel, writers take turns)
 *   and the same MQTT/TLS port: node:cluster's primary accepts each TCP
 *   connection and hands it to the workers in turn (round robin).
 * - Worker 1, the lead, starts first (it makes the server identity and runs
 *   the migrations on a fresh folder) and alone runs the RADIUS server and the
 *   admin HTTP API. An EAP conversation is a dozen datagrams bound by State to
 *   a TLS tunnel in one process's memory; one socket in one process keeps them
 *   together (docs/scale.md has the measurement).
 * - Notices (cloud/notices.ts) a worker's services raise reach the sessions of
 *   every other worker through the primary, so a revocation through the admin
 *   API closes the session wherever it is.
 * - One random set of TLS ticket keys for all workers, sent over IPC, so a
 *   ticket one worker issued resumes on another.
 * - A worker that dies after start-up is restarted; one that fails during
 *   start-up (a port in use, a wrong master key) stops the cluster with its
 *   exit code, so a bad start cannot loop.
 * Per-worker state: login rates and lockouts are kept per process (cloud/limits.ts),
 * so with N workers an attacker spread over N connections gets up to N times the
 * per-device attempts until they move to shared storage.
 */
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import type { StartCloudOptions } from "./index";
import { parseNotice, type Notice, type NoticeBus } from "./notices";

/** The role of this process in `serve`. */
export interface ServeRole {
  /** true in a cluster worker */
  worker: boolean;
  /** runs RADIUS and the admin API (the only process, or worker 1) */
  lead: boolean;
  /** the other workers (cluster workers only) */
  notices?: NoticeBus;
  /** the cluster's shared TLS ticket keys (cluster workers only) */
  ticketKeys?: Uint8Array;
  /** Tells the primary this worker listens; the lead's summary is what `serve` prints. */
  ready(summary: Record<string, unknown>): void;
}

type ToWorker = { cmd: "role"; index: number; ticketKeys: string } | { cmd: "notice"; notice: Notice };
type FromWorker = { cmd: "hello" } | { cmd: "ready"; summary: Record<string, unknown> } | { cmd: "notice"; notice: unknown };

/** The worker count that uses every core this process may use. */
export function coreCount(): number {
  return availableParallelism();
}

/** True when this process is a `serve` cluster worker. */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env.WCM_CLUSTER_WORKER === "1";
}

/** This worker's role, from the primary (cluster workers only). */
export function workerRole(): Promise<ServeRole> {
  return new Promise((resolve) => {
    const handlers: ((notice: Notice) => void)[] = [];
    const send = (message: FromWorker) => process.send?.(message);
    process.on("message", (message: ToWorker) => {
      if (message.cmd === "role") {
        resolve({
          worker: true, lead: message.index === 1, ticketKeys: new Uint8Array(Buffer.from(message.ticketKeys, "hex")),
          notices: { publish: (notice) => send({ cmd: "notice", notice }), subscribe: (handler) => void handlers.push(handler) },
          ready: (summary) => send({ cmd: "ready", summary }),
        });
      } else if (message.cmd === "notice") {
        const notice = parseNotice(message.notice);
        if (notice) for (const handler of handlers) handler(notice);
      }
    });
    // asked for, not pushed at "online": a message sent before this listener exists would be lost
    send({ cmd: "hello" });
  });
}

/** A worker's startCloud options: the admin, ops and RADIUS listeners on the lead only; the bus and ticket keys. */
export function roleOptions(options: StartCloudOptions, role: Omit<ServeRole, "ready">): StartCloudOptions {
  if (!role.worker) return options;
  return {
    ...options,
    ...(role.lead ? {} : { httpPort: undefined, radiusPort: undefined, opsPort: undefined }),
    notices: role.notices,
    tlsSessions: { ...options.tlsSessions, ticketKeys: role.ticketKeys },
  };
}

/** The role of a process that is not in a cluster (`serve --workers 1`). */
export const SINGLE_PROCESS: Omit<ServeRole, "ready"> = { worker: false, lead: true };

/**
 * Runs the primary: forks `count` workers (this same program, with the same
 * arguments), the lead first; resolves with the lead's summary (plus
 * `workers`) once all listen, and keeps them running until SIGINT/SIGTERM.
 * @throws Error (with `exitCode`) when a worker fails during start-up
 */
export function runPrimary(count: number, log: (line: string) => void): Promise<Record<string, unknown>> {
  const ticketKeys = randomBytes(48).toString("hex");
  const workers = new Map<number, Worker>();
  let stopping = false;
  let started = false;
  return new Promise((resolve, reject) => {
    let summary: Record<string, unknown> = {};
    const fail = (index: number, code: number | null) => {
      stopping = true;
      for (const w of workers.values()) w.process.kill("SIGTERM");
      reject(Object.assign(new Error(`worker ${index} exited with code ${code ?? "?"} during start-up`), { exitCode: code || 1 }));
    };
    const fork = (index: number, then?: () => void) => {
      const worker = cluster.fork({ WCM_CLUSTER_WORKER: "1" });
      workers.set(index, worker);
      let up = false;
      worker.on("message", (message: FromWorker) => {
        if (message.cmd === "hello") worker.send({ cmd: "role", index, ticketKeys } satisfies ToWorker);
        else if (message.cmd === "ready") {
          up = true;
          if (index === 1) summary = message.summary;
          then?.();
        } else if (message.cmd === "notice") {
          const notice = parseNotice(message.notice);
          if (!notice) return;
          for (const [other, w] of workers) if (other !== index && w.isConnected()) w.send({ cmd: "notice", notice } satisfies ToWorker);
        }
      });
      worker.on("exit", (code, signal) => {
        if (workers.get(index) === worker) workers.delete(index);
        if (stopping) {
          if (workers.size === 0) process.exit(0);
          return;
        }
        if (!up || !started) return fail(index, code);
        log(`worker ${index} exited (${signal ?? code}); restarting it`);
        setTimeout(() => fork(index), 1000).unref();
      });
    };
    const stop = () => {
      stopping = true;
      if (workers.size === 0) process.exit(0);
      for (const w of workers.values()) w.process.kill("SIGTERM");
      setTimeout(() => process.exit(0), 10_000).unref();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    // the lead first (migrations, server identity), then the rest at once
    fork(1, () => {
      let waiting = count - 1;
      const done = () => {
        if (--waiting > 0) return;
        started = true;
        resolve({ ...summary, workers: count });
      };
      for (let i = 2; i <= count; i++) fork(i, done);
    });
  });
}

/** True in the primary of a cluster of `count` workers (count > 1). */
export function isClusterPrimary(count: number): boolean {
  return count > 1 && cluster.isPrimary;
}
