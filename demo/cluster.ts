/*
 * `npm run demo:cluster`: a multi-node deployment on one machine, the way
 * docs/scale.md draws it, and what happens when a node dies.
 *
 *   devices --TLS--> HAProxy (TCP mode, leastconn, /readyz checks)
 *                      |-> cloud node 1  \
 *                      |-> cloud node 2   >-- PostgreSQL (registry)
 *                      |-> cloud node 3  /  `- Redis (aedes messages, notices)
 *
 * Starts a throwaway PostgreSQL and Redis (test/support/), three `serve`
 * processes on one database with `cluster.redis` set, and HAProxy in front of
 * their MQTT listeners (a generated haproxy.cfg in a temp folder). N simulated
 * devices (the Node simulator host, as bench/fleet-load.ts) do their first
 * boot with temporary credentials through HAProxy; when half are permanent,
 * node 2 is SIGKILLed. Every device must end PERMANENT and ONLINE on the two
 * remaining nodes, none with two active secrets, none locked out (each
 * registry row is checked). Then node 2 is restarted and a tenth of the fleet
 * reconnects: the restarted node must take some of them.
 *
 * Behind a TCP balancer every device comes from the balancer's address, so
 * the nodes' per-source connection limits (cloud/limits.ts) are raised here
 * to the balancer's share; the cloud does not read the PROXY protocol
 * (docs/scale.md). Settings: --devices=N (default 300), --rate=R devices
 * started per second (default 100). runClusterDemo() is what
 * test/cluster-deploy.test.ts runs.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { build } from "esbuild";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startCloud } from "../cloud/index";
import { Registry } from "../cloud/registry";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedFlash } from "../hosts/node/file-preferences";
import { createMqttLink } from "../hosts/node/mqtt-link";
import type { ConnectionManager } from "../modules/manager";
import type { KeyValuePort } from "../modules/ports";
import { fleetCheck, type FleetCheck } from "../bench/fleet-check";
import { createDatabase, postgresUnavailable, stopPostgres } from "../test/support/postgres";
import { freePort, redisUnavailable, startRedis, type TestRedis } from "../test/support/redis";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Why the demo cannot run here (a missing binary), or undefined. */
export function clusterDemoUnavailable(): string | undefined {
  const haproxy = spawnSync("haproxy", ["-v"], { stdio: "ignore" }).status === 0;
  return postgresUnavailable() ?? redisUnavailable() ?? (haproxy ? undefined : "haproxy is not installed (apt-get install haproxy)");
}

/** Options of runClusterDemo. */
export interface ClusterDemoOptions {
  devices?: number;
  /** devices started per second */
  rate?: number;
  /** progress lines */
  log?: (line: string) => void;
  /** ms the first boot (and the failover) may take in all (default 240000) */
  budgetMs?: number;
}

/** What the demo saw. */
export interface ClusterDemoResult {
  devices: number;
  /** devices PERMANENT and ONLINE at the end of the storm */
  permanentOnline: number;
  /** seconds from the first device started to the node's SIGKILL, and to the last device permanent */
  killedAtS: number;
  allDoneS: number;
  /** live sessions per node (wcm_mqtt_sessions) once the storm ended, the killed node down */
  sessionsAfterStorm: number[];
  /** the registry's rows after the storm */
  check: FleetCheck;
  /** devices reconnected after the killed node restarted, how many are ONLINE again, and the sessions per node then */
  reconnected: number;
  reconnectedOnline: number;
  sessionsAfterRestart: number[];
  /** index (0-based) of the killed node */
  killed: number;
  /** p50 / p99 ms from a device's start to PERMANENT */
  p50: number;
  p99: number;
}

