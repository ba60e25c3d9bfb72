/*
 * The admin CLI: `npm run cloud -- <command> [arguments] [--options]`.
 *
 * Operates on the registry in a data directory (`--data <dir>`, env WCM_DATA or
 * the config file's data.dir) under the master key (`--master-key-file <file>`,
 * the config's data.masterKeyFile or env WCM_MASTER_KEY), through the same
 * service layer as the HTTP API. `init` makes a registry; every other command
 * refuses a data directory without one (REGISTRY_MISSING). `serve` runs the
 * cloud from the configuration (cloud/config.ts; `--config <file>` or env
 * WCM_CONFIG), its flags overriding it; `config check` prints the configuration
 * in force. Each command takes its own options (`<command> --help`); secrets
 * come only from files or standard input (`-`), never from the command line.
 * Output is JSON on stdout; errors and exit codes are cloud/cli-kit.ts's (one
 * format with make-lot; `--json` puts errors on stdout as JSON).
 */
import { createLogger, type CloudLog, type LogLevel } from "./log";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { CloudError, isCloudError } from "./errors";
import { EXIT, formatError, optionsHelp, parseCommandLine, readInputFile, readSecret, UsageError, version, type OptionSpec, type ParsedArgs } from "./cli-kit";
import { envName, getPath, loadConfig, settingPaths, startOptionsFromConfig, type LoadedConfig } from "./config";
import { generateMasterKeyHex, keyFingerprint, loadMasterKey } from "./master-key";
import { assertNotServing, backupRegistry, claimServeLock, rekeyRegistry, restoreRegistry, servingPid } from "./storage/lifecycle";
import { ensureOwnerOnlyDir, replaceOwnerOnlyFile } from "./owner-files";
import { adminToken } from "./admin-token";
import { adminCall, adminEndpoint, type AdminEndpoint } from "./admin-client";
import { BUNDLE_MEDIA_TYPE } from "./http-api";
import { MAX_CRL_BYTES } from "./pki";
import { Registry } from "./registry";
import { CloudServices } from "./services";
import { NetworkServices } from "./network-service";
import type { AuditRecord, DeviceView } from "./registry";
import { certificateInfo, startCloud, type Cloud, type ListenerInfo } from "./index";
import { exportServerCa, issuedServerTls, offlineServerCaKey, removeServerCaKey, serverCaKeyOnline } from "./server-identity";
import { radiusIdentity } from "./radius/identity";
import { invokedDirectly } from "./invoked-directly";
import { isClusterPrimary, isClusterWorker, roleOptions, runPrimary, SINGLE_PROCESS, workerRole } from "./cluster";

/** Where the CLI writes its output and errors, and reads standard input (secrets given as `-`). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin?: () => Buffer;
}

/** What a command's handler gets. */
interface Context {
  args: ParsedArgs;
  env: NodeJS.ProcessEnv;
  io: CliIo;
  /** the configuration (defaults, file, WCM__ variables, --data/--master-key-file) */
  config(): LoadedConfig;
  /** the admin services over an existing registry (closed after the command) */
  services(): Promise<CloudServices>;
  str(name: string): string | undefined;
  int(name: string): number | undefined;
  has(name: string): boolean;
  /** positional argument `index` (after the command words) or a usage error naming it */
  need(index: number, what: string): string;
}

/** One command: its words, arguments, summary, options and handler. */
interface Command {
  name: string;
  args: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  /** most positional arguments after the command words */
  maxArgs: number;
  run(ctx: Context): Promise<unknown>;
}

/** Options every command takes. */
const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  data: { type: "string", value: "<dir>", help: "the data directory (else env WCM_DATA, else the config's data.dir)" },
  database: { type: "string", value: "postgres://user@host:port/db", help: "the registry on PostgreSQL instead of SQLite in the data directory (else env WCM_DATABASE, else the config's data.database); the password in PGPASSWORD or ~/.pgpass" },
  "master-key-file": { type: "string", value: "<file>", help: "the master key file, owner-only (else the config's data.masterKeyFile, else env WCM_MASTER_KEY)" },
  config: { type: "string", value: "<file>", help: "the YAML configuration file (else env WCM_CONFIG)" },
  json: { type: "boolean", help: "errors as JSON on stdout too" },
  help: { type: "boolean", short: "h", help: "this command's help" },
};

const id = (what = "device id"): string => `<${what}>`;
const LIMIT: Record<string, OptionSpec> = { limit: { type: "string", value: "<n>", help: "at most n rows" } };
const TABLE: Record<string, OptionSpec> = { table: { type: "boolean", help: "a text table instead of JSON" } };

function table<T>(ctx: Context, rows: T, render: (rows: T) => string): unknown {
  if (!ctx.has("table")) return rows;
  ctx.io.out(render(rows));
  return undefined;
}

async function network(ctx: Context): Promise<NetworkServices> {
  const services = await ctx.services();
  return new NetworkServices(services.registry, services.actor);
}

