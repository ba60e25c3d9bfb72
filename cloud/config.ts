/*
 * The cloud's one configuration file (YAML, read by the `yaml` library) and its
 * environment overrides.
 *
 * CONFIG_SCHEMA lists every setting with its type, bounds, default and a line
 * of documentation; cloud/wcm.example.yaml is the commented example that the
 * docs describe (a test checks that it names every setting and parses).
 * Precedence, lowest first: the defaults, the file, environment variables
 * `WCM__<SECTION>__<KEY>` (each path segment upper-cased, camel humps split by
 * `_`: `WCM__MQTT__CONNECT_TIMEOUT_MS=5000`, `WCM__LIMITS__LOGIN__PER_DEVICE__BURST=20`),
 * then the caller's overrides (the CLI's `serve` flags). An unknown key, a value
 * of the wrong type or out of bounds, a duplicate key and a YAML syntax error are
 * each a problem naming the file, line and column (or the variable); loadConfig
 * throws CONFIG_INVALID listing all of them. The file holds no secret: the
 * master key, admin token and TLS keys are named by file path only.
 */
import { readFileSync, statSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";
import { CloudError } from "./errors";
import { DEFAULT_CONNECTION_LIMITS, DEFAULT_LOGIN_LIMITS, DEFAULT_REFUSAL_AUDIT, type RateLimit } from "./limits";
import type { StartCloudOptions } from "./index";
import type { AbuseLimits } from "./mqtt-server";
import { DEFAULT_SESSION_LIFETIME_S } from "./tls-sessions";

/** Most bytes of a configuration file. */
export const MAX_CONFIG_FILE_BYTES = 256 * 1024;

/** One setting. */
export interface Setting {
  kind: "string" | "int" | "number" | "bool" | "enum" | "strings";
  doc: string;
  default?: unknown;
  min?: number;
  max?: number;
  values?: readonly string[];
}

/** A section of settings (nested). */
export interface Section {
  [key: string]: Setting | Section;
}

const str = (doc: string, def?: string): Setting => ({ kind: "string", doc, default: def });
const int = (doc: string, def: number | undefined, min: number, max: number): Setting => ({ kind: "int", doc, default: def, min, max });
const num = (doc: string, def: number, min: number, max: number): Setting => ({ kind: "number", doc, default: def, min, max });
const bool = (doc: string, def: boolean): Setting => ({ kind: "bool", doc, default: def });
const oneOf = (doc: string, values: readonly string[], def?: string): Setting => ({ kind: "enum", doc, values, default: def });
const strings = (doc: string, def: string[]): Setting => ({ kind: "strings", doc, default: def });
const rate = (doc: string, def: { burst: number; perSecond: number }): Section => ({
  burst: int(`${doc}: bucket size`, def.burst, 1, 1_000_000_000),
  perSecond: num(`${doc}: refill per second`, def.perSecond, 0, 1_000_000),
});
const MS_DAY = 86_400_000;
const PORT_MAX = 65535;

/** Every setting of the cloud (see the file header). */
export const CONFIG_SCHEMA = {
  data: {
    dir: str("directory of the registry (made owner-only); the CLI's --data and env WCM_DATA override it"),
    masterKeyFile: str("file holding the 64-hex-digit master key (owner-only); else env WCM_MASTER_KEY"),
    database: str("the registry on PostgreSQL, shared by several cloud nodes (postgres://user@host:port/db; the password in PGPASSWORD or ~/.pgpass, never here); unset: SQLite in data.dir; the CLI's --database and env WCM_DATABASE override it"),
  },
  mqtt: {
    host: str("bind address of the MQTT/TLS listener", "127.0.0.1"),
    port: int("MQTT/TLS port (0 = ephemeral)", 8883, 0, PORT_MAX),
    names: strings("DNS names and IP addresses in the server certificate the cloud's CA issues (the first is the devices' serverName); re-issued at start when they change", ["localhost", "127.0.0.1", "::1"]),
    tlsCertFile: str("the operator's server certificate chain (PEM, leaf first), instead of one from the cloud's CA; re-read on SIGHUP"),
    tlsKeyFile: str("the operator's server private key (PEM, owner-only); re-read on SIGHUP"),
    connectTimeoutMs: int("ms a connection may take to complete TLS and CONNECT", 10_000, 100, 600_000),
    maxConnections: int("most simultaneous MQTT/TLS connections", 10_000, 1, 10_000_000),
    tlsSessions: {
      enabled: bool("TLS session resumption (session ids and tickets)", true),
      lifetimeS: int("lifetime of a resumable session, seconds", DEFAULT_SESSION_LIFETIME_S, 1, 86_400),
    },
  },
  admin: {
    enabled: bool("run the admin HTTP API", true),
    host: str("bind address of the admin API; off loopback it needs admin.name and TLS", "127.0.0.1"),
    port: int("admin HTTP port (0 = ephemeral)", 8080, 0, PORT_MAX),
    name: str("the name clients reach the admin API by (Host header, certificate name)"),
    tls: oneOf("admin TLS: issue (a certificate from the server CA) or off (loopback only); default: off on loopback, issue elsewhere", ["issue", "off"]),
    tlsCertFile: str("the operator's admin certificate chain (PEM); with tlsKeyFile, instead of tls"),
    tlsKeyFile: str("the operator's admin private key (PEM, owner-only)"),
    tokenFile: str("the admin bearer token file (default <data.dir>/admin-token, made on first start)"),
  },
  radius: {
    enabled: bool("run the RADIUS server (EAP-TTLS/PAP, EAP-TLS) for hotspots", false),
    host: str("bind address of the RADIUS listener", "127.0.0.1"),
    port: int("RADIUS UDP port (0 = ephemeral)", 1812, 0, PORT_MAX),
    names: strings("DNS names and IP addresses in the RADIUS server certificate the cloud's CA issues (the first is the name hotspot profiles give devices as radius.serverName); re-issued at start when they change", ["radius.localhost"]),
    tlsCertFile: str("the operator's RADIUS certificate chain (PEM, leaf first); with tlsKeyFile, instead of one from the cloud's CA; re-read on SIGHUP"),
    tlsKeyFile: str("the operator's RADIUS private key (PEM, owner-only)"),
    fragmentSize: int("most TLS bytes per EAP message", 1000, 64, 4000),
    maxReassembly: int("most bytes of one reassembled TLS message from a peer", 64 * 1024, 1024, 1024 * 1024),
    maxSessions: int("most concurrent EAP sessions (least recently used evicted)", 1000, 1, 1_000_000),
    sessionIdleMs: int("ms after which an idle EAP session is dropped", 30_000, 100, MS_DAY),
    duplicateTtlMs: int("ms a response is kept for retransmitted requests", 5000, 0, 600_000),
    sessionTimeoutS: int("Session-Timeout sent in Access-Accept, seconds (0 = none)", 3600, 0, 31_536_000),
    nasRate: rate("new EAP sessions per NAS client", { burst: 500, perSecond: 200 }),
    accountingEnabled: bool("run the RADIUS accounting listener (RFC 2866) beside the authentication one", false),
    accountingPort: int("RADIUS accounting UDP port (0 = ephemeral)", 1813, 0, PORT_MAX),
    acctInterimIntervalS: int("Acct-Interim-Interval sent in Access-Accept, seconds (0 = none)", 600, 0, 86_400),
    disconnectPort: int("UDP port of the NASes' Dynamic Authorization servers (RFC 5176 Disconnect-Request)", 3799, 1, PORT_MAX),
    tlsSessionLifetimeS: int("lifetime of a resumable EAP TLS session (id or ticket) from its full handshake, seconds", 3600, 60, 86_400),
  },
  limits: {
    login: {
      perDevice: rate("verified logins per device", DEFAULT_LOGIN_LIMITS.perDevice),
      perLot: rate("temporary logins per lot", DEFAULT_LOGIN_LIMITS.perLot),
      lockoutThreshold: int("failed logins before a device id is locked out", DEFAULT_LOGIN_LIMITS.lockoutThreshold, 1, 1_000_000),
      lockoutBaseMs: int("first lockout, ms (doubles per lockout)", DEFAULT_LOGIN_LIMITS.lockoutBaseMs, 0, MS_DAY),
      lockoutMaxMs: int("longest lockout, ms", DEFAULT_LOGIN_LIMITS.lockoutMaxMs, 0, 30 * MS_DAY),
      rejectDelayMs: int("delay before a refused login is answered, ms", DEFAULT_LOGIN_LIMITS.rejectDelayMs, 0, 60_000),
      maxTrackedIds: int("device ids the limiter remembers", DEFAULT_LOGIN_LIMITS.maxTrackedIds, 1, 100_000_000),
    },
    connections: {
      unauthenticatedPerSource: int("connections before CONNECT per source address", DEFAULT_CONNECTION_LIMITS.unauthenticatedPerSource, 1, 1_000_000),
      unauthenticatedTotal: int("connections before CONNECT in all", DEFAULT_CONNECTION_LIMITS.unauthenticatedTotal, 1, 10_000_000),
      newPerSource: rate("new connections per source address", DEFAULT_CONNECTION_LIMITS.newPerSource),
      newTotal: rate("new connections in all", DEFAULT_CONNECTION_LIMITS.newTotal),
      lightPending: int("a source holding fewer unauthenticated connections than this draws on the light sources' rate bucket", DEFAULT_CONNECTION_LIMITS.lightPending, 0, 1_000_000),
      helloTimeoutMs: int("ms a connection has to start TLS", DEFAULT_CONNECTION_LIMITS.helloTimeoutMs, 100, 600_000),
      maxTrackedSources: int("source addresses remembered", DEFAULT_CONNECTION_LIMITS.maxTrackedSources, 1, 100_000_000),
      busyTotal: int("connections at once being answered busy (CONNACK 3)", DEFAULT_CONNECTION_LIMITS.busyTotal, 0, 1_000_000),
      busyRate: rate("busy answers", DEFAULT_CONNECTION_LIMITS.busyRate),
      staleMs: int("age past which a pending connection may be evicted, ms", DEFAULT_CONNECTION_LIMITS.staleMs, 0, 600_000),
      queueTotal: int("TCP connections held at accept, unread, until they may start (0: no queue)", DEFAULT_CONNECTION_LIMITS.queueTotal, 0, 10_000_000),
      queuePerSource: int("connections of one source waiting at accept", DEFAULT_CONNECTION_LIMITS.queuePerSource, 0, 1_000_000),
      queueDeadlineMs: int("ms a connection may wait at accept before it is closed", DEFAULT_CONNECTION_LIMITS.queueDeadlineMs, 100, 600_000),
    },
    refusalAudit: {
      windowMs: int("at most one refusal audit row per device id and reason within this window, ms", DEFAULT_REFUSAL_AUDIT.windowMs, 0, MS_DAY),
      global: rate("refusal audit rows over all ids", DEFAULT_REFUSAL_AUDIT.global),
      maxTrackedIds: int("device ids the refusal throttle remembers", DEFAULT_REFUSAL_AUDIT.maxTrackedIds, 1, 100_000_000),
    },
  },
  ops: {
    enabled: bool("run the ops listener: /metrics, /healthz, /readyz over plain HTTP without credentials", true),
    host: str("bind address of the ops listener (loopback or a monitoring network)", "127.0.0.1"),
    port: int("ops HTTP port (0 = ephemeral)", 9464, 0, PORT_MAX),
  },
  cluster: {
    redis: str("Redis shared by the cloud nodes (redis://host:port or rediss://; the password in env WCM_REDIS_PASSWORD, never here): MQTT messages and operator notices reach a device's session on whichever node holds it (docs/scale.md); unset: this node only"),
  },
  shutdown: {
    drainMs: int("on SIGTERM, ms to let requests finish and sessions end before the rest are cut (a second SIGTERM exits at once)", 10_000, 0, 300_000),
  },
  log: {
    level: oneOf("least level written (one JSON object per line, pino)", ["debug", "info", "warn", "error"], "info"),
    file: str("append the log lines to this file (created owner-only) instead of standard error"),
  },
} satisfies Section;

/** A configuration value tree (each setting's value, or undefined where unset and without a default). */
export type ConfigValues = { [key: string]: unknown };

/** The configuration in force and where it came from. */
export interface LoadedConfig {
  values: ConfigValues;
  /** the file read, if any */
  file: string | undefined;
  /** dotted path → "default" | "<file>:<line>" | "env WCM__..." | "flag" */
  sources: Map<string, string>;
}

function isSetting(node: Setting | Section): node is Setting {
  return typeof (node as Setting).kind === "string" && typeof (node as Setting).doc === "string";
}

/** The dotted paths of every setting, in schema order. */
export function settingPaths(section: Section = CONFIG_SCHEMA, prefix = ""): string[] {
  const out: string[] = [];
  for (const [key, node] of Object.entries(section)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isSetting(node)) out.push(path);
    else out.push(...settingPaths(node, path));
  }
  return out;
}

