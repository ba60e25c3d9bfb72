/*
 * The reference cloud in a child process for the connect-rate benchmark, so
 * its RSS and CPU are its own (the MQTT.js clients run in the parent).
 * IPC: parent sends {cmd:"start", dataDir, csv, radius?, admin?} | {cmd:"stats"} | {cmd:"import-bundle", bundleFile, checksumFile} | {cmd:"close"};
 * the child answers each with a message of the same cmd.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import cluster from "node:cluster";
import { isClusterWorker, runPrimary, workerRole } from "../cloud/cluster";
import { startCloud, type Cloud, type StartCloudOptions } from "../cloud/index";
import { nodeDigest } from "../cloud/node-digest";
import { privateKeyPem } from "../cloud/pki";
import { radiusIdentity } from "../cloud/radius/identity";
import { deriveHotspotPassword } from "../modules/derive";
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

/** What bench/peers.ts needs to give mosquitto and FreeRADIUS the cloud's own identities and devices. */
export interface PeerMaterial {
  radiusPort: number;
  /** the MQTT server certificate and key (RSA-2048, the server CA's leaf for "localhost") */
  serverCertPem: string;
  serverKeyPem: string;
  /** the RADIUS server certificate and key (ECDSA P-256, radius.localhost) */
  radiusCertPem: string;
  radiusKeyPem: string;
  /** the product CA that issued the EAP-TLS device certificate */
  productCaPem: string;
  /** TTLS/PAP devices and their hotspot passwords */
  hotspot: { id: string; password: string }[];
  /** the EAP-TLS device (EC P-256 key) */
  cert: { id: string; certPem: string; keyPem: string };
}

export type ChildRequest =
  | { cmd: "start"; dataDir: string; csv: string; radius?: { nasSecret: string; devices: number }; workers?: number; /** the admin HTTP API on an ephemeral loopback port */ admin?: boolean }
  | { cmd: "stats" }
  | { cmd: "import-bundle"; bundleFile: string; checksumFile: string }
  | { cmd: "close" };
export type ChildReply =
  | { cmd: "start"; port: number; caPem: string; imported: number; stats: ChildStats; peers?: PeerMaterial; pids: number[]; admin?: { url: string; token: string } }
  | { cmd: "stats"; stats: ChildStats }
  | { cmd: "import-bundle"; imported: number; ms: number }
  | { cmd: "close" }
  | { cmd: "error"; message: string };

let cloud: Cloud | undefined;
let clustered = false;

/** The cloud's options in this benchmark: loose abuse limits, RADIUS on an ephemeral port when asked. */
function benchOptions(dataDir: string, radius: boolean): Omit<StartCloudOptions, "masterKey"> {
  return {
    dataDir, mqttPort: 0, limits: BENCH_LIMITS,
    ...(radius ? { radiusPort: 0, radius: { nasRate: { burst: 1e9, perSecond: 1e9 }, maxSessions: 4096 } } : {}),
  };
}
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

/** Registers the NAS, hotspot devices and an EAP-TLS device, and hands out the cloud's identities. */
async function peerMaterial(running: Cloud, nasSecret: string, count: number): Promise<PeerMaterial> {
  const services = running.services;
  await services.addNasClient({ name: "bench-ap", address: "127.0.0.1", secret: nasSecret });
  const hotspot: { id: string; password: string }[] = [];
  for (let i = 0; i < count; i++) {
    const id = `hotspot-${String(i).padStart(4, "0")}`;
    const secret = randomBytes(32);
    await services.registerSecretDevice({ deviceId: id, secretHex: secret.toString("hex") });
    hotspot.push({ id, password: deriveHotspotPassword(nodeDigest, secret, id) });
  }
  const ca = await services.createProductCa({ name: "bench-ca" });
  const id = "bench-cert-ec";
  const issued = await services.issueDeviceCertificate({ caName: "bench-ca", deviceId: id, keyType: "ec" });
  await services.registerCertificateDevice({ deviceId: id, caName: "bench-ca" });
  const server = (await running.registry.serverTls("server"))!;
  const radius = await radiusIdentity(running.registry);
  return {
    radiusPort: running.radiusPort!, serverCertPem: server.certPem, serverKeyPem: privateKeyPem(server.keyDer),
    radiusCertPem: radius.certPem, radiusKeyPem: radius.keyPem, productCaPem: ca.certificatePem, hotspot,
    cert: { id, certPem: issued.certificatePem, keyPem: issued.privateKeyPem },
  };
}

