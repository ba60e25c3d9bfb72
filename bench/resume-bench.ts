/*
 * TLS resumption on the MQTT endpoint: the cloud's CPU per connect and the
 * round trips of a connect, full handshake vs resumed, side by side in one run.
 *
 * The cloud runs in a child process (bench/cloud-child.ts) so its CPU time is
 * its own. Each round connects every device once with a full handshake and
 * once resuming the session of its previous connect, for TLS 1.2 by session
 * id (the client offers no SessionTicket extension, as Moddable's) and TLS 1.3
 * by ticket; the order of full and resumed alternates between rounds. CPU per
 * connect = the child's user+system CPU over the pass / connects (TLS, MQTT
 * CONNECT, login check, counter write, DISCONNECT). Spread: median and
 * min..max over the rounds. Round trips and connect time through the delay
 * proxy (bench/delay-proxy.ts, 25 ms one way), as the device sees them.
 * Usage: npm run bench:resume [-- --devices 100 --rounds 5]
 */
import { constants } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir, cpus } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import mqtt from "mqtt";
import { nodeDigest } from "../cloud/node-digest";
import { deriveLoginProof } from "../modules/derive";
import { formatLoginPassword } from "../modules/protocol";
import { CloudChild, makeDevices, type BenchDevice } from "./connect-bench";
import { startDelayProxy } from "./delay-proxy";
import { median, table } from "./table";

type Version = "TLSv1.2" | "TLSv1.3";
type Mode = "full" | "resumed";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const DEVICES = arg("devices", 100);
const ROUNDS = arg("rounds", 5);
const CONCURRENCY = 4;
const ONE_WAY_MS = 25;

interface Device extends BenchDevice {
  counter: number;
  session: Partial<Record<Version, Buffer>>;
}

/** One connect: resolves with its latency and whether TLS resumed. */
function connect(port: number, caPem: string, version: Version, device: Device, resume: boolean): Promise<{ ms: number; reused: boolean }> {
  const counter = ++device.counter;
  const proof = deriveLoginProof(nodeDigest, device.loginKey, device.deviceId, "s", counter);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({
      protocol: "mqtts", host: "127.0.0.1", port, protocolVersion: 4, clientId: device.deviceId, username: device.deviceId,
      password: formatLoginPassword({ kind: "s", counter, proof }), keepalive: 60, clean: true, reconnectPeriod: 0, connectTimeout: 10_000,
      ca: caPem, servername: "localhost", rejectUnauthorized: true,
      ...({ maxVersion: version, minVersion: version, ...(version === "TLSv1.2" ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}) } as object),
      ...(resume && device.session[version] ? ({ session: device.session[version] } as object) : {}),
    });
    const stream = client.stream as TLSSocket;
    stream.on("session", (session: Buffer) => (device.session[version] = session));
    client.once("connect", () => {
      const ms = performance.now() - started;
      const reused = stream.isSessionReused();
      // TLS 1.3 tickets follow the handshake: let them arrive before DISCONNECT
      setTimeout(() => {
        client.end(false);
        resolve({ ms, reused });
      }, version === "TLSv1.3" ? 5 : 0);
    });
    client.once("error", (error) => {
      client.end(true);
      reject(error);
    });
  });
}

/** Every device once, CONCURRENCY at a time; the child's CPU per connect. */
async function pass(child: CloudChild, port: number, caPem: string, version: Version, mode: Mode, devices: Device[]): Promise<{ cpuUsPerConnect: number; reused: number; serverResumed: number; ms: number[] }> {
  const before = await child.stats();
  const ms: number[] = [];
  let reused = 0;
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < devices.length) {
      const device = devices[next++];
      const result = await connect(port, caPem, version, device, mode === "resumed");
      ms.push(result.ms);
      if (result.reused) reused++;
    }
  }));
  await new Promise((r) => setTimeout(r, 50)); // the last DISCONNECTs
  const after = await child.stats();
  return { cpuUsPerConnect: (after.cpuMicros - before.cpuMicros) / devices.length, reused, serverResumed: after.tlsResumed - before.tlsResumed, ms };
}

