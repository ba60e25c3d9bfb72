/*
 * `npm run bench:sizing`: the figures an operator sizes a cloud with (not part
 * of `npm test`; docs/deploy.md and docs/scale.md quote its output).
 *
 * 1. RSS per connected device: the cloud in a child process
 *    (bench/fleet-child.ts, --expose-gc, its default abuse limits) with
 *    `--devices` shared-secret devices registered; this process opens idle
 *    MQTT/TLS sessions to it, each from its own loopback address, as a device
 *    holds one: TLS 1.3, CONNECT with a fresh login proof, CONNACK accepted,
 *    SUBSCRIBE to its response topic, SUBACK, then a PINGREQ every 45 s
 *    (keepalive 60). At each step (`--steps`, default 0,2000,5000 sessions)
 *    it waits for the sessions to settle and prints the cloud's RSS and its
 *    live memory after a full GC (heap used + external); the slope per device
 *    is taken between steps. On SQLite, and on a throwaway PostgreSQL
 *    (test/support/postgres.ts) when its binaries are installed.
 * 2. Connects per second and per core: full TLS handshake (no resumption),
 *    CONNECT, accepted CONNACK, DISCONNECT (bench/connect-bench.ts's
 *    connectPass), from `--loaders` child processes at `--concurrency` in
 *    all, against one cloud process and against `serve`'s cluster of
 *    `--workers` processes (cloud/cluster.ts), both on SQLite, rounds
 *    alternating the order. Server CPU per connect comes from
 *    /proc/<pid>/stat of every cloud process around each pass; connects/s per
 *    server core = 1000 / CPU ms per connect. The loaders share the 2 cores
 *    with the cloud: their CPU share is printed beside each figure, and the
 *    CPU per connect is the fair figure when they saturate.
 *
 * Settings: --steps 0,2000,5000  --database sqlite,postgres  --connects N per
 * pass (1500)  --rounds R (3)  --concurrency C (32)  --loaders L (2)
 * --workers W (2)  --only rss|connects. Needs 2 x the largest step + 1000
 * file descriptors (`ulimit -n`). Prints the load average before and after.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { randomBytes } from "node:crypto";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import mqttPacket from "mqtt-packet";
import { nodeDigest } from "../cloud/node-digest";
import { invokedDirectly } from "../cloud/invoked-directly";
import { deriveLoginProof } from "../modules/derive";
import { formatLoginPassword } from "../modules/protocol";
import { deviceTopics } from "../modules/wire";
import { CloudChild, makeDevices, type BenchDevice, freePort } from "./connect-bench";
import { Loader } from "./connect-loader";
import { FleetChild } from "./fleet-child-process";
import { processCpuMs } from "./peers";
import { median, percentile, table } from "./table";
import { createDatabase, postgresUnavailable, stopPostgres } from "../test/support/postgres";

const WATCHDOG_MS = 40 * 60_000;
const KEEPALIVE_S = 60;

function arg(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  const eq = process.argv.find((a) => a.startsWith(prefix));
  if (eq) return eq.slice(prefix.length);
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const spread = (values: number[], digits: number) => `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;

/** A distinct loopback source address per session (the per-source limits then apply per device). */
function sourceAddress(i: number): string {
  return `127.${20 + (i >> 14)}.${(i >> 6) & 255}.${1 + (i & 63)}`;
}

// ------------------------------------------------------------------ 1. RSS per connected device

/** Opens one idle session: TLS 1.3, CONNECT, CONNACK 0, SUBSCRIBE, SUBACK. */
function openSession(port: number, caPem: string, device: BenchDevice, source: string): Promise<TLSSocket> {
  const password = formatLoginPassword({ kind: "s", counter: 1, proof: deriveLoginProof(nodeDigest, device.loginKey, device.deviceId, "s", 1) });
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: caPem, minVersion: "TLSv1.3", ...({ localAddress: source } as object) });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const timer = setTimeout(() => fail(new Error("no CONNACK/SUBACK in 30 s")), 30_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    parser.on("packet", (packet) => {
      if (packet.cmd === "connack") {
        if (packet.returnCode !== 0) return fail(new Error(`CONNACK ${packet.returnCode}`));
        socket.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: deviceTopics(device.deviceId).response, qos: 0 }] } as mqttPacket.ISubscribePacket));
      } else if (packet.cmd === "suback") {
        clearTimeout(timer);
        resolve(socket);
      }
    });
    socket.on("data", (data) => parser.parse(data));
    socket.once("secureConnect", () => {
      socket.write(mqttPacket.generate({
        cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: KEEPALIVE_S,
        clientId: device.deviceId, username: device.deviceId, password: Buffer.from(password),
      } as mqttPacket.IConnectPacket));
    });
    socket.on("error", (error) => fail(error));
    socket.on("close", () => fail(new Error("closed")));
  });
}

interface RssStep { sessions: number; rss: number; live: number; cloudCpuMs: number; openSeconds: number }

