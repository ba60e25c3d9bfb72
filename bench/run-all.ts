/*
 * `npm run bench`: the wcm benchmarks (not part of `npm test`).
 *
 * 1. Time to ONLINE per provisioning option and TLS version through a delay
 *    proxy on loopback, against the protocol floor in round trips.
 * 2. The cloud's authenticated MQTT/TLS connects per second (no delay).
 *
 * Settings (argument beats environment beats default):
 *   --delay=MS        WCM_BENCH_DELAY_MS        one-way delay of benchmark 1 (default 20 = 40 ms RTT)
 *   --runs=N          WCM_BENCH_RUNS            measured runs per option and TLS version (default 5, + 1 warm-up)
 *   --devices=N       WCM_BENCH_DEVICES         devices of benchmark 2 (default 2000)
 *   --concurrency=N   WCM_BENCH_CONCURRENCY     concurrent connects of benchmark 2 (default 50)
 *   --only=online|connect                       run one benchmark only
 * Everything listens on 127.0.0.1; every loop is bounded in count and time,
 * and a watchdog ends the process after 3 minutes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startCloud, type Cloud } from "../cloud/index";
import { CloudChild, connectPass, makeDevices } from "./connect-bench";
import { BENCH_LIMITS, floorRoundTrips, provision, runOnce, type OnlineRun, type Option, type Provisioned, type TlsVersion } from "./online-bench";
import { mb, median, percentile, table } from "./table";

const WATCHDOG_MS = 180_000;

function setting(name: string, env: string, fallback: number, min: number, max: number): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  const raw = arg ? arg.slice(name.length + 3) : process.env[env];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${arg ? `--${name}` : env} must be a number in ${min}..${max}, got ${raw}`);
  }
  return value;
}

const OPTIONS: Option[] = ["certificate", "secret", "temporary"];
const TLS_VERSIONS: TlsVersion[] = ["TLSv1.2", "TLSv1.3"];

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
const signed = (n: number, digits = 0) => (Number.isFinite(n) ? `${n >= 0 ? "+" : ""}${n.toFixed(digits)}` : "-");

/** Runs `runs` measured runs (after one warm-up) of one option/TLS/delay; device ids from `firstIndex`. */
async function measure(
  cloud: Cloud, provisioned: Provisioned, option: Option, tls: TlsVersion, oneWayMs: number, runs: number, firstIndex: number,
  deadline: number, failures: string[], label: string,
): Promise<OnlineRun[]> {
  const measured: OnlineRun[] = [];
  for (let i = 0; i <= runs; i++) {
    if (performance.now() > deadline) {
      failures.push(`${option}/${tls} ${label}: time budget of benchmark 1 spent; run ${i} and later skipped`);
      break;
    }
    const run = await runOnce(cloud, provisioned, option, tls, firstIndex + i, oneWayMs, 15_000);
    if (!run.ok) failures.push(`${option}/${tls} ${label} run ${i}: ${run.failure ?? "failed"}`);
    if (i > 0) measured.push(run); // run 0 warms up JIT, TLS and SQLite paths
  }
  return measured.filter((r) => r.ok);
}

function timelineText(run: OnlineRun, rtt: number): string {
  const parts: string[] = [];
  let credential = run.timeline[0]?.credential;
  let state = "";
  for (const t of run.timeline) {
    const when = `${fmt(t.at)}${rtt > 0 ? ` (${fmt(t.at / rtt, 1)})` : ""}`;
    if (t.credential !== credential) parts.push(`credential ${t.credential} ${when}`);
    credential = t.credential;
    if (t.state !== state) parts.push(`${t.state} ${when}`);
    state = t.state;
  }
  return parts.join(" > ");
}

