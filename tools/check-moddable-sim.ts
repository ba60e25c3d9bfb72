/*
 * Builds the Moddable app for the lin simulator and runs it headless against the
 * reference cloud on loopback, as three devices:
 *   - a certificate device (RSA key from a cloud-made product CA, mutual TLS),
 *   - a shared-secret device,
 *   - a temporary device, which must end PERMANENT and, restarted, log in again
 *     with its issued secret (kept in the simulator's Preference file);
 * then one image built with the cloud settings alone runs as three devices of a
 * lot whose identities come from make-lot's NVS partition CSVs (two secret
 * devices and a certificate device), with no rebuild between them.
 * Needs $MODDABLE (an SDK whose lin tools are built: mcconfig, mcsim on PATH or
 * under $MODDABLE/build/bin/lin/release), tsc on PATH, xvfb-run, stdbuf, timeout.
 * Usage: tsx tools/check-moddable-sim.ts    (exit 0 when every check passes)
 *
 * It writes provisioning/device.json (the manifest fragment the build includes)
 * for each device and restores the previous one at the end, and it moves the
 * simulator's shared /tmp/modpreferences.json aside while it runs. Secrets are
 * never printed: trace lines from main.ts carry none.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { startCloud } from "../cloud/index";
import { nvsCsv } from "./manufacturing/make-lot";

const ROOT = resolve(import.meta.dirname, "..");
const MODDABLE = process.env.MODDABLE;
if (!MODDABLE || !existsSync(join(MODDABLE, "tools", "mcconfig.js"))) {
  console.error("check-moddable-sim: set MODDABLE to a Moddable SDK checkout with its lin tools built");
  process.exit(2);
}
const BIN = join(MODDABLE, "build", "bin", "lin", "release");
const ENV = { ...process.env, MODDABLE, PATH: `${BIN}:${process.env.PATH}` };
const PROVISIONING = join(ROOT, "provisioning", "device.json");
const PREFERENCES = "/tmp/modpreferences.json";
// mcconfig names the build after the app's folder (this checkout's)
const APP_NAME = basename(ROOT);
const APP = join(MODDABLE, "build", "bin", "lin", "mc", "debug", APP_NAME, "mc.so");
const RUN_SECONDS = Number(process.env.WCM_SIM_SECONDS ?? 45);

interface Outcome { name: string; ok: boolean; detail: string }
const outcomes: Outcome[] = [];

function record(name: string, ok: boolean, detail: string): void {
  outcomes.push({ name, ok, detail });
  console.log(`${ok ? "PASS" : "FAIL"} ${name}: ${detail}`);
}

function build(config: Record<string, unknown>): void {
  mkdirSync(join(ROOT, "provisioning"), { recursive: true });
  writeFileSync(PROVISIONING, JSON.stringify({ config: { wcm: config } }, null, 2), { mode: 0o600 });
  const started = Date.now();
  const result = spawnSync("mcconfig", ["-d", "-m", "-p", "lin", "-t", "build"], { cwd: ROOT, env: ENV, encoding: "utf8" });
  const log = `${result.stdout}${result.stderr}`;
  if (result.status !== 0 || /typescript compile failure|error TS\d+/.test(log)) {
    throw new Error(`mcconfig failed (${result.status}):\n${log.split("\n").filter((line) => /error|fail/i.test(line)).slice(0, 30).join("\n")}`);
  }
  console.log(`built in ${((Date.now() - started) / 1000).toFixed(1)} s; ${bytecodeSizes()}`);
}

/**
 * The live-heap figures main.ts traces with measureHeap: what the connection
 * (manager + TLS + MQTT) holds at ONLINE and what the manager alone keeps once
 * stopped, above the boot baseline. lin's slots are 64-bit (32 B); ESP32's are
 * 16 B, so the ESP32 estimate halves the slot bytes.
 */
function heapFigures(lines: string[]): string | undefined {
  const first = lines.find((line) => line.startsWith("wcm heap-live boot"));
  const stopped = lines.find((line) => line.startsWith("wcm heap-live stopped"));
  if (!first || !stopped) return undefined;
  const n = (line: string, key: string, after = 0) => Number(line.slice(after).match(new RegExp(`${key} (\\d+)`))?.[1]);
  const onlineAt = first.indexOf("online");
  const boot = { slots: n(first, "slots"), chunks: n(first, "chunks") };
  const online = { slots: n(first, "slots", onlineAt), chunks: n(first, "chunks", onlineAt) };
  const rest = { slots: n(stopped, "slots"), chunks: n(stopped, "chunks") };
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  const esp32 = (d: { slots: number; chunks: number }) => kb(d.slots / 2 + d.chunks);
  const connection = { slots: online.slots - boot.slots, chunks: online.chunks - boot.chunks };
  const manager = { slots: rest.slots - boot.slots, chunks: rest.chunks - boot.chunks };
  return `above boot: at ONLINE (manager + TLS + MQTT) slots ${kb(connection.slots)} chunks ${kb(connection.chunks)} (ESP32 estimate ${esp32(connection)});`
    + ` manager stopped slots ${kb(manager.slots)} chunks ${kb(manager.chunks)} (ESP32 estimate ${esp32(manager)})`;
}