/** One backend: RSS and live memory at each step of idle sessions. */
async function rssRun(database: "sqlite" | "postgres", steps: number[]): Promise<RssStep[]> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-sizing-rss-"));
  const most = Math.max(...steps);
  const { devices, csv } = makeDevices(most);
  const child = new FleetChild(["--expose-gc"]);
  const sockets: TLSSocket[] = [];
  const pinger = setInterval(() => {
    const ping = mqttPacket.generate({ cmd: "pingreq" });
    for (const s of sockets) if (!s.destroyed) s.write(ping);
  }, 45_000);
  const out: RssStep[] = [];
  try {
    const url = database === "postgres" ? await createDatabase() : undefined;
    const started = await child.request<{ caPem: string; port: number }>({
      cmd: "start", dataDir, port: await freePort(), masterKeyHex: randomBytes(32).toString("hex"), ...(url ? { database: url } : {}),
    });
    await child.request({ cmd: "import", csv }, 300_000);
    for (const step of steps.slice().sort((a, b) => a - b)) {
      const t0 = performance.now();
      let next = sockets.length;
      const opener = async () => {
        while (next < step) {
          const i = next++;
          sockets.push(await openSession(started.port, started.caPem, devices[i], sourceAddress(i)));
        }
      };
      await Promise.all(Array.from({ length: 32 }, opener));
      const openSeconds = (performance.now() - t0) / 1000;
      await sleep(3000);
      const stats = await child.stats(true);
      if (stats.liveSessions !== step) throw new Error(`${database}: ${stats.liveSessions} live sessions, expected ${step}`);
      out.push({ sessions: step, rss: stats.rss, live: stats.liveAfterGc, cloudCpuMs: stats.cpuMicros / 1000, openSeconds });
      console.log(`  ${database}: ${step} sessions, RSS ${mib(stats.rss)} MiB, live after GC ${mib(stats.liveAfterGc)} MiB (load ${load()})`);
    }
  } finally {
    clearInterval(pinger);
    for (const s of sockets) s.destroy();
    await child.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}

function rssTable(runs: Map<string, RssStep[]>): string {
  const rows: (string | number)[][] = [["backend", "sessions", "RSS MiB", "live after GC MiB", "RSS KiB/device", "live KiB/device", "open s"]];
  for (const [backend, steps] of runs) {
    steps.forEach((s, i) => {
      const prev = steps[i - 1];
      const per = (a: number, b: number) => (prev ? ((a - b) / 1024 / (s.sessions - prev.sessions)).toFixed(1) : "-");
      rows.push([backend, s.sessions, mib(s.rss), mib(s.live), per(s.rss, prev?.rss ?? 0), per(s.live, prev?.live ?? 0), s.openSeconds.toFixed(1)]);
    });
    const first = steps[0];
    const last = steps[steps.length - 1];
    if (last.sessions > first.sessions) {
      rows.push([backend, `${first.sessions}->${last.sessions}`, "", "", ((last.rss - first.rss) / 1024 / (last.sessions - first.sessions)).toFixed(1),
        ((last.live - first.live) / 1024 / (last.sessions - first.sessions)).toFixed(1), ""]);
    }
  }
  return table(rows);
}

// ------------------------------------------------------------------ 2. connects per second and per core

interface ConnectFigures { perSecond: number; cpuMsPerConnect: number; primaryMsPerConnect: number; serverCores: number; loaderCores: number; p50: number; p99: number; failed: number; failure?: string; load1: number }

async function connectRun(loaders: Loader[], port: number, caPem: string, counter: number, concurrency: number, pids: number[]): Promise<ConnectFigures> {
  const cpu0 = processCpuMs(pids);
  const primary0 = processCpuMs(pids.slice(0, 1));
  const t0 = performance.now();
  const results = await Promise.all(loaders.map((l) => l.pass({ port, caPem, tls: "TLSv1.3", kind: "wcm", timeoutMs: 180_000, counter, concurrency: Math.max(1, Math.round(concurrency / loaders.length)) })));
  const seconds = (performance.now() - t0) / 1000;
  const cpuMs = processCpuMs(pids) - cpu0;
  const primaryMs = processCpuMs(pids.slice(0, 1)) - primary0;
  const ok = results.reduce((n, r) => n + r.accepted, 0);
  const latencies = results.flatMap((r) => r.latencyMs);
  return {
    perSecond: ok / seconds, cpuMsPerConnect: ok ? cpuMs / ok : NaN, primaryMsPerConnect: ok ? primaryMs / ok : NaN, serverCores: cpuMs / 1000 / seconds,
    loaderCores: results.reduce((n, r) => n + r.clientCpu, 0), p50: percentile(latencies, 50), p99: percentile(latencies, 99),
    failed: results.reduce((n, r) => n + r.failed, 0), failure: results.find((r) => r.firstFailure)?.firstFailure, load1: loadavg()[0],
  };
}