/** Every command, in the order --help lists them. */
const COMMANDS: Command[] = [
  {
    name: "init", args: "", maxArgs: 0,
    summary: "make the data directory (owner-only), the registry and the admin token; with --master-key-out, a new master key first",
    options: { "master-key-out": { type: "string", value: "<file>", help: "write a new master key to this file (owner-only; refused if it exists) and use it" } },
    async run(ctx) {
      const dir = dataDir(ctx);
      const url = database(ctx);
      if (url === undefined && existsSync(join(dir, "registry.sqlite"))) throw new CloudError("INVALID_INPUT", `${dir} already holds a registry`, { field: "data" });
      const keyOut = ctx.str("master-key-out");
      let masterKeyFile = ctx.str("master-key-file") ?? (getPath(ctx.config().values, "data.masterKeyFile") as string | undefined);
      if (keyOut !== undefined) {
        if (existsSync(keyOut)) throw new CloudError("INVALID_INPUT", `${keyOut} exists: the master key is never overwritten`, { field: "master-key-out" });
        replaceOwnerOnlyFile(keyOut, `${generateMasterKeyHex()}\n`);
        masterKeyFile = keyOut;
      }
      const key = loadMasterKey({ masterKeyFile, env: ctx.env });
      if (url !== undefined) ensureOwnerOnlyDir(dir);
      let registry: Registry;
      try {
        registry = await Registry.at(url === undefined ? { dataDir: dir } : { database: url }, key);
      } finally {
        key.fill(0);
      }
      try {
        if ((await registry.auditLog(1, undefined, { action: "registry.init" })).length > 0) {
          throw new CloudError("INVALID_INPUT", "the database already holds a registry", { field: "database" });
        }
        await registry.tx(() => registry.audit("admin:cli", "registry.init"));
      } finally {
        await registry.close();
      }
      const token = adminToken(dir, getPath(ctx.config().values, "admin.tokenFile") as string | undefined);
      return { dataDir: dir, registry: url === undefined ? join(dir, "registry.sqlite") : registry.path, masterKeyFile: masterKeyFile ?? "(env WCM_MASTER_KEY)", adminTokenFile: token.file };
    },
  },
  {
    name: "backup", args: "<file>", maxArgs: 1,
    summary: "write a consistent copy of the registry (SQLite VACUUM INTO, while serve runs) and <file>.sha256; PostgreSQL: pg_dump",
    async run(ctx) {
      const target = ctx.need(0, "backup file");
      const services = await ctx.services();
      const key = masterKey(ctx);
      try {
        return backupRegistry(services.registry, key, target);
      } finally {
        key.fill(0);
      }
    },
  },
  {
    name: "restore", args: "<file>", maxArgs: 1,
    summary: "restore a backup into the data directory (serve stopped): its checksum, integrity and master key checked first",
    options: {
      checksum: { type: "string", value: "<file>", help: "its checksum file (default <file>.sha256)" },
      replace: { type: "boolean", help: "move the registry there aside (registry.sqlite.replaced-<time>) instead of refusing" },
    },
    async run(ctx) {
      const file = ctx.need(0, "backup file");
      if (database(ctx) !== undefined) throw new CloudError("INVALID_INPUT", "restore installs a SQLite registry; for PostgreSQL use pg_restore (docs/deploy.md)", { field: "database" });
      const dir = dataDir(ctx);
      const checksum = text(ctx.str("checksum") ?? `${file}.sha256`, 1024, "the checksum file");
      readable(file, "the backup file");
      const key = masterKey(ctx);
      let report;
      try {
        report = restoreRegistry(dir, key, file, checksum, ctx.has("replace"));
        // the restored registry opens under the key (and runs the migrations a backup from an older version needs)
        const registry = await Registry.open(dir, key);
        try {
          await registry.tx(() => registry.audit("admin:cli", "registry.restore", null, `sha256=${report!.sha256.slice(0, 16)} devices=${report!.devices}`));
        } finally {
          await registry.close();
        }
      } finally {
        key.fill(0);
      }
      return report;
    },
  },
  {
    name: "rekey", args: "", maxArgs: 0,
    summary: "re-seal every secret under a new master key in one transaction (serve stopped); then install the new key",
    options: {
      "new-master-key-file": { type: "string", value: "<file>", help: "the new key (64 hex digits, owner-only), e.g. from gen-master-key" },
      "new-master-key-out": { type: "string", value: "<file>", help: "make a new key into this file (owner-only; refused if it exists) and use it" },
    },
    async run(ctx) {
      const url = database(ctx);
      const dir = dataDir(ctx);
      if (url === undefined) {
        requireRegistry(dir);
        assertNotServing(dir, "rekey");
      }
      const out = ctx.str("new-master-key-out");
      let file = ctx.str("new-master-key-file");
      if ((out === undefined) === (file === undefined)) throw new UsageError("give --new-master-key-file <file> or --new-master-key-out <file>");
      if (out !== undefined) {
        if (existsSync(out)) throw new CloudError("INVALID_INPUT", `${out} exists: a master key is never overwritten`, { field: "new-master-key-out" });
        replaceOwnerOnlyFile(out, `${generateMasterKeyHex()}\n`);
        file = out;
      }
      const oldKey = masterKey(ctx);
      const newKey = loadMasterKey({ masterKeyFile: file, env: {} });
      const location = url === undefined ? { dataDir: dir } : { database: url };
      try {
        let registry: Registry;
        try {
          registry = await Registry.at(location, oldKey);
        } catch (error) {
          if (!isCloudError(error, "MASTER_KEY_WRONG")) throw error;
          // a rekey that committed before it was cut short: the rows are under the new key already
          const done = await Registry.at(location, newKey).catch(() => undefined);
          if (!done) throw error;
          await done.close();
          dropResumptionStore(dir);
          return { resealed: 0, alreadyDone: true, to: keyFingerprint(newKey), newMasterKeyFile: file, next: installHint(ctx, file!) };
        }
        let report;
        try {
          const killAt = Number(ctx.env.WCM_TEST_REKEY_KILL_AT ?? 0);
          let points = 0;
          report = await rekeyRegistry(registry, oldKey, newKey, () => {
            // fault injection for the crash sweep (test/storage-lifecycle.test.ts): SIGKILL at the n-th step
            if (killAt > 0 && ++points === killAt) process.kill(process.pid, "SIGKILL");
          });
        } finally {
          await registry.close();
        }
        // the TLS resumption cache was sealed under a key derived from the old one
        dropResumptionStore(dir);
        return { ...report, alreadyDone: false, newMasterKeyFile: file, next: installHint(ctx, file!) };
      } finally {
        oldKey.fill(0);
        newKey.fill(0);
      }
    },
  },
  {
    name: "gen-master-key", args: "", maxArgs: 0, summary: "print a new random master key (64 hex digits) on stdout",
    async run(ctx) {
      ctx.io.out(generateMasterKeyHex());
      return undefined;
    },
  },
  {
    name: "config check", args: "", maxArgs: 0,
    summary: "validate the configuration and print the settings in force (and where each came from); exit 2 on a problem",
    options: { sources: { type: "boolean", help: "print where each setting came from beside it" } },
    async run(ctx) {
      const config = ctx.config();
      // unset settings print as null; the configuration holds no secret (only file paths)
      if (!ctx.has("sources")) return JSON.parse(JSON.stringify({ file: config.file ?? null, config: config.values }, (_k, v: unknown) => v ?? null)) as unknown;
      const settings: Record<string, { value: unknown; from: string; env: string }> = {};
      for (const path of settingPaths()) settings[path] = { value: getPath(config.values, path) ?? null, from: config.sources.get(path)!, env: envName(path) };
      return { file: config.file ?? null, settings };
    },
  },
  {
    name: "serve", args: "", maxArgs: 0, summary: "run the cloud from the configuration (each listener on 127.0.0.1 unless configured); these flags override it",
    options: {
      "mqtt-host": { type: "string", value: "<addr>", help: "mqtt.host" },
      "mqtt-port": { type: "string", value: "<port>", help: "mqtt.port (default 8883)" },
      "radius-host": { type: "string", value: "<addr>", help: "radius.host" },
      "radius-port": { type: "string", value: "<port>", help: "radius.port, and runs the RADIUS server" },
      host: { type: "string", value: "<addr>", help: "mqtt.host and radius.host together" },
      "http-port": { type: "string", value: "<port>", help: "admin.port (default 8080)" },
      "admin-host": { type: "string", value: "<addr>", help: "admin.host (off loopback it needs --admin-name and TLS)" },
      "admin-name": { type: "string", value: "<name>", help: "admin.name" },
      "admin-token-file": { type: "string", value: "<file>", help: "admin.tokenFile" },
      "admin-tls": { type: "string", value: "issue|off", help: "admin.tls" },
      "admin-tls-cert": { type: "string", value: "<chain.pem>", help: "admin.tlsCertFile" },
      "admin-tls-key": { type: "string", value: "<key.pem>", help: "admin.tlsKeyFile" },
      "ops-port": { type: "string", value: "<port>", help: "ops.port (/metrics, /healthz, /readyz; default 9464)" },
      workers: { type: "string", value: "<n>", help: "worker processes sharing the MQTT port (default 1; docs/scale.md)" },
    },
    async run(ctx) {
      const config = ctx.config();
      if (database(ctx) === undefined) requireRegistry(dataDir(ctx));
      const workers = ctx.int("workers") ?? 1;
      // JSON lines (cloud/log.ts) on stderr or log.file; the summary line on stdout stays for whoever started serve
      const { log } = createLogger({ level: getPath(config.values, "log.level") as LogLevel, file: getPath(config.values, "log.file") as string | undefined });
      // restore and rekey refuse to run while this process (or its cluster lead) serves the folder
      if (!isClusterWorker()) claimServeLock(dataDir(ctx));
      if (isClusterPrimary(workers)) {
        ctx.io.out(JSON.stringify(await runPrimary(workers, (line) => log("info", line, { event: "cluster" }))));
        return new Promise(() => undefined);
      }
      const role = isClusterWorker() ? await workerRole() : { ...SINGLE_PROCESS, ready: (summary: object) => ctx.io.out(JSON.stringify(summary)) };
      const cloud = await startCloud({ ...roleOptions(startOptionsFromConfig(config.values), role), log });
      // before anything is printed: whoever reads the start-up lines may signal at once
      handleSignals(cloud, getPath(config.values, "shutdown.drainMs") as number, log);
      for (const listener of cloud.listeners) {
        log("info", listenerLine(listener), {
          event: "listening", listener: listener.name, protocol: listener.protocol, host: listener.host, port: listener.port,
          certNames: listener.certificate?.names.join(","), certExpires: listener.certificate?.notAfter,
        });
      }
      role.ready({
        mqttPort: cloud.mqttPort, httpPort: cloud.httpPort, radiusPort: cloud.radiusPort, opsPort: cloud.opsPort, radiusServerName: cloud.radiusServerName, serverName: cloud.serverName,
        serverCa: join(dataDir(ctx), "server-ca.pem"), adminUrl: cloud.admin?.url, adminTokenFile: cloud.admin?.tokenFile,
      });
      return new Promise(() => undefined);
    },
  },
  {
    name: "server-cert show", args: "", maxArgs: 0, summary: "the MQTT server certificate in the registry: names, expiry, issuer, whether the CA's key is online (the operator's files are not read)",
    async run(ctx) {
      const { registry } = await ctx.services();
      const stored = await registry.serverTls("server");
      if (!stored) throw new CloudError("NOT_FOUND", "no server certificate yet: serve makes one on first start");
      return { ...certificateInfo(stored.certPem), caKey: (await serverCaKeyOnline(registry)) ? "online" : "offline" };
    },
  },
  {
    name: "server-cert renew", args: "", maxArgs: 0, summary: "re-issue the server certificate from the cloud's CA for mqtt.names; a running serve takes it on SIGHUP",
    options: { "ca-key": { type: "string", value: "<file>", help: "the CA's key file from server-ca export (when the key is offline)" } },
    async run(ctx) {
      const services = await ctx.services();
      const keyFile = ctx.str("ca-key");
      const offlineKey = keyFile === undefined ? undefined : await offlineServerCaKey(services.registry, keyFile);
      try {
        await issuedServerTls(services.registry, getPath(ctx.config().values, "mqtt.names") as string[], true, Date.now(), offlineKey);
      } finally {
        offlineKey?.fill(0);
      }
      return certificateInfo((await services.registry.serverTls("server"))!.certPem);
    },
  },
  {
    name: "server-ca export", args: "", maxArgs: 0, summary: "write the server CA's certificate and private key to a new owner-only file (to keep it offline)",
    options: { out: { type: "string", value: "<file>", help: "the file to create (refused when it exists)" } },
    async run(ctx) {
      const out = ctx.str("out");
      if (out === undefined) throw new CloudError("INVALID_INPUT", "give --out <file>", { field: "out" });
      return exportServerCa((await ctx.services()).registry, out);
    },
  },
  {
    name: "server-ca remove-key", args: "", maxArgs: 0,
    summary: "drop the server CA's key from the registry (offline CA) once --exported proves you hold it; the certificates it issued stay in use",
    options: { exported: { type: "string", value: "<file>", help: "the file server-ca export wrote" } },
    async run(ctx) {
      const file = ctx.str("exported");
      if (file === undefined) throw new CloudError("INVALID_INPUT", "give --exported <file> (from server-ca export)", { field: "exported" });
      const { registry } = await ctx.services();
      await removeServerCaKey(registry, file, async () => {
        // while the key is still here: the MQTT certificate for the configured names, and the RADIUS one
        await issuedServerTls(registry, getPath(ctx.config().values, "mqtt.names") as string[]);
        await radiusIdentity(registry, getPath(ctx.config().values, "radius.names") as string[]);
      });
      return { caKey: "offline", server: certificateInfo((await registry.serverTls("server"))!.certPem) };
    },
  },
  {
    name: "ca create", args: id("name"), maxArgs: 1, summary: "create a product CA (RSA-2048, key kept sealed)",
    options: { days: { type: "string", value: "<n>", help: "validity in days" } },
    run: async (ctx) => (await ctx.services()).createProductCa({ name: ctx.need(0, "CA name"), days: ctx.int("days") }),
  },
  {
    name: "ca register", args: "<name> <cert.pem>", maxArgs: 2, summary: "register an external product CA",
    run: async (ctx) => (await ctx.services()).registerProductCa({ name: ctx.need(0, "CA name"), certificatePem: text(ctx.need(1, "certificate file"), 65536, "the certificate file") }),
  },
  { name: "ca list", args: "", maxArgs: 0, summary: "the product CAs", run: async (ctx) => (await ctx.services()).listProductCas() },
  { name: "ca revoke", args: id("name"), maxArgs: 1, summary: "revoke a product CA (its devices' sessions closed)", run: async (ctx) => (await ctx.services()).revokeProductCa({ name: ctx.need(0, "CA name") }) },
  {
    name: "ca import-crl", args: "<name> <crl.pem|crl.der>", maxArgs: 2, summary: "revoke every certificate a CRL of the CA lists (verified by the CA's key)",
    async run(ctx) {
      const caName = ctx.need(0, "CA name");
      const bytes = readInputFile(ctx.need(1, "CRL file"), MAX_CRL_BYTES * 2, "the CRL file", ctx.io.stdin);
      const latin = bytes.toString("latin1");
      return (await ctx.services()).importCrl(/-----BEGIN (X509 )?CRL-----/.test(latin) ? { caName, crlPem: latin } : { caName, crlDerBase64: bytes.toString("base64") });
    },
  },
  {
    name: "cert revoke", args: "", maxArgs: 0, summary: "revoke one device certificate (MQTT and EAP-TLS): --ca and --serial, or --sha256",
    options: {
      ca: { type: "string", value: "<name>", help: "the issuing CA" }, serial: { type: "string", value: "<hex>", help: "the serial number" },
      sha256: { type: "string", value: "<fingerprint>", help: "the certificate's SHA-256 fingerprint" }, reason: { type: "string", value: "<text>", help: "recorded in the audit log" },
    },
    async run(ctx) {
      const sha256 = ctx.str("sha256");
      const reason = ctx.str("reason");
      if (sha256 !== undefined) return (await ctx.services()).revokeCertificate({ fingerprint: sha256, reason });
      const caName = ctx.str("ca");
      const serial = ctx.str("serial");
      if (caName === undefined || serial === undefined) throw new UsageError("give --ca <name> --serial <hex>, or --sha256 <fingerprint>");
      return (await ctx.services()).revokeCertificate({ caName, serial, reason });
    },
  },
  {
    name: "cert revoked", args: "", maxArgs: 0, summary: "list revoked certificates",
    options: { ca: { type: "string", value: "<name>", help: "of this CA only" }, ...LIMIT },
    run: async (ctx) => (await ctx.services()).listRevokedCertificates({ caName: ctx.str("ca"), limit: ctx.int("limit") }),
  },
  {
    name: "cert issue", args: "<ca> <device-id>", maxArgs: 2, summary: "issue a device certificate + PKCS#8 key (the key only into --out, or in the JSON)",
    options: { ec: { type: "boolean", help: "a P-256 key instead of RSA-2048" }, days: { type: "string", value: "<n>", help: "validity in days" }, out: { type: "string", value: "<dir>", help: "write <id>.cert.pem and <id>.key.pem (0600) there" } },
    async run(ctx) {
      const issued = await (await ctx.services()).issueDeviceCertificate({ caName: ctx.need(0, "CA name"), deviceId: ctx.need(1, "device id"), keyType: ctx.has("ec") ? "ec" : "rsa", days: ctx.int("days") });
      const dir = ctx.str("out");
      if (dir === undefined) return issued;
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, `${issued.deviceId}.cert.pem`), issued.certificatePem);
      replaceOwnerOnlyFile(join(dir, `${issued.deviceId}.key.pem`), issued.privateKeyPem);
      return { deviceId: issued.deviceId, caName: issued.caName, fingerprint: issued.fingerprint, serial: issued.serial, certificate: join(dir, `${issued.deviceId}.cert.pem`), privateKey: join(dir, `${issued.deviceId}.key.pem`) };
    },
  },
  {
    name: "device add-secret", args: id(), maxArgs: 1, summary: "register a device by its 32-byte secret (64 hex digits in a file, or - for standard input)",
    options: { "secret-file": { type: "string", value: "<file|->", help: "the secret, 64 hex digits (required)" } },
    async run(ctx) {
      const file = ctx.str("secret-file");
      if (file === undefined) throw new UsageError("give --secret-file <file> (or - for standard input)");
      return (await ctx.services()).registerSecretDevice({ deviceId: ctx.need(0, "device id"), secretHex: readSecret(file, "the secret file", { trim: true, stdin: ctx.io.stdin }) });
    },
  },
  {
    name: "device add-cert", args: "<device-id> [<cert.pem>]", maxArgs: 2, summary: "register a certificate device: its certificate, or --ca for one issued later",
    options: { ca: { type: "string", value: "<name>", help: "any certificate of this CA naming the device" } },
    async run(ctx) {
      const ca = ctx.str("ca");
      const deviceId = ctx.need(0, "device id");
      if (ca !== undefined) return (await ctx.services()).registerCertificateDevice({ deviceId, caName: ca });
      return (await ctx.services()).registerCertificateDevice({ deviceId, certificatePem: text(ctx.need(1, "certificate file"), 65536, "the certificate file") });
    },
  },
  {
    name: "device list", args: "", maxArgs: 0, summary: "the devices", options: { ...LIMIT, offset: { type: "string", value: "<n>", help: "skip n rows" }, ...TABLE },
    async run(ctx) {
      return table(ctx, await (await ctx.services()).listDevices({ limit: ctx.int("limit"), offset: ctx.int("offset") }), deviceTable);
    },
  },
  {
    name: "device show", args: id(), maxArgs: 1, summary: "one device", options: TABLE,
    async run(ctx) {
      return table(ctx, await (await ctx.services()).getDevice({ deviceId: ctx.need(0, "device id") }), (d) => deviceTable([d]));
    },
  },
  { name: "device revoke", args: id(), maxArgs: 1, summary: "revoke a device (its session closed)", run: async (ctx) => (await ctx.services()).revokeDevice({ deviceId: ctx.need(0, "device id") }) },
  {
    name: "device disconnect", args: id(), maxArgs: 1,
    summary: "end the device's live hotspot sessions now: the running server sends a Disconnect-Request (RFC 5176) to each NAS; prints ack / nak / no-answer per session",
    options: {
      "admin-url": { type: "string", value: "<url>", help: "the running server's admin API (else from admin.host, admin.port, admin.name, admin.tls)" },
      "admin-ca": { type: "string", value: "<file>", help: "trust anchor for an https admin API (default <data>/server-ca.pem)" },
    },
    async run(ctx) {
      const deviceId = ctx.need(0, "device id");
      const answer = await adminCall(runningAdmin(ctx), "POST", `/v1/devices/${encodeURIComponent(deviceId)}/disconnect`) as {
        deviceId: string; sessions: { nas: string; acctSessionId: string; address: string; outcome: { kind: string; attempts: number; error?: string } }[];
      };
      const outcomes = answer.sessions.map((s) => `${s.nas} ${s.address} ${s.acctSessionId}: ${s.outcome.kind === "ack" ? "ACK" : s.outcome.kind === "nak" ? `NAK${s.outcome.error ? ` (${s.outcome.error})` : ""}` : "no answer"} after ${s.outcome.attempts} transmission${s.outcome.attempts === 1 ? "" : "s"}`);
      return { ...answer, outcome: outcomes.length ? outcomes : ["no live hotspot session"] };
    },
  },
  { name: "device rotate", args: id(), maxArgs: 1, summary: "rotate a secret device's secret at its next session", run: async (ctx) => (await ctx.services()).rotateSecret({ deviceId: ctx.need(0, "device id") }) },
  { name: "device reset-counter", args: id(), maxArgs: 1, summary: "accept the device's login counter from 1 again", run: async (ctx) => (await ctx.services()).resetLoginCounter({ deviceId: ctx.need(0, "device id") }) },
  { name: "device unlock", args: id(), maxArgs: 1, summary: "end a device's login lockout", run: async (ctx) => (await ctx.services()).unlockDevice({ deviceId: ctx.need(0, "device id") }) },
  {
    name: "device reprovision", args: id(), maxArgs: 1, summary: "take a squatted temporary id back: its secret dropped, the next temporary login re-issues",
    run: async (ctx) => (await ctx.services()).reprovisionDevice({ deviceId: ctx.need(0, "device id") }),
  },
  {
    name: "device network", args: id(), maxArgs: 1, summary: "hand a private network to the device (sealed to its key)",
    options: {
      ssid: { type: "string", value: "<name>", help: "the network (required)" },
      "password-file": { type: "string", value: "<file|->", help: "its password (one trailing newline dropped)" },
      open: { type: "boolean", help: "an open network (no password)" },
      priority: { type: "string", value: "<0-100>", help: "its priority among the device's networks" },
    },
    async run(ctx) {
      const file = ctx.str("password-file");
      if ((file === undefined) === !ctx.has("open")) throw new UsageError("give --password-file <file> (or - for standard input), or --open for an open network");
      const ssid = ctx.str("ssid");
      if (ssid === undefined) throw new UsageError("give --ssid <name>");
      const password = file === undefined ? "" : readSecret(file, "the password file", { stdin: ctx.io.stdin });
      const priority = ctx.int("priority");
      return (await network(ctx)).setDeviceNetwork({ deviceId: ctx.need(0, "device id"), ssid, password, ...(priority === undefined ? {} : { priority }) });
    },
  },
  {
    name: "device forget-network", args: id(), maxArgs: 1, summary: "tell the device to forget a private network",
    options: { ssid: { type: "string", value: "<name>", help: "the network (required)" } },
    async run(ctx) {
      const ssid = ctx.str("ssid");
      if (ssid === undefined) throw new UsageError("give --ssid <name>");
      return (await network(ctx)).forgetDeviceNetwork({ deviceId: ctx.need(0, "device id"), ssid });
    },
  },
  { name: "hotspot list", args: "", maxArgs: 0, summary: "the hotspot profile set", run: async (ctx) => (await network(ctx)).listHotspotProfiles() },
  {
    name: "hotspot set", args: "<profiles.json>", maxArgs: 1, summary: "replace the hotspot profile set (a JSON array, or {profiles}); bumps the revision",
    async run(ctx) {
      let value: unknown;
      try {
        value = JSON.parse(text(ctx.need(0, "profiles file"), 64 * 1024, "the profiles file", ctx.io.stdin));
      } catch (error) {
        if (isCloudError(error)) throw error;
        throw new CloudError("INVALID_INPUT", "the profiles file is not JSON", { field: "profiles" });
      }
      const profiles = Array.isArray(value) ? value : (value as { profiles?: unknown })?.profiles;
      return (await network(ctx)).setHotspotProfiles({ profiles: profiles as never });
    },
  },
  {
    name: "lot create", args: id("lot"), maxArgs: 1, summary: "create a lot's provisioning key (shown once)",
    options: {
      allow: { type: "string", value: "<id,id,...>", help: "only these temporary ids may claim" },
      "allow-file": { type: "string", value: "<file>", help: "allowed ids, one a line" },
      "line-rate": { type: "string", value: "<N>", help: "claims per hour past which lot.claim-rate-exceeded is audited" },
    },
    async run(ctx) {
      const inline = ctx.str("allow");
      const file = ctx.str("allow-file");
      let allowlist: string[] | undefined;
      if (inline !== undefined) allowlist = inline.split(",").map((s) => s.trim()).filter(Boolean);
      if (file !== undefined) allowlist = [...(allowlist ?? []), ...text(file, 64 * 1024 * 1024, "the allow file", ctx.io.stdin).split(/\r?\n/).map((s) => s.trim()).filter(Boolean)];
      const lineRate = ctx.int("line-rate");
      return (await ctx.services()).createProvisioningKey({ lot: ctx.need(0, "lot"), allowlist, ...(lineRate === undefined ? {} : { lineRate }) });
    },
  },
  { name: "lot list", args: "", maxArgs: 0, summary: "lots with claims, claims in the last hour and line rate", run: async (ctx) => (await ctx.services()).listProvisioningKeys() },
  { name: "lot show", args: id("lot"), maxArgs: 1, summary: "one lot", run: async (ctx) => (await ctx.services()).getLot({ lot: ctx.need(0, "lot") }) },
  {
    name: "lot line-rate", args: "<lot> <claims-per-hour|none>", maxArgs: 2, summary: "claims faster than this are audited (lot.claim-rate-exceeded)",
    async run(ctx) {
      const rate = ctx.need(1, "claims per hour or none");
      if (rate !== "none" && !/^[0-9]{1,8}$/.test(rate)) throw new UsageError("the line rate is a number of claims per hour, or none");
      return (await ctx.services()).setLotLineRate({ lot: ctx.need(0, "lot"), lineRate: rate === "none" ? null : Number(rate) });
    },
  },
  { name: "lot retire", args: id("lot"), maxArgs: 1, summary: "the lot is done: no new temporary login; open sessions may finish", run: async (ctx) => (await ctx.services()).retireProvisioningKey({ lot: ctx.need(0, "lot") }) },
  { name: "lot revoke-key", args: id("lot"), maxArgs: 1, summary: "the key leaked: no temporary login, temporary sessions closed, pending dropped", run: async (ctx) => (await ctx.services()).revokeProvisioningKey({ lot: ctx.need(0, "lot") }) },
  { name: "lot revoke", args: id("lot"), maxArgs: 1, summary: "revoke the key and every device of the lot (sessions closed)", run: async (ctx) => (await ctx.services()).revokeLot({ lot: ctx.need(0, "lot") }) },
  {
    name: "import", args: "<devices.csv>", maxArgs: 1, summary: "bulk registration from CSV, all or nothing",
    options: { ca: { type: "string", value: "<name>", help: "the CA of certificate rows" }, lot: { type: "string", value: "<lot>", help: "the lot of temporary rows" } },
    run: async (ctx) => (await ctx.services()).importDevicesCsv({ csv: text(ctx.need(0, "CSV file"), 50 * 1024 * 1024, "the CSV file", ctx.io.stdin), caName: ctx.str("ca"), lot: ctx.str("lot") }),
  },
  {
    name: "import-bundle", args: "<bundle.jsonl>", maxArgs: 1,
    summary: "import a manufacturing bundle (make-lot's), all or nothing; through the running serve's admin API (its worker thread) when serve holds the data folder or --admin-url is given",
    options: {
      checksum: { type: "string", value: "<file>", help: "its checksum file (default <bundle>.sha256)" },
      "admin-url": { type: "string", value: "<url>", help: "the running server's admin API (else from admin.host, admin.port, admin.name, admin.tls when serve runs)" },
      "admin-ca": { type: "string", value: "<file>", help: "trust anchor for an https admin API (default <data>/server-ca.pem)" },
    },
    async run(ctx) {
      const file = ctx.need(0, "bundle file");
      const bundle = readInputFile(file, 2 * 1024 * 1024 * 1024 - 1, "the bundle file", ctx.io.stdin);
      const checksum = text(ctx.str("checksum") ?? `${file}.sha256`, 1024, "the checksum file");
      const viaApi = ctx.str("admin-url") !== undefined || (database(ctx) === undefined && servingPid(dataDir(ctx)) !== undefined);
      if (!viaApi) return (await ctx.services()).importBundle({ bundle, checksum });
      const sha256 = checksum.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
      if (!/^[0-9a-f]{64}$/.test(sha256)) throw new CloudError("BUNDLE_INVALID", "checksum file must start with 64 hex digits", { field: "checksum" });
      // the answer comes when the import is done: a 1,000,000-device bundle takes minutes
      return adminCall(runningAdmin(ctx), "POST", `/v1/bundles/import?sha256=${sha256}`, 3_600_000, { type: BUNDLE_MEDIA_TYPE, data: bundle });
    },
  },
  {
    name: "nas add", args: "<name> <address|*>", maxArgs: 2, summary: "register a RADIUS client (access point) with its shared secret",
    options: { "secret-file": { type: "string", value: "<file|->", help: "the RADIUS shared secret (required)" } },
    async run(ctx) {
      const file = ctx.str("secret-file");
      if (file === undefined) throw new UsageError("give --secret-file <file> (or - for standard input)");
      const name = ctx.need(0, "NAS name");
      const address = ctx.need(1, "address (IP or *)");
      return (await ctx.services()).addNasClient({ name, address, secret: readSecret(file, "the secret file", { trim: true, stdin: ctx.io.stdin }) });
    },
  },
  { name: "nas list", args: "", maxArgs: 0, summary: "the RADIUS clients", run: async (ctx) => (await ctx.services()).listNasClients() },
  { name: "nas remove", args: id("name"), maxArgs: 1, summary: "remove a RADIUS client", run: async (ctx) => (await ctx.services()).removeNasClient({ name: ctx.need(0, "NAS name") }) },
  {
    name: "audit", args: "", maxArgs: 0, summary: "the audit log, newest first",
    options: {
      ...LIMIT, device: { type: "string", value: "<id>", help: "of this device" }, action: { type: "string", value: "<a|prefix.>", help: "this action, or every action under a prefix" },
      actor: { type: "string", value: "<actor>", help: "by this actor" }, since: { type: "string", value: "<time>", help: "at or after (ISO 8601)" },
      until: { type: "string", value: "<time>", help: "before (ISO 8601)" }, before: { type: "string", value: "<seq>", help: "older than this sequence number" }, ...TABLE,
    },
    async run(ctx) {
      const records = await (await ctx.services()).auditLog({
        limit: ctx.int("limit"), deviceId: ctx.str("device"), action: ctx.str("action"), actor: ctx.str("actor"), since: ctx.str("since"), until: ctx.str("until"), before: ctx.int("before"),
      });
      return table(ctx, records, auditTable);
    },
  },
];

