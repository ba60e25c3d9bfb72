/*
 * Builds the Moddable app for the lin simulator and runs it headless against the
 * reference cloud on loopback, as three devices:
 *   - a certificate device (RSA key from a cloud-made product CA, mutual TLS),
 *   - a shared-secret device,
 *   - a temporary device, which must end PERMANENT and, restarted, log in again
 *     with its issued secret (kept in the simulator's Preference file);
 * then one image built with the cloud settings alone runs as three devices of a
 * lot whose identities come from make-lot's NVS partition CSVs (two secret
 * devices and a certificate device), with no rebuild between them; then the
 * refusals (revoked, wrong secret, counter behind, cloud unreachable, wrong
 * server CA), each reported, survived and retried on the back-off of
 * docs/protocol.md 10.2, and the factory reset with device reset-counter; then
 * the live heap and a release build.
 * Needs $MODDABLE (an SDK whose lin tools are built: mcconfig, mcsim on PATH or
 * under $MODDABLE/build/bin/lin/release), tsc on PATH, xvfb-run, stdbuf, timeout.
 * Usage: tsx tools/check-moddable-sim.ts [--write-docs]    (exit 0 when every check passes)
 *   prints a figures block (checks passed, bytecode, heap) at the end; with
 *   --write-docs a full passing run also writes it into docs/moddable.md.
 *   WCM_CHECK_ONLY=refusals,heap runs only those sections.
 *
 * It writes provisioning/device.json (the manifest fragment the build includes)
 * for each device and restores the previous one at the end, and it moves the
 * simulator's shared /tmp/modpreferences.json aside while it runs. Secrets are
 * never printed: trace lines from main.ts carry none.
 */
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { startCloud } from "../cloud/index";
import { createCa } from "../cloud/pki";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "../modules/retry";
import { nvsCsv, temporaryDevice } from "./manufacturing/make-lot";

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
const appPath = (mode: BuildMode) => join(MODDABLE!, "build", "bin", "lin", "mc", mode, APP_NAME, "mc.so");
type BuildMode = "debug" | "release";
// the build mcsim runs: the last one made
let app = appPath("debug");
const RUN_SECONDS = Number(process.env.WCM_SIM_SECONDS ?? 45);
// WCM_CHECK_ONLY=refusals,heap runs only those sections (devices, lot, refusals, heap, release)
const ONLY = process.env.WCM_CHECK_ONLY?.split(",");
const section = (name: string) => !ONLY || ONLY.includes(name);
// --write-docs: after a full run with every check passed, rewrite the figures block of docs/moddable.md
const WRITE_DOCS = process.argv.includes("--write-docs");
const DOC = join(ROOT, "docs", "moddable.md");
const FIGURES_BEGIN = "<!-- check:moddable figures: written by `npm run check:moddable -- --write-docs`; do not edit by hand -->";
const FIGURES_END = "<!-- end of check:moddable figures -->";

/** What the run measured, for the figures block. */
const figures = {
  bytecode: {} as Partial<Record<BuildMode, { core: number; host: number }>>,
  /** `wcm heap` at ONLINE, debug builds (whole VM, bytes); certificate identities from NVS apart (their DER blobs stay in chunks) */
  onlineHeap: [] as { slots: number; chunks: number; nvsCertificate: boolean }[],
  releaseHeap: "",
  liveHeap: "",
};

interface Outcome { name: string; ok: boolean; detail: string }
const outcomes: Outcome[] = [];

function record(name: string, ok: boolean, detail: string): void {
  outcomes.push({ name, ok, detail });
  console.log(`${ok ? "PASS" : "FAIL"} ${name}: ${detail}`);
}

