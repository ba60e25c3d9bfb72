/*
 * `npm run bench:fleet`: fleet load on ONE cloud (not part of `npm test`).
 *
 * 0. Flood before authentication: raw TCP connections sending junk, stalled
 *    TLS handshakes, TLS sessions with a partial CONNECT, and CONNECTs with
 *    random ids, from many loopback source addresses; the cloud's RSS growth
 *    is sampled throughout (bound: 20 MB, as Mosquitto's flood tests).
 * 1. Storm: N simulated devices (the Node simulator host: the portable
 *    ConnectionManager, MQTT.js over TLS, each with its own in-memory
 *    SimulatedFlash) do their first boot with temporary credentials, started
 *    at a ramp of R per second, each from its own loopback address (the
 *    per-source limits then apply per device, as on a real network). Every
 *    device must end PERMANENT and ONLINE. Prints p50/p99 time to PERMANENT,
 *    cloud RSS per connected device, connects per second.
 * 2. The same storm on a fresh registry, with the cloud SIGKILLed when half
 *    the fleet is permanent and restarted on the same data directory and port:
 *    every device must end ONLINE on its permanent secret, none locked out,
 *    none with two active secrets (each registry row is checked).
 *
 * The cloud runs in a child process (bench/fleet-child.ts) with its default
 * abuse limits (cloud/limits.ts). Devices use a shorter back-off than the
 * defaults (network 0.5-8 s, auth 2-20 s) so the run ends in minutes; with
 * the defaults the same storm converges, just later.
 *
 * 3. With --nodes=2 --database=postgres: the same storms against two cloud
 *    nodes (child processes) on one throwaway PostgreSQL and one Redis
 *    (cluster.redis), device i talking to node i mod 2, printed beside the
 *    single-node SQLite storm of the same run; the SIGKILL run kills the
 *    second node and restarts it on the same port. RSS per device counts the
 *    cloud nodes only (not PostgreSQL or Redis).
 *
 * Settings: --devices=N (WCM_FLEET_DEVICES, default 10000), --rate=R devices
 * started per second (WCM_FLEET_RATE, default 500), --only=flood|storm|kill|storms
 * (storms: both storms, no flood), --nodes=N (1..4) with --database=sqlite|postgres.
 * Needs N + 1000 file descriptors in this process and in the cloud's:
 * `ulimit -n` is checked first (Node cannot raise its hard limit; run
 * `ulimit -n 65536` in the shell, up to `ulimit -Hn`). Loopback only; every
 * phase is bounded in time and a watchdog ends the process.
 */
import { execSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { randomBytes } from "node:crypto";
import { tmpdir, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedFlash } from "../hosts/node/file-preferences";
import { createMqttLink } from "../hosts/node/mqtt-link";
import type { ConnectionManager } from "../modules/manager";
import type { FleetCheck, FleetChildStats } from "./fleet-child";
import { FleetChild } from "./fleet-child-process";
import { createDatabase, postgresUnavailable, stopPostgres } from "../test/support/postgres";
import { redisUnavailable, startRedis, type TestRedis } from "../test/support/redis";
import { mb, percentile, table } from "./table";
import { freePort } from "./connect-bench";

// three storms (--nodes above 1) of up to 6 minutes each, plus start-up
const WATCHDOG_MS = 28 * 60_000;
const STORM_BUDGET_MS = 6 * 60_000;

function setting(name: string, env: string, fallback: number, min: number, max: number): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  const raw = arg ? arg.slice(name.length + 3) : process.env[env];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer in ${min}..${max}`);
  return value;
}

const DEVICES = setting("devices", "WCM_FLEET_DEVICES", 10_000, 10, 50_000);
const RATE = setting("rate", "WCM_FLEET_RATE", 500, 10, 20_000);
const ONLY = process.argv.slice(2).find((a) => a.startsWith("--only="))?.slice(7);
const NODES = setting("nodes", "WCM_FLEET_NODES", 1, 1, 4);
const DATABASE = process.argv.slice(2).find((a) => a.startsWith("--database="))?.slice(11) ?? process.env.WCM_FLEET_DATABASE ?? "sqlite";
if (DATABASE !== "sqlite" && DATABASE !== "postgres") throw new Error("--database is sqlite or postgres");
if (NODES > 1 && DATABASE !== "postgres") throw new Error("--nodes above 1 needs --database=postgres (nodes share the registry)");

/** Node flags of the cloud processes (the flood run adds its GC settings) */
const CLOUD_NODE_FLAGS: string[] = (process.env.WCM_CLOUD_NODE_FLAGS ?? "").split(" ").filter(Boolean);

/** A distinct loopback source address per device (64 per /24). */
function sourceAddress(i: number): string {
  return `127.${2 + (i >> 14)}.${(i >> 6) & 255}.${1 + (i & 63)}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

interface StartedChild {
  child: FleetChild;
  caPem: string;
  provisioningKeyHex?: string;
  stats: FleetChildStats;
}

async function startChild(dataDir: string, port: number, masterKeyHex: string, lot?: string, shared: { database?: string; redis?: string } = {}, nodeFlags = CLOUD_NODE_FLAGS): Promise<StartedChild> {
  const child = new FleetChild(nodeFlags);
  const reply = await child.request<{ caPem: string; provisioningKeyHex?: string; stats: FleetChildStats }>({ cmd: "start", dataDir, port, masterKeyHex, lot, ...shared });
  return { child, caPem: reply.caPem, provisioningKeyHex: reply.provisioningKeyHex, stats: reply.stats };
}

// ------------------------------------------------------------------ 0. flood

async function flood(): Promise<string[][]> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-fleet-flood-"));
  const port = await freePort();
  // --expose-gc: live memory is measured after a full GC; --max-semi-space-size=1:
  // V8's young generation otherwise grows to 2 x 16 MB under allocation pressure,
  // which shows as RSS growth whatever the cloud retains (cloud/README.md).
  const started = await startChild(dataDir, port, randomBytes(32).toString("hex"), undefined, {}, [...CLOUD_NODE_FLAGS, "--expose-gc", "--max-semi-space-size=1"]);
  const { child } = started;
  const sockets: Socket[] = [];
  const rows: string[][] = [["flood (each from 32 loopback sources)", "connections", "refused at accept", "peak unauthenticated", "peak RSS growth", "live growth (after GC)", "live growth since warm-up"]];
  try {
    await sleep(500);
    const kinds: [string, (i: number) => Socket][] = [
      ["junk bytes before TLS", (i) => {
        const s = netConnect({ host: "127.0.0.1", port, localAddress: `127.9.0.${1 + (i & 31)}` });
        s.on("connect", () => s.write(randomBytes(512)));
        return s;
      }],
      ["stalled TLS ClientHello (first 40 bytes)", (i) => {
        const s = netConnect({ host: "127.0.0.1", port, localAddress: `127.9.1.${1 + (i & 31)}` });
        s.on("connect", () => s.write(Buffer.from("16030100c8010000c40303" + "00".repeat(29), "hex")));
        return s;
      }],
      ["TLS done, partial CONNECT", (i) => {
        const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ...({ localAddress: `127.9.2.${1 + (i & 31)}` } as object) });
        s.on("secureConnect", () => s.write(Buffer.from([0x10, 0x7f, 0x00, 0x04, 0x4d, 0x51])));
        return s;
      }],
      ["CONNECT with random ids, bad password", (i) => {
        const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false, ...({ localAddress: `127.9.3.${1 + (i & 31)}` } as object) });
        s.on("secureConnect", () => {
          const id = `flood-${randomBytes(6).toString("hex")}`;
          const pw = "v1:s:1:" + "A".repeat(43);
          const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from("MQTT"), Buffer.from([4, 0xc2, 0, 60]),
            Buffer.from([0, id.length]), Buffer.from(id), Buffer.from([0, id.length]), Buffer.from(id), Buffer.from([0, pw.length]), Buffer.from(pw)]);
          s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
        });
        return s;
      }],
    ];
    // warm-up: JIT, TLS contexts, the heap's first growth; the growth is measured from here
    for (const [, open] of kinds) {
      for (let i = 0; i < 300; i++) sockets.push(open(i).on("error", () => undefined));
      await sleep(1500);
      for (const s of sockets.splice(0)) s.destroy();
    }
    await sleep(2000);
    const warm = await child.stats(true);
    for (const [label, open] of kinds) {
      const before = await child.stats(true);
      let peak = before.rss;
      let peakUnauthenticated = 0;
      const count = 3000;
      const sampler = setInterval(() => void child.stats().then((s) => {
        peak = Math.max(peak, s.rss);
        peakUnauthenticated = Math.max(peakUnauthenticated, s.unauthenticated);
      }, () => undefined), 100);
      for (let i = 0; i < count; i++) {
        const s = open(i);
        s.on("error", () => undefined);
        sockets.push(s);
        if (i % 100 === 99) await sleep(20);
      }
      await sleep(3000);
      clearInterval(sampler);
      const during = await child.stats(true); // the flood's sockets still open
      peak = Math.max(peak, during.rss);
      rows.push([
        label, String(count), String(during.connectionsRefused - before.connectionsRefused), String(peakUnauthenticated),
        mb(peak - before.rss), mb(during.liveAfterGc - before.liveAfterGc), mb(during.liveAfterGc - warm.liveAfterGc),
      ]);
      for (const s of sockets.splice(0)) s.destroy();
      await sleep(1500);
    }
  } finally {
    for (const s of sockets) s.destroy();
    await child.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return rows;
}