/** The names of every CLI command (the catalogue test checks cloud/README.md against it). */
export const CLI_COMMANDS: readonly string[] = COMMANDS.map((c) => c.name);

function text(path: string, limit: number, what: string, stdin?: () => Buffer): string {
  return readInputFile(path, limit, what, stdin).toString("utf8");
}

function dataDir(ctx: Context): string {
  const dir = getPath(ctx.config().values, "data.dir") as string | undefined;
  if (!dir) throw new UsageError("give the data directory with --data <dir>, WCM_DATA or the config's data.dir");
  return dir;
}

/**
 * The PostgreSQL URL of the registry (--database, WCM_DATABASE or the config's data.database), or
 * undefined (SQLite in the data directory). A password in it is refused: it belongs in PGPASSWORD or ~/.pgpass.
 */
function database(ctx: Context): string | undefined {
  const url = getPath(ctx.config().values, "data.database") as string | undefined;
  if (url === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError("the database must be a postgres:// URL");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") throw new UsageError("the database must be a postgres:// URL");
  if (parsed.password) throw new UsageError("keep the database password out of the URL: use PGPASSWORD or ~/.pgpass");
  return url;
}

/** Refuses a file that cannot be opened for reading (FILE_UNREADABLE, naming it). */
function readable(path: string, what: string): void {
  try {
    closeSync(openSync(path, "r"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CloudError("FILE_UNREADABLE", `cannot read ${what} ${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code ?? "error"}`);
  }
}

/** The running server's admin API (--admin-url, else the configuration's admin settings). */
function runningAdmin(ctx: Context): AdminEndpoint {
  const v = (path: string) => getPath(ctx.config().values, path);
  return adminEndpoint({
    url: ctx.str("admin-url"), caFile: ctx.str("admin-ca"), dataDir: dataDir(ctx), tokenFile: v("admin.tokenFile") as string | undefined,
    host: v("admin.host") as string, port: v("admin.port") as number, name: v("admin.name") as string | undefined,
    tls: v("admin.tls") as string | undefined, tlsCertFile: v("admin.tlsCertFile") as string | undefined,
  });
}

/** The master key the configuration names (file or WCM_MASTER_KEY); the caller zeroes it. */
function masterKey(ctx: Context): Uint8Array {
  return loadMasterKey({ masterKeyFile: getPath(ctx.config().values, "data.masterKeyFile") as string | undefined, env: ctx.env });
}

/** What the operator does after a rekey: put the new key where serve reads it. */
function installHint(ctx: Context, newFile: string): string {
  const current = getPath(ctx.config().values, "data.masterKeyFile") as string | undefined;
  return current !== undefined
    ? `install the new key where serve reads it: mv ${newFile} ${current} (a systemd credential: the LoadCredential source file), then start serve`
    : `set WCM_MASTER_KEY to the contents of ${newFile}, then start serve`;
}

/** Deletes the TLS resumption store of the data folder (sealed under a key derived from the master key: a cache, it refills). */
function dropResumptionStore(dir: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(join(dir, `tls-sessions.sqlite${suffix}`), { force: true });
}

/** Refuses a data directory without a registry (a mistyped --data must not make an empty one). */
function requireRegistry(dir: string): void {
  if (!existsSync(join(dir, "registry.sqlite"))) {
    throw new CloudError("REGISTRY_MISSING", `${dir} holds no registry: check --data, or make one with \`init\``);
  }
}


/** The usage of every command. */
function usage(): string {
  const rows = COMMANDS.map((c) => [`  ${c.name}${c.args ? ` ${c.args}` : ""}`, c.summary]);
  const width = Math.min(44, Math.max(...rows.map((r) => r[0].length))) + 2;
  return `wcm cloud admin ${version()}

usage: npm run cloud -- <command> [arguments] [options]   (<command> --help for its options)

${rows.map(([c, s]) => (c.length + 2 > width ? `${c}\n${" ".repeat(width)}${s}` : `${c.padEnd(width)}${s}`)).join("\n")}

options of every command:
${optionsHelp(GLOBAL_OPTIONS)}
  --version                   print the version

secrets are read from files or standard input (-), never from the command line.
environment: WCM_DATA, WCM_MASTER_KEY (64 hex digits), WCM_CONFIG, WCM__<SECTION>__<KEY> (a setting)
exit: 0 ok, 1 refused, 2 usage or input (bad flag, unreadable file, bad config, no registry), 70 internal`;
}

function commandHelp(command: Command): string {
  const own = command.options ?? {};
  return `usage: npm run cloud -- ${command.name}${command.args ? ` ${command.args}` : ""} [options]\n\n${command.summary}\n${Object.keys(own).length ? `\noptions:\n${optionsHelp(own)}\n` : ""}\noptions of every command:\n${optionsHelp(GLOBAL_OPTIONS)}`;
}

/** The command named by argv's first words (the longest match). */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  const words = argv.filter((a) => !a.startsWith("-")).slice(0, 2);
  for (const n of [2, 1]) {
    const name = words.slice(0, n).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command && argv.slice(0, n).join(" ") === name) return { command, rest: argv.slice(n) };
  }
  return undefined;
}

const STDIO: CliIo = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/**
 * Runs the CLI. Returns the exit status (cli-kit.ts EXIT: 0 ok, 1 refused, 2 usage or input, 70 internal).
 * @example await runCli(["device", "list", "--data", "/var/lib/wcm"], process.env)
 */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env, io: CliIo = STDIO): Promise<number> {
  const json = argv.includes("--json");
  let services: CloudServices | undefined;
  try {
    if (argv.includes("--version")) {
      io.out(version());
      return EXIT.OK;
    }
    const found = findCommand(argv);
    if (!found) {
      if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
        io.out(usage());
        return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
      }
      throw new UsageError(`unknown command ${argv.filter((a) => !a.startsWith("-")).slice(0, 2).join(" ") || argv[0]}`);
    }
    const { command, rest } = found;
    const args = parseCommandLine(rest, { ...GLOBAL_OPTIONS, ...command.options });
    if (args.values.help) {
      io.out(commandHelp(command));
      return EXIT.OK;
    }
    if (args.positionals.length > command.maxArgs) throw new UsageError(`${command.name} takes ${command.maxArgs || "no"} argument${command.maxArgs === 1 ? "" : "s"}: unexpected ${args.positionals[command.maxArgs]}`);
    let config: LoadedConfig | undefined;
    const str = (name: string) => (typeof args.values[name] === "string" ? (args.values[name] as string) : undefined);
    const ctx: Context = {
      args, env, io,
      config() {
        config ??= loadConfig({
          file: str("config") ?? (env.WCM_CONFIG || undefined), env,
          overrides: {
            "data.dir": str("data") ?? (env.WCM_DATA || undefined), "data.database": str("database") ?? (env.WCM_DATABASE || undefined),
            "data.masterKeyFile": str("master-key-file"), ...serveOverrides(ctx),
          },
        });
        return config;
      },
      async services() {
        if (!services) {
          const dir = dataDir(ctx);
          const url = database(ctx);
          if (url === undefined) requireRegistry(dir);
          const key = loadMasterKey({ masterKeyFile: getPath(ctx.config().values, "data.masterKeyFile") as string | undefined, env });
          let registry: Registry;
          try {
            registry = await Registry.at(url === undefined ? { dataDir: dir } : { database: url }, key);
          } finally {
            key.fill(0);
          }
          services = new CloudServices(registry, "admin:cli");
        }
        return services;
      },
      str,
      int(name) {
        const value = str(name);
        if (value === undefined) return undefined;
        if (!/^[0-9]{1,9}$/.test(value)) throw new UsageError(`--${name} must be a number`);
        return Number(value);
      },
      has: (name) => args.values[name] !== undefined && args.values[name] !== false,
      need(index, what) {
        const value = args.positionals[index];
        if (value === undefined) throw new UsageError(`missing ${what}`);
        return value;
      },
    };
    const result = await command.run(ctx);
    if (result !== undefined) io.out(JSON.stringify(result, null, 2));
    return EXIT.OK;
  } catch (error) {
    const { exit, text: message } = formatError(error, json);
    (json ? io.out : io.err)(message);
    return exit;
  } finally {
    await services?.registry.close();
  }
}

