/*
 * Validation of the device configuration that a Moddable manifest's `config`
 * (or a manufacturing provisioning file) carries.
 *
 * validateConfig() turns untrusted input into a typed DeviceConfig or throws a
 * WcmError("CONFIG_INVALID") naming the field; it never echoes secret values.
 */
import { fromHex } from "./bytes";
import { WcmError } from "./errors";
import { checkHotspotRev, validateHotspotProfiles, type HotspotSet } from "./hotspots";
import { parseLabelCode } from "./onboarding/device-label-code";
import { checkDeviceId } from "./wire";

/** The three provisioning options of the seed. */
export type ProvisioningOption = "certificate" | "secret" | "temporary";

/** Where and how to reach the cloud. */
export interface CloudConfig {
  host: string;
  port: number;
  /** PEM trust anchor for the cloud's server certificate: one certificate, or two while the cloud's CA is rolled (docs/deploy.md). */
  ca: string;
  /** Name expected in the server certificate; defaults to host. */
  serverName: string;
  keepAliveSeconds: number;
}

/** Settings every option may carry. */
export interface CommonConfig {
  /** hotspot profiles built into the firmware (used until the cloud sends a newer set) */
  hotspots?: HotspotSet;
  /** the firmware's build time, Unix seconds: the first wall-time floor */
  buildTime?: number;
  /** the label code's 13 data characters (local onboarding, docs/protocol.md 15.2) */
  labelCode?: string;
}

/**
 * Where a temporary device's temporary secret comes from (docs/manufacturing.md,
 * "Temporary lots: what each mode protects against"):
 * - `temporarySecret`: the device's own derived secret (docs/protocol.md 5.1),
 *   written by the line; the lot key is not on the device (make-lot's default);
 * - `temporarySecretFrom: "hardware"`: the host's TemporarySecretPort computes it
 *   with a key software cannot read (ESP32 eFuse + HMAC peripheral);
 * - `provisioningKey`: the lot key itself (the older, weaker mode: whoever
 *   extracts it from one device can log in as any device of the lot).
 */
export type TemporaryConfig =
  | { deviceId: string; option: "temporary"; temporarySecret: Uint8Array; cloud: CloudConfig }
  | { deviceId: string; option: "temporary"; temporarySecretFrom: "hardware"; cloud: CloudConfig }
  | { deviceId: string; option: "temporary"; provisioningKey: Uint8Array; cloud: CloudConfig };

/** A validated device configuration. Secrets are bytes, never strings in logs. */
export type DeviceConfig = CommonConfig & (
  | { deviceId: string; option: "secret"; secret: Uint8Array; cloud: CloudConfig }
  | TemporaryConfig
  | { deviceId: string; option: "certificate"; certificate: string; privateKey: string; cloud: CloudConfig });

/** Build times accepted: 2020-01-01 .. 2100-01-01. */
export const BUILD_TIME_RANGE = [1_577_836_800, 4_102_444_800] as const;

/**
 * Validates the optional common settings: `hotspots` is an array of profiles
 * (revision 0) or `{ rev, profiles }`; `buildTime` is Unix seconds.
 */
export function validateCommonConfig(config: Record<string, unknown>): CommonConfig {
  const out: CommonConfig = {};
  const hotspots = config.hotspots;
  if (hotspots !== undefined) {
    if (Array.isArray(hotspots)) {
      out.hotspots = { rev: 0, profiles: validateHotspotProfiles(hotspots, "hotspots", "CONFIG_INVALID") };
    } else if (typeof hotspots === "object" && hotspots !== null) {
      const set = hotspots as Record<string, unknown>;
      for (const key of Object.keys(set)) if (key !== "rev" && key !== "profiles") fail(`hotspots.${key}`, "unexpected field");
      out.hotspots = {
        rev: set.rev === undefined ? 0 : checkHotspotRev(set.rev, "hotspots.rev", "CONFIG_INVALID"),
        profiles: validateHotspotProfiles(set.profiles, "hotspots.profiles", "CONFIG_INVALID"),
      };
    } else {
      fail("hotspots", "must be an array of profiles or { rev, profiles }");
    }
  }
  const buildTime = config.buildTime;
  if (buildTime !== undefined) {
    if (typeof buildTime !== "number" || !Number.isInteger(buildTime) || buildTime < BUILD_TIME_RANGE[0] || buildTime > BUILD_TIME_RANGE[1]) {
      fail("buildTime", "must be Unix seconds between 2020 and 2100");
    }
    out.buildTime = buildTime;
  }
  if (config.labelCode !== undefined) out.labelCode = parseLabelCode(config.labelCode);
  return out;
}

const MAX_PEM = 8192;
const HOST_PATTERN = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/;

function fail(field: string, rule: string): never {
  throw new WcmError("CONFIG_INVALID", rule, field);
}

