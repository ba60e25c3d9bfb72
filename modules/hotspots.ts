/*
 * Hotspot profiles: which partner Wi-Fi networks a device may join with its own
 * credential, and how it checks the RADIUS server there.
 *
 * A profile names the network by SSID and/or Hotspot 2.0 roaming-consortium
 * OIs; the EAP method is not in the profile but follows from the device's
 * provisioning option (EAP-TTLS/PAP with a derived password for secret and
 * temporary devices, EAP-TLS for certificate devices). A profile set has a
 * revision: the cloud bumps it on every change, the device keeps the newest it
 * has seen (network-store.ts). Built into the firmware config (config.ts) at
 * revision 0, or fetched with the `config` request (protocol.ts).
 *
 * validateHotspotSet() is the one validator for all three sources.
 */
import { utf8Encode } from "./bytes";
import { WcmError, type WcmErrorCode } from "./errors";

/** The RADIUS server a device must see at the hotspot. */
export interface RadiusCheck {
  /** name in the RADIUS server certificate (SAN DNS or CN), e.g. "radius.localhost" */
  serverName: string;
  /** PEM trust anchor for that certificate */
  ca: string;
}

/** One hotspot profile. */
export interface HotspotProfile {
  /** 1-32 characters of A-Z a-z 0-9 . _ - (unique in a set) */
  name: string;
  /** the SSID to look for (1-32 bytes UTF-8), when matched by name */
  ssid?: string;
  /** Hotspot 2.0 roaming-consortium OIs (3 or 5 bytes, lower-case hex), when matched by OI */
  roamingConsortium?: string[];
  /** EAP outer identity (TTLS), default "anonymous@wcm" */
  anonymousIdentity?: string;
  radius: RadiusCheck;
}

/** A versioned set of profiles. */
export interface HotspotSet {
  /** 0 = built into the firmware; the cloud's revisions start at 1 */
  rev: number;
  profiles: HotspotProfile[];
}

/** Most profiles in a set. */
export const MAX_HOTSPOT_PROFILES = 4;
/** Largest encoded set (JSON of the profiles), so the set fits one flash record and one `config` response. */
export const MAX_HOTSPOT_SET_BYTES = 3800;
/** Largest CA PEM in a profile. */
export const MAX_RADIUS_CA_CHARS = 3000;
/** Largest revision. */
export const MAX_HOTSPOT_REV = 0x7fffffff;
/** Default outer identity. */
export const DEFAULT_ANONYMOUS_IDENTITY = "anonymous@wcm";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const OI = /^([0-9a-f]{6}|[0-9a-f]{10})$/;
const HOST = /^[A-Za-z0-9.-]{1,253}$/;
const IDENTITY = /^[\x21-\x7e]{1,64}$/;
const CERT_PEM = /^\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----(\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----)*\s*$/;

/** Throws a WcmError with `code` unless `ssid` is 1-32 bytes of UTF-8 without control characters. */
export function checkSsid(ssid: unknown, field: string, code: WcmErrorCode): string {
  if (typeof ssid !== "string" || ssid.length === 0 || ssid.length > 32 || /[\x00-\x1f\x7f]/.test(ssid) || utf8Encode(ssid).length > 32) {
    throw new WcmError(code, "must be 1-32 bytes of UTF-8 without control characters", field);
  }
  return ssid;
}

