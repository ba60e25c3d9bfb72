/*
 * make-lot: identities for a manufacturing lot, one command
 * (`npm run make-lot -- --option secret --count 1000 --prefix lamp- --start 1 --out ./lot-1`).
 *
 * Per device (out/devices/): `<id>.json`, the provisioning file the firmware
 * reads (validateConfig's shape without `cloud`, with the device's label code
 * for local onboarding), `<id>.nvs.csv`, an ESP-IDF NVS partition CSV for
 * nvs_partition_gen.py, and `<id>.label.json` (what the label printer prints:
 * the code, the SoftAP name and the QR payload, docs/protocol.md 15.2); per lot
 * `labels.csv` for the printer. The label code is never put in the bundle. Per lot: `cloud.json`
 * (the firmware-wide cloud settings), `lot.json` (the arguments), `lot-key.json`
 * (temporary: the lot's provisioning key, made once), `bundle.jsonl` + `bundle.jsonl.sha256`
 * (the registration bundle for `npm run cloud -- import-bundle`).
 *
 * Temporary lots have three modes (`--temporary-mode`, docs/manufacturing.md):
 * `derived` (default) writes each device's own temporary secret
 * (docs/protocol.md 5.1) and never the lot key; `hardware` writes nothing
 * secret into the device and `lot-key.bin` for the line to burn into an ESP32
 * eFuse key block (HMAC_UP); `lot-key` writes the lot key itself into every
 * device (the older mode: one extracted device claims the whole lot).
 *
 * Resumable: `journal.jsonl` records each finished device after its files are
 * in place (written to a temporary name, then renamed). A re-run with the same
 * arguments skips journaled devices whose files parse, redoes the others, and
 * rebuilds the bundle from the device files, so the bundle is byte-identical.
 * Secret-bearing files are 0600 and the out dir 0700; no secret is printed.
 * Format details: docs/manufacturing.md.
 */
import { randomBytes, X509Certificate } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleSha256, checksumLine, BUNDLE_FORMAT, type BundleHeader } from "../../cloud/bundle";
import { loadMasterKey } from "../../cloud/master-key";
import { fingerprint } from "../../cloud/pki";
import { Registry } from "../../cloud/registry";
import { CloudServices } from "../../cloud/services";
import { nodeDigest } from "../../cloud/node-digest";
import { validateCloudConfig } from "../../modules/config";
import { deriveTemporarySecret } from "../../modules/derive";
import { DEVICE_ID_PATTERN } from "../../modules/protocol";
import { labelQrPayload, newLabelCode, softApName } from "../../modules/onboarding/label-code";
import { invokedDirectly } from "../../cloud/invoked-directly";
import { EXIT, formatError, optionsHelp, parseCommandLine, readInputFile, UsageError, version, type OptionSpec } from "../../cloud/cli-kit";
import { CloudError } from "../../cloud/errors";

export type LotOption = "secret" | "temporary" | "certificate";

/** What a temporary lot puts on each device (see the file header). */
export type TemporaryMode = "derived" | "hardware" | "lot-key";

/** The eFuse key block a hardware lot uses by default (BLOCK_KEY5: secure boot digests and flash encryption take the low ones). */
export const DEFAULT_KEY_BLOCK = 5;