function keyMaterial(value: unknown, field: string): Uint8Array {
  if (typeof value !== "string" || value.length < 32 || value.length > 128 || !/^[0-9a-fA-F]+$/.test(value) || value.length % 2) {
    fail(field, "must be 16 to 64 bytes written as hex (32 to 128 hex digits)");
  }
  return fromHex(value);
}

function pem(value: unknown, field: string, kind: RegExp): string {
  if (typeof value !== "string" || value.length > MAX_PEM || !kind.test(value)) {
    fail(field, `must be PEM text of at most ${MAX_PEM} characters`);
  }
  return value;
}

/** The temporary secret is an HMAC-SHA256 output: exactly 32 bytes. */
const TEMPORARY_SECRET = /^[0-9a-fA-F]{64}$/;

/** Exactly one of temporarySecret, temporarySecretFrom and provisioningKey. */
function temporaryCredential(config: Record<string, unknown>, deviceId: string, cloud: CloudConfig): TemporaryConfig {
  const given = ["temporarySecret", "temporarySecretFrom", "provisioningKey"].filter((field) => config[field] !== undefined);
  if (given.length !== 1) {
    fail(given[1] ?? "temporarySecret", "a temporary device takes exactly one of temporarySecret, temporarySecretFrom and provisioningKey");
  }
  switch (given[0]) {
    case "temporarySecret": {
      const value = config.temporarySecret;
      if (typeof value !== "string" || !TEMPORARY_SECRET.test(value)) fail("temporarySecret", "must be the 32-byte derived secret written as 64 hex digits");
      return { deviceId, option: "temporary", temporarySecret: fromHex(value), cloud };
    }
    case "temporarySecretFrom":
      if (config.temporarySecretFrom !== "hardware") fail("temporarySecretFrom", 'must be "hardware"');
      return { deviceId, option: "temporary", temporarySecretFrom: "hardware", cloud };
    default:
      return { deviceId, option: "temporary", provisioningKey: keyMaterial(config.provisioningKey, "provisioningKey"), cloud };
  }
}

const CERT_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/;
/** `cloud.ca`: one or two whole PEM certificates and nothing else (two while a CA is rolled). */
const CLOUD_CA_PEM = /^\s*(-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*){1,2}$/;
const KEY_PEM = /-----BEGIN (RSA |EC )?PRIVATE KEY-----[\s\S]+-----END (RSA |EC )?PRIVATE KEY-----/;

/** Validates the cloud part of a configuration. */
export function validateCloudConfig(input: unknown): CloudConfig {
  if (typeof input !== "object" || input === null) fail("cloud", "must be an object");
  const cloud = input as Record<string, unknown>;
  if (typeof cloud.host !== "string" || !HOST_PATTERN.test(cloud.host)) fail("cloud.host", "must be a host name or address");
  const port = cloud.port;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) fail("cloud.port", "must be 1..65535");
  const ca = pem(cloud.ca, "cloud.ca", CLOUD_CA_PEM);
  const serverName = cloud.serverName === undefined ? cloud.host : cloud.serverName;
  if (typeof serverName !== "string" || !HOST_PATTERN.test(serverName)) fail("cloud.serverName", "must be a host name");
  const keepAlive = cloud.keepAliveSeconds === undefined ? 60 : cloud.keepAliveSeconds;
  if (typeof keepAlive !== "number" || !Number.isInteger(keepAlive) || keepAlive < 5 || keepAlive > 3600) {
    fail("cloud.keepAliveSeconds", "must be 5..3600");
  }
  return { host: cloud.host, port, ca, serverName, keepAliveSeconds: keepAlive };
}

/**
 * Validates a device configuration.
 * @param input - the manifest `config` (or provisioning file) object
 * @returns the typed configuration
 * @throws WcmError CONFIG_INVALID naming the first field that breaks a rule
 * @example validateConfig({ deviceId: "lamp-0001", option: "secret", secret: "00ff...", cloud: { host, port: 8883, ca } })
 */
export function validateConfig(input: unknown): DeviceConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) fail("config", "must be an object");
  const config = input as Record<string, unknown>;
  const deviceId = checkDeviceId(config.deviceId, "CONFIG_INVALID");
  const cloud = validateCloudConfig(config.cloud);
  const common = () => validateCommonConfig(config);
  switch (config.option) {
    case "secret":
      return { deviceId, option: "secret", secret: keyMaterial(config.secret, "secret"), cloud, ...common() };
    case "temporary":
      return { ...temporaryCredential(config, deviceId, cloud), ...common() };
    case "certificate":
      return {
        deviceId,
        option: "certificate",
        certificate: pem(config.certificate, "certificate", CERT_PEM),
        privateKey: pem(config.privateKey, "privateKey", KEY_PEM),
        cloud,
        ...common(),
      };
    default:
      return fail("option", 'must be "certificate", "secret" or "temporary"');
  }
}
