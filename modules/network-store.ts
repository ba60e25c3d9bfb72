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
import { fromBase64Url, toBase64Url, utf8Decode, utf8Encode } from "./bytes";
import { WcmError } from "./errors";
import { checkHotspotRev, validateHotspotProfiles, hotspotProfilesJson, type HotspotSet } from "./hotspots";
import type { PrivateNetwork } from "./network-selection";
import type { DigestPort, KeyValuePort } from "./ports";
import { checkNetworkPassword, MAX_NETWORK_PRIORITY } from "./wire";
import { checkSsid } from "./hotspots";
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

function parse(payload: Uint8Array, deviceId: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(utf8Decode(payload)) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    const object = value as Record<string, unknown>;
    return object.id === deviceId ? object : undefined;
  } catch {
    return undefined;
  }
}

/** Durable network state of one device. */
export class NetworkStore {
  readonly #hotspots: RecordStore;
  readonly #networks: RecordStore;
  readonly #key: RecordStore;
  readonly #floor: RecordStore;
  readonly #deviceId: string;

  constructor(kv: KeyValuePort, digest: DigestPort, deviceId: string) {
    this.#hotspots = new RecordStore(kv, digest, "hotspots");
    this.#networks = new RecordStore(kv, digest, "nets");
    this.#key = new RecordStore(kv, digest, "netkey");
    this.#floor = new RecordStore(kv, digest, "tfloor");
    this.#deviceId = deviceId;
  }

  /** The stored hotspot profile set, or undefined (none valid). */
  loadHotspots(): HotspotSet | undefined {
    const record = this.#hotspots.read();
    const object = record && parse(record.payload, this.#deviceId);
    if (!object) return undefined;
    try {
      return { rev: checkHotspotRev(object.rev, "rev", "STATE_INVALID"), profiles: validateHotspotProfiles(object.p, "p", "STATE_INVALID") };
    } catch {
      return undefined;
    }
  }

  /** Stores a profile set crash-safely. @throws WcmError STORE_FAILED / STORE_LIMIT */
  saveHotspots(set: HotspotSet): void {
    this.#hotspots.write(utf8Encode(JSON.stringify({ id: this.#deviceId, rev: set.rev, p: hotspotProfilesJson(set.profiles) })));
  }

  /** The stored private networks (none: an empty list at seq 0). */
  loadNetworks(): StoredNetworks {
    const record = this.#networks.read();
    const object = record && parse(record.payload, this.#deviceId);
    if (!object || !Array.isArray(object.n) || object.n.length > MAX_PRIVATE_NETWORKS) return { networks: [], seq: 0 };
    try {
      const seq = checkHotspotRev(object.seq, "seq", "STATE_INVALID");
      const networks = (object.n as unknown[]).map((item) => {
        const n = item as Record<string, unknown>;
        const priority = n.r;
        if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > MAX_NETWORK_PRIORITY) {
          throw new WcmError("STATE_INVALID", "bad priority", "r");
        }
        return { ssid: checkSsid(n.s, "s", "STATE_INVALID"), password: checkNetworkPassword(n.p, "p", "CONFIG_INVALID"), priority };
      });
      return { networks, seq };
    } catch {
      return { networks: [], seq: 0 };
    }
  }

  /** Stores the private networks and the change sequence crash-safely. @throws WcmError STORE_FAILED / STORE_LIMIT */
  saveNetworks(stored: StoredNetworks): void {
    if (stored.networks.length > MAX_PRIVATE_NETWORKS) throw new WcmError("STORE_LIMIT", `at most ${MAX_PRIVATE_NETWORKS} networks`, "networks");
    const n = stored.networks.map((network) => ({ s: network.ssid, p: network.password, r: network.priority }));
    this.#networks.write(utf8Encode(JSON.stringify({ id: this.#deviceId, seq: stored.seq, n })));
  }

  /** The P-256 sealing secret key (32 bytes), or undefined (none, or an older firmware's X25519 key). */
  loadSealKey(): Uint8Array | undefined {
    const record = this.#key.read();
    const object = record && parse(record.payload, this.#deviceId);
    if (!object || typeof object.k !== "string" || object.c !== "p256") return undefined;
    try {
      const key = fromBase64Url(object.k);
      return isSealSecretKey(key) ? key : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stores the sealing secret key crash-safely. @throws WcmError STORE_FAILED */
  saveSealKey(secretKey: Uint8Array): void {
    if (!isSealSecretKey(secretKey)) throw new WcmError("STATE_INVALID", "not a P-256 secret key", "secretKey");
    this.#key.write(utf8Encode(JSON.stringify({ id: this.#deviceId, c: "p256", k: toBase64Url(secretKey) })));
  }

  /** The persisted time floor, Unix seconds (0 when none). */
  loadTimeFloor(): number {
    const record = this.#floor.read();
    const object = record && parse(record.payload, this.#deviceId);
    const t = object?.t;
    return typeof t === "number" && Number.isInteger(t) && t >= 0 && t < 2 ** 40 ? t : 0;
  }

  /** Persists the time floor. @throws WcmError STORE_FAILED */
  saveTimeFloor(seconds: number): void {
    this.#floor.write(utf8Encode(JSON.stringify({ id: this.#deviceId, t: Math.floor(seconds) })));
  }
}

/**
 * The list after applying a change: `set` replaces the network with the same
 * SSID or adds it (when the list is full, the lowest-priority one, the oldest
 * among equals, makes room); `forget` removes it.
 */
export function applyNetworkChange(
  networks: readonly PrivateNetwork[],
  change: { action: "set"; ssid: string; password: string; priority: number } | { action: "forget"; ssid: string },
): PrivateNetwork[] {
  const rest = networks.filter((n) => n.ssid !== change.ssid);
  if (change.action === "forget") return rest;
  while (rest.length >= MAX_PRIVATE_NETWORKS) {
    let lowest = 0;
    for (let i = 1; i < rest.length; i++) if (rest[i].priority < rest[lowest].priority) lowest = i;
    rest.splice(lowest, 1);
  }
  return [...rest, { ssid: change.ssid, password: change.password, priority: change.priority }];
}
