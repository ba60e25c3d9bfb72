/*
 * The network side of the state machine, as pure functions over NetState.
 *
 * - choose: picks a network from the last scan (network-selection.ts: stored
 *   private networks, then hotspot profiles), or says how long to wait before
 *   the next scan when nothing can be joined;
 * - joinRequest: what to ask the radio for (EAP-TTLS/PAP with the derived
 *   hotspot password, EAP-TLS, or the private network's password);
 * - failure: records a network's failure: its back-off, the report for the
 *   cloud's next `hello` (repeats folded), the outcome of a hand-off;
 * - online: a joined network works: clears its back-off, settles a hand-off
 *   (JOINED or FAILED); upgradeDelay: on a hotspot, when to look for a stored
 *   private network again.
 * No I/O: machine.ts turns the answers into scan, join and leave effects.
 */
import type { DeviceConfig } from "./config";
import { deriveHotspotPassword } from "./derive";
import { DEFAULT_ANONYMOUS_IDENTITY, type HotspotProfile } from "./hotspots";
import { candidateKey, clearNetworkBackoff, recordNetworkFailure, rescanDelay, selectNetwork, type BackoffTable, type Candidate, type PrivateNetwork } from "./network-selection";
import type { DigestPort, JoinRequest, NetworkFailure, ScanResult } from "./ports";
import { MAX_FAILURE_REPORTS, type NetworkFailureReport, type NetworkResult } from "./wire";

/** The network the manager is on (with a NetworkPort). */
export interface JoinedNetwork {
  kind: "private" | "hotspot";
  ssid: string;
  bssid: string;
  /** the hotspot profile's name */
  profile?: string;
}

/** The outcome of a private-network change, to be reported to the cloud (`network-result`). */
export interface PendingResult {
  seq: number;
  result: NetworkResult;
  failure?: NetworkFailure;
}

/** What the network side keeps between events. */
export interface NetState {
  readonly backoff: BackoffTable;
  /** the last scan (at most 64 access points) */
  readonly scan: readonly ScanResult[];
  /** scans in a row that found nothing to join */
  readonly empty: number;
  /** the network joined */
  readonly joined?: Candidate;
  /** the network being joined */
  readonly target?: Candidate;
  /** radio generation: a scan or join result of an older one is stale */
  readonly gen: number;
  /** failure reports not yet acknowledged by the cloud, oldest first */
  readonly reports: readonly NetworkFailureReport[];
  /** a private network the cloud handed off to, until its outcome is known */
  readonly handoff?: { readonly seq: number; readonly ssid: string; readonly failure?: NetworkFailure };
  /** an upgrade-check scan (while ONLINE on a hotspot) is out */
  readonly upgrading?: boolean;
}

/** The state at boot. */
export const NET_START: NetState = { backoff: {}, scan: [], empty: 0, gen: 0, reports: [] };

/** How a candidate shows in the manager's status. */
export function view(candidate: Candidate): JoinedNetwork {
  const base = { kind: candidate.kind, ssid: candidate.ssid, bssid: candidate.bssid };
  return candidate.kind === "hotspot" ? { ...base, profile: candidate.profile.name } : base;
}

/**
 * Records a failure of `candidate`: back-off, the report for the cloud, the hand-off outcome.
 * @returns the new state and the failure as the manager's status shows it (reason, detail)
 */
export function failure(net: NetState, candidate: Candidate, f: NetworkFailure, now: number, random01: number): { net: NetState; reason: string; detail: string } {
  const detail = f.detail?.slice(0, 64);
  const reports = net.reports.slice();
  const last = reports[reports.length - 1];
  if (last && last.kind === candidate.kind && last.ssid === candidate.ssid && last.reason === f.reason && last.detail === detail) {
    reports[reports.length - 1] = { ...last, n: Math.min(last.n + 1, 9999) };
  } else {
    reports.push({ kind: candidate.kind, ssid: candidate.ssid, reason: f.reason, ...(detail ? { detail } : {}), n: 1 });
  }
  const handoff = net.handoff && candidate.kind === "private" && candidate.ssid === net.handoff.ssid
    ? { ...net.handoff, failure: detail ? { reason: f.reason, detail } : { reason: f.reason } }
    : net.handoff;
  return {
    net: { ...net, backoff: recordNetworkFailure(net.backoff, candidate.key, f, now, random01), reports: reports.slice(-MAX_FAILURE_REPORTS), handoff },
    reason: f.reason,
    detail: `${candidate.kind} ${candidate.ssid}${detail ? `: ${detail}` : ""}`,
  };
}

