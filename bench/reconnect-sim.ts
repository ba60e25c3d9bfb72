/*
 * One simulator process of bench/reconnect.ts: `count` permanent devices (the
 * Node simulator host: the portable ConnectionManager with its default retry
 * policy, MQTT.js over TLS with a one-entry TLS session cache, each its own
 * in-memory SimulatedFlash), connecting from a loopback source address of
 * their own each (or all from this process's one address), the core's default retry policy (or, with
 * retry "network", lost sessions backing off as network failures, as before that class), over TLS 1.2
 * without tickets as Moddable (session ids) or TLS 1.3 (tickets). Counts, per device, the connection attempts and how each
 * failed one ended (CONNACK code or a network close) since the last "arm".
 * IPC: {cmd:"start", ...} | {cmd:"arm"} | {cmd:"count"} | {cmd:"report"} | {cmd:"stop"}; each answered with
 * the same cmd ("count": devices ONLINE and back, a few bytes, for the bench's once-a-second poll; "report": the
 * per-device arrays, once at the end of a run).
 * The device secrets are derived from a seed sent over IPC (never argv).
 */
import { createHmac } from "node:crypto";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedFlash } from "../hosts/node/file-preferences";
import { createMqttLink, TlsSessionCache } from "../hosts/node/mqtt-link";
import type { ConnectionManager } from "../modules/manager";
import type { CloudLink } from "../modules/ports";
import { DEFAULT_RETRY_POLICY } from "../modules/retry";

export type SimRequest =
  | { cmd: "start"; from: number; count: number; source: string; perDeviceSource: boolean; tls: "TLSv1.2" | "TLSv1.3"; port: number; caPem: string; seedHex: string; retry?: "lost" | "network" }
  | { cmd: "arm" }
  | { cmd: "count" }
  | { cmd: "report" }
  | { cmd: "stop" };

/** The answer to "count". */
export interface SimCount {
  online: number;
  /** devices back ONLINE since "arm" */
  back: number;
  cpuMicros: number;
}

export interface SimReport {
  online: number;
  /** per device: epoch ms of the first ONLINE after it went offline since "arm" (0: not yet back / never left) */
  backAt: number[];
  /** per device: connection attempts since "arm" */
  attempts: number[];
  /** failed attempts since "arm" by how they ended: "connack-N" or "network" */
  closes: Record<string, number>;
  /** this process's CPU time so far, microseconds */
  cpuMicros: number;
}

/** The bench's secret of device `i` (hex), derived from the run's seed. */
export function benchSecret(seedHex: string, i: number): string {
  return createHmac("sha256", Buffer.from(seedHex, "hex")).update(`reconnect-${i}`).digest("hex");
}

/** A loopback source address of its own for device `i` (64 per /24, as bench/fleet-load.ts). */
export function deviceAddress(i: number): string {
  return `127.${2 + (i >> 14)}.${(i >> 6) & 255}.${1 + (i & 63)}`;
}

/** The device id of device `i`. */
export const benchDeviceId = (i: number) => `storm-${String(i).padStart(5, "0")}`;

const managers: ConnectionManager[] = [];
let backAt: number[] = [];
let attempts: number[] = [];
let left: boolean[] = [];
let closes: Record<string, number> = {};
let armed = false;

function start(message: Extract<SimRequest, { cmd: "start" }>): void {
  backAt = new Array(message.count).fill(0);
  attempts = new Array(message.count).fill(0);
  left = new Array(message.count).fill(false);
  for (let k = 0; k < message.count; k++) {
    const i = message.from + k;
    const sessionCache = new TlsSessionCache();
    const link = (): CloudLink => {
      attempts[k]++;
      const inner = createMqttLink({ localAddress: message.perDeviceSource ? deviceAddress(i) : message.source, sessionCache, maxTlsVersion: message.tls });
      return {
        connect: (options, events) => inner.connect(options, {
          ...events,
          onClose: (info) => {
            const key = info.connackCode !== undefined && info.connackCode !== 0 ? `connack-${info.connackCode}` : "network";
            if (armed) closes[key] = (closes[key] ?? 0) + 1;
            events.onClose(info);
          },
        }),
        publish: (topic, payload) => inner.publish(topic, payload),
        subscribe: (topic) => inner.subscribe(topic),
        close: () => inner.close(),
      } as CloudLink;
    };
    const { manager } = createNodeDevice(
      { deviceId: benchDeviceId(i), option: "secret", secret: benchSecret(message.seedHex, i), cloud: { host: "127.0.0.1", port: message.port, ca: message.caPem, serverName: "localhost" } },
      // retry "network": a lost session backs off as a network failure, as before the "lost" class (lostAttempts 0)
      { kv: new SimulatedFlash(), link, ...(message.retry === "network" ? { manager: { retry: { ...DEFAULT_RETRY_POLICY, lostAttempts: 0 } } } : {}) },
    );
    manager.onStatus((status) => {
      if (!armed) return;
      if (status.state !== "ONLINE") left[k] = true;
      else if (left[k] && backAt[k] === 0) backAt[k] = Date.now();
    });
    managers.push(manager);
    manager.start();
  }
}

function report(): SimReport {
  const cpu = process.cpuUsage();
  return { online: managers.filter((m) => m.status.state === "ONLINE").length, backAt, attempts, closes, cpuMicros: cpu.user + cpu.system };
}

process.on("message", (message: SimRequest) => {
  if (message.cmd === "start") {
    start(message);
    process.send?.({ cmd: "start" });
  } else if (message.cmd === "arm") {
    armed = true;
    backAt.fill(0);
    attempts.fill(0);
    left.fill(false);
    closes = {};
    process.send?.({ cmd: "arm" });
  } else if (message.cmd === "count") {
    const cpu = process.cpuUsage();
    let online = 0;
    for (const m of managers) if (m.status.state === "ONLINE") online++;
    let back = 0;
    for (const b of backAt) if (b > 0) back++;
    process.send?.({ cmd: "count", count: { online, back, cpuMicros: cpu.user + cpu.system } satisfies SimCount });
  } else if (message.cmd === "report") {
    process.send?.({ cmd: "report", report: report() });
  } else if (message.cmd === "stop") {
    for (const m of managers) m.stop();
    process.send?.({ cmd: "stop" });
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on("disconnect", () => process.exit(0));