function profile(input: unknown, field: string, code: WcmErrorCode): HotspotProfile {
  const fail = (sub: string, rule: string): never => {
    throw new WcmError(code, rule, `${field}.${sub}`);
  };
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new WcmError(code, "must be an object", field);
  const object = input as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!["name", "ssid", "roamingConsortium", "anonymousIdentity", "radius"].includes(key)) fail(key, "unexpected field");
  }
  if (typeof object.name !== "string" || !NAME.test(object.name)) fail("name", "must be 1-32 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
  const out: HotspotProfile = { name: object.name as string, radius: { serverName: "", ca: "" } };
  if (object.ssid !== undefined) out.ssid = checkSsid(object.ssid, `${field}.ssid`, code);
  if (object.roamingConsortium !== undefined) {
    const ois = object.roamingConsortium;
    if (!Array.isArray(ois) || ois.length < 1 || ois.length > 4) fail("roamingConsortium", "must be 1-4 OIs");
    out.roamingConsortium = (ois as unknown[]).map((oi, i) => {
      if (typeof oi !== "string" || !OI.test(oi)) fail(`roamingConsortium[${i}]`, "must be 3 or 5 bytes as lower-case hex");
      return oi as string;
    });
  }
  if (out.ssid === undefined && out.roamingConsortium === undefined) fail("ssid", "give ssid, roamingConsortium or both");
  if (object.anonymousIdentity !== undefined) {
    if (typeof object.anonymousIdentity !== "string" || !IDENTITY.test(object.anonymousIdentity)) {
      fail("anonymousIdentity", "must be 1-64 printable ASCII characters without spaces");
    }
    out.anonymousIdentity = object.anonymousIdentity as string;
  }
  const radius = object.radius;
  if (typeof radius !== "object" || radius === null || Array.isArray(radius)) fail("radius", "must be an object");
  const r = radius as Record<string, unknown>;
  for (const key of Object.keys(r)) if (key !== "serverName" && key !== "ca") fail(`radius.${key}`, "unexpected field");
  if (typeof r.serverName !== "string" || !HOST.test(r.serverName)) fail("radius.serverName", "must be a host name");
  if (typeof r.ca !== "string" || r.ca.length > MAX_RADIUS_CA_CHARS || !CERT_PEM.test(r.ca)) {
    fail("radius.ca", `must be PEM certificates of at most ${MAX_RADIUS_CA_CHARS} characters`);
  }
  out.radius = { serverName: r.serverName as string, ca: r.ca as string };
  return out;
}

/**
 * Validates a list of profiles.
 * @param input - an array of profile objects
 * @param field - the field name errors start with (e.g. "hotspots.profiles")
 * @param code - CONFIG_INVALID (firmware config) or MESSAGE_INVALID (from the cloud)
 * @throws WcmError `code` naming the first bad field; MESSAGE_TOO_LARGE/`code` when the set is over MAX_HOTSPOT_SET_BYTES
 */
export function validateHotspotProfiles(input: unknown, field: string, code: WcmErrorCode): HotspotProfile[] {
  if (!Array.isArray(input) || input.length > MAX_HOTSPOT_PROFILES) {
    throw new WcmError(code, `must be an array of at most ${MAX_HOTSPOT_PROFILES} profiles`, field);
  }
  const profiles = input.map((item, i) => profile(item, `${field}[${i}]`, code));
  const names = new Set<string>();
  for (const p of profiles) {
    if (names.has(p.name)) throw new WcmError(code, "profile names must be unique", `${field}.name`);
    names.add(p.name);
  }
  if (encodeHotspotProfiles(profiles).length > MAX_HOTSPOT_SET_BYTES) {
    throw new WcmError(code, `encoded larger than ${MAX_HOTSPOT_SET_BYTES} bytes`, field);
  }
  return profiles;
}

/** Validates a revision number. */
export function checkHotspotRev(value: unknown, field: string, code: WcmErrorCode): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_HOTSPOT_REV) {
    throw new WcmError(code, "must be an integer 0..2^31-1", field);
  }
  return value;
}

/** The canonical JSON of a profile list (field order fixed; absent fields omitted). */
export function hotspotProfilesJson(profiles: readonly HotspotProfile[]): unknown[] {
  return profiles.map((p) => {
    const out: Record<string, unknown> = { name: p.name };
    if (p.ssid !== undefined) out.ssid = p.ssid;
    if (p.roamingConsortium !== undefined) out.roamingConsortium = p.roamingConsortium.slice();
    if (p.anonymousIdentity !== undefined) out.anonymousIdentity = p.anonymousIdentity;
    out.radius = { serverName: p.radius.serverName, ca: p.radius.ca };
    return out;
  });
}

/** UTF-8 JSON of a profile list, as bounded by MAX_HOTSPOT_SET_BYTES. */
export function encodeHotspotProfiles(profiles: readonly HotspotProfile[]): Uint8Array {
  return utf8Encode(JSON.stringify(hotspotProfilesJson(profiles)));
}