function lastState(lines: string[]): string {
  const states = lines.filter((line) => line.startsWith("wcm state"));
  const heap = lines.filter((line) => line.startsWith("wcm heap")).at(-1);
  return `${states.at(-1) ?? "no state traced"}${heap ? `; ${heap.slice(4)} (bytes, whole VM)` : ""}`;
}

/** Sizes of the compiled XS bytecode (debug build, line info included) of the core and the host modules. */
function bytecodeSizes(): string {
  const base = join(MODDABLE!, "build", "tmp", "lin", "mc", "debug", APP_NAME, "modules");
  const total = (folder: string) => {
    const dir = join(base, folder);
    if (!existsSync(dir)) return 0;
    return readdirSync(dir).filter((file) => file.endsWith(".xsb")).reduce((sum, file) => sum + statSync(join(dir, file)).size, 0);
  };
  return `bytecode: core (wcm/*) ${total("wcm")} B, Moddable host (wcm-host/*) ${total("wcm-host")} B`;
}

/** Runs mcsim until a trace line matches `until` (or the time runs out); returns the wcm trace lines. */
function simulate(until: RegExp, seconds = RUN_SECONDS): Promise<string[]> {
  return new Promise((done) => {
    const child = spawn("xvfb-run", ["-a", "timeout", String(seconds), "stdbuf", "-o0", "-e0", join(BIN, "mcsim"), APP], { env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    let buffer = "";
    let finished = false;
    const stop = () => {
      if (finished) return;
      finished = true;
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      setTimeout(() => done(lines), 500);
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (process.env.WCM_SIM_VERBOSE && !line.startsWith("instruments")) console.log(`  # ${line}`);
        if (line.startsWith("wcm ") || line.startsWith("MQTT FAIL") || /date validation|subjectAltName|tls_server_name/.test(line)) {
          lines.push(line);
          console.log(`  | ${line}`);
          if (until.test(line)) setTimeout(stop, 1500);
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", () => stop());
  });
}

/**
 * What the simulator's Preference file holds once the manufacturing line's NVS
 * partition CSV (make-lot's <id>.nvs.csv) is "flashed": the lin Preference
 * keeps strings as strings and blobs as {buffer: "1,2,3"}, as ESP32's NVS keeps
 * nvs strings and blobs.
 */
function flashNvs(csv: string): void {
  const rows = csv.trim().split("\n").slice(1).map((line) => line.split(","));
  const namespace = rows[0][0];
  const entries: Record<string, unknown> = {};
  for (const [key, type, encoding, value] of rows.slice(1)) {
    if (type !== "data") continue;
    if (encoding === "string") entries[key] = value;
    else {
      const bytes = encoding === "hex2bin" ? Buffer.from(value, "hex") : Buffer.from(value, "base64");
      entries[key] = { buffer: [...bytes].join(",") };
    }
  }
  writeFileSync(PREFERENCES, JSON.stringify({ [namespace]: entries }));
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-sim-cloud-"));
  const savedProvisioning = existsSync(PROVISIONING) ? readFileSync(PROVISIONING) : undefined;
  const savedPreferences = existsSync(PREFERENCES) ? `${PREFERENCES}.wcm-check-${process.pid}` : undefined;
  if (savedPreferences) renameSync(PREFERENCES, savedPreferences);
  const masterKey = new Uint8Array(randomBytes(32));
  const cloud = await startCloud({ dataDir, masterKey: masterKey.slice(), mqttPort: 0 });
  try {
    const cloudSettings = { host: "localhost", port: cloud.mqttPort, ca: cloud.serverCaPem, serverName: cloud.serverName, keepAliveSeconds: 30 };
    const common = { sntp: "" };

    // 1. certificate device
    await cloud.services.createProductCa({ name: "sim-ca" });
    const issued = await cloud.services.issueDeviceCertificate({ caName: "sim-ca", deviceId: "sim-cert-0001", keyType: "rsa" });
    await cloud.services.registerCertificateDevice({ deviceId: "sim-cert-0001", caName: "sim-ca" });
    rmSync(PREFERENCES, { force: true });
    build({ ...common, deviceId: "sim-cert-0001", option: "certificate", certificate: issued.certificatePem, privateKey: issued.privateKeyPem, cloud: cloudSettings });
    let lines = await simulate(/wcm state ONLINE/);
    record("certificate device ONLINE", lines.some((line) => /wcm state ONLINE credential certificate/.test(line)), lastState(lines));

    // 2. shared-secret device
    rmSync(PREFERENCES, { force: true });
    const secretHex = randomBytes(32).toString("hex");
    await cloud.services.registerSecretDevice({ deviceId: "sim-secret-0002", secretHex });
    build({ ...common, deviceId: "sim-secret-0002", option: "secret", secret: secretHex, cloud: cloudSettings });
    lines = await simulate(/wcm state ONLINE/);
    record("shared-secret device ONLINE", lines.some((line) => /wcm state ONLINE credential secret/.test(line)), lastState(lines));

    // 3. temporary device: PERMANENT, then a restart keeps the issued secret
    const lot = await cloud.services.createProvisioningKey({ lot: "sim-lot" });
    rmSync(PREFERENCES, { force: true });
    build({ ...common, deviceId: "sim-temp-0001", option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudSettings });
    lines = await simulate(/wcm state ONLINE/);
    record("temporary device ONLINE as permanent", lines.some((line) => /wcm state ONLINE credential permanent/.test(line)) && lines.some((line) => /wcm state ISSUING/.test(line)), lastState(lines));
    const afterFirst = await cloud.services.getDevice({ deviceId: "sim-temp-0001" });
    record("cloud committed generation 1 and retired the temporary secret", afterFirst.generation === 1 && afterFirst.tempRetired, `generation ${afterFirst.generation}, tempRetired ${afterFirst.tempRetired}`);
    lines = await simulate(/wcm state ONLINE/);
    record("restarted temporary device ONLINE with its stored permanent secret", lines.some((line) => /wcm state ONLINE credential permanent/.test(line)) && !lines.some((line) => /ISSUING|credential temporary/.test(line)), lastState(lines));
    const afterSecond = await cloud.services.getDevice({ deviceId: "sim-temp-0001" });
    record("no second issuance", afterSecond.generation === 1, `generation ${afterSecond.generation}`);

    // 4. one image for a lot: identities from the manufacturing line's NVS partition
    build({ ...common, cloud: cloudSettings });
    for (const deviceId of ["sim-lot-0001", "sim-lot-0002"]) {
      const secret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId, secretHex: secret });
      flashNvs(nvsCsv({ deviceId, option: "secret", secret }));
      lines = await simulate(/wcm state ONLINE/);
      record(`lot image, NVS identity ${deviceId} ONLINE`, lines.some((line) => line.includes(`boot device ${deviceId} option secret identity nvs`))
        && lines.some((line) => /wcm state ONLINE credential secret/.test(line)), lastState(lines));
    }
    const lotCert = await cloud.services.issueDeviceCertificate({ caName: "sim-ca", deviceId: "sim-lot-0003", keyType: "rsa" });
    await cloud.services.registerCertificateDevice({ deviceId: "sim-lot-0003", caName: "sim-ca" });
    flashNvs(nvsCsv({ deviceId: "sim-lot-0003", option: "certificate", certificate: lotCert.certificatePem, privateKey: lotCert.privateKeyPem }));
    lines = await simulate(/wcm state ONLINE/);
    record("lot image, NVS identity sim-lot-0003 (certificate, DER blobs) ONLINE", lines.some((line) => line.includes("identity nvs"))
      && lines.some((line) => /wcm state ONLINE credential certificate/.test(line)), lastState(lines));

    // 5. the live heap (after a full GC): at boot, at ONLINE, and with the manager stopped
    rmSync(PREFERENCES, { force: true });
    const heapSecret = randomBytes(32).toString("hex");
    await cloud.services.registerSecretDevice({ deviceId: "sim-heap-0001", secretHex: heapSecret });
    build({ ...common, measureHeap: true, deviceId: "sim-heap-0001", option: "secret", secret: heapSecret, cloud: cloudSettings });
    lines = await simulate(/wcm heap-live stopped/);
    const live = heapFigures(lines);
    record("live heap measured at boot, ONLINE and stopped", live !== undefined, live ?? lastState(lines));
  } finally {
    await cloud.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (savedProvisioning) writeFileSync(PROVISIONING, savedProvisioning, { mode: 0o600 });
    else rmSync(PROVISIONING, { force: true });
    rmSync(PREFERENCES, { force: true });
    if (savedPreferences) renameSync(savedPreferences, PREFERENCES);
  }
  const failed = outcomes.filter((outcome) => !outcome.ok);
  console.log(`\n${outcomes.length - failed.length}/${outcomes.length} checks passed`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
