/*
 * TLS resumption as the Moddable device sees it: the wcm app under mcsim (lin
 * simulator, Moddable's own TLS client) reconnects to the reference cloud,
 * once with resumption off on the cloud (every connect a full handshake) and
 * once with it on (TLS 1.2 session id from Moddable's one-entry ssl_cache.js),
 * side by side in one run. The device connects through the delay proxy
 * (bench/delay-proxy.ts, 25 ms one way), which counts round trips per
 * connection; the cloud drops the device's session after each ONLINE and the
 * device reconnects on its own schedule. Device-side time = from the app's
 * `wcm state CONNECTING` trace to its `wcm state ONLINE` trace, as read from
 * mcsim's unbuffered output (so it includes the proxy's delays). The cloud
 * restarts between the modes on the same port with the same registry.
 *
 * Needs $MODDABLE with lin tools built, xvfb-run, stdbuf, timeout. mcsim's
 * preference file is shared by every mcsim on the machine: run this under the
 * same lock as the other simulator users (here: flock /work/sdk/mcsim.lock).
 * Usage: npm run bench:mcsim-resume [-- --reconnects 5]
 * Exit 0 when it measured; 2 when the SDK is missing.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { startCloud, type Cloud } from "../cloud/index";
import { startDelayProxy } from "./delay-proxy";
import { median, table } from "./table";

const ROOT = resolve(import.meta.dirname, "..");
const MODDABLE = process.env.MODDABLE;
if (!MODDABLE || !existsSync(join(MODDABLE, "build", "bin", "lin", "release", "mcsim"))) {
  console.error("mcsim-resume: set MODDABLE to a Moddable SDK checkout with its lin tools built (mcconfig, mcsim)");
  process.exit(2);
}
const BIN = join(MODDABLE, "build", "bin", "lin", "release");
const ENV = { ...process.env, MODDABLE, PATH: `${BIN}:${process.env.PATH}` };
const PROVISIONING = join(ROOT, "provisioning", "device.json");
const PREFERENCES = "/tmp/modpreferences.json";
const APP = join(MODDABLE, "build", "bin", "lin", "mc", "debug", basename(ROOT), "mc.so");
const ONE_WAY_MS = 25;
const i = process.argv.indexOf("--reconnects");
const RECONNECTS = i >= 0 ? Number(process.argv[i + 1]) : 5;
const DEVICE = "sim-resume-0001";

function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

function build(config: Record<string, unknown>): void {
  mkdirSync(join(ROOT, "provisioning"), { recursive: true });
  writeFileSync(PROVISIONING, JSON.stringify({ config: { wcm: config } }, null, 2), { mode: 0o600 });
  const result = spawnSync("nice", ["mcconfig", "-d", "-m", "-p", "lin", "-t", "build"], { cwd: ROOT, env: ENV, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`mcconfig failed (${result.status}): ${`${result.stdout}${result.stderr}`.split("\n").filter((l) => /error/i.test(l)).slice(0, 10).join("\n")}`);
}

interface Reconnect {
  deviceMs: number;
  roundTrips: number;
}

/**
 * Runs mcsim; after each ONLINE the cloud closes the device's session, until
 * `reconnects` reconnects reached ONLINE. Returns the first connect and the reconnects.
 */
