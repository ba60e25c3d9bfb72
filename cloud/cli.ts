/*
 * The admin CLI: `npm run cloud -- <command> [args] [--options]`.
 *
 * Operates on the registry in a data directory (`--data <dir>` or env
 * WCM_DATA) under the master key (`--master-key-file <file>` or env
 * WCM_MASTER_KEY), through the same service layer as the HTTP API. `serve`
 * runs the cloud standalone. Output is JSON on stdout; errors go to stderr as
 * `error <CODE>: <message>` with exit status 1 (2 for usage errors).
 * Run with no command for the list.
 */
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { CloudError, isCloudError } from "./errors";
import { generateMasterKeyHex, loadMasterKey } from "./master-key";
import { replaceOwnerOnlyFile } from "./owner-files";
import { MAX_CRL_BYTES } from "./pki";
import { Registry } from "./registry";
import { CloudServices } from "./services";
import { NetworkServices } from "./network-service";
import type { AuditRecord, DeviceView } from "./registry";
import { startCloud, type StartCloudOptions } from "./index";
import { invokedDirectly } from "./invoked-directly";

const USAGE = `wcm cloud admin

usage: npm run cloud -- <command> [arguments] [--data <dir>] [--master-key-file <file>]

  gen-master-key                                 print a new random master key (64 hex digits)
  serve [--mqtt-port 8883] [--http-port 8080] [--radius-port 1812]     run the cloud (every listener on 127.0.0.1 by default)
        [--mqtt-host a] [--radius-host a] [--host a]   bind addresses of the device listeners (--host sets both)
        [--admin-host 127.0.0.1] [--admin-name n]      the admin API's bind address and name (a name is needed off loopback)
        [--admin-token-file f]                         the admin token (default <data>/admin-token, made on first start)
        [--admin-tls issue|off] [--admin-tls-cert chain.pem --admin-tls-key key.pem]
                                                       admin TLS: off loopback it is required (default: issued by the server CA)
  ca create <name> [--days n]                    create a product CA (RSA-2048, key kept sealed)
  ca register <name> <cert.pem>                  register an external product CA
  ca list | ca revoke <name>
  ca import-crl <name> <crl.pem|crl.der>         revoke every certificate a CRL of the CA lists (verified by the CA's key)
  cert revoke (--ca <name> --serial <hex> | --sha256 <fingerprint>) [--reason text]
                                                 revoke one device certificate (MQTT and EAP-TLS)
  cert revoked [--ca <name>] [--limit n]         list revoked certificates
  cert issue <ca> <device-id> [--ec] [--days n] [--out <dir>]
                                                 issue a device certificate + PKCS#8 key
  device add-secret <device-id> (--secret-file f | --secret-hex hex)
  device add-cert <device-id> (<cert.pem> | --ca <name>)
  device list [--limit n] [--offset n] [--table] | device show <id> [--table]
  device revoke <id> | device rotate <id> | device reset-counter <id> | device unlock <id>
  device reprovision <id>                        take a squatted temporary id back: its secret dropped, next temporary login re-issues
  device network <id> --ssid s (--password-file f | --password p) [--priority 0-100]
                                                 hand a private network to the device (sealed to its key)
  device forget-network <id> --ssid s            tell the device to forget a private network
  hotspot list | hotspot set <profiles.json>     the hotspot profile set (a JSON array; set bumps the revision)
  lot create <lot> [--allow id,id,...] [--allow-file f] [--line-rate N]   create a provisioning key (shown once)
  lot list | lot show <lot>                      lots with claims, claims in the last hour and line rate
  lot line-rate <lot> <claims-per-hour|none>     claims faster than this are audited (lot.claim-rate-exceeded)
  lot retire <lot>                               the lot is done: no new temporary login; open sessions may finish
  lot revoke-key <lot>                           the key leaked: no temporary login, temporary sessions closed, pending dropped
  lot revoke <lot>                               revoke the key and every device of the lot (sessions closed)
  import <devices.csv> [--ca <name>] [--lot <lot>]       bulk registration, all or nothing
  import-bundle <bundle.jsonl> [--checksum <file>]        manufacturing bundle (default checksum <bundle>.sha256)
  nas add <name> <address|*> (--secret-file f | --secret s)   register a RADIUS client (access point)
  nas list | nas remove <name>
  audit [--limit n] [--device <id>] [--action a|prefix.] [--actor a] [--since t] [--until t] [--before seq] [--table]

environment: WCM_DATA (data directory), WCM_MASTER_KEY (64 hex digits)`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["mqtt-host", "radius-host", "admin-host", "admin-name", "admin-tls", "admin-tls-cert", "admin-tls-key", "radius-port", "secret", "data", "master-key-file", "host", "mqtt-port", "http-port", "admin-token-file", "days", "out", "secret-file", "secret-hex", "ca", "limit", "offset", "allow", "allow-file", "line-rate", "lot", "device", "checksum", "action", "actor", "since", "until", "before", "ssid", "password", "password-file", "priority", "serial", "sha256", "reason"]);
const BOOLEAN_FLAGS = new Set(["ec", "help", "table"]);