/** The schema entry of a dotted path, or undefined. */
export function settingAt(path: string): Setting | undefined {
  let node: Setting | Section = CONFIG_SCHEMA;
  for (const key of path.split(".")) {
    if (isSetting(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return isSetting(node) ? node : undefined;
}

/** The environment variable overriding a dotted path: `mqtt.connectTimeoutMs` → `WCM__MQTT__CONNECT_TIMEOUT_MS`. */
export function envName(path: string): string {
  return `WCM__${path.split(".").map((part) => part.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__")}`;
}

/** Checks one value against its setting; returns the value or a problem text. */
function check(setting: Setting, value: unknown): { value: unknown } | { problem: string } {
  const bounds = () => (setting.min !== undefined ? ` ${setting.min}..${setting.max}` : "");
  switch (setting.kind) {
    case "string":
      if (typeof value !== "string") return { problem: `must be a string, not ${describe(value)}` };
      if (value.length > 4096) return { problem: "is longer than 4096 characters" };
      return { value };
    case "enum":
      if (typeof value !== "string" || !setting.values!.includes(value)) return { problem: `must be one of ${setting.values!.join(", ")}, not ${describe(value)}` };
      return { value };
    case "bool":
      if (typeof value !== "boolean") return { problem: `must be true or false, not ${describe(value)}` };
      return { value };
    case "int":
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value) || (setting.kind === "int" && !Number.isInteger(value))) {
        return { problem: `must be ${setting.kind === "int" ? "an integer" : "a number"}${bounds()}, not ${describe(value)}` };
      }
      if (value < setting.min! || value > setting.max!) return { problem: `must be within${bounds()}, not ${value}` };
      return { value };
    case "strings":
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.length > 4096) || value.length > 256) {
        return { problem: `must be a list of strings (at most 256), not ${describe(value)}` };
      }
      return { value: [...value] };
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  return String(value);
}

