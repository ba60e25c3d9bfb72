/*
 * The walled-garden policy of a hotspot profile, as the Access-Accept carries
 * it to the access point (issue 14 item 4):
 *
 * - allowed domains: the AP's filter (ACL) named by Filter-Id (RFC 2865
 *   section 5.11, attribute 11, dictionary.rfc2865). RADIUS has no standard
 *   attribute that carries a domain list; the operator defines the filter with
 *   the profile's domains on the AP, and the Accept names it;
 * - bandwidth up / down: WISPr-Bandwidth-Max-Up / -Max-Down (vendor 14122,
 *   types 7 and 8, bits per second, dictionary.wispr of FreeRADIUS);
 * - session timeout: Session-Timeout (RFC 2865 section 5.27, attribute 27).
 *
 * validateHotspotPolicy() is the one validator (admin API, CLI); policyAttributes()
 * encodes. No I/O.
 */
import type { RadiusAttribute } from "./packet";
import { ATTR } from "./packet";
import { invalid } from "../admin-input";

/** The WISPr vendor id (Wi-Fi Alliance WISPr 1.0, FreeRADIUS dictionary.wispr). */
export const WISPR_VENDOR_ID = 14122;
/** WISPr-Bandwidth-Max-Up and -Max-Down (integer, bit/s). */
export const WISPR_BANDWIDTH_MAX_UP = 7;
export const WISPR_BANDWIDTH_MAX_DOWN = 8;

/** Most allowed domains in one policy. */
export const MAX_POLICY_DOMAINS = 32;
/** Bandwidth bounds, kbit/s (the attribute carries bit/s in 32 bits: at most 4,294,967 kbit/s). */
export const MIN_BANDWIDTH_KBPS = 8;
export const MAX_BANDWIDTH_KBPS = 4_000_000;
/** Session-Timeout bounds, seconds (a minute to a week). */
export const MIN_SESSION_TIMEOUT_S = 60;
export const MAX_SESSION_TIMEOUT_S = 604_800;

/** What the hotspot enforces for a device accepted on a profile's network. */
export interface HotspotPolicy {
  /** the only destinations a device may reach: DNS names, or "*.example.com" for a zone and its subdomains (1-32) */
  domains: string[];
  /** the AP filter that allows them, sent as Filter-Id (default "wcm-<profile name>") */
  filterId?: string;
  /** most kbit/s from the device (WISPr-Bandwidth-Max-Up) and to it (-Max-Down) */
  bandwidth?: { upKbps: number; downKbps: number };
  /** seconds until the AP ends the session and the device authenticates again (Session-Timeout; default the server's) */
  sessionTimeoutS?: number;
}

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const FILTER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function domain(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 253) invalid(field, "must be a DNS name of at most 253 characters");
  const name = value.startsWith("*.") ? value.slice(2) : value;
  const labels = name.split(".");
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) {
    invalid(field, "must be a DNS name with at least two labels of A-Z a-z 0-9 - (or *.name for a zone)");
  }
  return value.toLowerCase();
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) invalid(field, `must be an integer ${min}..${max}`);
  return value;
}

/**
 * Validates a profile's policy.
 * @param input - `{ domains, filterId?, bandwidth?: { upKbps, downKbps }, sessionTimeoutS? }`
 * @param field - where errors point, e.g. "profiles[0].policy"
 * @throws CloudError INVALID_INPUT naming the first bad field (nothing is stored)
 * @example validateHotspotPolicy({ domains: ["cloud.example.com"], bandwidth: { upKbps: 256, downKbps: 1024 }, sessionTimeoutS: 3600 }, "policy")
 */
export function validateHotspotPolicy(input: unknown, field: string): HotspotPolicy {
  if (typeof input !== "object" || input === null || Array.isArray(input)) invalid(field, "must be an object");
  const object = input as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (!["domains", "filterId", "bandwidth", "sessionTimeoutS"].includes(key)) invalid(`${field}.${key}`, "unexpected field");
  }
  const domains = object.domains;
  if (!Array.isArray(domains) || domains.length < 1 || domains.length > MAX_POLICY_DOMAINS) {
    invalid(`${field}.domains`, `must be an array of 1-${MAX_POLICY_DOMAINS} DNS names`);
  }
  const out: HotspotPolicy = { domains: [...new Set((domains as unknown[]).map((d, i) => domain(d, `${field}.domains[${i}]`)))] };
  if (object.filterId !== undefined) {
    if (typeof object.filterId !== "string" || !FILTER_ID.test(object.filterId)) {
      invalid(`${field}.filterId`, "must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
    }
    out.filterId = object.filterId;
  }
  if (object.bandwidth !== undefined) {
    const b = object.bandwidth;
    if (typeof b !== "object" || b === null || Array.isArray(b)) invalid(`${field}.bandwidth`, "must be an object { upKbps, downKbps }");
    const bw = b as Record<string, unknown>;
    for (const key of Object.keys(bw)) if (key !== "upKbps" && key !== "downKbps") invalid(`${field}.bandwidth.${key}`, "unexpected field");
    out.bandwidth = {
      upKbps: integer(bw.upKbps, `${field}.bandwidth.upKbps`, MIN_BANDWIDTH_KBPS, MAX_BANDWIDTH_KBPS),
      downKbps: integer(bw.downKbps, `${field}.bandwidth.downKbps`, MIN_BANDWIDTH_KBPS, MAX_BANDWIDTH_KBPS),
    };
  }
  if (object.sessionTimeoutS !== undefined) {
    out.sessionTimeoutS = integer(object.sessionTimeoutS, `${field}.sessionTimeoutS`, MIN_SESSION_TIMEOUT_S, MAX_SESSION_TIMEOUT_S);
  }
  return out;
}

/** The Filter-Id a profile's policy is sent with. */
export function filterIdOf(profileName: string, policy: HotspotPolicy): string {
  return policy.filterId ?? `wcm-${profileName}`;
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

function wispr(vendorType: number, value: number): RadiusAttribute {
  const data = uint32(value);
  const out = Buffer.alloc(6 + data.length);
  out.writeUInt32BE(WISPR_VENDOR_ID, 0);
  out[4] = vendorType;
  out[5] = 2 + data.length;
  data.copy(out, 6);
  return { type: ATTR.vendorSpecific, value: out };
}

/**
 * The Access-Accept attributes of a policy: Filter-Id, WISPr-Bandwidth-Max-Up
 * and -Max-Down (bit/s), and Session-Timeout when the policy sets one (the
 * caller sends its server-wide default otherwise).
 */
export function policyAttributes(profileName: string, policy: HotspotPolicy): RadiusAttribute[] {
  const out: RadiusAttribute[] = [{ type: ATTR.filterId, value: Buffer.from(filterIdOf(profileName, policy)) }];
  if (policy.bandwidth) {
    out.push(wispr(WISPR_BANDWIDTH_MAX_UP, policy.bandwidth.upKbps * 1000), wispr(WISPR_BANDWIDTH_MAX_DOWN, policy.bandwidth.downKbps * 1000));
  }
  if (policy.sessionTimeoutS !== undefined) out.push({ type: ATTR.sessionTimeout, value: uint32(policy.sessionTimeoutS) });
  return out;
}