function parse(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith("--")) {
      const name = arg.slice(2);
      if (BOOLEAN_FLAGS.has(name)) flags.set(name, true);
      else if (VALUE_FLAGS.has(name)) {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
        flags.set(name, argv[++i]);
      } else throw new UsageError(`unknown option --${name}`);
    } else positional.push(arg);
  }
  return { positional, flags };
}

function flag(parsed: Parsed, name: string): string | undefined {
  const value = parsed.flags.get(name);
  return typeof value === "string" ? value : undefined;
}

function intFlag(parsed: Parsed, name: string): number | undefined {
  const value = flag(parsed, name);
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(value)) throw new UsageError(`--${name} must be a number`);
  return Number(value);
}

function need(parsed: Parsed, index: number, what: string): string {
  const value = parsed.positional[index];
  if (value === undefined) throw new UsageError(`missing ${what}`);
  return value;
}

function readText(path: string, limit: number): string {
  const text = readFileSync(path, "utf8");
  if (Buffer.byteLength(text) > limit) throw new CloudError("TOO_LARGE", `${path} is larger than ${limit} bytes`);
  return text;
}

function dataDir(parsed: Parsed, env: NodeJS.ProcessEnv): string {
  const dir = flag(parsed, "data") ?? env.WCM_DATA;
  if (!dir) throw new UsageError("give the data directory with --data <dir> or WCM_DATA");
  return dir;
}

function openServices(parsed: Parsed, env: NodeJS.ProcessEnv): CloudServices {
  const key = loadMasterKey({ masterKeyFile: flag(parsed, "master-key-file"), env });
  const registry = Registry.open(dataDir(parsed, env), key);
  key.fill(0);
  return new CloudServices(registry, "admin:cli");
}

/** `2025-06-01T12:00:05.123Z` as `06-01 12:00:05`, null as `-`. */
function shortTime(value: string | null | undefined): string {
  return value ? `${value.slice(5, 10)} ${value.slice(11, 19)}` : "-";
}

/** Devices as a compact text table: identity, credential, state, network, last failure, last seen, flags. */
export function deviceTable(devices: DeviceView[]): string {
  const rows: string[][] = [["DEVICE", "KIND", "CRED", "STATE", "NETWORK", "LAST FAILURE", "FAILED AT", "LAST SEEN", "FLAGS"]];
  for (const d of devices) {
    const flags = [d.revoked ? "revoked" : "", d.lockedUntil ? `locked<${shortTime(d.lockedUntil)}` : "", d.pendingGeneration !== null ? `pending-g${d.pendingGeneration}` : "",
      d.lot !== null && !d.tempRetired && d.kind === "temporary" ? `lot:${d.lot}` : ""].filter(Boolean).join(",");
    const on = d.network?.on;
    const result = d.network?.lastResult;
    const network = on ? `${on.kind}:${on.ssid}${result ? ` (${result.result}${result.reason ? ` ${result.reason}` : ""})` : ""}` : null;
    rows.push([d.deviceId, `${d.kind}${d.generation > 0 ? `/g${d.generation}` : ""}`, d.credential ?? "-", d.state ?? "-", network ?? "-",
      d.lastFailure ?? "-", shortTime(d.lastFailureAt), shortTime(d.lastSeen), flags || "-"]);
  }
  return textTable(rows);
}

/** Audit records as a compact text table. */
export function auditTable(records: AuditRecord[]): string {
  const rows = [["SEQ", "AT", "ACTOR", "ACTION", "DEVICE", "DETAIL"]];
  for (const r of records) rows.push([String(r.seq), r.at.slice(0, 19).replace("T", " "), r.actor, r.action, r.deviceId ?? "-", r.detail ?? ""]);
  return textTable(rows);
}

