/*
 * Issue 8 item 2: an attacker who knows only a device's id floods bad logins
 * for it (100/s from 127.0.0.2-6) while the genuine device boots again and
 * again with the real ConnectionManager (hosts/node). Two scenarios, each on a
 * fresh cloud with default limits:
 * - "secret": CONNECTs with `s` passwords under random secrets;
 * - "certificate": TLS without a client certificate for a certificate device.
 * The flood runs in a child process (bench/flood-client.ts). Reported: the
 * genuine device's time from start() to ONLINE, before the flood and under it
 * (same run, side by side), failed attempts it saw, and the audit accounting
 * of the flood (every refusal written or counted, rows bounded).
 *
 * `npm run bench:id-attack [-- --seconds 30]`; test/abuse-id-attack.test.ts runs it shorter.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startCloud, type Cloud } from "../cloud/index";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedFlash } from "../hosts/node/file-preferences";
import type { FloodConfig, FloodResult } from "./flood-client";

/** The loopback source addresses of the attacker. */
export const ATTACK_SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];

/** Figures of one scenario. */
export interface AttackFigures {
  scenario: "secret" | "certificate";
  flood: FloodResult;
  /** ms from start() to ONLINE per boot, without and under the flood */
  baselineMs: number[];
  underAttackMs: number[];
  /** boots under the flood that saw any failed attempt before ONLINE (goal 0) */
  bootsWithFailure: number;
  /** failure reasons the genuine device saw */
  deviceFailures: string[];
  /** CONNECT refusals of the victim id the cloud counted, and how the audit accounts for them */
  refusedByCloud: number;
  /** CPU the cloud's process (with the genuine device) used during the flood, as a share of one core */
  cloudCpuShare: number;
  audit: { refusedRows: number; lockoutRows: number; notWritten: number; aggregate: number; accounted: number };
  /** the cloud's admission decisions at accept and its deadline closes (cloud/limits.ts AdmissionDecisions, MqttStats) */
  admission: string;
}

function runFlood(config: FloodConfig): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./flood-client.ts", import.meta.url)), ["--run", JSON.stringify(config)], {
      execArgv: ["--import", "tsx"], stdio: ["ignore", "pipe", "inherit", "ipc"],
    });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as FloodResult) : reject(new Error(`flood client exited ${code}`))));
  });
}

