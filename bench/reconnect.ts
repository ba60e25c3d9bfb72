/*
 * `npm run bench:reconnect`: a reconnect storm (not part of `npm test`).
 *
 * N permanent devices (secret option, registered by CSV) in P simulator
 * processes (bench/reconnect-sim.ts), each device with its own loopback
 * source address (--sources=device, default; --sources=process: one address
 * per process, 127.0.0.2, .3, ..., as in issue 15's first figures, where
 * the per-source rate of 20/s paces the storm by design), its own flash,
 * the core's default retry policy and a one-entry TLS session cache
 * (--tls=1.2, default: TLS 1.2 without tickets, session ids, as Moddable;
 * --tls=1.3: tickets). Once all are
 * ONLINE, the cloud (bench/fleet-child.ts, default limits) is SIGKILLed and
 * restarted on the same data directory and port; once all are back, it is
 * stopped gracefully (SIGTERM path: cloud.close()) and restarted. Per run:
 * seconds until all are ONLINE counted from the new cloud listening,
 * p50/p90/p99/max per device, attempts per device, refusals by where they
 * happened (at accept by rate, evicted at the pre-CONNECT cap, login
 * admission rate, CONNACK code seen by the devices), cloud CPU and RSS over
 * time, the load average, and the CPU the simulator processes took.
 * Modes, one after the other on the same machine in one run: "before"
 * (main before issue 15: over capacity is a reset or an eviction, the TLS
 * store in memory), "busy" (busy answers, no accept queue, TLS store in
 * memory: main after the first step on issue 15) and "after" (the default
 * limits: the accept queue, busy answers beyond it, the TLS store and ticket
 * keys in the data folder; docs/protocol.md section 10). Each run's figures
 * are printed as soon as it ends.
 *
 * Settings: --devices=N (WCM_RECONNECT_DEVICES, default 10000),
 * --procs=P simulator processes (default 4), --mode=before|busy|after|both (both = before, after),
 * --sources=device|process, --tls=1.2|1.3, --runs=kill|graceful|both, --retry=lost|network|both (the
 * devices' retry of a lost session: the core's "lost" class, default, or the network back-off as before it). Needs ulimit -n >= N + 1000.
 * WCM_RECONNECT_PROFILE=<dir>: the cloud and simulator processes write V8 CPU profiles there as they exit.
 */
import { fork, execSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir, cpus, loadavg, getPriority } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConnectionLimits } from "../cloud/limits";
import type { FleetChildStats } from "./fleet-child";
import { benchDeviceId, benchSecret, type SimCount, type SimReport, type SimRequest } from "./reconnect-sim";
import { percentile, table } from "./table";
import { freePort } from "./connect-bench";

const WATCHDOG_MS = 45 * 60_000;
const RUN_BUDGET_MS = 5 * 60_000;

function setting(name: string, env: string, fallback: number, min: number, max: number): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  const raw = arg ? arg.slice(name.length + 3) : process.env[env];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return value;
}

const DEVICES = setting("devices", "WCM_RECONNECT_DEVICES", 10_000, 10, 50_000);
const PROCS = setting("procs", "WCM_RECONNECT_PROCS", 4, 1, 16);
const arg = (name: string) => process.argv.slice(2).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
/** --mode=before|busy|after|both (default both = before then after, in this run) */
const MODE = arg("mode") ?? "both";
const MODES = MODE === "both" ? ["before", "after"] : MODE.split(",");
if (!MODES.every((m) => m === "before" || m === "busy" || m === "after")) throw new Error("mode must be before, busy, after or both");
const SOURCES = arg("sources") ?? "device";
if (SOURCES !== "device" && SOURCES !== "process") throw new Error("sources must be device or process");
const TLS = arg("tls") === "1.3" ? "TLSv1.3" : "TLSv1.2";
/** --retry=lost|network|both (default lost): the devices' default policy, or lost sessions backing off as network failures (before the "lost" class); both: one fleet of each, one after the other in this run */
const RETRY = arg("retry") ?? "lost";
if (!["lost", "network", "both"].includes(RETRY)) throw new Error("retry must be lost, network or both");
const RETRIES = (RETRY === "both" ? ["network", "lost"] : [RETRY]) as ("lost" | "network")[];
/** --runs=kill|graceful|both (default both): which restarts each mode runs */
const RUNS = arg("runs") ?? "both";
if (!["kill", "graceful", "both"].includes(RUNS)) throw new Error("runs must be kill, graceful or both");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

