/*
 * Issue 8 item 3: sockets that hold the pre-CONNECT slots. 16 source addresses
 * (127.0.1.1-16) x 64 sockets that never send a ClientHello (half the
 * sources) or trickle one byte a second (the other half), each re-opened as
 * soon as it is dropped (bench/flood-client.ts, own process), while genuine
 * devices connect (TLS + CONNECT + CONNACK) over and over from 127.0.0.1.
 * Reported: the devices' success rate and connect-time percentiles, the
 * cloud's unauthenticated connections (sampled) and evictions, and the RSS of
 * the process holding the cloud (start, peak, end).
 *
 * `npm run bench:slot-attack [-- --seconds 30]`; test/abuse-slot-attack.test.ts runs it shorter.
 */
import { fork } from "node:child_process";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { connectDevice, end, loginPassword, newSecret, startTestCloud } from "../test/cloud-helpers";
import type { HoldConfig, HoldResult } from "./flood-client";

/** The attacker's 16 source addresses. */
export const HOLD_SOURCES = Array.from({ length: 16 }, (_, i) => `127.0.1.${i + 1}`);

/** Figures of one run. */
export interface SlotFigures {
  seconds: number;
  hold: HoldResult;
  attempts: number;
  successes: number;
  failures: string[];
  connectMs: { p50: number; p99: number; max: number };
  /** the same devices' connects just before the flood (same run) */
  baselineMs: { p50: number; p99: number; max: number; n: number };
  unauthenticatedMax: number;
  evictions: number;
  connectionsRefused: number;
  rssMb: { start: number; peak: number; end: number };
  /** event-loop delay of the cloud's process under the flood (ms) */
  loopDelayMs: { p50: number; p99: number; max: number };
}

function runHold(config: HoldConfig): Promise<HoldResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL("./flood-client.ts", import.meta.url)), ["--hold", JSON.stringify(config)], {
      execArgv: ["--import", "tsx"], stdio: ["ignore", "pipe", "inherit", "ipc"],
    });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as HoldResult) : reject(new Error(`hold client exited ${code}`))));
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** Runs the attack for `seconds` with `devices` genuine devices connecting in parallel loops. */
export async function runSlotAttack(seconds: number, devices = 4): Promise<SlotFigures> {
  // the devices reconnect faster than a real one would: lift the per-device login rate, which is not measured here
  const t = await startTestCloud({ limits: { login: { perDevice: { burst: 10_000, perSecond: 1000 } } } });
  try {
    const mb = () => process.memoryUsage().rss / 2 ** 20;
    const rss = { start: mb(), peak: mb(), end: 0 };
    const ids: { id: string; secret: Uint8Array; counter: number }[] = [];
    for (let i = 0; i < devices; i++) {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: `slot-${i}`, secretHex: s.hex });
      ids.push({ id: `slot-${i}`, secret: s.bytes, counter: 0 });
    }
    const connectLoop = async (stopAt: number, times: number[], failures: string[]): Promise<number> => {
      let attempts = 0;
      await Promise.all(ids.map(async (device) => {
        while (performance.now() < stopAt) {
          attempts++;
          const started = performance.now();
          // the device's own connect timeout (docs/protocol.md 10.2: 30 s)
          const outcome = await connectDevice(t.cloud, { id: device.id, password: loginPassword(device.id, device.secret, "s", ++device.counter) }, { connectTimeout: 30_000 });
          if (outcome.client) {
            times.push(performance.now() - started);
            await end(outcome.client);
          } else {
            failures.push(outcome.code !== undefined ? `CONNACK ${outcome.code}` : outcome.error.message.slice(0, 40));
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }));
      return attempts;
    };
    const baseline: number[] = [];
    await connectLoop(performance.now() + Math.min(5, seconds / 3) * 1000, baseline, []);
    baseline.sort((a, b) => a - b);
    let unauthenticatedMax = 0;
    const sampler = setInterval(() => {
      unauthenticatedMax = Math.max(unauthenticatedMax, t.cloud.mqtt.unauthenticatedConnections);
      rss.peak = Math.max(rss.peak, mb());
    }, 100);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const holding = runHold({ port: t.cloud.mqttPort, sources: HOLD_SOURCES, perSource: 64, seconds, reopenMs: 20 });
    await new Promise((r) => setTimeout(r, 1500)); // the slots are held
    const times: number[] = [];
    const failures: string[] = [];
    const attempts = await connectLoop(performance.now() + (seconds - 2) * 1000, times, failures);
    loop.disable();
    const hold = await holding;
    clearInterval(sampler);
    rss.end = mb();
    const sorted = times.sort((a, b) => a - b);
    return {
      seconds, hold, attempts, successes: times.length, failures,
      connectMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN },
      baselineMs: { p50: percentile(baseline, 50), p99: percentile(baseline, 99), max: baseline.at(-1) ?? NaN, n: baseline.length },
      loopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
      unauthenticatedMax, evictions: t.cloud.mqtt.connections.evictions, connectionsRefused: t.cloud.mqtt.stats.connectionsRefused, rssMb: rss,
    };
  } finally {
    await t.stop();
  }
}

/** The report of one run. */
export function slotReport(f: SlotFigures): string {
  return [
    `attacker: ${HOLD_SOURCES.length} sources x 64 sockets (half idle, half trickling 1 byte/s), re-opened 20 ms after each drop: ${f.hold.opened} sockets opened, ${f.hold.dropped} dropped by the cloud`,
    `genuine devices: ${f.successes}/${f.attempts} connects succeeded (${((100 * f.successes) / Math.max(1, f.attempts)).toFixed(1)}%)${f.failures.length ? `; failures: ${f.failures.slice(0, 5).join(", ")}` : ""}`,
    `  TLS+CONNECT+CONNACK under the flood: p50 ${f.connectMs.p50.toFixed(0)} ms, p99 ${f.connectMs.p99.toFixed(0)} ms, max ${f.connectMs.max.toFixed(0)} ms`,
    `  just before it (same run, n=${f.baselineMs.n}): p50 ${f.baselineMs.p50.toFixed(0)} ms, p99 ${f.baselineMs.p99.toFixed(0)} ms; ratio p50 ${(f.connectMs.p50 / f.baselineMs.p50).toFixed(2)}, p99 ${(f.connectMs.p99 / f.baselineMs.p99).toFixed(2)}`,
    `cloud: unauthenticated connections at most ${f.unauthenticatedMax} (cap 256), ${f.evictions} evicted, ${f.connectionsRefused} refused at accept`,
    `event-loop delay of the cloud's process under the flood: p50 ${f.loopDelayMs.p50.toFixed(0)} ms, p99 ${f.loopDelayMs.p99.toFixed(0)} ms, max ${f.loopDelayMs.max.toFixed(0)} ms`,
    `RSS of the cloud's process: start ${f.rssMb.start.toFixed(1)} MB, peak ${f.rssMb.peak.toFixed(1)} MB, end ${f.rssMb.end.toFixed(1)} MB`,
  ].join("\n");
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--seconds");
  const seconds = i > 0 ? Number(process.argv[i + 1]) : 30;
  console.log(`slot attack for ${seconds} s (load: ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  console.log(slotReport(await runSlotAttack(seconds)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(() => process.exit(0), (error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