function build(config: Record<string, unknown>, mode: BuildMode = "debug"): void {
  mkdirSync(join(ROOT, "provisioning"), { recursive: true });
  writeFileSync(PROVISIONING, JSON.stringify({ config: { wcm: config } }, null, 2), { mode: 0o600 });
  const started = Date.now();
  const result = spawnSync("mcconfig", [...(mode === "debug" ? ["-d"] : []), "-m", "-p", "lin", "-t", "build"], { cwd: ROOT, env: ENV, encoding: "utf8" });
  const log = `${result.stdout}${result.stderr}`;
  if (result.status !== 0 || /typescript compile failure|error TS\d+/.test(log)) {
    throw new Error(`mcconfig failed (${result.status}):\n${log.split("\n").filter((line) => /error|fail/i.test(line)).slice(0, 30).join("\n")}`);
  }
  const sizes = bytecodeSizes(mode);
  figures.bytecode[mode] = sizes;
  app = appPath(mode);
  console.log(`built (${mode}) in ${((Date.now() - started) / 1000).toFixed(1)} s; bytecode: core (wcm/**) ${sizes.core} B, Moddable host (wcm-host/**) ${sizes.host} B`);
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
  return `${states.at(-1) ?? "no state traced"}${heap ? `; ${heap.slice(4)}${/\d/.test(heap) ? " (bytes, whole VM)" : ""}` : ""}`;
}

/** Sizes of the compiled XS bytecode of the core and the host modules (debug builds include line info). */
function bytecodeSizes(mode: BuildMode): { core: number; host: number } {
  const base = join(MODDABLE!, "build", "tmp", "lin", "mc", mode, APP_NAME, "modules");
  // every .xsb below the folder: the core has subfolders (wcm/onboarding/*)
  const total = (folder: string): number => {
    const dir = join(base, folder);
    if (!existsSync(dir)) return 0;
    return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) =>
      sum + (entry.isDirectory() ? total(join(folder, entry.name)) : entry.name.endsWith(".xsb") ? statSync(join(dir, entry.name)).size : 0), 0);
  };
  return { core: total("wcm"), host: total("wcm-host") };
}

/** One mcsim run: the wcm trace lines (with the time each arrived), and whether mcsim ended by itself. */
interface Run {
  lines: string[];
  /** Date.now() when each line arrived (stdout unbuffered), same index as lines */
  times: number[];
  /** set when mcsim exited before the check stopped it (a crash: rc 139 is SIGSEGV) */
  exitedBy?: string;
}

