/*
 * Validation of the device configuration that a Moddable manifest's `config`
 * (or a manufacturing provisioning file) carries.
 *
 * validateConfig() turns untrusted input into a typed DeviceConfig or throws a
 * WcmError("CONFIG_INVALID") naming the field; it never echoes secret values.
 */
import { fromHex } from "./bytes";
import { check, fail, fields, object, optional, text, type Check, type Shape } from "./check";
import { checkHotspotRev, PEM_CERTIFICATE, validateHotspotProfiles, type HotspotSet } from "./hotspots";
import { parseLabelCode } from "./onboarding/device-label-code";
import { DEVICE_ID_PATTERN } from "./wire";

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

const CODE = "CONFIG_INVALID";
const HOST = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]{2,45}\]$/;
const MAX_PEM = 8192;
const CERT_PEM = /-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/;
/** `cloud.ca`: one or two whole PEM certificates and nothing else (two while a CA is rolled). */
const CLOUD_CA_PEM = new RegExp(`^${PEM_CERTIFICATE}{1,2}\\s*$`);
const KEY_PEM = /-----BEGIN (RSA |EC )?PRIVATE KEY-----[\s\S]+-----END (RSA |EC )?PRIVATE KEY-----/;

/** Hex text matching `pattern`, as bytes. */
const hex = (pattern: RegExp): Check => (value, field, code) => fromHex(check(value, pattern, field, code));
/** A secret or a lot key: 16 to 64 bytes written as hex. */
const KEY_MATERIAL = hex(/^(?:[0-9a-fA-F]{2}){16,64}$/);

/** The hotspots setting: an array of profiles (revision 0) or `{ rev, profiles }`. */
const hotspots: Check = (value, field, code) => Array.isArray(value)
  ? { rev: 0, profiles: validateHotspotProfiles(value, field, code) }
  : check(value, { rev: optional(checkHotspotRev, 0), profiles: validateHotspotProfiles }, field, code);

/**
 * The optional settings every option may carry: `hotspots` is an array of profiles
 * (revision 0) or `{ rev, profiles }`; `buildTime` is Unix seconds, 2020-01-01 .. 2100-01-01;
 * `labelCode` the label code.
 */
const COMMON: Shape = { hotspots: optional(hotspots), buildTime: optional([1_577_836_800, 4_102_444_800]), labelCode: optional(parseLabelCode) };

/** The credential fields of each option. */
const OPTIONS: Record<string, Shape> = {
  secret: { secret: KEY_MATERIAL },
  certificate: { certificate: text(MAX_PEM, CERT_PEM), privateKey: text(MAX_PEM, KEY_PEM) },
  // the temporary secret is an HMAC-SHA256 output: exactly 32 bytes
  temporary: { temporarySecret: optional(hex(/^[0-9a-fA-F]{64}$/)), temporarySecretFrom: optional(["hardware"]), provisioningKey: optional(KEY_MATERIAL) },
};

const CLOUD: Shape = { host: HOST, port: [1, 65535], ca: text(MAX_PEM, CLOUD_CA_PEM), serverName: optional(HOST), keepAliveSeconds: optional([5, 3600], 60) };

/** Validates the cloud part of a configuration (other fields are ignored). */
export function validateCloudConfig(input: unknown): CloudConfig {
  const cloud = fields(input, CLOUD, "cloud", CODE);
  cloud.serverName ??= cloud.host;
  return cloud;
}

/**
 * Validates a device configuration (fields it does not know are ignored).
 * @param input - the manifest `config` (or provisioning file) object
 * @returns the typed configuration
 * @throws WcmError CONFIG_INVALID naming the first field that breaks a rule
 * @example validateConfig({ deviceId: "lamp-0001", option: "secret", secret: "00ff...", cloud: { host, port: 8883, ca } })
 */
export function validateConfig(input: unknown): DeviceConfig {
  const config = object(input, "config", CODE);
  const head = fields(config, { deviceId: DEVICE_ID_PATTERN, cloud: validateCloudConfig, option: ["certificate", "secret", "temporary"] }, "", CODE);
  const shape = OPTIONS[head.option];
  const credential = fields(config, shape, "", CODE);
  // a temporary device: exactly one of temporarySecret, temporarySecretFrom and provisioningKey
  const given = Object.keys(credential);
  if (head.option === "temporary" && given.length !== 1) fail(CODE, `a temporary device takes exactly one of ${Object.keys(shape)}`, given[1] ?? "temporarySecret");
  return Object.assign(head, credential, fields(config, COMMON, "", CODE));
}
