/*
 * The reference cloud in a child process for the connect-rate benchmark, so
 * its RSS and CPU are its own (the MQTT.js clients run in the parent).
 * IPC: parent sends {cmd:"start", dataDir, csv} | {cmd:"stats"} | {cmd:"close"};
 * the child answers each with a message of the same cmd.
 */
import { randomBytes } from "node:crypto";
import { startCloud, type Cloud } from "../cloud/index";
import { BENCH_LIMITS } from "./online-bench";

export interface ChildStats {
  rss: number;
  heapUsed: number;
  /** process CPU time (user + system), microseconds */
  cpuMicros: number;
  loginsAccepted: number;
  loginsRefused: number;
  tlsErrors: number;
  liveSessions: number;
  /** event loop busy time so far, ms (performance.eventLoopUtilization().active) */
  loopActiveMs: number;
  /** time spent in the registry's login-counter UPDATE (a SQLite commit, WAL, synchronous=NORMAL), ms, and calls */
  counterWriteMs: number;
  counterWrites: number;
  /** TLS handshakes the MQTT endpoint completed in full and resumed */
  tlsFull: number;
  tlsResumed: number;
}

export type ChildRequest =
  | { cmd: "start"; dataDir: string; csv: string }
  | { cmd: "stats" }
  | { cmd: "close" };
export type ChildReply =
  | { cmd: "start"; port: number; caPem: string; imported: number; stats: ChildStats }
  | { cmd: "stats"; stats: ChildStats }
  | { cmd: "close" }
  | { cmd: "error"; message: string };

let cloud: Cloud | undefined;
let counterWriteMs = 0;
let counterWrites = 0;

function stats(): ChildStats {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuMicros: cpu.user + cpu.system,
    loginsAccepted: cloud?.mqtt.stats.loginsAccepted ?? 0,
    loginsRefused: cloud?.mqtt.stats.loginsRefused ?? 0,
    tlsErrors: cloud?.mqtt.stats.tlsErrors ?? 0,
    liveSessions: cloud?.mqtt.liveSessions ?? 0,
    loopActiveMs: performance.eventLoopUtilization().active,
    counterWriteMs,
    counterWrites,
    tlsFull: cloud?.mqtt.stats.tlsFull ?? 0,
    tlsResumed: cloud?.mqtt.stats.tlsResumed ?? 0,
  };
}

function reply(message: ChildReply): void {
  process.send?.(message);
}

process.on("message", (message: ChildRequest) => {
  void (async () => {
    try {
      if (message.cmd === "start") {
        cloud = await startCloud({ dataDir: message.dataDir, masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, limits: BENCH_LIMITS });
        const result = await cloud.services.importDevicesCsv({ csv: message.csv });
        // instrument (not change) the per-login durable write
        const registry = cloud.registry;
        const accept = registry.acceptLoginCounter.bind(registry);
        registry.acceptLoginCounter = (id: string, counter: number) => {
          const t = performance.now();
          try {
            return accept(id, counter);
          } finally {
            counterWriteMs += performance.now() - t;
            counterWrites++;
          }
        };
        reply({ cmd: "start", port: cloud.mqttPort, caPem: cloud.serverCaPem, imported: result.imported, stats: stats() });
      } else if (message.cmd === "stats") {
        reply({ cmd: "stats", stats: stats() });

      } else if (message.cmd === "close") {
        await cloud?.close();
        cloud = undefined;
        reply({ cmd: "close" });
        process.disconnect?.();
        setTimeout(() => process.exit(0), 100).unref();
      }
    } catch (error) {
      reply({ cmd: "error", message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
// the parent went away: do not linger
process.on("disconnect", () => {
  void (cloud?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
