/*
 * `npm run bench:peers`: the wcm cloud beside mosquitto and FreeRADIUS, in one
 * run, driven by the same load generators (not part of `npm test`).
 *
 * - MQTT: mosquitto (/usr/sbin/mosquitto: TLS with the cloud's own RSA server
 *   certificate, a password file, set_tcp_nodelay true, a private config
 *   folder, a loopback port) and the cloud's MQTT/TLS endpoint. The loaders
 *   are child processes running bench/connect-bench.ts's connectPass: a fresh
 *   TLS handshake per connect, CONNECT, accepted CONNACK, DISCONNECT; the
 *   same devices, N, concurrency and TLS version for both servers.
 * - RADIUS: FreeRADIUS (/usr/sbin/freeradius, not -X; its stock Debian
 *   configuration copied to a private folder, the cloud's ECDSA P-256 RADIUS
 *   identity, EAP-TTLS/PAP against its users file and EAP-TLS against the
 *   product CA, a non-default loopback port) and the cloud's RADIUS server.
 *   The loaders are bench/radius-bench.ts's peer processes (bench/radius-peer.ts).
 * Rounds alternate the order of the servers. Server CPU comes from
 * /proc/<pid>/stat (utime + stime of the whole process, every thread) around
 * each pass; the loaders report their own CPU, so a saturated load generator
 * shows up as loaders near 100% of a core each. The wcm cloud runs as
 * `--workers` processes (cloud/cluster.ts) when given, else one process.
 *
 * Settings: --devices N (1000) --concurrency C (32) --loaders L (2) --rounds R (3)
 * --seconds S per RADIUS pass (5) --tls 1.2,1.3 --only mqtt|radius --workers W
 * --resume N: after the RADIUS passes, N full and N resumed re-authentications per
 * method and server, one at a time (round trips and server CPU per authentication,
 * full vs resumed; FreeRADIUS's eap tls cache is on, as wcm's resumption is; 0 = skip).
 * A peer whose binary is missing is skipped with a message. WCM_PEERS_RADIUS_DEBUG=1 runs
 * FreeRADIUS with -X and writes its log to $TMPDIR/wcm-peers-freeradius-<method>.log.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { CloudChild, makeDevices, type BenchDevice } from "./connect-bench";
import { Loader, mosquittoPassword, type LoaderPass } from "./connect-loader";
import type { PeerMaterial } from "./cloud-child";
import { NAS_SECRET, runChild, type LoadResult } from "./radius-bench";
import { authenticate, UdpTransport, type PeerOptions } from "./radius-peer";
import { RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { invokedDirectly } from "../cloud/invoked-directly";
import { median, percentile, table } from "./table";
import type { TlsVersion } from "./online-bench";

const MOSQUITTO = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";
const FREERADIUS = "/usr/sbin/freeradius";
const FREERADIUS_CONF = "/etc/freeradius/3.0";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

/** CPU ms (user + system, all threads) of each process so far, from /proc/<pid>/stat. */
export function processCpuMs(pids: number[]): number {
  const tick = 1000 / clockTicks();
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) * tick; // utime, stime (fields 14, 15)
    } catch {
      // the process has gone: it adds nothing more
    }
  }
  return total;
}

let ticks: number | undefined;
function clockTicks(): number {
  ticks ??= Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  return ticks;
}

