/*
 * Benchmark 2: authenticated MQTT/TLS connects per second on the cloud.
 *
 * The cloud runs in a child process (bench/cloud-child.ts) with `devices`
 * shared-secret devices imported by CSV. This process opens MQTT.js
 * connections straight to it on loopback, `concurrency` at a time, each with a
 * fresh TLS session and a login password computed with modules/derive.ts;
 * a connect counts when its CONNACK (accepted) arrives, and the client then
 * disconnects. Each TLS version is one pass over all devices (counter 1 for
 * the first pass, 2 for the second: counters must rise).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import type { TLSSocket } from "node:tls";
import { nodeDigest } from "../cloud/node-digest";
import { deriveCloudLoginKey, deriveLoginProof } from "../modules/derive";
import { formatLoginPassword } from "../modules/protocol";
import type { ChildReply, ChildRequest, ChildStats } from "./cloud-child";
import type { TlsVersion } from "./online-bench";

/** A cloud child process. */
export class CloudChild {
  readonly #child: ChildProcess;
  #waiting: ((reply: ChildReply) => void)[] = [];
  #exited: Promise<void>;

  constructor() {
    const file = fileURLToPath(new URL("./cloud-child.ts", import.meta.url));
    // WCM_CLOUD_NODE_FLAGS: extra node flags of the cloud process (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof)
    const flags = (process.env.WCM_CLOUD_NODE_FLAGS ?? "").split(" ").filter(Boolean);
    this.#child = fork(file, [], { execArgv: ["--import", "tsx", ...flags], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.#child.on("message", (reply: ChildReply) => this.#waiting.shift()?.(reply));
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve()));
  }

  /** the child's process id (its CPU time is in /proc/<pid>/stat) */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Sends a request and waits (at most `timeoutMs`) for its reply. */
  request(message: ChildRequest, timeoutMs = 30_000): Promise<ChildReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cloud child: no reply to ${message.cmd} in ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.push((reply) => {
        clearTimeout(timer);
        if (reply.cmd === "error") reject(new Error(`cloud child: ${reply.message}`));
        else resolve(reply);
      });
      this.#child.send(message);
    });
  }

  async stats(): Promise<ChildStats> {
    const reply = await this.request({ cmd: "stats" });
    if (reply.cmd !== "stats") throw new Error("cloud child: unexpected reply");
    return reply.stats;
  }

  /** Closes the cloud and waits for the process to exit (killed after 5 s). */
  async close(): Promise<void> {
    try {
      if (this.#child.connected) await this.request({ cmd: "close" }, 5000);
    } catch {
      // fall through to the kill
    }
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), 5000);
    await this.#exited;
    clearTimeout(killer);
  }
}

/** A device the benchmark logs in as. */
export interface BenchDevice {
  deviceId: string;
  loginKey: Uint8Array;
}

/** Makes `count` secret devices and their registration CSV. */
export function makeDevices(count: number): { devices: BenchDevice[]; csv: string } {
  const devices: BenchDevice[] = [];
  const lines = ["device_id,option,secret_hex"];
  for (let i = 0; i < count; i++) {
    const deviceId = `rate-${String(i).padStart(5, "0")}`;
    const secret = new Uint8Array(randomBytes(32));
    lines.push(`${deviceId},secret,${Buffer.from(secret).toString("hex")}`);
    devices.push({ deviceId, loginKey: deriveCloudLoginKey(nodeDigest, secret) });
  }
  return { devices, csv: `${lines.join("\n")}\n` };
}

/** The outcome of one pass. */
export interface ConnectPass {
  tls: TlsVersion;
  attempted: number;
  accepted: number;
  failed: number;
  firstFailure?: string;
  seconds: number;
  perSecond: number;
  latencyMs: number[];
  /** negotiated protocol, as node:tls reports it, with counts */
  negotiated: Record<string, number>;
  /** this process's CPU during the pass, as a share of one core */
  clientCpu: number;
}

/** The MQTT password of a device for a pass (default: the wcm login proof for `counter`). */
export type PasswordOf = (device: BenchDevice, counter: number) => string;

/** The wcm login password: a fresh proof for the pass's counter. */
export const wcmPassword: PasswordOf = (device, counter) =>
  formatLoginPassword({ kind: "s", counter, proof: deriveLoginProof(nodeDigest, device.loginKey, device.deviceId, "s", counter) });

/** Opens one connection; resolves with its latency or a failure. */
function connectOnce(
  port: number,
  caPem: string,
  tls: TlsVersion,
  device: BenchDevice,
  counter: number,
  timeoutMs: number,
  passwordOf: PasswordOf,
): Promise<{ ok: true; ms: number; protocol: string } | { ok: false; error: string }> {
  const password = passwordOf(device, counter);
  const started = performance.now();
  return new Promise((resolve) => {
    const client = mqtt.connect({
      ...({ maxVersion: tls, minVersion: tls } as object),
      protocol: "mqtts",
      host: "127.0.0.1",
      port,
      protocolVersion: 4,
      clientId: device.deviceId,
      username: device.deviceId,
      password,
      keepalive: 60,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      ca: caPem,
      servername: "localhost",
      rejectUnauthorized: true,
    });
    let settled = false;
    const settle = (result: { ok: true; ms: number; protocol: string } | { ok: false; error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      settle({ ok: false, error: "timeout" });
      client.end(true);
    }, timeoutMs + 1000);
    client.on("connect", () => {
      const ms = performance.now() - started;
      const protocol = (client.stream as TLSSocket).getProtocol?.() ?? "?";
      settle({ ok: true, ms, protocol });
      client.end(false); // DISCONNECT, then close
    });
    client.on("error", (error) => {
      settle({ ok: false, error: error.message.slice(0, 100) });
      client.end(true);
    });
    client.on("close", () => settle({ ok: false, error: "closed before CONNACK" }));
  });
}

/** One pass: every device once, `concurrency` at a time, stopping after `budgetMs`. */
export async function connectPass(
  port: number,
  caPem: string,
  tls: TlsVersion,
  devices: BenchDevice[],
  counter: number,
  concurrency: number,
  budgetMs: number,
  passwordOf: PasswordOf = wcmPassword,
): Promise<ConnectPass> {
  const latencyMs: number[] = [];
  const negotiated: Record<string, number> = {};
  let next = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const deadline = started + budgetMs;
  const worker = async () => {
    while (next < devices.length && performance.now() < deadline) {
      const device = devices[next++];
      const result = await connectOnce(port, caPem, tls, device, counter, 10_000, passwordOf);
      if (result.ok) {
        latencyMs.push(result.ms);
        negotiated[result.protocol] = (negotiated[result.protocol] ?? 0) + 1;
      } else {
        failed++;
        firstFailure ??= `${device.deviceId}: ${result.error}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, devices.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return {
    tls,
    attempted: next,
    accepted: latencyMs.length,
    failed,
    ...(firstFailure ? { firstFailure } : {}),
    seconds,
    perSecond: latencyMs.length / seconds,
    latencyMs,
    negotiated,
    clientCpu: (cpu.user + cpu.system) / 1e6 / seconds,
  };
}

/** A TCP port free on 127.0.0.1 at the time of the call (the OS picks it). */
export { freePort } from "../test/support/redis";
