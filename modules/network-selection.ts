/*
 * Network selection, pure: from a scan, the device's stored private networks
 * and its hotspot profiles, what to join next, and how long a network that
 * failed is left alone.
 *
 * Order: stored private networks first (higher `priority` first), then hotspot
 * profiles; among equals the strongest signal. A private network matches an
 * access point with the same SSID and the same security (open when it has no
 * password, PSK otherwise: an open twin of a PSK network is never joined). A
 * hotspot profile matches an enterprise access point by SSID or by a shared
 * Hotspot 2.0 roaming-consortium OI. A candidate that failed waits out its
 * back-off (exponential, with the randomness passed in) before it is tried
 * again; every failure keeps its reason. No I/O, no clock: `now` is passed in.
 */
import type { HotspotProfile } from "./hotspots";
import type { NetworkFailure, ScanResult } from "./ports";
import { nextRetryDelay, type RetryPolicy } from "./retry";

/** A private network the owner handed to the device. */
export interface PrivateNetwork {
  ssid: string;
  /** "" for an open network; else a WPA2 passphrase or 64 hex digits */
  password: string;
  /** 0..100, higher first */
  priority: number;
}

interface CandidateBase {
  /** "private:<ssid>" or "hotspot:<profile name>": the back-off key */
  key: string;
  ssid: string;
  bssid: string;
  rssi: number;
}

/** Something the device could join now. */
export type Candidate =
  | (CandidateBase & { kind: "private"; network: PrivateNetwork })
  | (CandidateBase & { kind: "hotspot"; profile: HotspotProfile });

/** Back-off state of one candidate. */
export interface BackoffEntry {
  /** consecutive failures */
  failures: number;
  /** the candidate is not tried before this time (the caller's clock, ms) */
  until: number;
  last: NetworkFailure;
}

/** Back-off state by candidate key. Treated as immutable: the functions return new tables. */
export type BackoffTable = Readonly<Record<string, BackoffEntry>>;

/** Back-off bounds for networks, in ms. */
export interface NetworkBackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** 10 s doubling to 10 min. */
export const DEFAULT_NETWORK_BACKOFF: NetworkBackoffPolicy = { baseMs: 10_000, maxMs: 600_000 };
/** Empty scans: rescan after 5 s doubling to 2 min. */
export const DEFAULT_RESCAN_BACKOFF: NetworkBackoffPolicy = { baseMs: 5_000, maxMs: 120_000 };

/** The back-off key of a private network or a hotspot profile. */
export const candidateKey = (kind: "private" | "hotspot", name: string): string => {
  return kind + ":" + name;
};

/**
 * Every candidate heard in `scan`, best first, ignoring back-off: one per
 * private network or profile (its strongest access point).
 * @example rankCandidates(scan, [{ ssid: "Home", password: "…", priority: 10 }], profiles)[0].kind === "private"
 */
export const rankCandidates = (scan: readonly ScanResult[], networks: readonly PrivateNetwork[], profiles: readonly HotspotProfile[]): Candidate[] => {
  // by key ("private:" / "hotspot:" prefixed, so never an Object.prototype name), in the order first heard
  const best: Record<string, Candidate> = {};
  scan.forEach((ap) => {
    const keep = (kind: Candidate["kind"], name: string, extra: object) => {
      const key = candidateKey(kind, name);
      if (!(best[key]?.rssi >= ap.rssi)) best[key] = { kind, key, ssid: ap.ssid, bssid: ap.bssid, rssi: ap.rssi, ...extra } as Candidate;
    };
    networks.forEach((network) => ap.ssid === network.ssid && ap.security === (network.password ? "psk" : "open") && keep("private", network.ssid, { network }));
    // a profile matches an enterprise access point by SSID or by a shared roaming-consortium OI
    profiles.forEach((profile) => ap.security === "enterprise"
      && (ap.ssid === profile.ssid || ap.roamingConsortium?.some((oi) => profile.roamingConsortium?.includes(oi.toLowerCase())))
      && keep("hotspot", profile.name, { profile }));
  });
  // private first (higher priority first), then hotspots; the stronger signal, then the profile order, then the key
  return Object.values(best).sort((a, b) => +("profile" in a) - +("profile" in b)
    || ((b as { network?: PrivateNetwork }).network?.priority ?? 0) - ((a as { network?: PrivateNetwork }).network?.priority ?? 0)
    || b.rssi - a.rssi
    || profiles.indexOf((a as { profile: HotspotProfile }).profile) - profiles.indexOf((b as { profile: HotspotProfile }).profile)
    || (a.key < b.key ? -1 : 1));
};

/** What selectNetwork decided. */
export interface Selection {
  /** the candidate to join now, if any */
  candidate?: Candidate;
  /** every candidate heard, best first */
  ranked: Candidate[];
  /** when candidates were heard but all are backing off: ms until the first may be tried */
  waitMs?: number;
}

/**
 * What to join next.
 * @param now - the caller's clock (ms), compared with back-off `until`
 * @returns the best candidate not backing off; else, when some were heard, how long to wait
 */
export const selectNetwork = (
  scan: readonly ScanResult[],
  networks: readonly PrivateNetwork[],
  profiles: readonly HotspotProfile[],
  backoff: BackoffTable,
  now: number,
): Selection => {
  const ranked = rankCandidates(scan, networks, profiles);
  const candidate = ranked.find((c) => (backoff[c.key]?.until ?? 0) <= now);
  if (candidate) return { candidate, ranked };
  if (ranked.length === 0) return { ranked };
  return { ranked, waitMs: Math.max(0, ranked.reduce((wait, c) => Math.min(wait, (backoff[c.key]?.until ?? now) - now), Infinity)) };
};

/**
 * Records a failure of `key`: its back-off doubles from `policy.baseMs` up to
 * `policy.maxMs` (equal jitter from `random01`).
 * @returns a new table
 */
export const recordNetworkFailure = (
  backoff: BackoffTable,
  key: string,
  failure: NetworkFailure,
  now: number,
  random01: number,
  policy: NetworkBackoffPolicy = DEFAULT_NETWORK_BACKOFF,
): BackoffTable => {
  const failures = (backoff[key]?.failures ?? 0) + 1;
  return { ...backoff, [key]: { failures, until: now + rescanDelay(failures, random01, policy), last: failure } };
};

/** Forgets the back-off of `key` (it worked, or its credentials changed). @returns a new table */
export const clearNetworkBackoff = (backoff: BackoffTable, key: string): BackoffTable => {
  if (!(key in backoff)) return backoff;
  const next: Record<string, BackoffEntry> = { ...backoff };
  delete next[key];
  return next;
};

/**
 * The delay before the next scan after `emptyScans` scans in a row found nothing usable
 * (and the back-off of a network after that many failures, with its policy).
 */
export const rescanDelay = (emptyScans: number, random01: number, policy: NetworkBackoffPolicy = DEFAULT_RESCAN_BACKOFF): number => {
  // the "network" class reads only the network bounds
  return nextRetryDelay("network", emptyScans, random01, { networkBaseMs: policy.baseMs, networkMaxMs: policy.maxMs } as RetryPolicy);
};