/** What to make. */
export interface MakeLotOptions {
  option: LotOption;
  count: number;
  prefix: string;
  start: number;
  out: string;
  /** MAC-based ids: id = prefix + 12 hex digits of (macBase + n) */
  macBase?: string;
  /** zero-padding of the number in ids (default 4) */
  pad?: number;
  /** lot name (default `<prefix>lot-<first>-<last>`) */
  lot?: string;
  /** temporary: what each device holds (default "derived") */
  temporaryMode?: TemporaryMode;
  /** temporary, hardware mode: the eFuse key block (0..5) the line burns the lot key into (default 5) */
  keyBlock?: number;
  /** certificate: product CA in the cloud registry */
  caName?: string;
  keyType?: "rsa" | "ec";
  /** certificate: sign `<csrDir>/<id>.csr.pem` (keys made elsewhere) instead of making key pairs */
  csrDir?: string;
  /** cloud settings for cloud.json */
  cloudHost?: string;
  cloudPort?: number;
  /** PEM text of the cloud's server CA */
  cloudCaPem?: string;
  serverName?: string;
  /** certificate: the services that issue certificates (the cloud registry) */
  services?: CloudServices;
  /** testing: stop (as if interrupted) after this many devices made by this run */
  stopAfter?: number;
  /** progress output (default process.stderr) */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** What a run did. */
export interface MakeLotResult {
  lot: string;
  made: number;
  skipped: number;
  interrupted: boolean;
  bundle?: string;
  sha256?: string;
}

const ARG_KEYS = ["option", "count", "prefix", "start", "macBase", "pad", "lot", "caName", "keyType", "csrDir", "temporaryMode", "keyBlock"] as const;

/** A mistake in the arguments (exit 2, like every usage error). */
class ToolError extends UsageError {}

function writeAtomicBytes(path: string, bytes: Uint8Array, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, bytes, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * A temporary device's provisioning file for `mode`: its own derived secret
 * (derived), the hardware marker and key block (hardware), or the lot key (lot-key).
 */
export function temporaryDevice(id: string, mode: TemporaryMode, provisioningKeyHex: string, keyBlock = DEFAULT_KEY_BLOCK): Record<string, string> {
  if (mode === "derived") {
    const secret = deriveTemporarySecret(nodeDigest, Uint8Array.from(Buffer.from(provisioningKeyHex, "hex")), id);
    return { deviceId: id, option: "temporary", temporarySecret: Buffer.from(secret).toString("hex") };
  }
  if (mode === "hardware") return { deviceId: id, option: "temporary", temporarySecretFrom: "hardware", hmacKeyBlock: String(keyBlock) };
  return { deviceId: id, option: "temporary", provisioningKey: provisioningKeyHex };
}

/** What a device's label shows: the code, the SoftAP name and the QR payload (docs/manufacturing.md). */
export function labelOf(deviceId: string, code: string): { deviceId: string; code: string; softAp: string; qr: string } {
  return { deviceId, code, softAp: softApName(deviceId), qr: labelQrPayload(deviceId, code) };
}

function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** The device ids of a lot, in order. */
export function lotIds(options: Pick<MakeLotOptions, "prefix" | "start" | "count" | "macBase" | "pad">): string[] {
  const ids: string[] = [];
  let base: number | undefined;
  if (options.macBase !== undefined) {
    if (!/^([0-9a-fA-F]{2}[:-]?){5}[0-9a-fA-F]{2}$/.test(options.macBase)) throw new ToolError("--mac-base must be a MAC address like 24:0a:c4:00:00:00");
    base = parseInt(options.macBase.replace(/[:-]/g, ""), 16);
  }
  for (let i = 0; i < options.count; i++) {
    const n = options.start + i;
    const suffix = base !== undefined ? (base + n).toString(16).padStart(12, "0") : String(n).padStart(options.pad ?? 4, "0");
    if (suffix.length > 12 && base !== undefined) throw new ToolError("MAC range passes ff:ff:ff:ff:ff:ff");
    const id = `${options.prefix}${suffix}`;
    if (!DEVICE_ID_PATTERN.test(id)) throw new ToolError(`device id ${id} is not valid (1-64 of A-Z a-z 0-9 . _ -)`);
    ids.push(id);
  }
  return ids;
}

/** The NVS partition CSV (nvs_partition_gen.py) of one provisioning file. Keys are at most 15 characters. */
export function nvsCsv(device: Record<string, string>): string {
  const rows = ["key,type,encoding,value", "wcm,namespace,,", `deviceId,data,string,${device.deviceId}`, `option,data,string,${device.option}`];
  if (device.secret) rows.push(`secret,data,hex2bin,${device.secret}`);
  if (device.temporarySecret) rows.push(`tempSecret,data,hex2bin,${device.temporarySecret}`);
  if (device.temporarySecretFrom) rows.push(`tempFrom,data,string,${device.temporarySecretFrom}`);
  if (device.hmacKeyBlock) rows.push(`hmacKeyBlock,data,string,${device.hmacKeyBlock}`);
  if (device.provisioningKey) rows.push(`provKey,data,hex2bin,${device.provisioningKey}`);
  if (device.labelCode) rows.push(`labelCode,data,string,${device.labelCode}`);
  const der = (pem: string) => pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  if (device.certificate) rows.push(`cert,data,base64,${der(device.certificate)}`);
  if (device.privateKey) rows.push(`key,data,base64,${der(device.privateKey)}`);
  return `${rows.join("\n")}\n`;
}

class Progress {
  #last = 0;
  #lastPct = -1;
  constructor(readonly stream: NodeJS.WritableStream & { isTTY?: boolean }, readonly total: number) {}
  update(done: number, force = false): void {
    const pct = Math.floor((done * 100) / this.total);
    if (this.stream.isTTY) {
      const width = 30;
      const filled = Math.round((done / this.total) * width);
      this.stream.write(`\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${this.total} ${pct}%${done === this.total ? "\n" : ""}`);
      return;
    }
    const now = Date.now();
    if (force || done === this.total || pct >= this.#lastPct + 10 || now - this.#last > 5000) {
      this.#last = now;
      this.#lastPct = pct;
      this.stream.write(`make-lot: ${done}/${this.total} devices (${pct}%)\n`);
    }
  }
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A device's files are complete when both parse and name the device. */
function deviceComplete(out: string, id: string): boolean {
  const json = readJson(join(out, "devices", `${id}.json`));
  if (!json || json.deviceId !== id) return false;
  try {
    const csv = readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8");
    return csv.startsWith("key,type,encoding,value\n") && csv.endsWith("\n") && csv.includes(`deviceId,data,string,${id}\n`);
  } catch {
    return false;
  }
}

/**
 * Makes (or resumes) a lot.
 * @throws Error with a message for the operator (never containing a secret)
 */
export async function makeLot(options: MakeLotOptions): Promise<MakeLotResult> {
  const o = { pad: 4, keyType: "rsa" as const, ...options };
  if (!["secret", "temporary", "certificate"].includes(o.option)) throw new ToolError("--option must be secret, temporary or certificate");
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > 2_000_000) throw new ToolError("--count must be 1..2000000");
  if (!Number.isInteger(o.start) || o.start < 0) throw new ToolError("--start must be a non-negative integer");
  const ids = lotIds(o);
  o.lot ??= `${o.prefix}lot-${o.start}-${o.start + o.count - 1}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.lot)) throw new ToolError(`lot name ${o.lot} is not valid: give --lot`);
  if (o.option === "certificate" && (!o.caName || !o.services)) throw new ToolError("certificate lots need --ca-name and --data (the cloud registry holding the CA key)");
  if (o.option === "temporary") {
    o.temporaryMode ??= "derived";
    if (!["derived", "hardware", "lot-key"].includes(o.temporaryMode)) throw new ToolError("--temporary-mode must be derived, hardware or lot-key");
    if (o.temporaryMode === "hardware") {
      o.keyBlock ??= DEFAULT_KEY_BLOCK;
      if (!Number.isInteger(o.keyBlock) || o.keyBlock < 0 || o.keyBlock > 5) throw new ToolError("--key-block must be 0..5 (BLOCK_KEY0..BLOCK_KEY5)");
    } else if (o.keyBlock !== undefined) throw new ToolError("--key-block is for --temporary-mode hardware");
  } else if (o.temporaryMode !== undefined || o.keyBlock !== undefined) throw new ToolError("--temporary-mode and --key-block are for temporary lots");
  const out = o.out;
  mkdirSync(join(out, "devices"), { recursive: true, mode: 0o700 });
  chmodSync(out, 0o700);
  chmodSync(join(out, "devices"), 0o700);

  // the arguments: a re-run must match them
  const args: Record<string, unknown> = {};
  for (const key of ARG_KEYS) args[key] = o[key] ?? null;
  if (o.option !== "certificate" || o.csrDir !== undefined) args.keyType = null;
  const lotFile = join(out, "lot.json");
  const previous = readJson(lotFile);
  if (previous) {
    if (JSON.stringify(previous) !== JSON.stringify(args)) throw new ToolError(`${lotFile} was made with other arguments; use another --out or the same arguments`);
  } else writeAtomic(lotFile, `${JSON.stringify(args)}\n`, 0o600);

  // the lot's cloud settings (firmware-wide)
  if (o.cloudCaPem !== undefined) {
    const cloud = validateCloudConfig({ host: o.cloudHost ?? "localhost", port: o.cloudPort ?? 8883, ca: o.cloudCaPem, serverName: o.serverName });
    writeAtomic(join(out, "cloud.json"), `${JSON.stringify(cloud, null, 2)}\n`, 0o644);
  }

  // temporary: one provisioning key per lot, made once
  let provisioningKeyHex: string | undefined;
  if (o.option === "temporary") {
    const keyFile = join(out, "lot-key.json");
    const existing = readJson(keyFile);
    if (existing && typeof existing.provisioningKeyHex === "string" && /^[0-9a-f]{64}$/.test(existing.provisioningKeyHex)) {
      provisioningKeyHex = existing.provisioningKeyHex;
    } else {
      provisioningKeyHex = randomBytes(32).toString("hex");
      writeAtomic(keyFile, `${JSON.stringify({ lot: o.lot, provisioningKeyHex })}\n`, 0o600);
    }
    // hardware mode: the 32 raw bytes for espefuse.py burn_key (an eFuse key block holds exactly 256 bits)
    if (o.temporaryMode === "hardware") writeAtomicBytes(join(out, "lot-key.bin"), Buffer.from(provisioningKeyHex, "hex"), 0o600);
  }

  // the journal: devices finished by earlier runs
  const journalFile = join(out, "journal.jsonl");
  const journaled = new Set<string>();
  if (existsSync(journalFile)) {
    for (const line of readFileSync(journalFile, "utf8").split("\n")) {
      try {
        const entry = JSON.parse(line) as { id?: unknown };
        if (typeof entry.id === "string") journaled.add(entry.id);
      } catch {
        // a torn last line: that device is redone
      }
    }
  }

  const progress = new Progress(o.progress ?? process.stderr, ids.length);
  let made = 0;
  let skipped = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (journaled.has(id) && deviceComplete(out, id)) {
      skipped++;
      continue;
    }
    if (o.stopAfter !== undefined && made >= o.stopAfter) {
      progress.update(i, true);
      return { lot: o.lot, made, skipped, interrupted: true };
    }
    let device: Record<string, string>;
    if (o.option === "secret") device = { deviceId: id, option: "secret", secret: randomBytes(32).toString("hex") };
    else if (o.option === "temporary") device = temporaryDevice(id, o.temporaryMode!, provisioningKeyHex!, o.keyBlock);
    else if (o.csrDir !== undefined) {
      const csrFile = join(o.csrDir, `${id}.csr.pem`);
      if (!existsSync(csrFile)) throw new ToolError(`no certificate request ${csrFile}`);
      const signed = await o.services!.signDeviceCsr({ caName: o.caName!, deviceId: id, csrPem: readFileSync(csrFile, "utf8") });
      device = { deviceId: id, option: "certificate", certificate: signed.certificatePem };
    } else {
      const issued = await o.services!.issueDeviceCertificate({ caName: o.caName!, deviceId: id, keyType: o.keyType });
      device = { deviceId: id, option: "certificate", certificate: issued.certificatePem, privateKey: issued.privateKeyPem };
    }
    // the label code (65 random bits, docs/protocol.md 15.2): on the device and its label, never in the bundle
    device.labelCode = newLabelCode((n) => new Uint8Array(randomBytes(n)));
    writeAtomic(join(out, "devices", `${id}.label.json`), `${JSON.stringify(labelOf(id, device.labelCode))}\n`, 0o600);
    writeAtomic(join(out, "devices", `${id}.json`), `${JSON.stringify(device, null, 2)}\n`, 0o600);
    writeAtomic(join(out, "devices", `${id}.nvs.csv`), nvsCsv(device), 0o600);
    appendFileSync(journalFile, `${JSON.stringify({ n: o.start + i, id })}\n`, { mode: 0o600 });
    made++;
    progress.update(i + 1);
  }
  progress.update(ids.length, true);

  // the bundle, rebuilt from the device files: identical on every complete run
  const header: BundleHeader = { format: BUNDLE_FORMAT, version: 1, lot: o.lot, option: o.option, count: ids.length };
  if (o.option === "certificate") header.caName = o.caName;
  if (o.option === "temporary") header.provisioningKeyHex = provisioningKeyHex;
  const lines = [JSON.stringify(header)];
  for (const id of ids) {
    const device = readJson(join(out, "devices", `${id}.json`))!;
    if (o.option === "secret") lines.push(JSON.stringify({ deviceId: id, secretHex: device.secret }));
    else if (o.option === "temporary") lines.push(JSON.stringify({ deviceId: id }));
    else lines.push(JSON.stringify({ deviceId: id, certFingerprint: fingerprint(new X509Certificate(device.certificate as string)) }));
  }
  const text = `${lines.join("\n")}\n`;
  // the label printer's list, from the device files (devices made before label codes have none)
  const labels = ["deviceId,code,softAp,qr"];
  for (const id of ids) {
    const code = readJson(join(out, "devices", `${id}.json`))!.labelCode;
    if (typeof code === "string") labels.push(Object.values(labelOf(id, code)).join(","));
  }
  writeAtomic(join(out, "labels.csv"), `${labels.join("\n")}\n`, 0o600);
  const bundle = join(out, "bundle.jsonl");
  const sha256 = bundleSha256(text);
  writeAtomic(bundle, text, 0o600);
  writeAtomic(`${bundle}.sha256`, checksumLine(sha256, "bundle.jsonl"), 0o644);
  return { lot: o.lot, made, skipped, interrupted: false, bundle, sha256 };
}

const USAGE = `usage: npm run make-lot -- --option secret|temporary|certificate --count N --prefix lamp- --start 1 --out <dir> [options]`;

/** make-lot's options (parseArgs: \`--flag value\` or \`--flag=value\`; unknown flags refused). */
export const MAKE_LOT_OPTIONS: Record<string, OptionSpec> = {
  option: { type: "string", value: "secret|temporary|certificate", help: "the login option of the lot (required)" },
  count: { type: "string", value: "<N>", help: "devices in the lot, 1..2000000 (required)" },
  prefix: { type: "string", value: "<text>", help: "device id prefix" },
  start: { type: "string", value: "<n>", help: "first number (default 1)" },
  out: { type: "string", value: "<dir>", help: "output directory, made 0700 (required)" },
  "mac-base": { type: "string", value: "<mac>", help: "ids are the MAC base plus n, 12 hex digits (24:0a:c4:00:00:00)" },
  pad: { type: "string", value: "<n>", help: "digits of the number (default 4)" },
  lot: { type: "string", value: "<name>", help: "the lot's name (default <prefix>lot-<first>-<last>)" },
  "cloud-host": { type: "string", value: "<name>", help: "cloud.json host (needs a CA: --cloud-ca or --data)" },
  "cloud-port": { type: "string", value: "<port>", help: "cloud.json port (default 8883; needs a CA)" },
  "cloud-ca": { type: "string", value: "<server-ca.pem>", help: "the cloud's server CA: writes cloud.json (default <data>/server-ca.pem when it exists)" },
  "server-name": { type: "string", value: "<name>", help: "cloud.json serverName, the name in the server certificate (needs a CA)" },
  "temporary-mode": { type: "string", value: "derived|hardware|lot-key", help: "temporary lots: derived (default: each device only its own derived secret); hardware (nothing secret in flash, lot-key.bin for eFuse); lot-key (the lot key in every device, WEAKER)" },
  "key-block": { type: "string", value: "0..5", help: "hardware mode: the eFuse key block (default 5)" },
  "ca-name": { type: "string", value: "<CA>", help: "certificate lots: the product CA (required)" },
  data: { type: "string", value: "<dir>", help: "certificate lots: the cloud data directory holding the CA key (else env WCM_DATA)" },
  "master-key-file": { type: "string", value: "<file>", help: "certificate lots: the master key file (else env WCM_MASTER_KEY)" },
  key: { type: "string", value: "rsa|ec", help: "certificate lots: the device key type (default rsa)" },
  "csr-dir": { type: "string", value: "<dir>", help: "certificate lots: sign <dir>/<id>.csr.pem instead of making keys" },
  "stop-after": { type: "string", value: "<n>", help: "stop after n devices (exit 3; a re-run resumes)" },
  json: { type: "boolean", help: "errors as JSON on stdout too" },
  version: { type: "boolean", help: "print the version" },
  help: { type: "boolean", short: "h", help: "this help" },
};

/** The --help text. */
export function makeLotHelp(): string {
  return `${USAGE}\n\noptions:\n${optionsHelp(MAKE_LOT_OPTIONS)}\n\nexit: 0 ok, 1 refused by the cloud registry, 2 usage or input (bad flag, unreadable file), 3 stopped by --stop-after, 70 internal`;
}

/** Where make-lot writes (tests pass their own). */
export interface MakeLotIo {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: MakeLotIo = { out: (t) => void process.stdout.write(`${t}\n`), err: (t) => void process.stderr.write(`${t}\n`) };

/** Runs the command line; returns the exit status (cloud/cli-kit.ts EXIT). */
export async function runMakeLot(argv: string[], env: NodeJS.ProcessEnv = process.env, io: MakeLotIo = STDIO): Promise<number> {
  const json = argv.includes("--json");
  try {
    const { values, positionals } = parseCommandLine(argv, MAKE_LOT_OPTIONS);
    if (values.help) {
      io.out(makeLotHelp());
      return EXIT.OK;
    }
    if (values.version) {
      io.out(version());
      return EXIT.OK;
    }
    if (positionals.length > 0) throw new UsageError(`make-lot takes only options: unexpected ${positionals[0]}`);
    const flag = (name: string) => values[name] as string | undefined;
    const int = (name: string, fallback?: number): number => {
      const v = flag(name);
      if (v === undefined) {
        if (fallback === undefined) throw new UsageError(`--${name} is required`);
        return fallback;
      }
      if (!/^[0-9]{1,9}$/.test(v)) throw new UsageError(`--${name} must be a number`);
      return Number(v);
    };
    const out = flag("out");
    if (!out) throw new UsageError("--out is required");
    const keyType = flag("key") ?? "rsa";
    if (keyType !== "rsa" && keyType !== "ec") throw new UsageError("--key must be rsa or ec");
    const data = flag("data") ?? env.WCM_DATA;
    let caFile = flag("cloud-ca");
    if (caFile === undefined && data !== undefined && existsSync(join(data, "server-ca.pem"))) caFile = join(data, "server-ca.pem");
    if (caFile === undefined) {
      const orphan = ["cloud-host", "cloud-port", "server-name"].find((name) => flag(name) !== undefined);
      if (orphan !== undefined) throw new UsageError(`--${orphan} goes into cloud.json, which needs the cloud's CA: give --cloud-ca <server-ca.pem> (or --data with a server-ca.pem)`);
    }
    const cloudCaPem = caFile === undefined ? undefined : readInputFile(caFile, 65536, "the cloud CA file").toString("utf8");
    let services: CloudServices | undefined;
    if (flag("option") === "certificate" && data !== undefined) {
      if (!existsSync(join(data, "registry.sqlite"))) throw new CloudError("REGISTRY_MISSING", `${data} holds no registry: check --data`);
      const key = loadMasterKey({ masterKeyFile: flag("master-key-file"), env });
      services = new CloudServices(await Registry.open(data, key), "admin:make-lot");
      key.fill(0);
    }
    try {
      const result = await makeLot({
        option: (flag("option") ?? "") as LotOption, count: int("count"), prefix: flag("prefix") ?? "", start: int("start", 1), out,
        macBase: flag("mac-base"), pad: int("pad", 4), lot: flag("lot"), caName: flag("ca-name"), keyType,
        cloudHost: flag("cloud-host"), cloudPort: values["cloud-port"] !== undefined ? int("cloud-port") : undefined,
        cloudCaPem, serverName: flag("server-name"),
        csrDir: flag("csr-dir"), services, stopAfter: values["stop-after"] !== undefined ? int("stop-after") : undefined,
        temporaryMode: flag("temporary-mode") as TemporaryMode | undefined, keyBlock: values["key-block"] !== undefined ? int("key-block") : undefined,
      });
      io.out(JSON.stringify(result, null, 2));
      return result.interrupted ? EXIT.STOPPED : EXIT.OK;
    } finally {
      await services?.registry.close();
    }
  } catch (error) {
    const { exit, text } = formatError(error, json);
    (json ? io.out : io.err)(text);
    return exit;
  }
}


if (invokedDirectly(import.meta.url)) void runMakeLot(process.argv.slice(2)).then((code) => (process.exitCode = code));