/** Parses an environment variable's text as the setting's type. */
function fromEnvText(setting: Setting, text: string): unknown {
  switch (setting.kind) {
    case "int":
    case "number":
      return /^-?[0-9]+(\.[0-9]+)?$/.test(text.trim()) ? Number(text.trim()) : text;
    case "bool":
      return text === "true" ? true : text === "false" ? false : text;
    case "strings":
      return text.split(",").map((s) => s.trim()).filter(Boolean);
    default:
      return text;
  }
}

function setPath(values: ConfigValues, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = values;
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {};
    node = node[part] as ConfigValues;
  }
  node[parts[parts.length - 1]] = value;
}

/** The value at a dotted path of a value tree. */
export function getPath(values: ConfigValues, path: string): unknown {
  let node: unknown = values;
  for (const part of path.split(".")) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as ConfigValues)[part];
  }
  return node;
}

/** The defaults of every setting as a value tree. */
export function defaultConfig(): ConfigValues {
  const values: ConfigValues = {};
  for (const path of settingPaths()) setPath(values, path, structuredClone(settingAt(path)!.default));
  return values;
}

/** Reads a YAML file into (path, value, line) triples, or problems. */
function readYaml(file: string, text: string, problems: string[]): { path: string; value: unknown; where: string }[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, schema: "core" });
  const at = (offset: number | undefined) => {
    const pos = lineCounter.linePos(offset ?? 0);
    return `${file}:${pos.line}:${pos.col}`;
  };
  for (const error of doc.errors) problems.push(`${at(error.pos[0])}: ${error.message.split("\n")[0]}`);
  if (doc.errors.length > 0) return [];
  const found: { path: string; value: unknown; where: string }[] = [];
  const walk = (node: YamlNode | null | undefined, section: Section, prefix: string) => {
    if (node === null || node === undefined) return;
    if (!isMap(node)) {
      problems.push(`${at(node.range?.[0])}: ${prefix || "the file"} must be a mapping of settings`);
      return;
    }
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode;
      const key = isScalar(keyNode) ? String(keyNode.value) : "";
      const path = prefix ? `${prefix}.${key}` : key;
      const entry = Object.hasOwn(section, key) ? section[key] : undefined;
      if (entry === undefined) {
        const known = Object.keys(section).join(", ");
        problems.push(`${at(keyNode?.range?.[0])}: unknown key ${path} (${prefix ? `${prefix} has` : "sections are"}: ${known})`);
        continue;
      }
      const valueNode = pair.value as YamlNode | null;
      if (isSetting(entry)) {
        const value = valueNode === null ? null : isScalar(valueNode) ? valueNode.value : isSeq(valueNode) ? valueNode.toJSON() : valueNode.toJSON();
        found.push({ path, value, where: at(valueNode?.range?.[0] ?? keyNode?.range?.[0]) });
      } else walk(valueNode, entry, path);
    }
  };
  walk(doc.contents as YamlNode | null, CONFIG_SCHEMA, "");
  return found;
}