interface Node {
  index: number;
  dataDir: string;
  mqttPort: number;
  opsPort: number;
  child?: ChildProcess;
  exited?: Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * The cloud's CLI as one ES module (as `npm run build:bundle` makes it): a node starts in a fraction
 * of the time tsx takes to compile the sources, which counts on a loaded machine. Written below
 * node_modules/.cache so that its one external import (better-sqlite3) resolves; removed at the end.
 */
async function bundleCli(): Promise<string> {
  const outfile = join(ROOT, "node_modules", ".cache", "wcm-cluster-demo", `wcm-${process.pid}-${Date.now()}.mjs`);
  await build({
    entryPoints: [join(ROOT, "cloud/cli.ts")], bundle: true, platform: "node", target: "node20", format: "esm", external: ["better-sqlite3"],
    banner: { js: "import { createRequire as __wcmRequire } from 'node:module'; const require = __wcmRequire(import.meta.url);" },
    logLevel: "warning", outfile,
  });
  return outfile;
}

/** Starts `serve` for one node; resolves once it printed its summary line. */
function startNode(node: Node, cli: string, env: Record<string, string>): Promise<void> {
  const child = spawn(process.execPath, [
    cli, "serve", "--mqtt-port", String(node.mqttPort), "--ops-port", String(node.opsPort), "--http-port", "0",
  ], {
    cwd: ROOT, stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env, WCM_DATA: node.dataDir },
  });
  node.child = child;
  node.exited = new Promise((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`node ${node.index + 1} printed no summary in 90 s: ${stderr}`)), 90_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("}\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${node.index + 1} exited ${code} at start: ${stderr}`));
    });
  });
}

async function stopNode(node: Node): Promise<void> {
  const child = node.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await node.exited;
  clearTimeout(timer);
}