/** A child process spoken to by request/reply over IPC (replies in order). */
class Child<Req extends { cmd: string }> {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #waiting: ((reply: Record<string, unknown>) => void)[] = [];

  constructor(script: string) {
    // WCM_RECONNECT_PROFILE=<dir>: every child writes a V8 CPU profile there when it exits (not when SIGKILLed)
    const profile = process.env.WCM_RECONNECT_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.WCM_RECONNECT_PROFILE}`] : [];
    this.child = fork(fileURLToPath(new URL(script, import.meta.url)), [], { execArgv: ["--import", "tsx", ...profile], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (reply: Record<string, unknown>) => this.#waiting.shift()?.(reply));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  request<T>(message: Req, timeoutMs = 600_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child: no reply to ${message.cmd}`)), timeoutMs);
      this.#waiting.push((reply) => {
        clearTimeout(timer);
        if (reply.cmd === "error") reject(new Error(`child: ${String(reply.message)}`));
        else resolve(reply as T);
      });
      this.child.send(message);
    });
  }

  kill(): Promise<number | null> {
    this.child.kill("SIGKILL");
    return this.exited;
  }

  async close(cmd: Req): Promise<void> {
    try {
      if (this.child.connected) await this.request(cmd, 20_000);
    } catch {
      // killed below
    }
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}

type CloudReq = { cmd: "start"; dataDir: string; port: number; masterKeyHex: string; connections?: Partial<ConnectionLimits>; memoryTlsStore?: boolean } | { cmd: "stats" } | { cmd: "import"; csv: string } | { cmd: "check" } | { cmd: "close" };
type Cloud = Child<CloudReq>;

/** Cloud settings of a mode (see the header). */
let modeLimits: Partial<ConnectionLimits> | undefined;
let modeMemoryTls = false;

async function startCloud(dataDir: string, port: number, masterKeyHex: string): Promise<{ cloud: Cloud; caPem: string; listenAt: number }> {
  const cloud = new Child<CloudReq>("./fleet-child.ts");
  const reply = await cloud.request<{ caPem: string }>({ cmd: "start", dataDir, port, masterKeyHex, connections: modeLimits, memoryTlsStore: modeMemoryTls });
  return { cloud, caPem: reply.caPem, listenAt: Date.now() };
}

const stats = async (cloud: Cloud) => (await cloud.request<{ stats: FleetChildStats }>({ cmd: "stats" })).stats;
const reports = (sims: Child<SimRequest>[]) => Promise.all(sims.map(async (s) => (await s.request<{ report: SimReport }>({ cmd: "report" })).report));
const counts = (sims: Child<SimRequest>[]) => Promise.all(sims.map(async (s) => (await s.request<{ count: SimCount }>({ cmd: "count" })).count));

/** Busy CPU time of the whole machine so far (all cores, all processes), seconds, from /proc/stat (NaN elsewhere). */
function machineBusySeconds(): number {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = cpu;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return Number.NaN;
  }
}

interface Sample { t: number; cpuPct: number; rssMb: number; online: number; load1: number }

interface RunResult {
  label: string;
  back: number;
  allSeconds: number;
  p50: number; p90: number; p99: number; max: number;
  attemptsMean: number; attemptsMax: number; attemptsP99: number;
  closes: Record<string, number>;
  refusedAtAccept: number; evictions: number; busyAnswered: number; busyTickets: number; rateLimited: number; loginsRefused: number;
  tlsFull: number; tlsResumed: number;
  cloudCpuS: number; cloudCpuAfterListenS: number; cloudPeakRssMb: number; simCpuS: number; seconds: number;
  /** seconds from the stop (kill or graceful) until the new cloud listened */
  downS: number;
  /** seconds from the stop until every device was back (or the budget ran out), and the busy CPU of the whole machine meanwhile */
  wallS: number;
  machineCpuS: number;
  samples: Sample[];
  lockedOut: number;
  busyExpired: number;
  helloExpired: number;
  loginExpired: number;
  tlsErrors: number;
  decisions: Record<string, number>;
}

