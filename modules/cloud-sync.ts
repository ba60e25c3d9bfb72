/*
 * The cloud sync, as pure functions over SyncState: what the device and the
 * cloud exchange once logged in.
 *
 * - holds what is persisted for networks (network-store.ts): the hotspot
 *   profile set, the private networks with their change sequence, the sealing
 *   key pair, and the wall clock's floor (wall-clock.ts);
 * - after a login the device says `hello`, takes the cloud's time, fetches a
 *   newer hotspot profile set (`config`) and sealed private network changes
 *   (`network`) and reports a hand-off's outcome (`network-result`);
 * - queues these background requests (`wants`) and the cloud's notices
 *   (including `rotate`); machine.ts sends them one at a time when the session
 *   is free, and turns what is to be stored into store effects.
 */
import type { DeviceConfig } from "./config";
import type { HotspotSet } from "./hotspots";
import type { PendingResult } from "./network-driver";
import type { PrivateNetwork } from "./network-selection";
import type { StoredNetworks } from "./network-store";
import type { CloudNotice, CloudResponse, DeviceRequest } from "./wire";
import { wallObserve, wallStart, type WallState } from "./wall-clock";

/** A background request the sync wants to send. */
export type Want = "hello" | "config" | "network" | "rotate" | "result";

/** What the sync keeps between events. */
export interface SyncState {
  readonly hotspots: HotspotSet;
  readonly networks: readonly PrivateNetwork[];
  /** the last private network change applied */
  readonly seq: number;
  /** the sealing key pair (public half computed at first use) */
  readonly key?: { readonly secret: Uint8Array; readonly public?: Uint8Array };
  /** hand-off results not yet acknowledged (at most 4) */
  readonly results: readonly PendingResult[];
  readonly wants: readonly Want[];
  readonly wall: WallState;
}

/** The sync at boot: the stored hotspot profiles (or the firmware's, when newer), private networks, sealing key and time floor. */
export function syncStart(
  config: DeviceConfig,
  stored: { hotspots?: HotspotSet; networks: StoredNetworks; sealKey?: Uint8Array; floor: number },
  nowMs: number,
): SyncState {
  const built = config.hotspots;
  const hotspots = stored.hotspots && (!built || stored.hotspots.rev >= built.rev) ? stored.hotspots : built ?? { rev: 0, profiles: [] };
  return {
    hotspots, networks: stored.networks.networks, seq: stored.networks.seq,
    ...(stored.sealKey ? { key: { secret: stored.sealKey } } : {}),
    results: [], wants: [],
    wall: wallStart(nowMs, Math.max(config.buildTime ?? 0, stored.floor)),
  };
}

/** Adds `what` to the wanted requests (once). */
export function want(sync: SyncState, what: Want): SyncState {
  return sync.wants.includes(what) ? sync : { ...sync, wants: [...sync.wants, what] };
}

/** Queues a hand-off result for the cloud (one per change, the newest four). */
export function queueResult(sync: SyncState, result: PendingResult): SyncState {
  return want({ ...sync, results: [...sync.results.filter((r) => r.seq !== result.seq), result].slice(-4) }, "result");
}

/** Drops the result of change `seq` (acknowledged or refused). */
export function dropResult(sync: SyncState, seq: number): SyncState {
  return { ...sync, results: sync.results.filter((r) => r.seq !== seq) };
}

/** A notice from the cloud: `rotate` always; the others only when synchronising. */
export function notice(sync: SyncState, message: CloudNotice, enabled: boolean): SyncState {
  return message.notice === "rotate" || enabled ? want(sync, message.notice) : sync;
}

/** True for the operations the sync sends: a refusal of one leaves the session as it is. */
export function owns(op: DeviceRequest["op"]): boolean {
  return op === "hello" || op === "config" || op === "network" || op === "network-result";
}

/** The `network-result` request for the oldest pending result. */
export function resultRequest(result: PendingResult, rid: string): DeviceRequest {
  const failure = result.failure;
  return {
    v: 1, rid, op: "network-result", seq: result.seq, result: result.result,
    ...(failure ? { reason: failure.reason, ...(failure.detail ? { detail: failure.detail } : {}) } : {}),
  };
}

/**
 * The `hello` response: takes the cloud's time, wants a newer profile set and a waiting network change.
 * @returns the new state and `floor`: the time floor to persist, when due
 */
export function hello(sync: SyncState, response: Extract<CloudResponse, { op: "hello"; ok: true }>, nowMs: number): { sync: SyncState; floor?: number } {
  const seen = wallObserve(sync.wall, response.time, nowMs);
  let next: SyncState = { ...sync, wall: seen.wall };
  if (response.rev > 0 && response.rev !== sync.hotspots.rev) next = want(next, "config");
  if (response.network) next = want(next, "network");
  return seen.save === undefined ? { sync: next } : { sync: next, floor: seen.save };
}
