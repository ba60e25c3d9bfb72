/*
 * Networks in the cloud: the device-facing handler of `hello`, `config`,
 * `network` and `network-result` (sans I/O, called by issuance.ts for the
 * session's request topic), and the admin operations (hotspot profile set,
 * a device's private networks) used by the CLI and the HTTP API.
 *
 * A private network's password reaches the cloud only in an admin call; it is
 * sealed to the device's X25519 key at once (modules/seal.ts) and only the
 * sealed blob is stored, so neither the registry nor the broker ever holds
 * it in clear. The audit log records the change's sequence number, never the
 * SSID or the password.
 */
import { MAX_HOTSPOT_PROFILES, validateHotspotProfiles } from "../modules/hotspots";
import { isWcmError } from "../modules/errors";
import {
  checkNetworkPassword, encodeNetworkChange, MAX_NETWORK_PRIORITY,
  type CloudResponse, type DeviceRequest,
} from "../modules/protocol";
import { checkSsid } from "../modules/hotspots";
import { deviceId, invalid, object } from "./admin-input";
import { sealForDevice } from "./device-seal";
import { CloudError } from "./errors";
import type { Session } from "./auth/authenticator";
import { NetworkRegistry, type AdminHotspotProfile } from "./network-registry";
import { validateHotspotPolicy, type HotspotPolicy } from "./radius/policy";
import type { DeviceView, Registry } from "./registry";

type NetworkRequest = Extract<DeviceRequest, { op: "hello" | "config" | "network" | "network-result" }>;

/** True for the requests DeviceNetworkService answers. */
export function isNetworkRequest(request: DeviceRequest): request is NetworkRequest {
  return request.op === "hello" || request.op === "config" || request.op === "network" || request.op === "network-result";
}

/** Answers a device's network requests. */
export class DeviceNetworkService {
  readonly net: NetworkRegistry;

  constructor(readonly registry: Registry) {
    this.net = new NetworkRegistry(registry);
  }

  /** One request from an authenticated session; always one response. */
  async handle(session: Session, request: NetworkRequest): Promise<CloudResponse> {
    const id = session.deviceId;
    const rid = request.rid;
    switch (request.op) {
      case "hello": {
        // a hello with a key other than the pinned one is still answered (time, profiles); the key is not taken
        await this.net.storeHello(id, request);
        const columns = await this.net.columns(id);
        return {
          v: 1, rid, op: "hello", ok: true, time: Math.floor(this.registry.now() / 1000),
          rev: (await this.net.hotspotSet()).rev, network: !!columns?.net_sealed,
        };
      }
      case "config": {
        const set = await this.net.hotspotSet();
        return { v: 1, rid, op: "config", ok: true, rev: set.rev, hotspots: set.profiles };
      }
      case "network": {
        const columns = await this.net.columns(id);
        if (!columns?.net_sealed || columns.net_sealed_seq === null) return { v: 1, rid, op: "network", ok: false, reason: "NOTHING_PENDING" };
        return { v: 1, rid, op: "network", ok: true, seq: columns.net_sealed_seq, sealed: Uint8Array.from(columns.net_sealed) };
      }
      case "network-result":
        await this.net.storeResult(id, request);
        return { v: 1, rid, op: "network-result", ok: true, seq: request.seq };
    }
  }
}

/** Callbacks the running cloud installs so that live devices hear of changes. */
export interface NetworkHooks {
  /** the hotspot profile set changed: tell every live device */
  hotspotsChanged?(rev: number): void;
  /** a sealed network change waits for the device */
  networkChanged?(deviceId: string): void;
}

/** Runs a core validator, turning its WcmError into INVALID_INPUT naming the field. */
function core<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (isWcmError(error)) invalid(error.field ?? "body", error.message.replace(/^[A-Z_]+: (?:[^:]+: )?/, ""));
    throw error;
  }
}

/** Admin operations on hotspot profiles and devices' private networks. */
export class NetworkServices {
  readonly net: NetworkRegistry;

  /**
   * @param registry - the open registry
   * @param actor - for the audit log
   * @param hooks - installed by startCloud to notify live devices
   */
  constructor(readonly registry: Registry, readonly actor = "admin", readonly hooks: NetworkHooks = {}) {
    this.net = new NetworkRegistry(registry);
  }

  /** The same services acting as another actor (audit log). */
  as(actor: string): NetworkServices {
    return new NetworkServices(this.registry, actor, this.hooks);
  }

  /** The hotspot profile set with its revision, each profile with its walled-garden policy (when it has one). */
  async listHotspotProfiles(): Promise<{ rev: number; profiles: AdminHotspotProfile[] }> {
    return await this.net.adminHotspotSet();
  }