/** Stops the cloud (kill or graceful), restarts it, and follows the fleet until every device is back. */
async function run(label: string, how: "kill" | "graceful", state: { cloud: Cloud }, dataDir: string, port: number, masterKeyHex: string, sims: Child<SimRequest>[]): Promise<RunResult> {
  await Promise.all(sims.map((s) => s.request({ cmd: "arm" })));
  const simCpu0 = (await counts(sims)).reduce((a, r) => a + r.cpuMicros, 0);
  const machine0 = machineBusySeconds();
  const stoppedAt = Date.now();
  if (how === "kill") await state.cloud.kill();
  else await state.cloud.close({ cmd: "close" });
  await sleep(1000); // every device has seen the loss
  const started = await startCloud(dataDir, port, masterKeyHex);
  state.cloud = started.cloud;
  const { listenAt } = started;
  const samples: Sample[] = [];
  let lastCpu = (await stats(state.cloud)).cpuMicros;
  const cpuAtListen = lastCpu;
  let lastT = performance.now();
  const deadline = performance.now() + RUN_BUDGET_MS;
  let peakRss = 0;
  let simCpu1 = simCpu0;
  for (;;) {
    await sleep(1000);
    const s = await stats(state.cloud);
    const c = await counts(sims);
    const now = performance.now();
    const online = c.reduce((a, r) => a + r.online, 0);
    samples.push({ t: (Date.now() - listenAt) / 1000, cpuPct: ((s.cpuMicros - lastCpu) / 1000 / (now - lastT)) * 100, rssMb: s.rss / 2 ** 20, online, load1: loadavg()[0] });
    peakRss = Math.max(peakRss, s.rss);
    lastCpu = s.cpuMicros;
    lastT = now;
    simCpu1 = c.reduce((a, r) => a + r.cpuMicros, 0);
    const back = c.reduce((a, r) => a + r.back, 0);
    if ((online === DEVICES && back === DEVICES) || now > deadline) break;
  }
  const machineCpuS = machineBusySeconds() - machine0;
  const wallS = (Date.now() - stoppedAt) / 1000;
  const last = await reports(sims);
  const backAt = last.flatMap((r) => r.backAt);
  const times = backAt.filter((b) => b > 0).map((b) => (b - listenAt) / 1000);
  const attempts = last.flatMap((r) => r.attempts);
  const closes: Record<string, number> = {};
  for (const r of last) for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] ?? 0) + v;
  const s = await stats(state.cloud);
  const check = (await state.cloud.request<{ check: { lockedOut: number } }>({ cmd: "check" })).check;
  return {
    label, back: times.length, allSeconds: times.length === DEVICES ? Math.max(...times) : Number.NaN,
    p50: percentile(times, 50), p90: percentile(times, 90), p99: percentile(times, 99), max: Math.max(...times),
    attemptsMean: attempts.reduce((a, b) => a + b, 0) / attempts.length, attemptsMax: Math.max(...attempts), attemptsP99: percentile(attempts, 99),
    closes, refusedAtAccept: s.connectionsRefused, evictions: s.evictions, busyAnswered: s.busyAnswered, busyTickets: s.busyTickets, rateLimited: s.rateLimited, loginsRefused: s.loginsRefused,
    tlsFull: s.tlsFull, tlsResumed: s.tlsResumed,
    cloudCpuS: s.cpuMicros / 1e6, cloudCpuAfterListenS: (s.cpuMicros - cpuAtListen) / 1e6, cloudPeakRssMb: peakRss / 2 ** 20,
    simCpuS: (simCpu1 - simCpu0) / 1e6, seconds: samples.length ? samples[samples.length - 1].t : 0,
    downS: (listenAt - stoppedAt) / 1000, wallS, machineCpuS,
    samples, lockedOut: check.lockedOut, busyExpired: s.busyExpired, helloExpired: s.helloExpired, loginExpired: s.loginExpired, tlsErrors: s.tlsErrors, decisions: s.decisions,
  };
}

