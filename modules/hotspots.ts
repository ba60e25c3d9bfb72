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
import { jsonBytes, utf8Encode } from "./bytes";
import { check, fail, list, optional, text, type Shape } from "./check";
import type { WcmErrorCode } from "./errors";

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

/** One whole PEM certificate, with the white space before it (config.ts's cloud.ca takes one or two). */
export const PEM_CERTIFICATE = "(\\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----)";
const SSID = /^[^\x00-\x1f\x7f]{1,32}$/;

/** Throws a WcmError with `code` unless `ssid` is 1-32 bytes of UTF-8 without control characters. */
export const checkSsid = (ssid: unknown, field: string, code: WcmErrorCode): string => {
  return utf8Encode(check(ssid, SSID, field, code)).length > 32 ? fail(code, "longer than 32 bytes", field) : ssid as string;
};

/** The fields of a profile, in the order they are checked. */
const PROFILE: Shape = {
  name: /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/,
  ssid: optional(checkSsid),
  roamingConsortium: optional(list(/^([0-9a-f]{6}|[0-9a-f]{10})$/, 1, 4)),
  anonymousIdentity: optional(/^[\x21-\x7e]{1,64}$/),
  // radius.ca: one or more whole PEM certificates and nothing else
  radius: { serverName: /^[A-Za-z0-9.-]{1,253}$/, ca: text(MAX_RADIUS_CA_CHARS, new RegExp(`^${PEM_CERTIFICATE}+\\s*$`)) },
};

/**
 * Validates a list of profiles.
 * @param input - an array of profile objects
 * @param field - the field name errors start with (e.g. "hotspots.profiles")
 * @param code - CONFIG_INVALID (firmware config) or MESSAGE_INVALID (from the cloud)
 * @throws WcmError `code` naming the first bad field; MESSAGE_TOO_LARGE/`code` when the set is over MAX_HOTSPOT_SET_BYTES
 */
export const validateHotspotProfiles = (input: unknown, field: string, code: WcmErrorCode): HotspotProfile[] => {
  const profiles: HotspotProfile[] = check(input, PROFILES, field, code);
  if (new Set(profiles.map((p) => p.name)).size < profiles.length) fail(code, "profile names must be unique", field + ".name");
  // the set's canonical JSON as UTF-8 is what is bounded (checked profiles are canonical: fields in PROFILE order, no others)
  return jsonBytes(profiles).length > MAX_HOTSPOT_SET_BYTES ? fail(code, "encoded larger than " + MAX_HOTSPOT_SET_BYTES + " bytes", field) : profiles;
};

/** Profiles: each with its fields, and at least one of ssid and roamingConsortium. */
const PROFILES = list((input, field, code) => {
  const out = check(input, PROFILE, field, code);
  return out.ssid || out.roamingConsortium ? out : fail(code, "give ssid, roamingConsortium or both", field + ".ssid");
}, 0, MAX_HOTSPOT_PROFILES);

/** Validates a revision number (0..MAX_HOTSPOT_REV). */
export const checkHotspotRev = (value: unknown, field: string, code: WcmErrorCode): number => check(value, [0, MAX_HOTSPOT_REV], field, code);