function spread(values: number[], digits = 0): string {
  const f = (v: number) => v.toFixed(digits);
  return `${f(median(values))} (${f(Math.min(...values))}..${f(Math.max(...values))})`;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-bench-resume-"));
  const child = new CloudChild();
  try {
    const { devices: base, csv } = makeDevices(DEVICES);
    const devices: Device[] = base.map((d) => ({ ...d, counter: 0, session: {} }));
    const started = await child.request({ cmd: "start", dataDir, csv }, 120_000);
    if (started.cmd !== "start") throw new Error("cloud child did not start");
    const { port, caPem } = started;
    const load = loadavg()[0];
    console.log(`TLS resumption bench: ${DEVICES} devices x ${ROUNDS} rounds per cell, ${CONCURRENCY} connects at a time, ${cpus().length} cores, load average ${load.toFixed(2)} at start`);
    const cpu: Record<string, number[]> = {};
    const latency: Record<string, number[]> = {};
    const checks: string[] = [];
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      await pass(child, port, caPem, version, "full", devices); // warm-up, and every device holds a session
      for (let round = 0; round < ROUNDS; round++) {
        const order: Mode[] = round % 2 ? ["resumed", "full"] : ["full", "resumed"];
        for (const mode of order) {
          // "full" must not pay for its sessions being resumed next; "resumed" resumes the session of the previous pass
          const result = await pass(child, port, caPem, version, mode, devices);
          const key = `${version} ${mode}`;
          (cpu[key] ??= []).push(result.cpuUsPerConnect);
          (latency[key] ??= []).push(median(result.ms));
          if (mode === "resumed" && (result.reused !== DEVICES || result.serverResumed !== DEVICES)) checks.push(`${key} round ${round}: ${result.reused}/${DEVICES} client-side, ${result.serverResumed} server-side resumed`);
          if (mode === "full" && result.reused !== 0) checks.push(`${key} round ${round}: ${result.reused} resumed`);
        }
      }
    }
    // round trips and connect time with 25 ms one way, through the delay proxy
    const proxy = await startDelayProxy(port, ONE_WAY_MS);
    const trips: Record<string, { rt: number[]; ms: number[] }> = {};
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      for (const mode of ["full", "resumed"] as const) {
        for (const device of devices.slice(0, 5)) {
          const before = proxy.connections();
          const result = await connect(proxy.port, caPem, version, device, mode === "resumed");
          await new Promise((r) => setTimeout(r, 3 * ONE_WAY_MS));
          const entry = (trips[`${version} ${mode}`] ??= { rt: [], ms: [] });
          entry.rt.push(proxy.roundTrips()[before] - 1); // less the DISCONNECT sent after CONNACK
          entry.ms.push(result.ms);
        }
      }
    }
    await proxy.close();
    const rows: (string | number)[][] = [["TLS", "handshake", "cloud CPU/connect us", "ratio", "loopback connect ms", "round trips to CONNACK", `connect ms at RTT ${2 * ONE_WAY_MS}`]];
    for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
      for (const mode of ["full", "resumed"] as const) {
        const key = `${version} ${mode}`;
        const ratio = median(cpu[key]) / median(cpu[`${version} full`]);
        rows.push([version, mode === "full" ? "full" : version === "TLSv1.2" ? "resumed (session id)" : "resumed (ticket)", spread(cpu[key]), ratio.toFixed(2), spread(latency[key], 1), spread(trips[key].rt), spread(trips[key].ms)]);
      }
    }
    console.log(table(rows));
    console.log(`median (min..max) over ${ROUNDS} rounds; cloud CPU = user+system of the cloud process per connect (TLS + CONNECT + login + DISCONNECT); load average ${loadavg()[0].toFixed(2)} at end`);
    console.log(`round trips as the device sees them (bench/delay-proxy.ts), TCP handshake and CONNECT/CONNACK included; connect ms = connect() to CONNACK`);
    if (checks.length) {
      console.log(`RESUMPTION CHECK FAILED:\n  ${checks.join("\n  ")}`);
      process.exitCode = 1;
    } else console.log(`check: every resumed connect resumed on both sides, no full connect did`);
  } finally {
    await child.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

void main();