// ------------------------------------------------------------------ 1, 2. storms

interface StormResult {
  label: string;
  permanent: number;
  online: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  connectsPerSecond: number;
  rssPerDevice: number;
  check: FleetCheck;
  accepted: number;
  rateLimited: number;
  refusedAtAccept: number;
  killedAt?: number;
  restartMs?: number;
}

/** Where a storm runs: how many cloud nodes, on which registry. */
interface Topology {
  nodes: number;
  database: "sqlite" | "postgres";
}

async function storm(kill: boolean, topology: Topology = { nodes: 1, database: "sqlite" }): Promise<StormResult> {
  const where = topology.nodes === 1 && topology.database === "sqlite" ? "" : ` (${topology.nodes} node${topology.nodes === 1 ? "" : "s"}, ${topology.database === "postgres" ? "PostgreSQL + Redis" : "SQLite"})`;
  const label = (kill ? "storm + SIGKILL mid-way" : "storm") + where;
  const dataDirs = Array.from({ length: topology.nodes }, () => mkdtempSync(join(tmpdir(), "wcm-fleet-")));
  const ports: number[] = [];
  for (let n = 0; n < topology.nodes; n++) ports.push(await freePort());
  const masterKeyHex = randomBytes(32).toString("hex");
  // several nodes share one throwaway PostgreSQL (a fresh schema per run) and one Redis
  let redis: TestRedis | undefined;
  let database: string | undefined;
  if (topology.database === "postgres") {
    database = await createDatabase();
    redis = topology.nodes > 1 ? await startRedis() : undefined;
  }
  const shared = { ...(database ? { database } : {}), ...(redis ? { redis: redis.url } : {}) };
  const nodes: StartedChild[] = [];
  // the first node alone first: the schema, the server identity and the lot's key
  for (let n = 0; n < topology.nodes; n++) nodes.push(await startChild(dataDirs[n], ports[n], masterKeyHex, "fleet-lot", shared));
  const provisioningKey = nodes[0].provisioningKeyHex!;
  const caPem = nodes[0].caPem;
  const baselines = nodes.map((n) => n.stats.rss);
  // the node killed mid-way: the last one (the only one on a single node)
  const victim = topology.nodes - 1;
  const managers: ConnectionManager[] = [];
  const startedAt: number[] = new Array(DEVICES).fill(0);
  const permanentAt: number[] = new Array(DEVICES).fill(0);
  let permanent = 0;
  let killedAt: number | undefined;
  let restartMs: number | undefined;
  const t0 = performance.now();
  const deadline = t0 + STORM_BUDGET_MS;
  try {
    let next = 0;
    const perTick = Math.max(1, Math.round(RATE / 50));
    let killing: Promise<void> | undefined;
    while (performance.now() < deadline) {
      for (let k = 0; k < perTick && next < DEVICES; k++, next++) {
        const i = next;
        const deviceId = `fleet-${String(i).padStart(5, "0")}`;
        // device i talks to node i mod N (as DNS round robin would spread them)
        const port = ports[i % topology.nodes];
        const { manager } = createNodeDevice(
          { deviceId, option: "temporary", provisioningKey, cloud: { host: "127.0.0.1", port, ca: caPem, serverName: "localhost" } },
          {
            kv: new SimulatedFlash(),
            link: () => createMqttLink({ localAddress: sourceAddress(i), connectTimeoutMs: 20_000 }),
            manager: { retry: { networkBaseMs: 500, networkMaxMs: 8000, authBaseMs: 2000, authMaxMs: 20_000 }, requestTimeoutMs: 5000, connectTimeoutMs: 20_000 },
          },
        );
        managers.push(manager);
        manager.onStatus((status) => {
          if (permanentAt[i] === 0 && status.state === "ONLINE" && status.credential === "permanent") {
            permanentAt[i] = performance.now();
            permanent++;
          }
        });
        startedAt[i] = performance.now();
        manager.start();
      }
      if (kill && killedAt === undefined && permanent >= DEVICES / 2) {
        killedAt = (performance.now() - t0) / 1000;
        killing = (async () => {
          await nodes[victim].child.kill();
          const restart = performance.now();
          nodes[victim] = await startChild(dataDirs[victim], ports[victim], masterKeyHex, "fleet-lot", shared);
          baselines[victim] = nodes[victim].stats.rss;
          restartMs = performance.now() - restart;
        })();
      }
      const allOnline = permanent === DEVICES && managers.every((m) => m.status.state === "ONLINE");
      if (next >= DEVICES && allOnline) break;
      await sleep(20);
    }
    await killing;
    const seconds = (Math.max(...permanentAt) - t0) / 1000;
    await sleep(1000); // status reports arrive
    const stats = await Promise.all(nodes.map((n) => n.child.stats()));
    const sum = (f: (s: FleetChildStats) => number) => stats.reduce((total, s) => total + f(s), 0);
    const check = (await nodes[0].child.request<{ check: FleetCheck }>({ cmd: "check" })).check;
    const times = permanentAt.map((at, i) => (at > 0 ? at - startedAt[i] : Number.NaN)).filter(Number.isFinite);
    // one line as each run ends (the table comes at the end)
    console.log(`   ${label}: ${permanent}/${DEVICES} permanent in ${seconds.toFixed(1)} s, p50 ${percentile(times, 50).toFixed(0)} ms, p99 ${percentile(times, 99).toFixed(0)} ms, load average ${loadavg()[0].toFixed(1)}`);
    return {
      label, permanent, online: managers.filter((m) => m.status.state === "ONLINE" && m.status.credential === "permanent").length,
      seconds, p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times),
      connectsPerSecond: sum((s) => s.loginsAccepted) / seconds,
      rssPerDevice: stats.reduce((total, s, n) => total + s.rss - baselines[n], 0) / Math.max(1, sum((s) => s.liveSessions)),
      check, accepted: sum((s) => s.loginsAccepted), rateLimited: sum((s) => s.rateLimited), refusedAtAccept: sum((s) => s.connectionsRefused), killedAt, restartMs,
    };
  } finally {
    for (const m of managers) m.stop();
    for (const n of nodes) await n.child.close();
    await redis?.stop();
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error("fleet bench: watchdog fired");
    process.exit(3);
  }, WATCHDOG_MS);
  watchdog.unref();
  const soft = Number(execSync("sh -c 'ulimit -n'").toString().trim());
  const hard = execSync("sh -c 'ulimit -Hn'").toString().trim();
  const need = DEVICES + 1000;
  console.log(`wcm fleet bench: ${DEVICES} devices started at ${RATE}/s, ${cpus().length} CPUs, node ${process.version}, ulimit -n ${soft} (hard ${hard})`);
  if (Number.isFinite(soft) && soft < need) {
    console.error(`need ulimit -n >= ${need} (this process and the cloud child each); run: ulimit -n ${Math.min(65536, Number(hard) || 65536)} && npm run bench:fleet`);
    process.exit(2);
  }
  let failed = false;
  if (!ONLY || ONLY === "flood") {
    console.log("\n0. Flood before authentication (cloud defaults: 64 unauthenticated per source, 256 in total, 20 new/s per source burst 100, 300 new/s in total, CONNECT timeout 10 s;");
    console.log("   cloud node flags --expose-gc --max-semi-space-size=1; goal: under 20 MB, as Mosquitto keeps a pre-CONNECT flood)");
    console.log(table(await flood()));
  }
  const results: StormResult[] = [];
  const topology: Topology = { nodes: NODES, database: DATABASE as Topology["database"] };
  const single = topology.nodes === 1 && topology.database === "sqlite";
  if (!single) {
    const why = postgresUnavailable() ?? (topology.nodes > 1 ? redisUnavailable() : undefined);
    if (why) {
      console.error(`--database=postgres needs PostgreSQL${topology.nodes > 1 ? " and redis-server" : ""}: ${why}`);
      process.exit(2);
    }
  }
  // the single-node SQLite storm first, beside which the other topology's figures stand
  const runs = (name: string) => !ONLY || ONLY === name || ONLY === "storms";
  if (runs("storm")) results.push(await storm(false));
  if (!single && runs("storm")) results.push(await storm(false, topology));
  if (runs("kill")) results.push(await storm(true, single ? undefined : topology));
  if (!single) await stopPostgres();
  if (results.length > 0) {
    console.log(`\n1/2. First boot of ${DEVICES} temporary devices (one loopback address each), ramp ${RATE}/s, each cloud node in a child process${single ? "" : `; ${topology.nodes} nodes: device i talks to node i mod ${topology.nodes}, the last node is the one SIGKILLed`}; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    console.log(table([
      ["run", "permanent", "online", "all done s", "p50 to PERMANENT ms", "p99 ms", "max ms", "logins/s", "cloud RSS/device", "rate-limited", "refused at accept", "killed at s", "restart ms"],
      ...results.map((r) => [r.label, `${r.permanent}/${DEVICES}`, `${r.online}`, fmt(r.seconds, 1), fmt(r.p50), fmt(r.p99), fmt(r.max), fmt(r.connectsPerSecond),
        `${fmt(r.rssPerDevice / 1024, 1)} KB`, String(r.rateLimited), String(r.refusedAtAccept), r.killedAt === undefined ? "-" : fmt(r.killedAt, 1), r.restartMs === undefined ? "-" : fmt(r.restartMs)]),
    ]));
    console.log("\n   registry check after each run (every device row)");
    console.log(table([
      ["run", "rows", "still temporary", "two active secrets", "pending left", "locked out", "revoked", "state ONLINE", "refusals (audit, by reason)"],
      ...results.map((r) => [r.label, String(r.check.devices), String(r.check.temporary), String(r.check.twoActive), String(r.check.pending), String(r.check.lockedOut),
        String(r.check.revoked), String(r.check.online), Object.entries(r.check.refusals).map(([k, v]) => `${k}=${v}`).join(" ") || "none"]),
    ]));
    for (const r of results) {
      const ok = r.permanent === DEVICES && r.online === DEVICES && r.check.devices === DEVICES && r.check.temporary === 0 && r.check.twoActive === 0 && r.check.lockedOut === 0;
      if (!ok) {
        failed = true;
        console.error(`FAILED: ${r.label}: not every device ended PERMANENT and ONLINE with one active secret`);
      }
    }
    if (!failed) console.log("\n   every device ended PERMANENT and ONLINE; no row with two active secrets; none locked out");
  }
  process.exit(failed ? 1 : 0);
}

void main().catch((error) => {
  console.error(error);
  process.exit(1);
});
