/*
 * The device's durable network state, each on its own crash-safe record
 * (record-store.ts: two slots, generation, checksum, so a power cut during any
 * write leaves the previous value readable):
 *   "hotspots"  the newest hotspot profile set the cloud sent (with its revision)
 *   "nets"      the private networks the owner handed over, and the sequence
 *               number of the last network change applied
 *   "netkey"    the P-256 secret key that network changes are sealed to (`c`: "p256";
 *               a record without it is an older firmware's X25519 key, not used)
 *   "tfloor"    the wall-time floor (Unix seconds)
 * Every record carries the device id; one written for another id is ignored.
 * Passwords are stored in clear in the payload, as the issued secret is:
 * protecting flash from readout is the host's job (ESP32 flash encryption).
 */
import { toBase64Url } from "./bytes";
import { base64url, check, fail, list, valid } from "./check";
import { checkHotspotRev, checkSsid, validateHotspotProfiles, type HotspotSet } from "./hotspots";
import type { PrivateNetwork } from "./network-selection";
import type { DigestPort, KeyValuePort } from "./ports";
import { checkNetworkPassword, MAX_NETWORK_PRIORITY } from "./wire";
import { RecordStore } from "./record-store";
import { isSealSecretKey } from "./seal";

/** Most private networks a device keeps. */
export const MAX_PRIVATE_NETWORKS = 4;

/** The private networks and the last change applied. */
export interface StoredNetworks {
  networks: PrivateNetwork[];
  /** sequence number of the last network change applied (0: none) */
  seq: number;
}

/** The stored private networks, each `{ s: ssid, p: password, r: priority }`. */
const NETWORKS = list((n, field, code) => ({ ssid: checkSsid(n.s, field, code), password: checkNetworkPassword(n.p, field, code), priority: check(n.r, [0, MAX_NETWORK_PRIORITY], field, code) }), 0, MAX_PRIVATE_NETWORKS);

/** Durable network state of one device. */
export class NetworkStore {
  declare private readonly hotspots: RecordStore;
  declare private readonly networks: RecordStore;
  declare private readonly key: RecordStore;
  declare private readonly floor: RecordStore;
  declare private readonly deviceId: string;

  constructor(kv: KeyValuePort, digest: DigestPort, deviceId: string) {
    this.hotspots = new RecordStore(kv, digest, "hotspots");
    this.networks = new RecordStore(kv, digest, "nets");
    this.key = new RecordStore(kv, digest, "netkey");
    this.floor = new RecordStore(kv, digest, "tfloor");
    this.deviceId = deviceId;
  }

  /** The stored hotspot profile set, or undefined (none valid). */
  loadHotspots(): HotspotSet | undefined {
    return valid(this.hotspots.load(this.deviceId), (o, field, code) => ({ rev: checkHotspotRev(o.rev, field, code), profiles: validateHotspotProfiles(o.p, field, code) }), undefined);
  }

  /** Stores a profile set as validated (validateHotspotProfiles's output) crash-safely. @throws WcmError STORE_FAILED / STORE_LIMIT */
  saveHotspots(set: HotspotSet): void {
    this.hotspots.save(this.deviceId, { rev: set.rev, p: set.profiles });
  }

  /** The stored private networks (none: an empty list at seq 0). */
  loadNetworks(): StoredNetworks {
    return valid(this.networks.load(this.deviceId), (o, field, code) => ({ networks: NETWORKS(o.n, field, code), seq: checkHotspotRev(o.seq, field, code) }), { networks: [], seq: 0 });
  }

  /** Stores the private networks and the change sequence crash-safely. @throws WcmError STORE_FAILED / STORE_LIMIT */
  saveNetworks(stored: StoredNetworks): void {
    if (stored.networks.length > MAX_PRIVATE_NETWORKS) fail("STORE_LIMIT", "at most " + MAX_PRIVATE_NETWORKS + " networks", "networks");
    this.networks.save(this.deviceId, { seq: stored.seq, n: stored.networks.map((network) => ({ s: network.ssid, p: network.password, r: network.priority })) });
  }

  /** The P-256 sealing secret key (32 bytes), or undefined (none, or an older firmware's X25519 key). */
  loadSealKey(): Uint8Array | undefined {
    const key = valid(this.key.load(this.deviceId), (o, field, code) => o?.c === "p256" && base64url(32)(o.k, field, code), undefined);
    return key && isSealSecretKey(key) ? key : undefined;
  }

  /** Stores the sealing secret key crash-safely. @throws WcmError STORE_FAILED */
  saveSealKey(secretKey: Uint8Array): void {
    if (!isSealSecretKey(secretKey)) fail("STATE_INVALID", "not a P-256 secret key", "secretKey");
    this.key.save(this.deviceId, { c: "p256", k: toBase64Url(secretKey) });
  }

  /** The persisted time floor, Unix seconds (0 when none). */
  loadTimeFloor(): number {
    return valid(this.floor.load(this.deviceId)?.t, [0, 2 ** 40 - 1], 0);
  }

  /** Persists the time floor. @throws WcmError STORE_FAILED */
  saveTimeFloor(seconds: number): void {
    this.floor.save(this.deviceId, { t: Math.floor(seconds) });
  }
}

/**
 * The list after applying a change: `set` replaces the network with the same
 * SSID or adds it (when the list is full, the lowest-priority one, the oldest
 * among equals, makes room); `forget` removes it.
 */
export const applyNetworkChange = (
  networks: readonly PrivateNetwork[],
  change: { action: "set"; ssid: string; password: string; priority: number } | { action: "forget"; ssid: string },
): PrivateNetwork[] => {
  const rest = networks.filter((n) => n.ssid !== change.ssid);
  if (change.action === "set") {
    while (rest.length >= MAX_PRIVATE_NETWORKS) {
      let lowest = 0;
      for (let i = 1; i < rest.length; i++) if (rest[i].priority < rest[lowest].priority) lowest = i;
      rest.splice(lowest, 1);
    }
    rest.push({ ssid: change.ssid, password: change.password, priority: change.priority });
  }
  return rest;
};
