/*
 * bench:radius: the RADIUS server's cost per authentication.
 *
 * 1. EAP round trips per method: Access-Request/response exchanges per
 *    successful authentication, counted by the stock eapol_test (when
 *    installed) and by the bench peer, for TTLS/PAP and EAP-TLS (RSA, EC) at
 *    fragment sizes 1000 (the default) and 300.
 * 2. Hotspot authentications per second at the server: the cloud's RADIUS
 *    server in this process; load from child processes running the bench peer
 *    (bench/radius-peer.ts) over UDP, and, when installed, from parallel
 *    eapol_test processes. Goal: at least 300 TTLS/PAP authentications/s.
 *
 * Run: npm run bench:radius [-- --seconds 10 --children 2 --concurrency 16]
 * (not part of npm test). Prints tables. bench/peers.ts reuses its load children (runChild).
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startCloud, type Cloud } from "../cloud/index";
import { invokedDirectly } from "../cloud/invoked-directly";
import { nodeDigest } from "../cloud/node-digest";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { RadiusServer } from "../cloud/radius/server";
import { deriveHotspotPassword } from "../modules/derive";
import { authenticate, UdpTransport, type PeerOptions } from "./radius-peer";
import { table, percentile } from "./table";

/** The NAS secret of every RADIUS benchmark (bench/peers.ts gives FreeRADIUS the same). */
export const NAS_SECRET = "bench-radius-shared-secret";
const DEVICES = 200;

/** One load child's job: `concurrency` conversations in a loop for `seconds`. */
export interface LoadConfig {
  port: number;
  seconds: number;
  concurrency: number;
  caPem: string;
  devices: { id: string; password: string }[];
  method: "ttls" | "tls";
  cert?: { certPem: string; keyPem: string; id: string };
  /** TTLS outer identity (default the peer's anonymous@wcm) */
  anonymousIdentity?: string;
}

/** What a load child counted. */
export interface LoadResult {
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  latencies: number[];
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Child side: runs `concurrency` conversations in a loop for `seconds`. */
async function loadChild(config: LoadConfig): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, failed: 0, reasons: {}, latencies: [] };
  const end = Date.now() + config.seconds * 1000;
  let next = Math.floor(Math.random() * config.devices.length);
  const worker = async () => {
    const udp = new UdpTransport("127.0.0.1", config.port, 2000, 1);
    try {
      while (Date.now() < end) {
        const device = config.devices[next++ % config.devices.length];
        const options: PeerOptions = config.method === "tls"
          ? { nasSecret: NAS_SECRET, method: "tls", identity: config.cert!.id, certPem: config.cert!.certPem, keyPem: config.cert!.keyPem, caPem: config.caPem, serverName: RADIUS_SERVER_NAME }
          : { nasSecret: NAS_SECRET, method: "ttls", identity: device.id, password: device.password, caPem: config.caPem, serverName: RADIUS_SERVER_NAME, anonymousIdentity: config.anonymousIdentity };
        const started = performance.now();
        const outcome = await authenticate(udp.send, options);
        if (outcome.ok) {
          result.ok++;
          result.latencies.push(performance.now() - started);
        } else {
          result.failed++;
          result.reasons[outcome.reason ?? "?"] = (result.reasons[outcome.reason ?? "?"] ?? 0) + 1;
        }
      }
    } finally {
      udp.close();
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  return result;
}

/** Runs one load child (this file with --child) and returns its counts. */
export function runChild(config: LoadConfig): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child"], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load child exited ${code}`))));
    child.stdin.end(JSON.stringify(config));
  });
}