function reply(message: ChildReply): void {
  process.send?.(message);
}

/** A cluster worker: the cloud on the prepared folder, RADIUS on the lead only, notices over the primary. */
async function workerMain(): Promise<void> {
  const role = await workerRole();
  const env = process.env;
  const options = benchOptions(env.WCM_BENCH_DATA!, role.lead && env.WCM_BENCH_RADIUS === "1");
  const running = await startCloud({
    ...options, masterKey: new Uint8Array(Buffer.from(env.WCM_BENCH_MASTER_KEY!, "hex")), notices: role.notices,
    tlsSessions: { ticketKeys: role.ticketKeys },
  });
  role.ready({ mqttPort: running.mqttPort, radiusPort: running.radiusPort });
  const stop = () => void running.close().finally(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("disconnect", stop);
}

if (isClusterWorker()) void workerMain();
else process.on("message", (message: ChildRequest) => {
  void (async () => {
    try {
      if (message.cmd === "start") {
        const masterKey = new Uint8Array(randomBytes(32));
        cloud = await startCloud({ ...benchOptions(message.dataDir, Boolean(message.radius)), ...(message.admin ? { httpPort: 0 } : {}), masterKey: masterKey.slice() });
        const result = await cloud.services.importDevicesCsv({ csv: message.csv });
        const peers = message.radius ? await peerMaterial(cloud, message.radius.nasSecret, message.radius.devices) : undefined;
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
        if ((message.workers ?? 1) > 1) {
          // the registry is ready: hand its folder to `serve`'s cluster (cloud/cluster.ts) of workers running this file
          const caPem = cloud.serverCaPem;
          await cloud.close();
          cloud = undefined;
          Object.assign(process.env, { WCM_BENCH_DATA: message.dataDir, WCM_BENCH_MASTER_KEY: Buffer.from(masterKey).toString("hex"), WCM_BENCH_RADIUS: message.radius ? "1" : "" });
          const summary = await runPrimary(message.workers!, (line) => console.error(line));
          clustered = true;
          if (peers) peers.radiusPort = summary.radiusPort as number;
          const pids = [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!)];
          reply({ cmd: "start", port: summary.mqttPort as number, caPem, imported: result.imported, stats: stats(), ...(peers ? { peers } : {}), pids });
          return;
        }
        const admin = cloud.admin ? { url: cloud.admin.url, token: cloud.admin.token } : undefined;
        reply({ cmd: "start", port: cloud.mqttPort, caPem: cloud.serverCaPem, imported: result.imported, stats: stats(), ...(peers ? { peers } : {}), ...(admin ? { admin } : {}), pids: [process.pid] });
      } else if (message.cmd === "stats") {
        reply({ cmd: "stats", stats: stats() });
      } else if (message.cmd === "import-bundle") {
        // the services call (which runs the import in the cloud's admin worker thread)
        const started = performance.now();
        const result = await cloud!.services.importBundle({ bundle: readFileSync(message.bundleFile), checksum: readFileSync(message.checksumFile, "utf8") });
        reply({ cmd: "import-bundle", imported: result.imported, ms: performance.now() - started });

      } else if (message.cmd === "close") {
        if (clustered) {
          reply({ cmd: "close" });
          process.kill(process.pid, "SIGTERM"); // runPrimary stops the workers, then exits
          return;
        }
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
if (!isClusterWorker()) process.on("disconnect", () => {
  void (cloud?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