/** `listening mqtt mqtts://0.0.0.0:8883 cert CN=localhost names=localhost,127.0.0.1 expires 2036-01-01T00:00:00.000Z issuer=...` */
export function listenerLine(listener: ListenerInfo): string {
  const host = listener.host.includes(":") ? `[${listener.host}]` : listener.host;
  const cert = listener.certificate;
  return `listening ${listener.name} ${listener.protocol}://${host}:${listener.port}${cert ? ` cert ${cert.subject} names=${cert.names.join(",")} expires ${cert.notAfter} issuer=${cert.issuer}` : " (no TLS)"}`;
}

/** Exit code of a second SIGTERM/SIGINT during the drain, and of a drain past its watchdog. */
export const EXIT_FORCED = 1;

/**
 * SIGTERM/SIGINT: drain (Cloud.shutdown) within `drainMs`, then exit 0; a second
 * signal exits at once (EXIT_FORCED); a watchdog exits EXIT_FORCED 5 s after the bound.
 */
function handleSignals(cloud: Cloud, drainMs: number, log: CloudLog): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log("warn", `${signal} again: exiting at once`, { event: "shutdown.forced", signal });
      process.exit(EXIT_FORCED);
    }
    stopping = true;
    log("info", `${signal}: draining (new connections refused; at most ${drainMs} ms for requests and sessions)`, { event: "shutdown", signal, drainMs });
    setTimeout(() => {
      log("error", `still stopping ${drainMs + 5000} ms after ${signal}: exiting`, { event: "shutdown.forced", signal });
      process.exit(EXIT_FORCED);
    }, drainMs + 5000).unref();
    cloud.shutdown(drainMs).then((report) => {
      log("info", `stopped in ${report.ms} ms: ${report.inFlight} requests finished, ${report.connections} connections closed (${report.destroyed} cut at the bound), registry closed`, {
        event: "stopped", ms: report.ms, inFlight: report.inFlight, connections: report.connections, destroyed: report.destroyed,
      });
      process.exit(EXIT.OK);
    }, (error: Error) => {
      log("error", `stopping failed: ${error.message}`, { event: "shutdown.failed" });
      process.exit(EXIT_FORCED);
    });
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // SIGHUP: the server certificate again (the operator's files, or the registry's after `server-cert renew`)
  process.on("SIGHUP", () => {
    cloud.reloadTls().then(
      (listener) => log("info", `SIGHUP: reloaded: ${listenerLine(listener)}`, { event: "tls.reloaded", certExpires: listener.certificate?.notAfter }),
      (error: Error) => log("error", `SIGHUP: reload failed, still serving the old certificate: ${error.message}`, { event: "tls.reload_failed" }),
    );
  });
}