/** One boot of the genuine device: ms to ONLINE and the failures seen on the way. */
async function boot(cloud: Cloud, config: Record<string, unknown>, flash: SimulatedFlash, timeoutMs = 30_000): Promise<{ ms: number; failures: string[] }> {
  const { manager } = createNodeDevice({ ...config, cloud: { host: "127.0.0.1", port: cloud.mqttPort, ca: cloud.serverCaPem, serverName: cloud.serverName } }, { kv: flash });
  const failures: string[] = [];
  const started = performance.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ONLINE within ${timeoutMs} ms (${failures.join(",")})`)), timeoutMs);
      manager.onStatus((status) => {
        if (status.lastFailure && (status.state === "RETRY_WAIT" || status.state === "AUTH_FAILED")) failures.push(status.lastFailure.reason);
        if (status.state === "ONLINE") {
          clearTimeout(timer);
          resolve();
        }
      });
      manager.start();
    });
    return { ms: performance.now() - started, failures };
  } finally {
    manager.stop();
  }
}

/** Runs one scenario for `seconds` of flood at `ratePerSecond`. */
export async function runScenario(scenario: AttackFigures["scenario"], seconds: number, ratePerSecond = 100, bootTimeoutMs = 30_000): Promise<AttackFigures> {
  const dir = mkdtempSync(join(tmpdir(), "wcm-id-attack-"));
  const cloud = await startCloud({ dataDir: join(dir, "data"), masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0 });
  try {
    const id = scenario === "secret" ? "victim-s" : "victim-c";
    let config: Record<string, unknown>;
    if (scenario === "secret") {
      const secret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: id, secretHex: secret });
      config = { deviceId: id, option: "secret", secret };
    } else {
      await cloud.services.createProductCa({ name: "victim-ca" });
      const issued = await cloud.services.issueDeviceCertificate({ caName: "victim-ca", deviceId: id, keyType: "ec" });
      await cloud.services.registerCertificateDevice({ deviceId: id, certificatePem: issued.certificatePem });
      config = { deviceId: id, option: "certificate", certificate: issued.certificatePem, privateKey: issued.privateKeyPem };
    }
    const flash = new SimulatedFlash();
    const baselineMs: number[] = [];
    for (let i = 0; i < 3; i++) baselineMs.push((await boot(cloud, config, flash, bootTimeoutMs)).ms);
    const before = cloud.auth.stats.refused;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    const flooding = runFlood({ port: cloud.mqttPort, id, mode: scenario === "secret" ? "bad-secret" : "no-cert", ratePerSecond, seconds, sources: ATTACK_SOURCES });
    let floodDone = false;
    const flood = flooding.finally(() => (floodDone = true));
    await new Promise((r) => setTimeout(r, Math.min(2000, seconds * 200))); // the flood is under way (and past any lockout threshold)
    const underAttackMs: number[] = [];
    const deviceFailures: string[] = [];
    let bootsWithFailure = 0;
    const until = performance.now() + (seconds - 1) * 1000;
    // The per-device rate (burst 10, 1 per 5 s) also binds the genuine device: 3 boots
    // before the flood plus at most 6 under it stay within the burst however fast this machine is.
    const maxBoots = seconds > 10 ? Infinity : 6;
    while (!floodDone && performance.now() < until && underAttackMs.length < maxBoots) {
      const result = await boot(cloud, config, flash, bootTimeoutMs);
      underAttackMs.push(result.ms);
      deviceFailures.push(...result.failures);
      if (result.failures.length > 0) bootsWithFailure++;
      // a boot every ~3 s: a device that reconnects faster would meet its own per-device rate (burst 10, 1 per 5 s)
      await new Promise((r) => setTimeout(r, seconds > 10 ? 3000 : 300));
    }
    const floodResult = await flood;
    const cpu = process.cpuUsage(cpu0);
    const cloudCpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
    const refusedByCloud = cloud.auth.stats.refused - before;
    await cloud.auth.flushRefusalAudit(true);
    const rows = await cloud.registry.auditLog(100_000, undefined, { action: "login." });
    let refusedRows = 0;
    let lockoutRows = 0;
    let notWritten = 0;
    let aggregate = 0;
    for (const row of rows) {
      if (row.action === "login.refused" && row.deviceId === id) {
        refusedRows++;
        notWritten += Number(/\(\+(\d+) refusals not written\)/.exec(row.detail ?? "")?.[1] ?? 0);
      } else if (row.action === "login.lockout" && row.deviceId === id) lockoutRows++;
      else if (row.action === "login.refused-aggregate") aggregate += Number(/total=(\d+)/.exec(row.detail ?? "")?.[1] ?? 0);
    }
    return {
      scenario, cloudCpuShare, flood: floodResult, baselineMs, underAttackMs, bootsWithFailure, deviceFailures, refusedByCloud,
      audit: { refusedRows, lockoutRows, notWritten, aggregate, accounted: refusedRows + notWritten + aggregate },
      admission: [
        ...Object.entries(cloud.mqtt.connections.decisions).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`),
        `evictions=${cloud.mqtt.connections.evictions}`, `helloExpired=${cloud.mqtt.stats.helloExpired}`, `loginExpired=${cloud.mqtt.stats.loginExpired}`, `tlsErrors=${cloud.mqtt.stats.tlsErrors}`,
      ].join(" "),
    };
  } finally {
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function stats(values: number[]): string {
  if (values.length === 0) return "-";
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  return `median ${median.toFixed(0)} ms, min ${sorted[0].toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)} (n=${values.length})`;
}

/** One report line per scenario. */
export function report(f: AttackFigures): string {
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
  return [
    `${f.scenario}: flood ${f.flood.attempts} attempts from ${Object.keys(f.flood.perSource).length} sources; CONNACK ${JSON.stringify(f.flood.connack)}, closed before CONNACK ${f.flood.closed}`,
    `  genuine device start() -> ONLINE: before the flood ${stats(f.baselineMs)}; under it ${stats(f.underAttackMs)}; ratio of medians ${(median(f.underAttackMs) / median(f.baselineMs)).toFixed(2)}`,
    `  CPU of the cloud's process during the flood: ${(100 * f.cloudCpuShare).toFixed(0)}% of one core`,
    `  boots with a failed attempt: ${f.bootsWithFailure} (${f.deviceFailures.join(",") || "none"})`,
    `  refusals counted by the cloud ${f.refusedByCloud}; audit: ${f.audit.refusedRows} login.refused rows + ${f.audit.notWritten} counted on them + ${f.audit.aggregate} in aggregates = ${f.audit.accounted}; ${f.audit.lockoutRows} login.lockout rows`,
    `  admission at accept: ${f.admission}`,
  ].join("\n");
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--seconds");
  const seconds = i > 0 ? Number(process.argv[i + 1]) : 30;
  console.log(`id attack: 100 bad logins/s from ${ATTACK_SOURCES.join(", ")} for ${seconds} s while the genuine device boots (load: ${(await import("node:os")).loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  for (const scenario of ["secret", "certificate"] as const) console.log(report(await runScenario(scenario, seconds)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(() => process.exit(0), (error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