/** A free loopback port (TCP or UDP), by binding port 0 and closing. */
async function freePort(kind: "tcp" | "udp"): Promise<number> {
  if (kind === "tcp") {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  // the accounting port FreeRADIUS adds (port + 1) must be free too
  const next = createSocket("udp4");
  const ok = await new Promise<boolean>((resolve) => {
    next.once("error", () => resolve(false));
    next.bind(port + 1, "127.0.0.1", () => resolve(true));
  });
  socket.close();
  next.close();
  return ok ? port : freePort(kind);
}

async function waitForTcp(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && !exited()) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = netConnect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** A peer server process. */
interface Peer {
  name: string;
  child: ChildProcess;
  port: number;
  log: () => string;
  stop(): Promise<void>;
}

function track(name: string, child: ChildProcess, port: number): Peer {
  let log = "";
  child.stdout?.on("data", (chunk) => (log = (log + chunk).slice(-20_000)));
  child.stderr?.on("data", (chunk) => (log = (log + chunk).slice(-20_000)));
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once("exit", () => {
    exited = true;
    resolve();
  }));
  return {
    name, child, port, log: () => log,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** mosquitto with TLS, a password file (PBKDF2-SHA512, as mosquitto_passwd makes it) and set_tcp_nodelay. */
async function startMosquitto(dir: string, material: PeerMaterial, caPem: string, devices: BenchDevice[]): Promise<Peer> {
  const conf = join(dir, "mosquitto");
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, "ca.pem"), caPem);
  writeFileSync(join(conf, "server.pem"), material.serverCertPem);
  writeFileSync(join(conf, "server.key"), material.serverKeyPem, { mode: 0o600 });
  writeFileSync(join(conf, "passwd"), devices.map((d) => `${d.deviceId}:${mosquittoPassword(d, 0)}\n`).join(""), { mode: 0o600 });
  execFileSync(MOSQUITTO_PASSWD, ["-U", join(conf, "passwd")]);
  const port = await freePort("tcp");
  writeFileSync(join(conf, "mosquitto.conf"), [
    "per_listener_settings false", "allow_anonymous false", `password_file ${join(conf, "passwd")}`,
    "persistence false", "log_dest stderr", "log_type error", "log_type warning", "connection_messages false",
    "max_connections -1", "user root",
    `listener ${port} 127.0.0.1`, `cafile ${join(conf, "ca.pem")}`, `certfile ${join(conf, "server.pem")}`,
    `keyfile ${join(conf, "server.key")}`, "set_tcp_nodelay true", "",
  ].join("\n"));
  const child = spawn(MOSQUITTO, ["-c", join(conf, "mosquitto.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  const peer = track("mosquitto", child, port);
  await waitForTcp(port, 10_000, () => child.exitCode !== null).catch((error: Error) => {
    throw new Error(`mosquitto did not start: ${error.message}\n${peer.log()}`);
  });
  return peer;
}

/**
 * FreeRADIUS from a private copy of Debian's configuration: own log and run
 * folders, no privilege drop, one NAS client, the hotspot devices in the users
 * file, the eap module on the cloud's RADIUS identity and product CA,
 * default_eap_type ttls, one auth listener on a free loopback port.
 */
async function startFreeradius(dir: string, material: PeerMaterial): Promise<Peer> {
  const conf = join(dir, "raddb");
  cpSync(FREERADIUS_CONF, conf, { recursive: true, verbatimSymlinks: true });
  for (const sub of ["log", "run"]) mkdirSync(join(dir, sub), { recursive: true });
  const edit = (file: string, change: (text: string) => string) => writeFileSync(join(conf, file), change(readFileSync(join(conf, file), "utf8")));
  edit("radiusd.conf", (text) => text
    .replace(/^raddbdir = .*$/m, `raddbdir = ${conf}`)
    .replace(/^logdir = .*$/m, `logdir = ${join(dir, "log")}`)
    .replace(/^run_dir = .*$/m, `run_dir = ${join(dir, "run")}`)
    .replace(/^(\s*)(user|group) = .*$/gm, "$1# $2 (no privilege drop: the bench owns the folder)"));
  writeFileSync(join(conf, "clients.conf"), `client bench {\n\tipaddr = 127.0.0.1\n\tsecret = ${NAS_SECRET}\n\trequire_message_authenticator = yes\n}\n`);
  const users = material.hotspot.map((d) => `"${d.id}" Cleartext-Password := "${d.password.replace(/["\\]/g, "\\$&")}"\n`).join("");
  edit("mods-config/files/authorize", (text) => users + text);
  writeFileSync(join(conf, "radius.pem"), material.radiusCertPem);
  writeFileSync(join(conf, "radius.key"), material.radiusKeyPem, { mode: 0o600 });
  writeFileSync(join(conf, "product-ca.pem"), material.productCaPem);
  edit("mods-available/eap", (text) => text
    .replace(/default_eap_type = md5/, "default_eap_type = ttls")
    .replace(/^\s*private_key_password = .*$/m, "")
    .replace(/private_key_file = .*$/m, `private_key_file = ${join(conf, "radius.key")}`)
    .replace(/certificate_file = .*$/m, `certificate_file = ${join(conf, "radius.pem")}`)
    .replace(/ca_file = \/etc\/ssl\/certs\/ca-certificates.crt/, `ca_file = ${join(conf, "product-ca.pem")}`)
    .replace(/^\s*ca_path = \$\{cadir\}$/m, "")
    // TLS session resumption on, as the wcm server has it (session ids; 24 h, the stock lifetime);
    // FreeRADIUS 3.2 keeps its cache only on disk: it needs "name" and "persist_dir"
    .replace(/(\n\s*cache \{[\s\S]*?\n\s*)enable = no/, "$1enable = yes")
    .replace(/#\s*name = "EAP module"/, 'name = "wcm-bench"')
    .replace(/#\s*persist_dir = "\$\{logdir\}\/tlscache"/, `persist_dir = "${join(dir, "log", "tlscache")}"`));
  mkdirSync(join(dir, "log", "tlscache"), { recursive: true, mode: 0o700 });
  const port = await freePort("udp");
  // one auth listener on loopback (the stock ones take *:1812, :::1812, the accounting ports and 127.0.0.1:18120)
  const noListeners = (text: string) => text.replace(/^listen \{[\s\S]*?^\}/gm, "");
  edit("sites-available/default", (text) => noListeners(text).replace(/^server default \{$/m, `$&\nlisten {\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = ${port}\n}`));
  edit("sites-available/inner-tunnel", noListeners);
  const child = spawn(FREERADIUS, [process.env.WCM_PEERS_RADIUS_DEBUG ? "-X" : "-f", "-d", conf, "-l", "stdout"], { stdio: ["ignore", "pipe", "pipe"] });
  const peer = track("FreeRADIUS", child, port);
  const end = Date.now() + 20_000;
  while (!/Ready to process requests/.test(peer.log())) {
    if (child.exitCode !== null || Date.now() > end) throw new Error(`FreeRADIUS did not start:\n${peer.log().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return peer;
}

// ------------------------------------------------------------------ MQTT loaders

/** One MQTT pass of every loader at once, with the server's CPU around it. */
async function mqttPass(loaders: Loader[], job: Omit<LoaderPass, "concurrency" | "timeoutMs">, concurrency: number, pids: number[]): Promise<PassFigures> {
  const cpu0 = processCpuMs(pids);
  const t0 = performance.now();
  const results = await Promise.all(loaders.map((l) => l.pass({ ...job, timeoutMs: 120_000, concurrency: Math.max(1, Math.round(concurrency / loaders.length)) })));
  const seconds = (performance.now() - t0) / 1000;
  const cpuMs = processCpuMs(pids) - cpu0;
  const ok = results.reduce((n, r) => n + r.accepted, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const failure = results.find((r) => r.firstFailure)?.firstFailure;
  return {
    ok, failed, failure, seconds, perSecond: ok / seconds, latencies: results.flatMap((r) => r.latencyMs),
    serverCpuMsPerOp: ok ? cpuMs / ok : NaN, serverCores: cpuMs / 1000 / seconds,
    loaderCores: results.reduce((n, r) => n + r.clientCpu, 0), negotiated: Object.keys(Object.assign({}, ...results.map((r) => r.negotiated))).join(" "),
  };
}

// ------------------------------------------------------------------ RADIUS

async function radiusPass(
  port: number, caPem: string, material: PeerMaterial, method: "ttls" | "tls", seconds: number, loaders: number, concurrency: number, pids: number[],
): Promise<PassFigures> {
  const cpu0 = processCpuMs(pids);
  const t0 = performance.now();
  const results: LoadResult[] = await Promise.all(Array.from({ length: loaders }, () => runChild({
    port, seconds, concurrency: Math.max(1, Math.round(concurrency / loaders)), caPem, devices: material.hotspot, method, cert: material.cert,
    // a realm with a dot: FreeRADIUS's stock filter_username policy rejects "anonymous@wcm"
    anonymousIdentity: "anonymous@wcm.example",
  })));
  const elapsed = (performance.now() - t0) / 1000;
  const cpuMs = processCpuMs(pids) - cpu0;
  const ok = results.reduce((n, r) => n + r.ok, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const reasons = Object.entries(Object.assign({}, ...results.map((r) => r.reasons)) as Record<string, number>).map(([k, v]) => `${k}=${v}`).join(", ");
  return {
    ok, failed, failure: reasons || undefined, seconds, perSecond: ok / seconds, latencies: results.flatMap((r) => r.latencies),
    serverCpuMsPerOp: ok ? cpuMs / ok : NaN, serverCores: cpuMs / 1000 / elapsed, loaderCores: NaN, negotiated: "TLSv1.2",
  };
}

/** One batch of authentications, one at a time: what each took, and the server's CPU around the batch. */
interface ResumeBatch { ok: number; resumed: number; roundTrips: number[]; cpuMsPerAuth: number }

/**
 * Full and resumed authentications of one device, one conversation at a time
 * (so the CPU read around a batch is the server's alone): `count` full ones,
 * then one full one whose session the next `count` resume (each resuming the
 * session the previous one left), by session id as wpa_supplicant does.
 */
async function resumePass(port: number, caPem: string, material: PeerMaterial, method: "ttls" | "tls", count: number, pids: number[]): Promise<{ full: ResumeBatch; resumed: ResumeBatch }> {
  const udp = new UdpTransport("127.0.0.1", port, 3000, 3);
  const device = material.hotspot[0]!;
  const options: PeerOptions = method === "ttls"
    ? { nasSecret: NAS_SECRET, method, identity: device.id, password: device.password, anonymousIdentity: "anonymous@wcm.example", caPem, serverName: RADIUS_SERVER_NAME }
    : { nasSecret: NAS_SECRET, method, identity: material.cert.id, certPem: material.cert.certPem, keyPem: material.cert.keyPem, caPem, serverName: RADIUS_SERVER_NAME };
  const batch = async (resume: boolean): Promise<ResumeBatch> => {
    let session = resume ? (await authenticate(udp.send, options)).session : undefined;
    const out: ResumeBatch = { ok: 0, resumed: 0, roundTrips: [], cpuMsPerAuth: NaN };
    const cpu0 = processCpuMs(pids);
    for (let i = 0; i < count; i++) {
      const result = await authenticate(udp.send, resume && session ? { ...options, session } : options);
      if (!result.ok) continue;
      out.ok++;
      if (result.resumed) out.resumed++;
      out.roundTrips.push(result.roundTrips);
      if (resume && result.session) session = result.session;
    }
    out.cpuMsPerAuth = out.ok ? (processCpuMs(pids) - cpu0) / out.ok : NaN;
    return out;
  };
  try {
    return { full: await batch(false), resumed: await batch(true) };
  } finally {
    udp.close();
  }
}

/** The resumption table: per server and method, full vs resumed, and wcm beside FreeRADIUS. */
function reportResume(figures: Map<string, { full: ResumeBatch; resumed: ResumeBatch }[]>): void {
  const rows: (string | number)[][] = [["server", "method", "rounds", "full: round trips", "full: CPU ms/auth", "resumed: round trips", "resumed: CPU ms/auth", "spread", "resumed/full CPU", "resumed share"]];
  const cpu = (passes: ResumeBatch[]) => median(passes.map((p) => p.cpuMsPerAuth).filter(Number.isFinite));
  const trips = (passes: ResumeBatch[]) => median(passes.flatMap((p) => p.roundTrips));
  for (const [name, passes] of figures) {
    const full = passes.map((p) => p.full);
    const resumed = passes.map((p) => p.resumed);
    const okResumed = resumed.reduce((n, p) => n + p.ok, 0);
    rows.push([name.split(" ")[0]!, name.split(" ").slice(1).join(" "), passes.length, trips(full), cpu(full).toFixed(2), trips(resumed), cpu(resumed).toFixed(2),
      spread(resumed.map((p) => p.cpuMsPerAuth), 2), (cpu(resumed) / cpu(full)).toFixed(2), `${resumed.reduce((n, p) => n + p.resumed, 0)}/${okResumed}`]);
  }
  console.log("\nRADIUS re-authentication with TLS session resumption (one conversation at a time, session ids; FreeRADIUS with its eap tls cache on)");
  console.log(table(rows));
  for (const label of ["EAP-TTLS/PAP", "EAP-TLS (EC)"]) {
    const a = figures.get(`wcm ${label}`);
    const b = figures.get(`FreeRADIUS ${label}`);
    if (!a?.length || !b?.length) continue;
    const ratio = (pick: (x: { full: ResumeBatch; resumed: ResumeBatch }) => ResumeBatch) => a.map((p, i) => pick(p).cpuMsPerAuth / pick(b[i]!).cpuMsPerAuth).filter(Number.isFinite);
    const full = ratio((x) => x.full);
    const resumed = ratio((x) => x.resumed);
    console.log(`  wcm / FreeRADIUS ${label}: server CPU per full authentication ${median(full).toFixed(2)}x (rounds ${spread(full, 2)}), per resumed ${median(resumed).toFixed(2)}x (rounds ${spread(resumed, 2)})`);
  }
}

// ------------------------------------------------------------------ report

interface PassFigures {
  ok: number;
  failed: number;
  failure: string | undefined;
  seconds: number;
  perSecond: number;
  latencies: number[];
  serverCpuMsPerOp: number;
  /** server CPU during the pass, in cores */
  serverCores: number;
  /** loaders' own CPU during the pass, in cores (NaN: not measured) */
  loaderCores: number;
  negotiated: string;
}

const spread = (values: number[], digits: number): string =>
  values.length > 1 ? `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}` : "-";

function report(title: string, unit: string, figures: Map<string, PassFigures[]>, pairs: [string, string][]): void {
  const rows: (string | number)[][] = [["server", "passes", `${unit}/s median`, "spread", "p50 ms", "p99 ms", "CPU ms/op median", "spread", "server cores", "loader cores", "failed", "negotiated"]];
  for (const [name, passes] of figures) {
    const lat = passes.flatMap((p) => p.latencies);
    const loader = passes.map((p) => p.loaderCores).filter((v) => !Number.isNaN(v));
    rows.push([name, passes.length, median(passes.map((p) => p.perSecond)).toFixed(0), spread(passes.map((p) => p.perSecond), 0),
      lat.length ? percentile(lat, 50).toFixed(1) : "-", lat.length ? percentile(lat, 99).toFixed(1) : "-",
      median(passes.map((p) => p.serverCpuMsPerOp)).toFixed(2), spread(passes.map((p) => p.serverCpuMsPerOp), 2),
      median(passes.map((p) => p.serverCores)).toFixed(2), loader.length ? median(loader).toFixed(2) : "-",
      passes.reduce((n, p) => n + p.failed, 0), passes[0]?.negotiated ?? ""]);
  }
  console.log(`\n${title}`);
  console.log(table(rows));
  for (const [name, passes] of figures) {
    const failure = passes.find((p) => p.failure)?.failure;
    if (failure) console.log(`  ${name}: first failure ${failure}`);
  }
  for (const [wcm, peer] of pairs) {
    const a = figures.get(wcm);
    const b = figures.get(peer);
    if (!a?.length || !b?.length) continue;
    // ratios per round (the two passes of a round ran back to back), then their median and spread
    const rate = a.map((p, i) => p.perSecond / (b[i]?.perSecond ?? NaN)).filter(Number.isFinite);
    const cpu = a.map((p, i) => p.serverCpuMsPerOp / (b[i]?.serverCpuMsPerOp ?? NaN)).filter(Number.isFinite);
    console.log(`  ${wcm} / ${peer}: ${unit}/s ${median(rate).toFixed(2)}x (rounds ${spread(rate, 2)}), server CPU per op ${median(cpu).toFixed(2)}x (rounds ${spread(cpu, 2)})`);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const count = Number(arg("devices", "1000"));
  const concurrency = Number(arg("concurrency", "32"));
  const loaderCount = Number(arg("loaders", "2"));
  const rounds = Number(arg("rounds", "3"));
  const seconds = Number(arg("seconds", "5"));
  const workers = Number(arg("workers", "0"));
  const versions = arg("tls", "1.2,1.3").split(",").map((v) => `TLSv${v}` as TlsVersion);
  const only = arg("only", "");
  const resumeCount = Number(arg("resume", "100"));
  const hasMosquitto = existsSync(MOSQUITTO) && existsSync(MOSQUITTO_PASSWD);
  const hasFreeradius = existsSync(FREERADIUS) && existsSync(FREERADIUS_CONF);
  const dir = mkdtempSync(join(tmpdir(), "wcm-peers-"));
  chmodSync(dir, 0o700);
  const peers: Peer[] = [];
  const cloud = new CloudChild();
  const loaders: Loader[] = [];
  console.log(`wcm bench:peers: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`devices ${count}, concurrency ${concurrency} over ${loaderCount} loader processes, ${rounds} rounds, RADIUS ${seconds} s per pass, wcm ${workers > 0 ? `${workers} workers` : "one process"}`);
  try {
    const { devices, csv } = makeDevices(count);
    const started = await cloud.request({ cmd: "start", dataDir: join(dir, "cloud"), csv, radius: { nasSecret: NAS_SECRET, devices: 200 }, workers }, 180_000);
    if (started.cmd !== "start" || !started.peers) throw new Error("cloud child did not start");
    const material = started.peers;
    const wcmPids = started.pids;
    for (let i = 0; i < loaderCount; i++) loaders.push(new Loader(devices.filter((_, j) => j % loaderCount === i)));

    const mosquitto = hasMosquitto && only !== "radius" ? await startMosquitto(dir, material, started.caPem, devices) : undefined;
    if (!hasMosquitto) console.log(`mosquitto not installed (${MOSQUITTO}): MQTT peer skipped`);
    const freeradius = hasFreeradius && only !== "mqtt" ? await startFreeradius(dir, material) : undefined;
    if (!hasFreeradius) console.log(`FreeRADIUS not installed (${FREERADIUS}): RADIUS peer skipped`);
    if (mosquitto) peers.push(mosquitto);
    if (freeradius) peers.push(freeradius);

    const load: number[] = [];
    if (only !== "radius") {
      const figures = new Map<string, PassFigures[]>();
      const pairs: [string, string][] = [];
      // warm-up (not counted): one pass of each server, so JIT and caches are warm on both sides
      let counter = 1;
      await mqttPass(loaders, { port: started.port, caPem: started.caPem, tls: versions[0], counter, kind: "wcm" }, concurrency, wcmPids);
      if (mosquitto) await mqttPass(loaders, { port: mosquitto.port, caPem: started.caPem, tls: versions[0], counter, kind: "mosquitto" }, concurrency, [mosquitto.child.pid!]);
      for (let round = 0; round < rounds; round++) {
        for (const tls of versions) {
          counter++;
          const order: ("wcm" | "mosquitto")[] = round % 2 === 0 ? ["mosquitto", "wcm"] : ["wcm", "mosquitto"];
          for (const kind of order) {
            if (kind === "mosquitto" && !mosquitto) continue;
            const name = `${kind} ${tls}`;
            const pass = await mqttPass(loaders, {
              port: kind === "wcm" ? started.port : mosquitto!.port, caPem: started.caPem, tls, counter, kind,
            }, concurrency, kind === "wcm" ? wcmPids : [mosquitto!.child.pid!]);
            figures.set(name, [...(figures.get(name) ?? []), pass]);
          }
          if (round === 0) pairs.push([`wcm ${tls}`, `mosquitto ${tls}`]);
        }
        load.push(loadavg()[0]);
      }
      report(`MQTT/TLS connects (fresh handshake, password login, CONNECT -> CONNACK -> DISCONNECT), ${count} devices per pass`, "connects", figures, pairs);
    }
    if (only !== "mqtt") {
      const figures = new Map<string, PassFigures[]>();
      const pairs: [string, string][] = [];
      for (const method of ["ttls", "tls"] as const) { // warm-up (not counted)
        await radiusPass(material.radiusPort, started.caPem, material, method, 1, loaderCount, concurrency, wcmPids);
        if (freeradius) await radiusPass(freeradius.port, started.caPem, material, method, 1, loaderCount, concurrency, [freeradius.child.pid!]);
      }
      for (let round = 0; round < rounds; round++) {
        for (const method of ["ttls", "tls"] as const) {
          const label = method === "ttls" ? "EAP-TTLS/PAP" : "EAP-TLS (EC)";
          const order = round % 2 === 0 ? ["FreeRADIUS", "wcm"] : ["wcm", "FreeRADIUS"];
          for (const server of order) {
            if (server === "FreeRADIUS" && !freeradius) continue;
            const name = `${server} ${label}`;
            const pass = await radiusPass(server === "wcm" ? material.radiusPort : freeradius!.port, started.caPem, material, method, seconds, loaderCount, concurrency,
              server === "wcm" ? wcmPids : [freeradius!.child.pid!]);
            figures.set(name, [...(figures.get(name) ?? []), pass]);
            if (process.env.WCM_PEERS_RADIUS_DEBUG && freeradius) writeFileSync(join(tmpdir(), `wcm-peers-freeradius-${method}.log`), freeradius.log());
          }
          if (round === 0) pairs.push([`wcm ${label}`, `FreeRADIUS ${label}`]);
        }
        load.push(loadavg()[0]);
      }
      report(`RADIUS authentications (bench/radius-peer.ts over UDP, ${RADIUS_SERVER_NAME} ECDSA P-256 server certificate), ${seconds} s per pass`, "auths", figures, pairs);
      if (resumeCount > 0) {
        const resumeFigures = new Map<string, { full: ResumeBatch; resumed: ResumeBatch }[]>();
        for (let round = 0; round < rounds; round++) {
          for (const method of ["ttls", "tls"] as const) {
            const label = method === "ttls" ? "EAP-TTLS/PAP" : "EAP-TLS (EC)";
            for (const server of round % 2 === 0 ? ["FreeRADIUS", "wcm"] : ["wcm", "FreeRADIUS"]) {
              if (server === "FreeRADIUS" && !freeradius) continue;
              const pass = await resumePass(server === "wcm" ? material.radiusPort : freeradius!.port, started.caPem, material, method, resumeCount,
                server === "wcm" ? wcmPids : [freeradius!.child.pid!]);
              resumeFigures.set(`${server} ${label}`, [...(resumeFigures.get(`${server} ${label}`) ?? []), pass]);
            }
          }
          load.push(loadavg()[0]);
        }
        reportResume(resumeFigures);
      }
    }
    console.log(`\n1-minute load average after each round: ${load.map((l) => l.toFixed(2)).join(" ")} (${cpus().length} cores; other work on the machine shares them)`);
    console.log("server cores + loader cores near the core count: the machine, not the server, is the limit; compare CPU ms/op then.");
  } finally {
    for (const l of loaders) l.close();
    if (process.env.WCM_PEERS_RADIUS_DEBUG) console.log(peers.map((p) => p.log()).join("\n").slice(-6000));
    for (const p of peers) await p.stop();
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (invokedDirectly(import.meta.url)) {
  main().then(() => process.exit(0), (error) => {
    console.error(error);
    process.exit(1);
  });
}