/** Options of loadConfig. */
export interface LoadConfigOptions {
  /** the YAML file; undefined = defaults and environment only */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** last-word values by dotted path (the CLI's flags); undefined entries are skipped */
  overrides?: Record<string, unknown>;
}

/**
 * Loads and validates the configuration.
 * @throws CloudError CONFIG_INVALID listing every problem (file:line:col or the variable), FILE_UNREADABLE for a file that cannot be read
 * @example const { values } = loadConfig({ file: "/etc/wcm/wcm.yaml", env: process.env });
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const values = defaultConfig();
  const sources = new Map<string, string>(settingPaths().map((p) => [p, "default"]));
  const problems: string[] = [];
  const apply = (path: string, raw: unknown, where: string) => {
    const result = check(settingAt(path)!, raw);
    if ("problem" in result) problems.push(`${where}: ${path} ${result.problem}`);
    else {
      setPath(values, path, result.value);
      sources.set(path, where);
    }
  };
  if (options.file !== undefined) {
    const text = readConfigText(options.file);
    for (const { path, value, where } of readYaml(options.file, text, problems)) apply(path, value, where);
  }
  const position = (p: string) => {
    const m = /:(\d+):(\d+): /.exec(p);
    return m ? Number(m[1]) * 100_000 + Number(m[2]) : Number.MAX_SAFE_INTEGER;
  };
  problems.sort((a, b) => position(a) - position(b));
  const byEnv = new Map(settingPaths().map((p) => [envName(p), p]));
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith("WCM__") || text === undefined) continue;
    const path = byEnv.get(name);
    if (path === undefined) problems.push(`env ${name}: no such setting (names are WCM__SECTION__KEY, e.g. ${envName("mqtt.port")})`);
    else apply(path, fromEnvText(settingAt(path)!, text), `env ${name}`);
  }
  for (const [path, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    if (!settingAt(path)) throw new Error(`override of unknown setting ${path}`);
    apply(path, value, "flag");
  }
  const tlsFiles = [getPath(values, "admin.tlsCertFile"), getPath(values, "admin.tlsKeyFile")];
  if ((tlsFiles[0] === undefined) !== (tlsFiles[1] === undefined)) problems.push(`admin: give both tlsCertFile and tlsKeyFile`);
  if ((getPath(values, "mqtt.tlsCertFile") === undefined) !== (getPath(values, "mqtt.tlsKeyFile") === undefined)) problems.push(`mqtt: give both tlsCertFile and tlsKeyFile`);
  if ((getPath(values, "radius.tlsCertFile") === undefined) !== (getPath(values, "radius.tlsKeyFile") === undefined)) problems.push(`radius: give both tlsCertFile and tlsKeyFile`);
  if (tlsFiles[0] !== undefined && getPath(values, "admin.tls") !== undefined) problems.push(`admin: tls and tlsCertFile/tlsKeyFile exclude each other`);
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  return { values, file: options.file, sources };
}

/** CONFIG_INVALID with every problem found (one per line in `problems`). */
export class ConfigError extends CloudError {
  constructor(readonly problems: string[]) {
    super("CONFIG_INVALID", `${problems.length} problem${problems.length === 1 ? "" : "s"} in the configuration: ${problems.join("; ")}`);
  }
}

function readConfigText(file: string): string {
  try {
    if (statSync(file).size > MAX_CONFIG_FILE_BYTES) throw new CloudError("TOO_LARGE", `${file} is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
    return readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof CloudError) throw error;
    throw new CloudError("FILE_UNREADABLE", `cannot read the configuration file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The startCloud options of a configuration (the data directory must be set). */
export function startOptionsFromConfig(values: ConfigValues): StartCloudOptions {
  const v = (path: string) => getPath(values, path);
  const dataDir = v("data.dir") as string | undefined;
  if (dataDir === undefined) throw new CloudError("CONFIG_INVALID", "data.dir: give the data directory (config data.dir, --data or WCM_DATA)");
  const certFile = v("admin.tlsCertFile") as string | undefined;
  const keyFile = v("admin.tlsKeyFile") as string | undefined;
  const tls = v("admin.tls") as string | undefined;
  return {
    dataDir,
    database: v("data.database") as string | undefined,
    masterKeyFile: v("data.masterKeyFile") as string | undefined,
    mqttHost: v("mqtt.host") as string,
    mqttPort: v("mqtt.port") as number,
    serverNames: v("mqtt.names") as string[],
    serverCertFile: v("mqtt.tlsCertFile") as string | undefined,
    serverKeyFile: v("mqtt.tlsKeyFile") as string | undefined,
    connectTimeoutMs: v("mqtt.connectTimeoutMs") as number,
    maxConnections: v("mqtt.maxConnections") as number,
    tlsSessions: { enabled: v("mqtt.tlsSessions.enabled") as boolean, lifetimeS: v("mqtt.tlsSessions.lifetimeS") as number },
    adminHost: v("admin.host") as string,
    httpPort: v("admin.enabled") ? (v("admin.port") as number) : undefined,
    adminName: v("admin.name") as string | undefined,
    adminTls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : tls === "issue" ? "issue" : tls === "off" ? false : undefined,
    adminTokenFile: v("admin.tokenFile") as string | undefined,
    radiusHost: v("radius.host") as string,
    radiusNames: v("radius.names") as string[],
    radiusCertFile: v("radius.tlsCertFile") as string | undefined,
    radiusKeyFile: v("radius.tlsKeyFile") as string | undefined,
    radiusPort: v("radius.enabled") ? (v("radius.port") as number) : undefined,
    radius: {
      fragmentSize: v("radius.fragmentSize") as number, maxReassembly: v("radius.maxReassembly") as number, maxSessions: v("radius.maxSessions") as number,
      sessionIdleMs: v("radius.sessionIdleMs") as number, duplicateTtlMs: v("radius.duplicateTtlMs") as number,
      sessionTimeoutS: v("radius.sessionTimeoutS") as number, nasRate: v("radius.nasRate") as RateLimit,
      accountingPort: v("radius.accountingEnabled") ? (v("radius.accountingPort") as number) : undefined,
      acctInterimIntervalS: v("radius.acctInterimIntervalS") as number,
      dynamicAuthorization: { port: v("radius.disconnectPort") as number },
      tlsSessions: { lifetimeS: v("radius.tlsSessionLifetimeS") as number },
    },
    limits: structuredClone(v("limits")) as AbuseLimits,
    redis: v("cluster.redis") as string | undefined,
    opsHost: v("ops.host") as string,
    opsPort: v("ops.enabled") ? (v("ops.port") as number) : undefined,
  };
}