function timeline(samples: Sample[]): string {
  const step = Math.max(1, Math.ceil(samples.length / 12));
  const rows = [["s after listen", "cloud CPU % of a core", "cloud RSS MB", "devices ONLINE", "load1"]];
  for (let i = 0; i < samples.length; i += step) {
    const s = samples[i];
    rows.push([fmt(s.t), fmt(s.cpuPct), fmt(s.rssMb), String(s.online), fmt(s.load1, 2)]);
  }
  const endSample = samples[samples.length - 1];
  if (endSample && (samples.length - 1) % step !== 0) rows.push([fmt(endSample.t), fmt(endSample.cpuPct), fmt(endSample.rssMb), String(endSample.online), fmt(endSample.load1, 2)]);
  return table(rows);
}

/** One mode: a fresh registry, the fleet ONLINE, then the two restarts. */
async function scenario(mode: string, retry: "lost" | "network", results: RunResult[]): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-reconnect-"));
  const port = await freePort();
  const masterKeyHex = randomBytes(32).toString("hex");
  const seedHex = randomBytes(32).toString("hex");
  const first = await startCloud(dataDir, port, masterKeyHex);
  const state = { cloud: first.cloud };
  const lines = ["device_id,option,secret_hex"];
  for (let i = 0; i < DEVICES; i++) lines.push(`${benchDeviceId(i)},secret,${benchSecret(seedHex, i)}`);
  await state.cloud.request({ cmd: "import", csv: `${lines.join("\n")}\n` }, 900_000);
  const sims: Child<SimRequest>[] = [];
  try {
    const per = Math.ceil(DEVICES / PROCS);
    for (let p = 0; p < PROCS; p++) {
      const sim = new Child<SimRequest>("./reconnect-sim.ts");
      sims.push(sim);
      const from = p * per;
      // a loaded machine takes minutes to fork a simulator and make its devices
      await sim.request({ cmd: "start", from, count: Math.max(0, Math.min(per, DEVICES - from)), source: `127.0.0.${2 + p}`, perDeviceSource: SOURCES === "device", tls: TLS, port, caPem: first.caPem, seedHex, retry }, 900_000);
    }
    const t0 = performance.now();
    for (;;) {
      await sleep(1000);
      const online = (await counts(sims)).reduce((a, r) => a + r.online, 0);
      if (online === DEVICES) break;
      if (performance.now() - t0 > 3 * RUN_BUDGET_MS) throw new Error(`only ${online}/${DEVICES} ONLINE at first boot`);
    }
    const name = RETRY === "lost" ? mode : `${mode}, retry ${retry}`;
    console.log(`   ${name}: all ${DEVICES} ONLINE at start after ${fmt((performance.now() - t0) / 1000, 1)} s`);
    for (const [label, how] of ([[`${name}: SIGKILL + restart`, "kill"], [`${name}: graceful stop + restart`, "graceful"]] as const).filter(([, h]) => RUNS === "both" || RUNS === h)) {
      const result = await run(label, how, state, dataDir, port, masterKeyHex, sims);
      results.push(result);
      printResults([result]);
      printDetail(result);
    }
  } finally {
    for (const s of sims) await s.close({ cmd: "stop" });
    await state.cloud.close({ cmd: "close" });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function printResults(results: RunResult[]): void {
  console.log(`\nReconnect after a cloud restart, ${DEVICES} devices (${SOURCES === "device" ? "one source address each" : `${PROCS} source addresses`}, ${TLS}), cloud on default limits; seconds counted from the new cloud listening`);
  console.log(table([
    ["run", "back", "all back s", "p50 s", "p90 s", "p99 s", "max s", "attempts mean/p99/max", "device-side failed attempts", "refused at accept (rate)", "evicted at pre-CONNECT cap", "busy granted/answered (CONNACK 3)", "login RATE_LIMITED", "logins refused", "TLS full/resumed", "cloud CPU ms per reconnect", "locked out", "cloud CPU s", "cloud peak RSS MB", "simulators CPU s"],
    ...results.map((r) => [r.label, `${r.back}/${DEVICES}`, fmt(r.allSeconds, 1), fmt(r.p50, 1), fmt(r.p90, 1), fmt(r.p99, 1), fmt(r.max, 1),
      `${fmt(r.attemptsMean, 2)}/${r.attemptsP99}/${r.attemptsMax}`, Object.entries(r.closes).map(([k, v]) => `${k}=${v}`).join(" ") || "none",
      String(r.refusedAtAccept), String(r.evictions), `${r.busyTickets}/${r.busyAnswered}`, String(r.rateLimited), String(r.loginsRefused), `${r.tlsFull}/${r.tlsResumed}`,
      fmt((r.cloudCpuS * 1000) / Math.max(1, r.back), 2), String(r.lockedOut),
      fmt(r.cloudCpuS, 1), fmt(r.cloudPeakRssMb), fmt(r.simCpuS, 1)]),
  ]));
  console.log("   issue 15's figures (10,000 devices, 4 source addresses, before any change): p99 65-85 s, all back in 80-106 s");
}

function printDetail(r: RunResult): void {
  const load = r.samples.map((x) => x.load1);
  const ours = r.cloudCpuS + r.simCpuS;
  console.log(`\n   ${r.label}: the cloud was down ${fmt(r.downS, 1)} s (stop to listening); simulators took ${fmt(r.simCpuS, 1)} s of CPU over ${fmt(r.seconds)} s (${fmt((r.simCpuS / Math.max(1, r.seconds)) * 100)}% of one core); load average (1 min) during the run ${fmt(Math.min(...load), 1)}-${fmt(Math.max(...load), 1)} on ${cpus().length} cores shared with other work`);
  console.log(`   CPU split over the ${fmt(r.wallS, 1)} s from the stop to all back (${fmt(r.wallS * cpus().length, 0)} core-seconds): whole machine busy ${fmt(r.machineCpuS, 1)} s; the new cloud ${fmt(r.cloudCpuS, 1)} s (startup included), simulators ${fmt(r.simCpuS, 1)} s, everything else (the bench, the killed cloud's last second, other work) ${fmt(r.machineCpuS - ours, 1)} s; the cloud from listening to all back: ${fmt(r.cloudCpuAfterListenS, 1)} s, ${fmt((r.cloudCpuAfterListenS * 1000) / Math.max(1, r.back), 2)} ms per reconnect`);
  console.log(`   admission decisions at accept: ${Object.entries(r.decisions).map(([k, v]) => `${k}=${v}`).join(" ")}; busy expired unanswered=${r.busyExpired}; admitted then closed at the ClientHello deadline=${r.helloExpired}, at the login deadline=${r.loginExpired}; TLS handshakes failed=${r.tlsErrors}`);
  console.log(timeline(r.samples));
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error("reconnect bench: watchdog fired");
    process.exit(3);
  }, WATCHDOG_MS);
  watchdog.unref();
  const soft = Number(execSync("sh -c 'ulimit -n'").toString().trim());
  // with the kernel's autogroup scheduling, a process's nice only ranks it within its session's group:
  // the group's own nice (echo N > /proc/self/autogroup) is what ranks it against other sessions' work
  const group = (() => {
    try {
      return readFileSync("/proc/self/autogroup", "utf8").trim();
    } catch {
      return "no autogroup";
    }
  })();
  console.log(`   scheduling: process nice ${getPriority()}, autogroup ${group}`);
  console.log(`wcm reconnect bench: ${DEVICES} permanent devices in ${PROCS} simulator processes (${SOURCES === "device" ? "one loopback source address per device" : "one loopback source per process"}, ${TLS}), modes ${MODES.join(", ")}, device retry ${RETRIES.join(", ")}, ${cpus().length} CPUs, node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  if (Number.isFinite(soft) && soft < DEVICES + 1000) {
    console.error(`need ulimit -n >= ${DEVICES + 1000}; run: ulimit -n 65536 && npm run bench:reconnect`);
    process.exit(2);
  }
  const results: RunResult[] = [];
  let failed = false;
  for (const mode of MODES) {
    modeLimits = mode === "before" ? { busyTotal: 0, queueTotal: 0 } : mode === "busy" ? { queueTotal: 0 } : undefined;
    modeMemoryTls = mode !== "after";
    for (const retry of RETRIES) await scenario(mode, retry, results);
  }
  console.log(`\n=== all runs ===`);
  printResults(results);
  for (const r of results) {
    if (r.back !== DEVICES || r.lockedOut !== 0) {
      failed = true;
      console.error(`FAILED: ${r.label}: ${r.back}/${DEVICES} back, ${r.lockedOut} locked out`);
    }
  }
  console.log(`\n   load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  process.exit(failed ? 1 : 0);
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