/** Runs mcsim until a trace line matches `until` (or the time runs out). */
function simulateRun(until: RegExp | ((lines: string[]) => boolean), seconds = RUN_SECONDS, linger = 1500): Promise<Run> {
  const matches = typeof until === "function" ? until : (lines: string[]) => until.test(lines.at(-1) ?? "");
  return new Promise((done) => {
    const child = spawn("xvfb-run", ["-a", "timeout", String(seconds), "stdbuf", "-o0", "-e0", join(BIN, "mcsim"), app], { env: ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const run: Run = { lines: [], times: [] };
    let buffer = "";
    let stopping = false;
    let finished = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      setTimeout(() => {
        finished = true;
        noteHeap(run.lines);
        done(run);
      }, 500);
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (process.env.WCM_SIM_VERBOSE && !line.startsWith("instruments")) console.log(`  # ${line}`);
        if (line.startsWith("wcm ") || line.startsWith("MQTT FAIL") || /date validation|subjectAltName|tls_server_name/.test(line)) {
          run.lines.push(line);
          run.times.push(Date.now());
          console.log(`  | ${line}`);
          if (!stopping && matches(run.lines)) setTimeout(stop, linger);
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      if (!stopping && !finished) {
        // timeout(1) ends mcsim at `seconds` with 124; anything else is mcsim dying on its own
        if (code !== 124) run.exitedBy = signal ? `signal ${signal}` : `rc ${code}`;
        console.log(`  | (mcsim ended by itself: ${signal ? `signal ${signal}` : `rc ${code}`})`);
      }
      stop();
    });
  });
}

/** Keeps the `wcm heap` figures at ONLINE of a debug run for the figures block. */
function noteHeap(lines: string[]): void {
  if (app !== appPath("debug")) return;
  const nvsCertificate = lines.some((line) => /^wcm boot .* option certificate identity nvs/.test(line));
  for (const line of lines) {
    const heap = /^wcm heap slots (\d+) chunks (\d+)/.exec(line);
    if (heap) figures.onlineHeap.push({ slots: Number(heap[1]), chunks: Number(heap[2]), nvsCertificate });
  }
}

/** Runs mcsim until a trace line matches `until` (or the time runs out); returns the wcm trace lines. */
async function simulate(until: RegExp, seconds = RUN_SECONDS): Promise<string[]> {
  return (await simulateRun(until, seconds)).lines;
}

/** A short back-off for the refusal cases, so that a run sees several retries in seconds (main.ts: config.wcm.retry). */
const SHORT_RETRY: RetryPolicy = { networkBaseMs: 1000, networkMaxMs: 8000, authBaseMs: 2000, authMaxMs: 16000 };

/** A refused or failed attempt seen in a run: the wait it announced and when the next attempt began. */
interface Wait { state: string; attempt: number; retryInMs: number; reason: string; at: number; nextAt?: number }

function waitsOf(run: Run): Wait[] {
  const waits: Wait[] = [];
  run.lines.forEach((line, index) => {
    const wait = /^wcm state (RETRY_WAIT|AUTH_FAILED) credential \S+ attempt (\d+) retryInMs (\d+)(?: lastFailure (\S+))?/.exec(line);
    if (wait) waits.push({ state: wait[1], attempt: Number(wait[2]), retryInMs: Number(wait[3]), reason: wait[4] ?? "", at: run.times[index] });
    else if (/^wcm state (CONNECTING|SCANNING)/.test(line) && waits.length && waits.at(-1)!.nextAt === undefined) waits.at(-1)!.nextAt = run.times[index];
  });
  return waits;
}

/** Until `count` waits were announced. */
const waitsSeen = (count: number) => (lines: string[]) => lines.filter((line) => /^wcm state (RETRY_WAIT|AUTH_FAILED) /.test(line)).length >= count;

/**
 * Checks a refused device's run against docs/protocol.md 10.2 (modules/retry.ts):
 * every wait is the expected state and reason, attempts count 1, 2, 3..., each
 * announced delay lies in [capped/2, capped) for its attempt, the next attempt
 * began after the announced delay (within 300 ms + 5%: trace and timer latency),
 * at least `retries` retries happened, and mcsim never ended by itself.
 */
function checkRefusal(run: Run, expect: { state: "AUTH_FAILED" | "RETRY_WAIT"; reason: string; policy: RetryPolicy; retries: number }): { ok: boolean; detail: string } {
  const waits = waitsOf(run);
  const auth = expect.state === "AUTH_FAILED";
  const base = auth ? expect.policy.authBaseMs : expect.policy.networkBaseMs;
  const max = auth ? expect.policy.authMaxMs : expect.policy.networkMaxMs;
  const problems: string[] = [];
  if (run.exitedBy) problems.push(`mcsim died (${run.exitedBy})`);
  if (!waits.length) problems.push("no refusal reported");
  const observed: string[] = [];
  waits.forEach((wait, index) => {
    const capped = Math.min(max, base * 2 ** (index));
    if (wait.state !== expect.state || wait.reason !== expect.reason) problems.push(`wait ${index + 1}: ${wait.state} ${wait.reason || "(no reason)"}`);
    if (wait.attempt !== index + 1) problems.push(`wait ${index + 1}: attempt ${wait.attempt}`);
    if (wait.retryInMs < capped / 2 || wait.retryInMs >= capped) problems.push(`wait ${index + 1}: retryInMs ${wait.retryInMs} outside [${capped / 2}, ${capped})`);
    if (wait.nextAt !== undefined) {
      const took = wait.nextAt - wait.at;
      observed.push(`${took}/${wait.retryInMs}`);
      if (Math.abs(took - wait.retryInMs) > 300 + wait.retryInMs * 0.05) problems.push(`wait ${index + 1}: retried after ${took} ms, announced ${wait.retryInMs}`);
    }
  });
  if (observed.length < expect.retries) problems.push(`${observed.length} retries seen, ${expect.retries} expected`);
  const alive = run.exitedBy ? "" : "; mcsim still running when stopped";
  const detail = `${waits.length} × ${expect.state} ${waits[0]?.reason ?? "?"}, retried after (ms observed/announced) ${observed.join(", ") || "none"}${alive}`;
  return { ok: problems.length === 0, detail: problems.length ? `${problems.join("; ")} (${detail})` : detail };
}

/** A TCP port on loopback with nothing listening. */
function closedPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
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
    let lines: string[] = [];
    await cloud.services.createProductCa({ name: "sim-ca" });

    if (section("devices")) {
      // 1. certificate device
      const issued = await cloud.services.issueDeviceCertificate({ caName: "sim-ca", deviceId: "sim-cert-0001", keyType: "rsa" });
      await cloud.services.registerCertificateDevice({ deviceId: "sim-cert-0001", caName: "sim-ca" });
      rmSync(PREFERENCES, { force: true });
      build({ ...common, deviceId: "sim-cert-0001", option: "certificate", certificate: issued.certificatePem, privateKey: issued.privateKeyPem, cloud: cloudSettings });
      lines = await simulate(/wcm state ONLINE/);
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
      build({ ...common, ...temporaryDevice("sim-temp-0001", "derived", lot.provisioningKeyHex), cloud: cloudSettings });
      lines = await simulate(/wcm state ONLINE/);
      record("temporary device ONLINE as permanent", lines.some((line) => /wcm state ONLINE credential permanent/.test(line)) && lines.some((line) => /wcm state ISSUING/.test(line)), lastState(lines));
      const afterFirst = await cloud.services.getDevice({ deviceId: "sim-temp-0001" });
      record("cloud committed generation 1 and retired the temporary secret", afterFirst.generation === 1 && afterFirst.tempRetired, `generation ${afterFirst.generation}, tempRetired ${afterFirst.tempRetired}`);
      lines = await simulate(/wcm state ONLINE/);
      record("restarted temporary device ONLINE with its stored permanent secret", lines.some((line) => /wcm state ONLINE credential permanent/.test(line)) && !lines.some((line) => /ISSUING|credential temporary/.test(line)), lastState(lines));
      const afterSecond = await cloud.services.getDevice({ deviceId: "sim-temp-0001" });
      record("no second issuance", afterSecond.generation === 1, `generation ${afterSecond.generation}`);

    }

    if (section("roll")) {
      // a CA roll (docs/deploy.md 4): cloud.ca holds another CA first and the cloud's second,
      // so the cloud's reaches SecureSocket through ssl/cert's VM-wide list, not `secure.certificate`
      rmSync(PREFERENCES, { force: true });
      const other = await createCa("another wcm cloud server CA");
      const secretHex = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: "sim-roll-0005", secretHex });
      build({ ...common, deviceId: "sim-roll-0005", option: "secret", secret: secretHex, cloud: { ...cloudSettings, ca: `${other.certPem.trim()}\n${cloud.serverCaPem.trim()}\n` } });
      lines = await simulate(/wcm state ONLINE/);
      record("two trust anchors (CA roll): ONLINE through the second", lines.some((line) => /wcm state ONLINE credential secret/.test(line)), lastState(lines));
    }

    if (section("lot")) {
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

    }

    if (section("refusals")) {
      // 5. refusals: the app reports each, keeps running and retries on the schedule of docs/protocol.md 10.2
      //    a. the default back-off: a revoked device's first wait is the auth class's 30-60 s
      build({ ...common, cloud: cloudSettings });
      const revokedSecret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: "sim-refuse-0001", secretHex: revokedSecret });
      await cloud.services.revokeDevice({ deviceId: "sim-refuse-0001" });
      flashNvs(nvsCsv({ deviceId: "sim-refuse-0001", option: "secret", secret: revokedSecret }));
      let run = await simulateRun(waitsSeen(1), RUN_SECONDS, 5000);
      let verdict = checkRefusal(run, { state: "AUTH_FAILED", reason: "NOT_AUTHORIZED", policy: DEFAULT_RETRY_POLICY, retries: 0 });
      record("revoked device (default back-off): refused, first retry in 30-60 s, still running 5 s later", verdict.ok, verdict.detail);

      //    b. one image with a short back-off, identities from NVS
      build({ ...common, retry: SHORT_RETRY, cloud: cloudSettings });
      const refusalRuns = async (name: string, expect: Parameters<typeof checkRefusal>[1]) => {
        run = await simulateRun(waitsSeen(expect.retries + 1));
        verdict = checkRefusal(run, expect);
        record(name, verdict.ok, verdict.detail);
      };
      flashNvs(nvsCsv({ deviceId: "sim-refuse-0001", option: "secret", secret: revokedSecret }));
      await refusalRuns("revoked device: AUTH_FAILED NOT_AUTHORIZED, retries on the auth back-off", { state: "AUTH_FAILED", reason: "NOT_AUTHORIZED", policy: SHORT_RETRY, retries: 2 });

      await cloud.services.registerSecretDevice({ deviceId: "sim-refuse-0002", secretHex: randomBytes(32).toString("hex") });
      flashNvs(nvsCsv({ deviceId: "sim-refuse-0002", option: "secret", secret: randomBytes(32).toString("hex") }));
      await refusalRuns("wrong secret: AUTH_FAILED BAD_CREDENTIALS, retries on the auth back-off", { state: "AUTH_FAILED", reason: "BAD_CREDENTIALS", policy: SHORT_RETRY, retries: 2 });

      // counter behind: ONLINE in two boots (each boot reserves a block of 32 counters, docs/protocol.md 4.2,
      // so the cloud's counter is then 33), then a factory reset that only wipes the device: its counter
      // restarts at 1 and every login up to 33 is a replay
      const behindSecret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: "sim-refuse-0003", secretHex: behindSecret });
      const behindNvs = nvsCsv({ deviceId: "sim-refuse-0003", option: "secret", secret: behindSecret });
      flashNvs(behindNvs);
      lines = await simulate(/wcm state ONLINE/);
      lines.push(...await simulate(/wcm state ONLINE/));
      const firstOnline = lines.filter((line) => /wcm state ONLINE credential secret/.test(line)).length === 2;
      flashNvs(behindNvs);
      if (firstOnline) {
        await refusalRuns("counter behind (wiped device, cloud not told): AUTH_FAILED BAD_CREDENTIALS, retries on the auth back-off", { state: "AUTH_FAILED", reason: "BAD_CREDENTIALS", policy: SHORT_RETRY, retries: 2 });
      } else {
        record("counter behind (wiped device, cloud not told): AUTH_FAILED BAD_CREDENTIALS, retries on the auth back-off", false, `the first login failed: ${lastState(lines)}`);
    }
    // the factory reset docs/moddable.md gives: wipe the device and reset its counter in the cloud
    await cloud.services.resetLoginCounter({ deviceId: "sim-refuse-0003" });
    flashNvs(behindNvs);
    lines = await simulate(/wcm state ONLINE/);
    record("factory reset with device reset-counter: ONLINE again", lines.some((line) => /wcm state ONLINE credential secret/.test(line)), lastState(lines));

    //    c. cloud unreachable: nothing listens on the port
    const okSecret = randomBytes(32).toString("hex");
    await cloud.services.registerSecretDevice({ deviceId: "sim-refuse-0004", secretHex: okSecret });
    build({ ...common, retry: SHORT_RETRY, cloud: { ...cloudSettings, port: await closedPort() } });
    flashNvs(nvsCsv({ deviceId: "sim-refuse-0004", option: "secret", secret: okSecret }));
    await refusalRuns("cloud unreachable: RETRY_WAIT NETWORK, retries on the network back-off", { state: "RETRY_WAIT", reason: "NETWORK", policy: SHORT_RETRY, retries: 3 });

    //    d. wrong server CA: another CA of the same name
    const impostor = await createCa("wcm cloud server CA");
    build({ ...common, retry: SHORT_RETRY, cloud: { ...cloudSettings, ca: impostor.certPem } });
    flashNvs(nvsCsv({ deviceId: "sim-refuse-0004", option: "secret", secret: okSecret }));
    await refusalRuns("wrong server CA: RETRY_WAIT NETWORK, retries on the network back-off", { state: "RETRY_WAIT", reason: "NETWORK", policy: SHORT_RETRY, retries: 3 });

    }

    if (section("heap")) {
      // 6. the live heap (after a full GC): at boot, at ONLINE, and with the manager stopped
      rmSync(PREFERENCES, { force: true });
      const heapSecret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: "sim-heap-0001", secretHex: heapSecret });
      build({ ...common, measureHeap: true, deviceId: "sim-heap-0001", option: "secret", secret: heapSecret, cloud: cloudSettings });
      lines = await simulate(/wcm heap-live stopped/);
      const live = heapFigures(lines);
      figures.liveHeap = live ?? "";
      record("live heap measured at boot, ONLINE and stopped", live !== undefined, live ?? lastState(lines));
    }

    if (section("release")) {
      // 7. a release build (no line info, no instrumentation): what goes to flash
      rmSync(PREFERENCES, { force: true });
      const releaseSecret = randomBytes(32).toString("hex");
      await cloud.services.registerSecretDevice({ deviceId: "sim-release-0001", secretHex: releaseSecret });
      build({ ...common, deviceId: "sim-release-0001", option: "secret", secret: releaseSecret, cloud: cloudSettings }, "release");
      lines = await simulate(/wcm heap/);
      figures.releaseHeap = lines.find((line) => line.startsWith("wcm heap"))?.slice(4) ?? "";
      record("release build ONLINE, heap reported as n/a (no instrumentation in release)",
        lines.some((line) => /wcm state ONLINE credential secret/.test(line)) && /^wcm heap n\/a \(release build/.test(lines.find((line) => line.startsWith("wcm heap")) ?? ""), lastState(lines));
    }
  } finally {
    await cloud.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (savedProvisioning) writeFileSync(PROVISIONING, savedProvisioning, { mode: 0o600 });
    else rmSync(PROVISIONING, { force: true });
    rmSync(PREFERENCES, { force: true });
    if (savedPreferences) renameSync(savedPreferences, PREFERENCES);
  }
  const failed = outcomes.filter((outcome) => !outcome.ok);
  const summary = `${outcomes.length - failed.length}/${outcomes.length} checks passed`;
  console.log(`\n${summary}`);
  const block = figuresBlock(summary);
  console.log(`\n${block}`);
  if (WRITE_DOCS) {
    if (failed.length || ONLY) console.log("\n--write-docs: not written (needs a full run with every check passed)");
    else {
      const doc = readFileSync(DOC, "utf8");
      const begin = doc.indexOf(FIGURES_BEGIN);
      const end = doc.indexOf(FIGURES_END);
      if (begin < 0 || end < begin) console.log(`\n--write-docs: no figures markers in ${DOC}`);
      else {
        writeFileSync(DOC, `${doc.slice(0, begin)}${FIGURES_BEGIN}\n${block}\n${doc.slice(end)}`);
        console.log(`\n--write-docs: figures written to ${DOC}`);
      }
    }
  }
  process.exit(failed.length ? 1 : 0);
}