async function connectsBench(count: number, rounds: number, concurrency: number, loaderCount: number, workers: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "wcm-sizing-connects-"));
  const { devices, csv } = makeDevices(count);
  const setups = [{ name: "1 process", workers: 1 }, { name: `serve --workers ${workers}`, workers }];
  const clouds = setups.map(() => new CloudChild());
  const slices = Array.from({ length: loaderCount }, (_, k) => devices.filter((_, i) => i % loaderCount === k));
  const loaders = slices.map((slice) => new Loader(slice));
  const figures: ConnectFigures[][] = setups.map(() => []);
  try {
    const started = [];
    for (let k = 0; k < setups.length; k++) {
      const reply = await clouds[k].request({ cmd: "start", dataDir: join(dir, `cloud-${k}`), csv, workers: setups[k].workers }, 180_000);
      if (reply.cmd !== "start") throw new Error("cloud child: unexpected reply");
      started.push(reply);
    }
    await sleep(1000);
    for (let round = 0; round < rounds; round++) {
      // the first pass per cloud is warm-up (counter 1); the measured rounds use counters 2..rounds+1
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const k of order) {
        if (round === 0) await connectRun(loaders, started[k].port, started[k].caPem, 1, concurrency, started[k].pids);
        const f = await connectRun(loaders, started[k].port, started[k].caPem, round + 2, concurrency, started[k].pids);
        figures[k].push(f);
        console.log(`  round ${round + 1} ${setups[k].name}: ${f.perSecond.toFixed(0)} connects/s, server ${f.cpuMsPerConnect.toFixed(2)} ms CPU/connect on ${f.serverCores.toFixed(2)} cores, loaders ${f.loaderCores.toFixed(2)} cores, failed ${f.failed}${f.failure ? ` (${f.failure})` : ""}, load ${load()}`);
      }
    }
  } finally {
    for (const l of loaders) l.close();
    await Promise.all(clouds.map((c) => c.close()));
    rmSync(dir, { recursive: true, force: true });
  }
  const rows: (string | number)[][] = [["cloud", "rounds", "connects/s median", "spread", "CPU ms/connect", "spread", "of which primary", "connects/s per server core", "server cores", "loader cores", "p50 ms", "p99 ms", "failed"]];
  setups.forEach((setup, k) => {
    const f = figures[k];
    const cpu = median(f.map((x) => x.cpuMsPerConnect));
    rows.push([setup.name, f.length, median(f.map((x) => x.perSecond)).toFixed(0), spread(f.map((x) => x.perSecond), 0), cpu.toFixed(2), spread(f.map((x) => x.cpuMsPerConnect), 2),
      setup.workers > 1 ? median(f.map((x) => x.primaryMsPerConnect)).toFixed(2) : "-", (1000 / cpu).toFixed(0), median(f.map((x) => x.serverCores)).toFixed(2), median(f.map((x) => x.loaderCores)).toFixed(2),
      median(f.map((x) => x.p50)).toFixed(1), median(f.map((x) => x.p99)).toFixed(1), f.reduce((n, x) => n + x.failed, 0)]);
  });
  return table(rows);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`bench:sizing: watchdog (${WATCHDOG_MS / 60_000} min)`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();
  const only = arg("only", "");
  const steps = arg("steps", "0,2000,5000").split(",").map(Number);
  const databases = arg("database", "sqlite,postgres").split(",");
  const count = Number(arg("connects", "1500"));
  const rounds = Number(arg("rounds", "3"));
  const concurrency = Number(arg("concurrency", "32"));
  const loaderCount = Number(arg("loaders", "2"));
  const workers = Number(arg("workers", "2"));
  console.log(`wcm bench:sizing: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${new Date().toISOString()}, load average ${load()}`);
  if (only !== "connects") {
    console.log(`\n1. RSS per connected device: idle MQTT/TLS 1.3 sessions (CONNECT + SUBSCRIBE, keepalive ${KEEPALIVE_S} s), steps ${steps.join(", ")}; cloud node flags --expose-gc`);
    const runs = new Map<string, RssStep[]>();
    for (const database of databases) {
      if (database === "postgres") {
        const why = postgresUnavailable();
        if (why) {
          console.log(`  postgres: skipped (${why})`);
          continue;
        }
      }
      runs.set(database, await rssRun(database as "sqlite" | "postgres", steps));
    }
    if (databases.includes("postgres")) await stopPostgres();
    console.log(rssTable(runs));
    console.log("  RSS of the cloud process only (not PostgreSQL's); live = V8 heap used + external after a full GC");
  }
  if (only !== "rss") {
    console.log(`\n2. Connects per second and per core: fresh TLS 1.3 handshake + CONNECT/CONNACK + DISCONNECT, ${count} devices per pass, concurrency ${concurrency} over ${loaderCount} loader processes, ${rounds} rounds (after one warm-up pass each), SQLite; load ${load()}`);
    console.log(await connectsBench(count, rounds, concurrency, loaderCount, workers));
    console.log(`  connects/s per server core = 1000 / CPU ms per connect (all cloud processes, /proc/<pid>/stat; "of which primary": the cluster primary's`);
    console.log(`  accept and hand-off); the loaders share the ${cpus().length} cores with the cloud: when server + loader cores reach the core count, the rate is the machine's, not the cloud's`);
  }
  console.log(`\nload average at the end ${load()}`);
}

if (invokedDirectly(import.meta.url)) {
  main().then(() => process.exit(0), (error) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  });
}