/** Whether wpa_supplicant's eapol_test is on PATH. */
export function hasEapolTest(): boolean {
  try {
    execFileSync("sh", ["-c", "command -v eapol_test"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function eapolTest(conf: string, port: number): Promise<{ ok: boolean; requests: number }> {
  return new Promise((resolve) => {
    execFile("eapol_test", ["-c", conf, "-a", "127.0.0.1", "-p", String(port), "-s", NAS_SECRET, "-r0", "-t", "10"], { maxBuffer: 64 << 20 }, (error, stdout) => {
      resolve({ ok: !error && /^SUCCESS$/m.test(stdout), requests: (stdout.match(/RADIUS message: code=1 \(Access-Request\)/g) ?? []).length });
    });
  });
}

async function main(): Promise<void> {
  const seconds = arg("seconds", 10);
  const children = arg("children", 2);
  const concurrency = arg("concurrency", 16);
  const dir = mkdtempSync(join(tmpdir(), "wcm-radius-bench-"));
  const cloud: Cloud = await startCloud({
    dataDir: join(dir, "data"), masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, radiusPort: 0,
    radius: { nasRate: { burst: 100_000, perSecond: 100_000 }, maxSessions: 4096 },
    limits: { login: { perDevice: { burst: 100_000, perSecond: 100_000 } } },
  });
  try {
    const services = cloud.services;
    await services.addNasClient({ name: "bench-ap", address: "127.0.0.1", secret: NAS_SECRET });
    const devices: { id: string; password: string }[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const id = `bench-${String(i).padStart(4, "0")}`;
      const secret = randomBytes(32);
      await services.registerSecretDevice({ deviceId: id, secretHex: secret.toString("hex") });
      devices.push({ id, password: deriveHotspotPassword(nodeDigest, secret, id) });
    }
    await services.createProductCa({ name: "bench-ca" });
    const certs: Record<"rsa" | "ec", { certPem: string; keyPem: string; id: string }> = {} as never;
    for (const keyType of ["rsa", "ec"] as const) {
      const id = `bench-cert-${keyType}`;
      const issued = await services.issueDeviceCertificate({ caName: "bench-ca", deviceId: id, keyType });
      await services.registerCertificateDevice({ deviceId: id, caName: "bench-ca" });
      certs[keyType] = { certPem: issued.certificatePem, keyPem: issued.privateKeyPem, id };
      writeFileSync(join(dir, `${id}.cert.pem`), issued.certificatePem);
      writeFileSync(join(dir, `${id}.key.pem`), issued.privateKeyPem);
    }
    writeFileSync(join(dir, "ca.pem"), cloud.serverCaPem);
    console.log(`wcm RADIUS bench: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})\n`);

    // ---------------------------------------------------------------- round trips
    const tls = await radiusIdentity(cloud.registry);
    const eapol = hasEapolTest();
    const rows: (string | number)[][] = [["method", "fragment", "eapol_test round trips", "bench peer round trips", "server bytes out/auth"]];
    for (const fragment of [1000, 300]) {
      const server = new RadiusServer({ registry: cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, port: 0, fragmentSize: fragment });
      const port = await server.start();
      const udp = new UdpTransport("127.0.0.1", port);
      try {
        const device = devices[0];
        const methods: { name: string; peer: PeerOptions; conf: string }[] = [
          {
            name: "TTLS/PAP",
            peer: { nasSecret: NAS_SECRET, method: "ttls", identity: device.id, password: device.password, caPem: cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, fragmentSize: fragment },
            conf: `eap=TTLS\n identity="${device.id}"\n anonymous_identity="anonymous@wcm"\n password="${device.password}"\n phase2="auth=PAP"`,
          },
          ...(["rsa", "ec"] as const).map((k) => ({
            name: `EAP-TLS (${k.toUpperCase()} key)`,
            peer: { nasSecret: NAS_SECRET, method: "tls" as const, identity: certs[k].id, certPem: certs[k].certPem, keyPem: certs[k].keyPem, caPem: cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, fragmentSize: fragment },
            conf: `eap=TLS\n identity="${certs[k].id}"\n client_cert="${join(dir, `${certs[k].id}.cert.pem`)}"\n private_key="${join(dir, `${certs[k].id}.key.pem`)}"`,
          })),
        ];
        for (const m of methods) {
          let eapolTrips: string | number = "not installed";
          if (eapol) {
            const conf = join(dir, "rt.conf");
            writeFileSync(conf, `network={\n key_mgmt=WPA-EAP\n ${m.conf}\n ca_cert="${join(dir, "ca.pem")}"\n domain_match="${RADIUS_SERVER_NAME}"\n fragment_size=${fragment}\n}\n`);
            const r = await eapolTest(conf, port);
            eapolTrips = r.ok ? r.requests : "failed";
          }
          const peer = await authenticate(udp.send, m.peer);
          rows.push([m.name, fragment, eapolTrips, peer.ok ? peer.roundTrips : `failed: ${peer.reason}`, "-"]);
        }
      } finally {
        udp.close();
        await server.close();
      }
    }
    console.log("EAP round trips per successful authentication (Access-Request -> Challenge/Accept)");
    console.log(table(rows.map((r) => r.slice(0, 4))));

    // ---------------------------------------------------------------- throughput
    const port = cloud.radiusPort!;
    const rate: (string | number)[][] = [["load", "method", "seconds", "accepted", "failed", "auth/s", "p50 ms", "p99 ms", "server CPU %", "server CPU ms/auth", "server auth/s per core"]];
    const perAuth = (cpu: NodeJS.CpuUsage, ok: number): string[] => {
      if (ok === 0) return ["-", "-"];
      const ms = (cpu.user + cpu.system) / 1000 / ok;
      return [ms.toFixed(2), (1000 / ms).toFixed(0)];
    };
    for (const method of ["ttls", "tls"] as const) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const results = await Promise.all(Array.from({ length: children }, () => runChild({
        port, seconds, concurrency, caPem: cloud.serverCaPem, devices, method, cert: method === "tls" ? certs.rsa : undefined,
      })));
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const ok = results.reduce((n, r) => n + r.ok, 0);
      const failed = results.reduce((n, r) => n + r.failed, 0);
      const lat = results.flatMap((r) => r.latencies);
      const reasons = Object.entries(results.reduce((acc, r) => {
        for (const [k, v] of Object.entries(r.reasons)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {} as Record<string, number>));
      rate.push([`${children} peer processes x ${concurrency}`, method === "ttls" ? "TTLS/PAP" : "EAP-TLS (RSA)", seconds, ok, failed,
        (ok / seconds).toFixed(0), lat.length ? percentile(lat, 50).toFixed(1) : "-", lat.length ? percentile(lat, 99).toFixed(1) : "-",
        ((cpu.user + cpu.system) / 1e4 / elapsed).toFixed(0), ...perAuth(cpu, ok)]);
      if (reasons.length) console.log(`  ${method} failures: ${reasons.map(([k, v]) => `${k}=${v}`).join(", ")}`);
    }
    if (eapol) {
      const conf = join(dir, "load.conf");
      const device = devices[1];
      writeFileSync(conf, `network={\n key_mgmt=WPA-EAP\n eap=TTLS\n identity="${device.id}"\n anonymous_identity="anonymous@wcm"\n password="${device.password}"\n phase2="auth=PAP"\n ca_cert="${join(dir, "ca.pem")}"\n domain_match="${RADIUS_SERVER_NAME}"\n}\n`);
      const parallel = 12;
      const eapolSeconds = Math.min(seconds, 5);
      const end = Date.now() + eapolSeconds * 1000;
      let ok = 0;
      let failed = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: parallel }, async () => {
        while (Date.now() < end) {
          const r = await eapolTest(conf, port);
          if (r.ok) ok++;
          else failed++;
        }
      }));
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      rate.push([`${parallel} eapol_test processes`, "TTLS/PAP", eapolSeconds, ok, failed, (ok / elapsed).toFixed(0), "-", "-", ((cpu.user + cpu.system) / 1e4 / elapsed).toFixed(0), "-", "-"]);
    }
    console.log("\nHotspot authentications per second at the server (server and load share this machine; the last two");
    console.log("columns are the server process's own CPU per accepted authentication and the rate one core sustains at that cost)");
    console.log(table(rate));
    const s = cloud.radius!.stats;
    console.log(`\nserver counters: accepts=${s.accepts} rejects=${s.rejects} challenges=${s.challenges} duplicates=${s.duplicates} malformed=${s.malformed} errors=${s.errors} sessions evicted=${cloud.radius!.sessions.evicted}`);
  } finally {
    await cloud.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes("--child")) {
  let input = "";
  process.stdin.on("data", (chunk) => (input += chunk));
  process.stdin.on("end", () => {
    loadChild(JSON.parse(input) as LoadConfig).then((result) => {
      process.stdout.write(JSON.stringify(result));
      process.exit(0);
    }, (error) => {
      process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(1);
    });
  });
} else if (invokedDirectly(import.meta.url)) {
  main().then(() => process.exit(0), (error) => {
    console.error(error);
    process.exit(1);
  });
}