/**
 * What to do with the last scan.
 * @param random01 - draws a random number in [0, 1) (each call a fresh one)
 * @returns the new state, the failures to note (in order), and either the candidate to join or the delay before the next scan
 */
export function choose(
  net: NetState,
  networks: readonly PrivateNetwork[],
  profiles: readonly HotspotProfile[],
  now: number,
  random01: () => number,
): { net: NetState; notes: [string, string][]; join?: Candidate; delay: number } {
  const notes: [string, string][] = [];
  const selection = selectNetwork(net.scan, networks, profiles, net.backoff, now);
  const handoff = net.handoff;
  if (handoff && !handoff.failure && !selection.ranked.some((c) => c.kind === "private" && c.ssid === handoff.ssid)) {
    const network = networks.find((n) => n.ssid === handoff.ssid);
    if (network) {
      const noted = failure(net, { kind: "private", key: candidateKey("private", network.ssid), ssid: network.ssid, bssid: "", rssi: -127, network }, { reason: "NETWORK-NOT-FOUND" }, now, random01());
      net = noted.net;
      notes.push([noted.reason, noted.detail]);
    }
  }
  if (selection.candidate) return { net: { ...net, empty: 0 }, notes, join: selection.candidate, delay: 0 };
  if (selection.ranked.length === 0) {
    const empty = net.empty + 1;
    notes.push(["NETWORK-NOT-FOUND", networks.length + profiles.length === 0 ? "no network configured" : "no known network in range"]);
    return { net: { ...net, empty }, notes, delay: rescanDelay(empty, random01()) };
  }
  return { net, notes, delay: Math.max(1000, selection.waitMs ?? 0) };
}

/**
 * What to ask the radio for: the private network's password, or the device's own credential at a hotspot.
 * @param secret - the login credential's secret, for the hotspot password (may throw KEY_UNAVAILABLE)
 */
export function joinRequest(config: DeviceConfig, digest: DigestPort, candidate: Candidate, secret: () => Uint8Array): JoinRequest {
  const base = { ssid: candidate.ssid, ...(candidate.bssid ? { bssid: candidate.bssid } : {}) };
  if (candidate.kind === "private") {
    const password = candidate.network.password;
    return password === "" ? { security: "open", ...base } : { security: "psk", ...base, password };
  }
  const server = { ca: candidate.profile.radius.ca, serverName: candidate.profile.radius.serverName };
  const identity = config.deviceId;
  if (config.option === "certificate") {
    return { security: "enterprise", ...base, method: "tls", identity, certificate: config.certificate, privateKey: config.privateKey, server };
  }
  return {
    security: "enterprise", ...base, method: "ttls-pap", identity,
    anonymousIdentity: candidate.profile.anonymousIdentity ?? DEFAULT_ANONYMOUS_IDENTITY,
    password: deriveHotspotPassword(digest, secret(), identity),
    server,
  };
}

/** ONLINE over the joined network: it works; settle a hand-off. @returns the new state and a result to report, if any */
export function online(net: NetState): { net: NetState; result?: PendingResult } {
  const joined = net.joined as Candidate;
  const next = { ...net, backoff: clearNetworkBackoff(net.backoff, joined.key) };
  const handoff = net.handoff;
  if (handoff && joined.kind === "private" && joined.ssid === handoff.ssid) return { net: { ...next, handoff: undefined }, result: { seq: handoff.seq, result: "JOINED" } };
  if (handoff?.failure) return { net: { ...next, handoff: undefined }, result: { seq: handoff.seq, result: "FAILED", failure: handoff.failure } };
  return { net: next };
}

/** On a hotspot with private networks stored: the delay before looking for one again (undefined: no check). */
export function upgradeDelay(net: NetState, networks: readonly PrivateNetwork[], now: number, leastMs: number): number | undefined {
  if (net.joined?.kind !== "hotspot" || networks.length === 0) return undefined;
  const untils = networks.map((n) => net.backoff[candidateKey("private", n.ssid)]?.until ?? now);
  return Math.max(leastMs, Math.min(...untils) - now);
}

/** A private network was added, changed or forgotten: clear its back-off and its reports. */
export function forgetFailures(net: NetState, ssid: string): NetState {
  return { ...net, backoff: clearNetworkBackoff(net.backoff, candidateKey("private", ssid)), reports: net.reports.filter((r) => !(r.kind === "private" && r.ssid === ssid)) };
}