  /**
   * Replaces the hotspot profile set (revision + 1); live devices are told
   * with a `config` notice, the others learn it at their next hello.
   * A profile may carry `policy` (cloud/radius/policy.ts: allowed domains,
   * bandwidth, session timeout), which the RADIUS server puts in the
   * Access-Accept of a device on that profile's SSID; devices never receive it.
   * @throws INVALID_INPUT naming the first bad field (bounds: modules/hotspots.ts, cloud/radius/policy.ts); nothing is stored then
   * @example await services.setHotspotProfiles({ profiles: [{ name: "zipkey", ssid: "ZipKey", radius: { serverName: "radius.localhost", ca }, policy: { domains: ["cloud.example.com"], sessionTimeoutS: 3600 } }] })
   */
  async setHotspotProfiles(input: { profiles: AdminHotspotProfile[] }): Promise<{ rev: number; profiles: AdminHotspotProfile[] }> {
    const body = object(input);
    const policies: (HotspotPolicy | undefined)[] = [];
    const stripped = Array.isArray(body.profiles) && body.profiles.length <= MAX_HOTSPOT_PROFILES
      ? (body.profiles as unknown[]).map((p, i) => {
        if (typeof p !== "object" || p === null || Array.isArray(p) || !("policy" in p)) {
          policies.push(undefined);
          return p;
        }
        const { policy, ...rest } = p as Record<string, unknown>;
        policies.push(validateHotspotPolicy(policy, `profiles[${i}].policy`));
        return rest;
      })
      : body.profiles;
    const profiles = core(() => validateHotspotProfiles(stripped, "profiles", "MESSAGE_INVALID"));
    const rev = await this.net.replaceHotspots(profiles, this.actor, policies);
    this.hooks.hotspotsChanged?.(rev);
    return await this.net.adminHotspotSet();
  }

  /**
   * Forgets a device's pinned sealing key, for a device that really lost it
   * (flash erased): its next hello registers a new one. Only for that case: a
   * device that still has its key never needs it, and while the pin is cleared
   * any holder of the device's secret could register a key of its own.
   * A pending change sealed to the old key is voided. Audited.
   * @throws DEVICE_NOT_FOUND, INVALID_INPUT
   */
  async resetSealingKey(input: { deviceId: string }): Promise<DeviceView> {
    const id = deviceId(object(input).deviceId);
    const row = await this.registry.device(id);
    if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
    await this.net.resetSealingKey(id, this.actor);
    return this.registry.view((await this.registry.device(id))!);
  }

  async #sealable(id: string): Promise<{ key: Uint8Array; view: DeviceView }> {
    const row = await this.registry.device(id);
    if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
    if (row.revoked) throw new CloudError("DEVICE_REVOKED", `device ${id} is revoked`, { field: "deviceId" });
    const columns = await this.net.columns(id);
    if (!columns?.seal_key) invalid("deviceId", "the device has not sent its sealing key yet (it does at its first connection)");
    return { key: Uint8Array.from(columns.seal_key), view: this.registry.view(row) };
  }

  /**
   * Hands a private network to a device: sealed to the device's key, stored
   * as its pending change (replacing an undelivered one), and announced with a
   * `network` notice. The device reports JOINED or FAILED (device status).
   * @param input.password - "" for an open network, 8-63 printable ASCII or 64 hex digits
   * @param input.priority - 0..100, higher first (default 50)
   * @throws DEVICE_NOT_FOUND, DEVICE_REVOKED, INVALID_INPUT
   */
  async setDeviceNetwork(input: { deviceId: string; ssid: string; password: string; priority?: number }): Promise<DeviceView> {
    const body = object(input);
    const id = deviceId(body.deviceId);
    const ssid = core(() => checkSsid(body.ssid, "ssid", "MESSAGE_INVALID"));
    const password = core(() => checkNetworkPassword(body.password, "password", "MESSAGE_INVALID"));
    const priority = body.priority === undefined ? 50 : body.priority;
    if (typeof priority !== "number" || !Number.isInteger(priority) || priority < 0 || priority > MAX_NETWORK_PRIORITY) {
      invalid("priority", `must be an integer 0..${MAX_NETWORK_PRIORITY}`);
    }
    const { key } = await this.#sealable(id);
    await this.net.storeSealedChange(id, "set", (seq) =>
      sealForDevice(key, id, encodeNetworkChange({ seq, action: "set", ssid, password, priority }), "network"), this.actor);
    this.hooks.networkChanged?.(id);
    return this.registry.view((await this.registry.device(id))!);
  }

  /** Tells a device to forget a private network (sealed like a set). @throws DEVICE_NOT_FOUND, DEVICE_REVOKED, INVALID_INPUT */
  async forgetDeviceNetwork(input: { deviceId: string; ssid: string }): Promise<DeviceView> {
    const body = object(input);
    const id = deviceId(body.deviceId);
    const ssid = core(() => checkSsid(body.ssid, "ssid", "MESSAGE_INVALID"));
    const { key } = await this.#sealable(id);
    await this.net.storeSealedChange(id, "forget", (seq) =>
      sealForDevice(key, id, encodeNetworkChange({ seq, action: "forget", ssid }), "network"), this.actor);
    this.hooks.networkChanged?.(id);
    return this.registry.view((await this.registry.device(id))!);
  }
}