/** The figures of this run as markdown (printed; with --write-docs also put in docs/moddable.md). */
function figuresBlock(summary: string): string {
  const sdk = spawnSync("git", ["-C", MODDABLE!, "log", "-1", "--format=%h %cs"], { encoding: "utf8" }).stdout.trim() || "unknown commit";
  const version = spawnSync("git", ["-C", MODDABLE!, "describe", "--tags"], { encoding: "utf8" }).stdout.trim();
  const n = (value: number) => value.toLocaleString("en-US");
  const kb = (values: number[]) => {
    const low = Math.min(...values) / 1024;
    const high = Math.max(...values) / 1024;
    return low.toFixed(1) === high.toFixed(1) ? `${low.toFixed(1)} KB` : `${low.toFixed(1)}-${high.toFixed(1)} KB`;
  };
  const bytecode = (mode: BuildMode) => {
    const sizes = figures.bytecode[mode];
    return sizes ? `core \`wcm/**\` ${n(sizes.core)} B, Moddable host \`wcm-host/**\` ${n(sizes.host)} B` : "not measured in this run";
  };
  const rows = figures.onlineHeap.filter((row) => !row.nvsCertificate);
  const nvs = figures.onlineHeap.filter((row) => row.nvsCertificate);
  const heap = rows.length
    ? `slots ${kb(rows.map((row) => row.slots))}, chunks ${kb(rows.map((row) => row.chunks))} over ${rows.length} runs`
      + (nvs.length ? `; the certificate device whose DER blobs come from NVS: slots ${kb(nvs.map((row) => row.slots))}, chunks ${kb(nvs.map((row) => row.chunks))}` : "")
    : "not measured in this run";
  return [
    `Moddable SDK ${version || "?"} (${sdk}), lin, \`npm run check:moddable\` on ${new Date().toISOString().slice(0, 10)}:`,
    `- **${summary}**`,
    `- bytecode, debug build (line info included): ${bytecode("debug")}`,
    `- bytecode, release build (what goes to flash): ${bytecode("release")}`,
    `- XS heap of the whole VM at ONLINE (debug builds; wcm + TLS + MQTT; lin's slots are 64-bit, about twice an ESP32's): ${heap}`,
    `- release build at ONLINE: \`${figures.releaseHeap || "not run"}\``,
    `- live heap after a full GC (\`measureHeap\`), ${figures.liveHeap || "not measured in this run"}`,
  ].join("\n");
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