/** Live MQTT sessions of a node from its /metrics (0 when it does not answer). */
async function sessionsOf(node: Node): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${node.opsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number(/^wcm_mqtt_sessions (\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function haproxyConfig(port: number, nodes: Node[]): string {
  return [
    "global",
    "  maxconn 4000",
    "defaults",
    "  mode tcp",
    "  timeout connect 2s",
    "  timeout client 10m",
    "  timeout server 10m",
    "  retries 2",
    "  option redispatch",
    "frontend mqtt",
    `  bind 127.0.0.1:${port}`,
    "  default_backend wcm",
    "backend wcm",
    "  balance leastconn",
    // traffic is TCP (TLS passes through); the check asks each node's ops listener whether it is ready
    "  option httpchk GET /readyz",
    ...nodes.map((n) => `  server node${n.index + 1} 127.0.0.1:${n.mqttPort} check port ${n.opsPort} inter 500 fall 2 rise 2`),
    "",
  ].join("\n");
}

/** Runs the demo (see the file header); every process it started is stopped before it returns. */
export async function runClusterDemo(options: ClusterDemoOptions = {}): Promise<ClusterDemoResult> {
  const devices = options.devices ?? 300;
  const rate = options.rate ?? 100;
  const log = options.log ?? (() => undefined);
  const budgetMs = options.budgetMs ?? 240_000;
  const why = clusterDemoUnavailable();
  if (why) throw new Error(why);
  const work = mkdtempSync(join(tmpdir(), "wcm-cluster-"));
  let redis: TestRedis | undefined;
  let haproxy: ChildProcess | undefined;
  const nodes: Node[] = [];
  const managers: ConnectionManager[] = [];
  let cli: string | undefined;
  try {
    redis = await startRedis();
    const database = await createDatabase();
    log(`PostgreSQL and Redis (${redis.url}) up`);
    const masterKey = new Uint8Array(randomBytes(32));
    // the lot, the server identity and the schema, once, before the nodes start
    const setupDir = join(work, "setup");
    const setup = await startCloud({ dataDir: mkdtempSync(setupDir), database, masterKey: Uint8Array.from(masterKey), mqttPort: 0 });
    const { provisioningKeyHex } = await setup.services.createProvisioningKey({ lot: "cluster-lot" });
    const caPem = setup.serverCaPem;
    await setup.close();
    const env = {
      WCM_DATABASE: database, WCM_MASTER_KEY: Buffer.from(masterKey).toString("hex"), WCM__CLUSTER__REDIS: redis.url, WCM__LOG__LEVEL: "warn",
      // every device arrives from HAProxy's address: the per-source limits get the balancer's share
      WCM__LIMITS__CONNECTIONS__UNAUTHENTICATED_PER_SOURCE: "1000", WCM__LIMITS__CONNECTIONS__QUEUE_PER_SOURCE: "4096",
      WCM__LIMITS__CONNECTIONS__NEW_PER_SOURCE__BURST: "2000", WCM__LIMITS__CONNECTIONS__NEW_PER_SOURCE__PER_SECOND: "1000",
    };
    for (let i = 0; i < 3; i++) nodes.push({ index: i, dataDir: mkdtempSync(join(work, `node${i + 1}-`)), mqttPort: await freePort(), opsPort: await freePort() });
    const bundle = await bundleCli();
    cli = bundle;
    await Promise.all(nodes.map((n) => startNode(n, bundle, env)));
    log(`3 cloud nodes up (MQTT ${nodes.map((n) => n.mqttPort).join(", ")})`);
    const port = await freePort();
    const cfg = join(work, "haproxy.cfg");
    writeFileSync(cfg, haproxyConfig(port, nodes));
    haproxy = spawn("haproxy", ["-db", "-f", cfg], { stdio: ["ignore", "ignore", "pipe"] });
    let haproxyLog = "";
    haproxy.stderr!.on("data", (chunk: Buffer) => (haproxyLog = (haproxyLog + chunk.toString()).slice(-4000)));
    // HAProxy is up once it accepts; the nodes are up once two checks passed
    for (let tries = 0; ; tries++) {
      if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyLog}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ host: "127.0.0.1", port }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
      if (ok) break;
      if (tries > 100) throw new Error(`haproxy does not accept on ${port}: ${haproxyLog}`);
      await sleep(100);
    }
    await sleep(1500);
    log(`HAProxy on 127.0.0.1:${port} (${cfg})`);

    const flashes: KeyValuePort[] = [];
    const makeDevice = (i: number) => {
      const deviceId = `cl-${String(i).padStart(4, "0")}`;
      const { manager } = createNodeDevice(
        { deviceId, option: "temporary", provisioningKey: provisioningKeyHex, cloud: { host: "127.0.0.1", port, ca: caPem, serverName: "localhost" } },
        {
          kv: flashes[i],
          link: () => createMqttLink({ connectTimeoutMs: 20_000 }),
          manager: { retry: { networkBaseMs: 300, networkMaxMs: 4000, authBaseMs: 1000, authMaxMs: 8000 }, requestTimeoutMs: 5000, connectTimeoutMs: 20_000 },
        },
      );
      return manager;
    };
    const startedAt: number[] = new Array(devices).fill(0);
    const permanentAt: number[] = new Array(devices).fill(0);
    let permanent = 0;
    const t0 = performance.now();
    const deadline = t0 + budgetMs;
    const killed = 1;
    let killedAtS = Number.NaN;
    let next = 0;
    const perTick = Math.max(1, Math.round(rate / 20));
    const allOnline = () => managers.length === devices && managers.every((m) => m.status.state === "ONLINE" && m.status.credential === "permanent");
    while (performance.now() < deadline) {
      for (let k = 0; k < perTick && next < devices; k++, next++) {
        const i = next;
        flashes[i] = new SimulatedFlash();
        const manager = makeDevice(i);
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
      if (Number.isNaN(killedAtS) && permanent >= devices / 2) {
        killedAtS = (performance.now() - t0) / 1000;
        nodes[killed].child!.kill("SIGKILL");
        await nodes[killed].exited;
        log(`node ${killed + 1} SIGKILLed at ${killedAtS.toFixed(1)} s (${permanent}/${devices} permanent)`);
      }
      if (next >= devices && permanent === devices && allOnline()) break;
      await sleep(50);
    }
    const allDoneS = (Math.max(...permanentAt) - t0) / 1000;
    const permanentOnline = managers.filter((m) => m.status.state === "ONLINE" && m.status.credential === "permanent").length;
    log(`${permanentOnline}/${devices} PERMANENT and ONLINE after ${allDoneS.toFixed(1)} s`);
    // the last status reports; a session a device replaced on another node may take a moment to close
    let sessionsAfterStorm: number[] = [];
    for (let waited = 0; waited < 15_000; waited += 500) {
      await sleep(500);
      sessionsAfterStorm = await Promise.all(nodes.map(sessionsOf));
      if (sessionsAfterStorm.reduce((a, b) => a + b, 0) === permanentOnline) break;
    }
    const registry = await Registry.connect(database, Uint8Array.from(masterKey));
    let check: FleetCheck;
    try {
      check = await fleetCheck(registry.storage);
    } finally {
      await registry.close();
    }
    log(`sessions per node: ${sessionsAfterStorm.join(" / ")}; registry: ${check.devices} rows, ${check.temporary} temporary, ${check.twoActive} with two active secrets, ${check.lockedOut} locked out`);

    // the killed node comes back; a tenth of the fleet reconnects (leastconn sends them to the emptiest node)
    await startNode(nodes[killed], cli!, env);
    for (let waited = 0; waited < 30_000; waited += 250) {
      await sleep(250);
      try {
        if ((await fetch(`http://127.0.0.1:${nodes[killed].opsPort}/readyz`, { signal: AbortSignal.timeout(2000) })).ok) break;
      } catch {
        // not yet
      }
    }
    await sleep(2000); // HAProxy's two checks (rise 2, every 500 ms)
    log(`node ${killed + 1} restarted`);
    const reconnected = Math.max(1, Math.round(devices / 10));
    for (let i = 0; i < reconnected; i++) {
      managers[i].stop();
      managers[i] = makeDevice(i);
      managers[i].start();
    }
    const until = performance.now() + 120_000;
    while (performance.now() < until) {
      if (managers.slice(0, reconnected).every((m) => m.status.state === "ONLINE")) break;
      await sleep(100);
    }
    await sleep(500);
    const reconnectedOnline = managers.slice(0, reconnected).filter((m) => m.status.state === "ONLINE" && m.status.credential === "permanent").length;
    const sessionsAfterRestart = await Promise.all(nodes.map(sessionsOf));
    log(`${reconnectedOnline}/${reconnected} reconnected devices ONLINE; sessions per node: ${sessionsAfterRestart.join(" / ")}`);
    const times = permanentAt.map((at, i) => (at > 0 ? at - startedAt[i] : Number.NaN)).filter(Number.isFinite);
    return {
      devices, permanentOnline, killedAtS, allDoneS, sessionsAfterStorm, check, reconnected, reconnectedOnline, sessionsAfterRestart, killed,
      p50: percentile(times, 50), p99: percentile(times, 99),
    };
  } finally {
    for (const m of managers) m.stop();
    if (haproxy && haproxy.exitCode === null) {
      haproxy.kill("SIGTERM");
      await new Promise((resolve) => haproxy!.once("exit", resolve));
    }
    await Promise.all(nodes.map(stopNode));
    await redis?.stop();
    await stopPostgres();
    rmSync(work, { recursive: true, force: true });
    if (cli) rmSync(cli, { force: true });
  }
}

function setting(name: string, fallback: number): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  const value = arg ? Number(arg.slice(name.length + 3)) : fallback;
  if (!Number.isInteger(value) || value < 1 || value > 100_000) throw new Error(`--${name} must be a positive integer`);
  return value;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const why = clusterDemoUnavailable();
  if (why) {
    console.error(`demo:cluster needs PostgreSQL, redis-server and haproxy: ${why}`);
    process.exit(2);
  }
  const started = performance.now();
  runClusterDemo({ devices: setting("devices", 300), rate: setting("rate", 100), log: (line) => console.log(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${line}`) }).then((r) => {
    const ok = r.permanentOnline === r.devices && r.check.temporary === 0 && r.check.twoActive === 0 && r.check.lockedOut === 0 && r.sessionsAfterRestart[r.killed] > 0;
    console.log(`\np50 / p99 to PERMANENT: ${r.p50.toFixed(0)} / ${r.p99.toFixed(0)} ms; node ${r.killed + 1} killed at ${r.killedAtS.toFixed(1)} s, all permanent at ${r.allDoneS.toFixed(1)} s`);
    console.log(ok ? "every device PERMANENT and ONLINE on the remaining nodes, none with two active secrets, none locked out; the restarted node took connections again" : "FAILED: see the lines above");
    process.exit(ok ? 0 : 1);
  }, (error: Error) => {
    console.error(error);
    process.exit(1);
  });
}