function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd()).join("\n");
}

function adminTlsFlags(parsed: Parsed): StartCloudOptions["adminTls"] {
  const mode = flag(parsed, "admin-tls");
  const certFile = flag(parsed, "admin-tls-cert");
  const keyFile = flag(parsed, "admin-tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError("give both --admin-tls-cert and --admin-tls-key");
  if (certFile !== undefined && keyFile !== undefined) {
    if (mode !== undefined) throw new UsageError("--admin-tls-cert/--admin-tls-key and --admin-tls exclude each other");
    return { certFile, keyFile };
  }
  if (mode === undefined) return undefined;
  if (mode === "issue") return "issue";
  if (mode === "off") return false;
  throw new UsageError("--admin-tls is issue or off");
}

async function command(parsed: Parsed, env: NodeJS.ProcessEnv, out: (text: string) => void): Promise<unknown> {
  const [group, action] = parsed.positional;
  if (group === "gen-master-key") {
    out(generateMasterKeyHex());
    return undefined;
  }
  if (group === "serve") {
    const cloud = await startCloud({
      dataDir: dataDir(parsed, env), masterKeyFile: flag(parsed, "master-key-file"),
      mqttHost: flag(parsed, "mqtt-host") ?? flag(parsed, "host"), radiusHost: flag(parsed, "radius-host") ?? flag(parsed, "host"),
      adminHost: flag(parsed, "admin-host"), adminName: flag(parsed, "admin-name"), adminTokenFile: flag(parsed, "admin-token-file"), adminTls: adminTlsFlags(parsed),
      mqttPort: intFlag(parsed, "mqtt-port") ?? 8883, httpPort: intFlag(parsed, "http-port") ?? 8080,
      radiusPort: intFlag(parsed, "radius-port"),
      log: (level, message) => {
        if (level !== "debug") process.stderr.write(`${new Date().toISOString()} ${level} ${message}\n`);
      },
    });
    out(JSON.stringify({
      mqttPort: cloud.mqttPort, httpPort: cloud.httpPort, radiusPort: cloud.radiusPort, radiusServerName: cloud.radiusServerName, serverName: cloud.serverName,
      serverCa: join(dataDir(parsed, env), "server-ca.pem"), adminUrl: cloud.admin?.url, adminTokenFile: cloud.admin?.tokenFile,
    }));
    const stop = () => void cloud.close().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    return new Promise(() => undefined);
  }
  const services = openServices(parsed, env);
  try {
    switch (`${group} ${action}`) {
      case "ca create": return await services.createProductCa({ name: need(parsed, 2, "CA name"), days: intFlag(parsed, "days") });
      case "ca register": return await services.registerProductCa({ name: need(parsed, 2, "CA name"), certificatePem: readText(need(parsed, 3, "certificate file"), 65536) });
      case "ca list": return await services.listProductCas();
      case "ca revoke": return await services.revokeProductCa({ name: need(parsed, 2, "CA name") });
      case "ca import-crl": {
        const caName = need(parsed, 2, "CA name");
        const bytes = readFileSync(need(parsed, 3, "CRL file"));
        if (bytes.length > MAX_CRL_BYTES * 2) throw new CloudError("TOO_LARGE", `the CRL file is larger than ${MAX_CRL_BYTES * 2} bytes`);
        const text = bytes.toString("latin1");
        return await services.importCrl(/-----BEGIN (X509 )?CRL-----/.test(text) ? { caName, crlPem: text } : { caName, crlDerBase64: bytes.toString("base64") });
      }
      case "cert revoke": {
        const sha256 = flag(parsed, "sha256");
        const reason = flag(parsed, "reason");
        if (sha256 !== undefined) return await services.revokeCertificate({ fingerprint: sha256, reason });
        const caName = flag(parsed, "ca");
        const serial = flag(parsed, "serial");
        if (caName === undefined || serial === undefined) throw new UsageError("give --ca <name> --serial <hex>, or --sha256 <fingerprint>");
        return await services.revokeCertificate({ caName, serial, reason });
      }
      case "cert revoked": return await services.listRevokedCertificates({ caName: flag(parsed, "ca"), limit: intFlag(parsed, "limit") });
      case "cert issue": {
        const issued = await services.issueDeviceCertificate({
          caName: need(parsed, 2, "CA name"), deviceId: need(parsed, 3, "device id"), keyType: parsed.flags.has("ec") ? "ec" : "rsa", days: intFlag(parsed, "days"),
        });
        const dir = flag(parsed, "out");
        if (dir === undefined) return issued;
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(join(dir, `${issued.deviceId}.cert.pem`), issued.certificatePem);
        replaceOwnerOnlyFile(join(dir, `${issued.deviceId}.key.pem`), issued.privateKeyPem);
        return { deviceId: issued.deviceId, caName: issued.caName, fingerprint: issued.fingerprint, serial: issued.serial, certificate: join(dir, `${issued.deviceId}.cert.pem`), privateKey: join(dir, `${issued.deviceId}.key.pem`) };
      }
      case "device add-secret": {
        const file = flag(parsed, "secret-file");
        const secretHex = file !== undefined ? readText(file, 1024).trim() : flag(parsed, "secret-hex");
        if (secretHex === undefined) throw new UsageError("give --secret-file <file> or --secret-hex <hex>");
        return await services.registerSecretDevice({ deviceId: need(parsed, 2, "device id"), secretHex });
      }
      case "device add-cert": {
        const ca = flag(parsed, "ca");
        const id = need(parsed, 2, "device id");
        if (ca !== undefined) return await services.registerCertificateDevice({ deviceId: id, caName: ca });
        return await services.registerCertificateDevice({ deviceId: id, certificatePem: readText(need(parsed, 3, "certificate file"), 65536) });
      }
      case "device list": {
        const devices = await services.listDevices({ limit: intFlag(parsed, "limit"), offset: intFlag(parsed, "offset") });
        if (!parsed.flags.has("table")) return devices;
        out(deviceTable(devices));
        return undefined;
      }
      case "device show": {
        const device = await services.getDevice({ deviceId: need(parsed, 2, "device id") });
        if (!parsed.flags.has("table")) return device;
        out(deviceTable([device]));
        return undefined;
      }
      case "device unlock": return await services.unlockDevice({ deviceId: need(parsed, 2, "device id") });
      case "device revoke": return await services.revokeDevice({ deviceId: need(parsed, 2, "device id") });
      case "device rotate": return await services.rotateSecret({ deviceId: need(parsed, 2, "device id") });
      case "device reset-counter": return await services.resetLoginCounter({ deviceId: need(parsed, 2, "device id") });
      case "device reprovision": return await services.reprovisionDevice({ deviceId: need(parsed, 2, "device id") });
      case "device network": {
        const file = flag(parsed, "password-file");
        const password = file !== undefined ? readText(file, 1024).replace(/\r?\n$/, "") : flag(parsed, "password");
        if (password === undefined) throw new UsageError("give --password-file <file> or --password <text> (\"\" for an open network)");
        const ssid = flag(parsed, "ssid");
        if (ssid === undefined) throw new UsageError("give --ssid <name>");
        const priority = intFlag(parsed, "priority");
        return await new NetworkServices(services.registry, services.actor).setDeviceNetwork({
          deviceId: need(parsed, 2, "device id"), ssid, password, ...(priority === undefined ? {} : { priority }),
        });
      }
      case "device forget-network": {
        const ssid = flag(parsed, "ssid");
        if (ssid === undefined) throw new UsageError("give --ssid <name>");
        return await new NetworkServices(services.registry, services.actor).forgetDeviceNetwork({ deviceId: need(parsed, 2, "device id"), ssid });
      }
      case "hotspot list": return await new NetworkServices(services.registry, services.actor).listHotspotProfiles();
      case "hotspot set": {
        let value: unknown;
        try {
          value = JSON.parse(readText(need(parsed, 2, "profiles file"), 64 * 1024));
        } catch (error) {
          if (isCloudError(error)) throw error;
          throw new CloudError("INVALID_INPUT", "the profiles file is not JSON", { field: "profiles" });
        }
        const profiles = Array.isArray(value) ? value : (value as { profiles?: unknown })?.profiles;
        return await new NetworkServices(services.registry, services.actor).setHotspotProfiles({ profiles: profiles as never });
      }
      case "lot create": {
        const inline = flag(parsed, "allow");
        const file = flag(parsed, "allow-file");
        let allowlist: string[] | undefined;
        if (inline !== undefined) allowlist = inline.split(",").map((s) => s.trim()).filter(Boolean);
        if (file !== undefined) allowlist = [...(allowlist ?? []), ...readText(file, 64 * 1024 * 1024).split(/\r?\n/).map((s) => s.trim()).filter(Boolean)];
        const lineRate = intFlag(parsed, "line-rate");
        return await services.createProvisioningKey({ lot: need(parsed, 2, "lot"), allowlist, ...(lineRate === undefined ? {} : { lineRate }) });
      }
      case "nas add": {
        const file = flag(parsed, "secret-file");
        const secret = file !== undefined ? readText(file, 1024).trim() : flag(parsed, "secret");
        if (secret === undefined) throw new UsageError("give --secret-file <file> or --secret <secret>");
        return await services.addNasClient({ name: need(parsed, 2, "NAS name"), address: need(parsed, 3, "address (IP or *)"), secret });
      }
      case "nas list": return await services.listNasClients();
      case "nas remove": return await services.removeNasClient({ name: need(parsed, 2, "NAS name") });
      case "lot list": return await services.listProvisioningKeys();
      case "lot show": return await services.getLot({ lot: need(parsed, 2, "lot") });
      case "lot line-rate": {
        const rate = need(parsed, 3, "claims per hour or none");
        if (rate !== "none" && !/^[0-9]{1,8}$/.test(rate)) throw new UsageError("the line rate is a number of claims per hour, or none");
        return await services.setLotLineRate({ lot: need(parsed, 2, "lot"), lineRate: rate === "none" ? null : Number(rate) });
      }
      case "lot retire": return await services.retireProvisioningKey({ lot: need(parsed, 2, "lot") });
      case "lot revoke-key": return await services.revokeProvisioningKey({ lot: need(parsed, 2, "lot") });
      case "lot revoke": return await services.revokeLot({ lot: need(parsed, 2, "lot") });
      default:
        if (group === "import") {
          return await services.importDevicesCsv({ csv: readText(need(parsed, 1, "CSV file"), 50 * 1024 * 1024), caName: flag(parsed, "ca"), lot: flag(parsed, "lot") });
        }
        if (group === "import-bundle") {
          const file = need(parsed, 1, "bundle file");
          return await services.importBundle({ bundle: readFileSync(file), checksum: readText(flag(parsed, "checksum") ?? `${file}.sha256`, 1024) });
        }
        if (group === "audit") {
          const records = await services.auditLog({
            limit: intFlag(parsed, "limit"), deviceId: flag(parsed, "device"), action: flag(parsed, "action"), actor: flag(parsed, "actor"),
            since: flag(parsed, "since"), until: flag(parsed, "until"), before: intFlag(parsed, "before"),
          });
          if (!parsed.flags.has("table")) return records;
          out(auditTable(records));
          return undefined;
        }
        throw new UsageError(group === undefined ? "no command" : `unknown command ${parsed.positional.slice(0, 2).join(" ")}`);
    }
  } finally {
    services.registry.close();
  }
}

/** Where the CLI writes its output and errors. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const STDIO: CliIo = {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
};

/**
 * Runs the CLI. Returns the exit status (0 ok, 1 refused, 2 usage).
 * @example await runCli(["device", "list", "--data", "/var/lib/wcm"], process.env)
 */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = STDIO): Promise<number> {
  try {
    const parsed = parse(argv);
    if (parsed.flags.has("help") || parsed.positional.length === 0) {
      io.out(USAGE);
      return parsed.flags.has("help") ? 0 : 2;
    }
    const result = await command(parsed, env, io.out);
    if (result !== undefined) io.out(JSON.stringify(result, null, 2));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`usage: ${error.message} (run with --help)`);
      return 2;
    }
    if (isCloudError(error)) {
      io.err(`error ${error.message}`);
      return 1;
    }
    io.err(`error INTERNAL: ${(error as Error).message}`);
    return 1;
  }
}


if (invokedDirectly(import.meta.url)) {
  runCli(process.argv.slice(2)).then((code) => {
    // a `serve` that could not start exits at once (a half-closed server must not keep it alive)
    if (code !== 0 && process.argv[2] === "serve") process.exit(code);
    if (code !== 0 || process.argv[2] !== "serve") process.exitCode = code;
  });
}