async function onlineBenchmark(oneWayMs: number, runs: number): Promise<void> {
  const rtt = 2 * oneWayMs;
  console.log(`\n1. Time to ONLINE per option, loopback + injected delay ${oneWayMs} ms each way (RTT ${rtt} ms), median of ${runs} runs (+1 warm-up), each device alone, fresh flash`);
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-bench-"));
  let cloud: Cloud | undefined;
  try {
    cloud = await startCloud({ dataDir, masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, limits: BENCH_LIMITS });
    // two series of runs+1 runs each: with the delay, and without it
    const provisioned = await provision(cloud, 2 * (runs + 1));
    const rows: (string | number)[][] = [[
      "option", "TLS", "ok", "RTs", "floor RTs", "Δ RTs", "ONLINE ms", "floor ms", "Δ ms", "Δ RTT", "min..max ms", "PERMANENT ms", "TLS sessions",
    ]];
    const phaseRows: (string | number)[][] = [["option", "TLS", "state changes of the median run: ms after start (RTTs)"]];
    const nagleRows: (string | number)[][] = [[
      "option", "TLS", `ONLINE ms at RTT ${rtt}`, "ONLINE ms at RTT 0",
    ]];
    const failures: string[] = [];
    const verdicts: string[] = [];
    const deadline = performance.now() + 60_000;
    for (const tls of TLS_VERSIONS) {
      for (const option of OPTIONS) {
        const good = await measure(cloud, provisioned, option, tls, oneWayMs, runs, 0, deadline, failures, "");
        const floor = floorRoundTrips(option, tls);
        const floorMs = floor * rtt;
        const series: OnlineRun[][] = [good];
        series.push(await measure(cloud, provisioned, option, tls, 0, runs, runs + 1, deadline, failures, "zero delay"));
        nagleRows.push([option, tls, ...series.map((s) => (s.length ? fmt(median(s.map((r) => r.onlineMs))) : "-"))]);
        if (good.length === 0) {
          rows.push([option, tls, `0/${runs}`, "-", floor, "-", "-", floorMs, "-", "-", "-", "-", "-"]);
          continue;
        }
        const trips = median(good.map((r) => r.roundTrips));
        const onlineMs = median(good.map((r) => r.onlineMs));
        const sessions = median(good.map((r) => r.sessions));
        const times = good.map((r) => r.onlineMs);
        const permanent = option === "temporary" ? fmt(median(good.map((r) => r.permanentMs ?? NaN))) : "-";
        rows.push([
          option, tls, `${good.length}/${runs}`, fmt(trips), floor, signed(trips - floor), fmt(onlineMs), floorMs,
          signed(onlineMs - floorMs), rtt > 0 ? signed((onlineMs - floorMs) / rtt, 2) : "-", `${fmt(Math.min(...times))}..${fmt(Math.max(...times))}`,
          permanent, fmt(sessions),
        ]);
        const medianRun = good.slice().sort((a, b) => a.onlineMs - b.onlineMs)[(good.length - 1) >> 1];
        phaseRows.push([option, tls, timelineText(medianRun, rtt)]);
        const within = onlineMs - floorMs <= rtt && trips <= floor + 1;
        if (option === "temporary") {
          verdicts.push(
            `temporary/${tls}: PERMANENT and ONLINE after ${fmt(onlineMs)} ms in ${fmt(sessions)} TLS session(s), ${fmt(trips)} round trips (floor ${floor} = ${floorMs} ms): ` +
              (within && sessions === 1 ? "goal met (one session, within one RTT of the floor)" : "goal NOT met"),
          );
        } else if (!within) {
          verdicts.push(`${option}/${tls}: ${fmt(onlineMs - floorMs)} ms above the floor, more than one RTT`);
        }
      }
    }
    console.log(table(rows));
    console.log(`  RTs: round trips counted by the proxy until ONLINE (TCP handshake = 1, then +1 each time the device sends after receiving).`);
    console.log(`  floor: TCP 1 + TLS (1.2: 2, 1.3: 1) + MQTT CONNECT/CONNACK 1 (+ issue 1 + commit 1 for temporary); floor ms = floor RTs x ${rtt} ms.`);
    console.log(`  ONLINE ms: manager.start() to the first ONLINE status; PERMANENT ms: to the credential becoming permanent.`);
    console.log(`\n  Timeline of the median run:`);
    console.log(table(phaseRows));
    for (const verdict of verdicts) console.log(`  ${verdict}`);
    console.log(`\n  Where the time above the floor goes: median ONLINE ms with the delay and without it (RTT 0 = compute and waits that are not round trips):`);
    console.log(table(nagleRows));
    for (const failure of failures) console.log(`  problem: ${failure}`);
  } finally {
    await cloud?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function connectBenchmark(deviceCount: number, concurrency: number): Promise<void> {
  console.log(`\n2. Cloud authenticated MQTT/TLS connects per second: ${deviceCount} secret devices, ${concurrency} concurrent, loopback without delay, fresh TLS session each, closed after CONNACK`);
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-bench-rate-"));
  const child = new CloudChild();
  try {
    const { devices, csv } = makeDevices(deviceCount);
    const importStarted = performance.now();
    const started = await child.request({ cmd: "start", dataDir, csv }, 60_000);
    if (started.cmd !== "start") throw new Error("cloud child did not start");
    const importMs = performance.now() - importStarted;
    console.log(`  cloud in a child process (pid-separate RSS/CPU); start + CSV import of ${started.imported} devices: ${fmt(importMs)} ms; cloud RSS after import: ${mb(started.stats.rss)}`);
    const rows: (string | number)[][] = [[
      "TLS", "accepted", "failed", "seconds", "connects/s", "p50 ms", "p99 ms", "negotiated", "cloud loop busy", "cloud CPU", "counter write ms", "client CPU", "cloud RSS before", "cloud RSS after",
    ]];
    let counter = 1;
    for (const tls of ["TLSv1.2", "TLSv1.3"] as const) {
      const before = await child.stats();
      const pass = await connectPass(started.port, started.caPem, tls, devices, counter++, concurrency, 20_000);
      // let the last DISCONNECTs land before reading the cloud's figures
      await new Promise((resolve) => setTimeout(resolve, 300));
      const after = await child.stats();
      const cloudCpu = (after.cpuMicros - before.cpuMicros) / 1e6 / pass.seconds;
      const loopBusy = (after.loopActiveMs - before.loopActiveMs) / 1000 / pass.seconds;
      const writes = after.counterWrites - before.counterWrites;
      const writeMs = writes > 0 ? (after.counterWriteMs - before.counterWriteMs) / writes : NaN;
      rows.push([
        tls, pass.accepted, pass.failed, fmt(pass.seconds, 2), fmt(pass.perSecond), fmt(percentile(pass.latencyMs, 50), 1),
        fmt(percentile(pass.latencyMs, 99), 1), Object.entries(pass.negotiated).map(([k, v]) => `${k} x${v}`).join(" "),
        `${fmt(loopBusy * 100)}%`, `${fmt(cloudCpu * 100)}%`, fmt(writeMs, 2), `${fmt(pass.clientCpu * 100)}%`, mb(before.rss), mb(after.rss),
      ]);
      if (pass.firstFailure) console.log(`  problem: ${tls}: ${pass.failed} failed, first: ${pass.firstFailure}`);
      if (after.loginsAccepted - before.loginsAccepted !== pass.accepted) {
        console.log(`  note: ${tls}: the cloud counted ${after.loginsAccepted - before.loginsAccepted} accepted logins, the clients ${pass.accepted}`);
      }
      if (after.liveSessions > 0) console.log(`  note: ${tls}: ${after.liveSessions} sessions still live 300 ms after the pass`);
    }
    console.log(table(rows));
    console.log(`  abuse limits relaxed (BENCH_LIMITS): this measures the cloud's capacity; in production the cloud admits 300 new connections/s at most (bench:fleet).`);
    console.log(`  connects/s: CONNACKs received / wall time of the pass; p50/p99: connect() to CONNACK per client.`);
    console.log(`  cloud loop busy: the cloud's event-loop utilisation; CPU: process CPU time as a share of one core (host: ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end);`);
    console.log(`  counter write ms: mean time of the login-counter UPDATE (SQLite WAL, synchronous=NORMAL, on the event loop).`);
  } finally {
    await child.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const oneWayMs = setting("delay", "WCM_BENCH_DELAY_MS", 20, 0, 500);
  const runs = setting("runs", "WCM_BENCH_RUNS", 5, 1, 20);
  const deviceCount = setting("devices", "WCM_BENCH_DEVICES", 2000, 1, 20_000);
  const concurrency = setting("concurrency", "WCM_BENCH_CONCURRENCY", 50, 1, 500);
  const only = process.argv.slice(2).find((a) => a.startsWith("--only="))?.slice(7);
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 1000} s; giving up`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  const started = performance.now();
  console.log(`wcm benchmarks (node ${process.version}, ${process.platform}/${process.arch})`);
  if (only === undefined || only === "online") await onlineBenchmark(oneWayMs, runs);
  if (only === undefined || only === "connect") await connectBenchmark(deviceCount, concurrency);
  console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