/** The serve flags as config overrides (other commands have none). */
function serveOverrides(ctx: Context): Record<string, unknown> {
  const port = (name: string) => {
    const value = ctx.str(name);
    if (value === undefined) return undefined;
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new UsageError(`--${name} must be a port number 0..65535`);
    return Number(value);
  };
  const tls = ctx.str("admin-tls");
  if (tls !== undefined && tls !== "issue" && tls !== "off") throw new UsageError("--admin-tls is issue or off");
  return {
    "mqtt.host": ctx.str("mqtt-host") ?? ctx.str("host"), "mqtt.port": port("mqtt-port"),
    "radius.host": ctx.str("radius-host") ?? ctx.str("host"), "radius.port": port("radius-port"), "radius.enabled": ctx.str("radius-port") !== undefined ? true : undefined,
    "admin.port": port("http-port"), "ops.port": port("ops-port"), "admin.host": ctx.str("admin-host"), "admin.name": ctx.str("admin-name"), "admin.tokenFile": ctx.str("admin-token-file"),
    "admin.tls": tls, "admin.tlsCertFile": ctx.str("admin-tls-cert"), "admin.tlsKeyFile": ctx.str("admin-tls-key"),
  };
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

// isMainThread: in the bundle (dist/wcm.mjs) the admin worker (cloud/admin-worker.ts) loads this file too
if (isMainThread && invokedDirectly(import.meta.url)) {
  runCli(process.argv.slice(2)).then((code) => {
    // a `serve` that could not start exits at once (a half-closed server must not keep it alive)
    if (code !== 0 && process.argv[2] === "serve") process.exit(code);
    if (code !== 0 || process.argv[2] !== "serve") process.exitCode = code;
  });
}
