/*
 * The reference cloud in a child process for bench/fleet-load.ts, so it can be
 * SIGKILLed in the middle of a storm and restarted on the same data directory
 * and port, and so its RSS is its own.
 * IPC: {cmd:"start", dataDir, port, masterKeyHex, lot?, database?, redis?} | {cmd:"stats"} | {cmd:"check", expected} | {cmd:"import", csv} | {cmd:"close"};
 * each answered with a message of the same cmd (or {cmd:"error"}).
 */
import { startCloud, type Cloud } from "../cloud/index";
import type { ConnectionLimits } from "../cloud/limits";
import type { CloudLog } from "../cloud/log";
import { MemorySessionStore } from "../cloud/tls-sessions";
import { fleetCheck, type FleetCheck } from "./fleet-check";

export interface FleetChildStats {
  rss: number;
  heapUsed: number;
  /** live memory after a full GC (heap used + external), when the child runs with --expose-gc; else 0 */
  liveAfterGc: number;
  cpuMicros: number;
  loginsAccepted: number;
  loginsRefused: number;
  rateLimited: number;
  connectionsRefused: number;
  /** unauthenticated connections closed to make room at the pre-CONNECT caps */
  evictions: number;
  /** over-capacity connections answered CONNACK 3 after TLS (busy) */
  busyAnswered: number;
  /** busy tickets the limiter granted (answered or not: a busy connection whose TLS does not end within helloTimeoutMs is closed unanswered) */
  busyTickets: number;
  /** busy connections closed unanswered at their deadline */
  busyExpired: number;
  /** admitted connections closed at the ClientHello deadline, at the login deadline; TLS handshakes that failed */
  helloExpired: number;
  loginExpired: number;
  /** the connection limiter's admission decisions (cloud/limits.ts AdmissionDecisions) */
  decisions: Record<string, number>;
  tlsErrors: number;
  tlsFull: number;
  tlsResumed: number;
  liveSessions: number;
  unauthenticated: number;
  issued: number;
  committed: number;
}

export type { FleetCheck } from "./fleet-check";

export type FleetChildRequest =
  | { cmd: "start"; dataDir: string; port: number; masterKeyHex: string; lot?: string; connections?: Partial<ConnectionLimits>; memoryTlsStore?: boolean; database?: string; redis?: string }
  | { cmd: "stats"; full?: boolean }
  | { cmd: "check" }
  | { cmd: "import"; csv: string }
  | { cmd: "close" };

let cloud: Cloud | undefined;

/** The cloud's error lines on stderr (the first 20 of each message; the cloud's log carries no secrets). */
const errorCounts = new Map<string, number>();
const errorLog: CloudLog = (level, message, fields) => {
  if (level !== "error") return;
  const seen = (errorCounts.get(message) ?? 0) + 1;
  errorCounts.set(message, seen);
  if (seen <= 20) process.stderr.write(`fleet-child ${process.pid} error: ${message} ${JSON.stringify(fields ?? {})}\n`);
};

function liveAfterGc(): number {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) return 0;
  collect();
  const memory = process.memoryUsage();
  return memory.heapUsed + memory.external;
}

function stats(full = false): FleetChildStats {
  const live = full ? liveAfterGc() : 0;
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rss: memory.rss, heapUsed: memory.heapUsed, liveAfterGc: live, cpuMicros: cpu.user + cpu.system,
    loginsAccepted: cloud?.mqtt.stats.loginsAccepted ?? 0, loginsRefused: cloud?.mqtt.stats.loginsRefused ?? 0,
    rateLimited: cloud?.mqtt.stats.rateLimited ?? 0, connectionsRefused: cloud?.mqtt.stats.connectionsRefused ?? 0,
    evictions: cloud?.mqtt.connections.evictions ?? 0, busyAnswered: cloud?.mqtt.stats.busyAnswered ?? 0, busyTickets: cloud?.mqtt.connections.busyAnswers ?? 0,
    busyExpired: cloud?.mqtt.stats.busyExpired ?? 0, helloExpired: cloud?.mqtt.stats.helloExpired ?? 0, loginExpired: cloud?.mqtt.stats.loginExpired ?? 0, decisions: { ...(cloud?.mqtt.connections.decisions ?? {}) },
    tlsFull: cloud?.mqtt.stats.tlsFull ?? 0, tlsResumed: cloud?.mqtt.stats.tlsResumed ?? 0,
    tlsErrors: cloud?.mqtt.stats.tlsErrors ?? 0, liveSessions: cloud?.mqtt.liveSessions ?? 0,
    unauthenticated: cloud?.mqtt.unauthenticatedConnections ?? 0,
    issued: cloud?.issuance.stats.issued ?? 0, committed: cloud?.issuance.stats.committed ?? 0,
  };
}

const check = (): Promise<FleetCheck> => fleetCheck(cloud!.registry.storage);

process.on("message", (message: FleetChildRequest) => {
  void (async () => {
    try {
      if (message.cmd === "start") {
        cloud = await startCloud({
          dataDir: message.dataDir, log: errorLog, masterKey: Uint8Array.from(Buffer.from(message.masterKeyHex, "hex")), mqttPort: message.port,
          maxConnections: 30_000, ...(message.connections ? { limits: { connections: message.connections } } : {}),
          // several nodes: one PostgreSQL registry and one Redis (cloud/redis.ts)
          ...(message.database ? { database: message.database } : {}), ...(message.redis ? { redis: message.redis } : {}),
          // the in-memory TLS store (sessions and ticket keys die with the process), as before issue 15
          ...(message.memoryTlsStore ? { tlsSessions: { store: new MemorySessionStore() } } : {}),
        });
        let provisioningKeyHex: string | undefined;
        if (message.lot && !(await cloud.registry.lot(message.lot))) {
          provisioningKeyHex = (await cloud.services.createProvisioningKey({ lot: message.lot })).provisioningKeyHex;
        }
        process.send?.({ cmd: "start", port: cloud.mqttPort, caPem: cloud.serverCaPem, provisioningKeyHex, stats: stats() });
      } else if (message.cmd === "stats") {
        process.send?.({ cmd: "stats", stats: stats(message.full === true) });
      } else if (message.cmd === "import") {
        const result = await cloud!.services.importDevicesCsv({ csv: message.csv });
        process.send?.({ cmd: "import", imported: result.imported });
      } else if (message.cmd === "check") {
        process.send?.({ cmd: "check", check: await check() });
      } else if (message.cmd === "close") {
        await cloud?.close();
        cloud = undefined;
        process.send?.({ cmd: "close" });
        setTimeout(() => process.exit(0), 50).unref();
      }
    } catch (error) {
      process.send?.({ cmd: "error", message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
process.on("disconnect", () => process.exit(0));