function run(cloud: Cloud, proxy: { roundTrips(): number[]; connections(): number }, reconnects: number): Promise<{ first?: Reconnect; again: Reconnect[]; log: string[] }> {
  return new Promise((done) => {
    const child = spawn("xvfb-run", ["-a", "timeout", "180", "stdbuf", "-o0", "-e0", join(BIN, "mcsim"), APP], { env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const log: string[] = [];
    const connects: Reconnect[] = [];
    let connectingAt: number | undefined;
    let connectionIndex = 0;
    let buffer = "";
    let finished = false;
    const stop = () => {
      if (finished) return;
      finished = true;
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // gone
      }
      setTimeout(() => done({ first: connects[0], again: connects.slice(1), log }), 500);
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith("wcm ")) continue;
        const now = performance.now();
        log.push(line);
        if (line.startsWith("wcm state CONNECTING")) {
          connectingAt = now;
          connectionIndex = proxy.connections(); // the connection this attempt opens
        } else if (line.startsWith("wcm state ONLINE") && connectingAt !== undefined) {
          connects.push({ deviceMs: now - connectingAt, roundTrips: proxy.roundTrips()[connectionIndex] ?? Number.NaN });
          connectingAt = undefined;
          if (connects.length > reconnects) stop();
          else setTimeout(() => cloud.mqtt.disconnect(DEVICE), 300);
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      if (!finished) log.push(`mcsim exited early: code ${code} signal ${signal}`);
      stop();
    });
  });
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-mcsim-resume-"));
  const masterKey = new Uint8Array(randomBytes(32));
  const savedProvisioning = existsSync(PROVISIONING) ? readFileSync(PROVISIONING) : undefined;
  const savedPreferences = existsSync(PREFERENCES) ? `${PREFERENCES}.wcm-resume-${process.pid}` : undefined;
  if (savedPreferences) renameSync(PREFERENCES, savedPreferences);
  const mqttPort = await freePort();
  const proxy = await startDelayProxy(mqttPort, ONE_WAY_MS);
  const results: Record<string, { first?: Reconnect; again: Reconnect[]; serverResumed: number; serverFull: number }> = {};
  try {
    const secretHex = randomBytes(32).toString("hex");
    let cloud = await startCloud({ dataDir, masterKey: masterKey.slice(), mqttPort, tlsSessions: { enabled: false } });
    await cloud.services.registerSecretDevice({ deviceId: DEVICE, secretHex });
    rmSync(PREFERENCES, { force: true });
    build({ sntp: "", deviceId: DEVICE, option: "secret", secret: secretHex, cloud: { host: "localhost", port: proxy.port, ca: cloud.serverCaPem, serverName: cloud.serverName, keepAliveSeconds: 30 } });
    console.log(`mcsim TLS resumption: ${RECONNECTS} reconnects per mode, ${2 * ONE_WAY_MS} ms RTT through the delay proxy, load average ${loadavg()[0].toFixed(2)}`);
    for (const mode of ["resumption off", "resumption on"] as const) {
      if (mode === "resumption on") {
        await cloud.close();
        cloud = await startCloud({ dataDir, masterKey: masterKey.slice(), mqttPort });
      }
      const run1 = await run(cloud, proxy, RECONNECTS);
      results[mode] = { ...run1, serverResumed: cloud.mqtt.stats.tlsResumed, serverFull: cloud.mqtt.stats.tlsFull };
      if (run1.again.length < RECONNECTS) console.log(`  ${mode}: only ${run1.again.length} reconnects; last lines:\n    ${run1.log.slice(-6).join("\n    ")}`);
    }
    await cloud.close();
  } finally {
    await proxy.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (savedProvisioning) writeFileSync(PROVISIONING, savedProvisioning, { mode: 0o600 });
    else rmSync(PROVISIONING, { force: true });
    rmSync(PREFERENCES, { force: true });
    if (savedPreferences) renameSync(savedPreferences, PREFERENCES);
  }
  const spread = (values: number[], digits = 0) => values.length
    ? `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}..${Math.max(...values).toFixed(digits)})` : "-";
  const rows: (string | number)[][] = [["cloud", "connect", "n", "device CONNECTING->ONLINE ms", "round trips to ONLINE", "server: full / resumed handshakes"]];
  for (const [mode, r] of Object.entries(results)) {
    rows.push([mode, "first", r.first ? 1 : 0, spread(r.first ? [r.first.deviceMs] : []), spread(r.first ? [r.first.roundTrips] : []), `${r.serverFull} / ${r.serverResumed}`]);
    rows.push([mode, "reconnect", r.again.length, spread(r.again.map((x) => x.deviceMs)), spread(r.again.map((x) => x.roundTrips)), ""]);
  }
  console.log(table(rows));
  console.log("median (min..max); round trips from the TCP handshake to the app's ONLINE (CONNECT/CONNACK and what the app exchanges before ONLINE), bench/delay-proxy.ts");
  const on = results["resumption on"];
  process.exit(on && on.again.length === RECONNECTS ? 0 : 1);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
