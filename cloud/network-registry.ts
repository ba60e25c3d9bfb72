/*
 * The registry's network tables and columns: hotspot profiles (one versioned
 * set for the fleet) and, per device, its sealing public key, the profile
 * revision and network it reported, the pending sealed network change, the
 * outcome of the last change, and the network failures it reported.
 *
 * The tables and columns are schema step 4 (cloud/storage/schema.ts).
 * Private network credentials are never stored here in clear: only the blob
 * sealed to the device's key (modules/seal.ts), which the cloud cannot open.
 */
import type { HotspotProfile, HotspotSet } from "../modules/hotspots";
import type { NetworkFailureReport, NetworkResult } from "../modules/protocol";
import type { Registry } from "./registry";
import { SEAL_PUBLIC_KEY_BYTES } from "../modules/seal";
import { validateHotspotPolicy, type HotspotPolicy } from "./radius/policy";
import { NETWORK_DEVICE_COLUMNS } from "./storage/schema";

/** A hotspot profile as the admin sees it: with the walled-garden policy the hotspot enforces (never sent to devices). */
export type AdminHotspotProfile = HotspotProfile & { policy?: HotspotPolicy };

/** Where a profile's policy applies: its SSID (matched against the Called-Station-Id of an Access-Request). */
export interface ProfilePolicy {
  name: string;
  ssid?: string;
  policy: HotspotPolicy;
}

/** Columns the network features added to `devices` (schema step 4). */
export { NETWORK_DEVICE_COLUMNS };

/** The network columns of a device row (absent on rows read before the migration). */
export interface NetworkColumns {
  seal_key: Buffer | null;
  config_rev: number | null;
  net_kind: string | null;
  net_ssid: string | null;
  net_seq: number;
  net_sealed: Buffer | null;
  net_sealed_seq: number | null;
  net_action: string | null;
  net_result: string | null;
  net_result_seq: number | null;
  net_result_reason: string | null;
  net_result_detail: string | null;
  net_result_at: number | null;
  net_failures: string | null;
  net_failures_at: number | null;
}

/** What the admin sees of a device's networks (never a password: the cloud holds none). */
export interface DeviceNetworkView {
  /** the device sent its sealing key (network changes can be sealed to it) */
  sealingKey: boolean;
  /** hotspot profile revision the device reported */
  configRev: number | null;
  /** the network the device reported being on at its last hello */
  on: { kind: string; ssid: string } | null;
  /** a change waiting for the device */
  pendingChange: { seq: number; action: string } | null;
  /** the outcome of the last change */
  lastResult: { seq: number; result: string; reason: string | null; detail: string | null; at: string | null } | null;
  /** network failures the device reported at its last hello that had any */
  failures: NetworkFailureReport[];
  failuresAt: string | null;
}

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

/** The network part of a device view. */
export function deviceNetworkView(row: Partial<NetworkColumns>): DeviceNetworkView {
  let failures: NetworkFailureReport[] = [];
  try {
    failures = row.net_failures ? (JSON.parse(row.net_failures) as NetworkFailureReport[]) : [];
  } catch {
    failures = [];
  }
  return {
    sealingKey: !!row.seal_key,
    configRev: row.config_rev ?? null,
    on: row.net_kind && row.net_ssid ? { kind: row.net_kind, ssid: row.net_ssid } : null,
    pendingChange: row.net_sealed && row.net_sealed_seq ? { seq: row.net_sealed_seq, action: row.net_action ?? "set" } : null,
    lastResult: row.net_result && row.net_result_seq
      ? { seq: row.net_result_seq, result: row.net_result, reason: row.net_result_reason ?? null, detail: row.net_result_detail ?? null, at: iso(row.net_result_at) }
      : null,
    failures,
    failuresAt: iso(row.net_failures_at),
  };
}

const COLUMN_LIST = NETWORK_DEVICE_COLUMNS.map(([name]) => name).join(", ");

/** Queries and updates of the network tables, over an open registry. */
export class NetworkRegistry {
  constructor(readonly registry: Registry) {}

  /** The device's network columns, or undefined for an unknown device. */
  async columns(id: string): Promise<NetworkColumns | undefined> {
    return this.registry.storage.get<NetworkColumns>(`SELECT ${COLUMN_LIST} FROM devices WHERE id = ?`, [id]);
  }

  /** The same, read to be changed in the current transaction (the row is locked on PostgreSQL). */
  async #locked(id: string): Promise<NetworkColumns | undefined> {
    return this.registry.storage.get<NetworkColumns>(`SELECT ${COLUMN_LIST} FROM devices WHERE id = ?${this.registry.storage.forUpdate}`, [id]);
  }

  /** The current hotspot profile set (revision 0 and no profiles when none was ever set). */
  async hotspotSet(): Promise<HotspotSet> {
    const revision = (await this.registry.storage.get("SELECT rev FROM hotspot_revision WHERE id = 1")) as { rev: number } | undefined;
    const rows = (await this.registry.storage.all("SELECT * FROM hotspot_profiles ORDER BY position")) as {
      name: string; ssid: string | null; roaming_consortium: string | null; anonymous_identity: string | null; server_name: string; ca_pem: string;
    }[];
    return {
      rev: revision?.rev ?? 0,
      profiles: rows.map((r) => {
        const profile: HotspotProfile = { name: r.name, radius: { serverName: r.server_name, ca: r.ca_pem } };
        if (r.ssid !== null) profile.ssid = r.ssid;
        if (r.roaming_consortium !== null) profile.roamingConsortium = r.roaming_consortium.split(",");
        if (r.anonymous_identity !== null) profile.anonymousIdentity = r.anonymous_identity;
        return profile;
      }),
    };
  }

  /** The policies of the current profiles (profiles without one are left out; a stored policy that no longer validates too). */
  async hotspotPolicies(): Promise<ProfilePolicy[]> {
    const rows = (await this.registry.storage.all("SELECT name, ssid, policy FROM hotspot_profiles WHERE policy IS NOT NULL ORDER BY position")) as {
      name: string; ssid: string | null; policy: string;
    }[];
    const out: ProfilePolicy[] = [];
    for (const r of rows) {
      try {
        out.push({ name: r.name, ...(r.ssid !== null ? { ssid: r.ssid } : {}), policy: validateHotspotPolicy(JSON.parse(r.policy), "policy") });
      } catch {
        // written by this code only; a row that does not parse carries no policy
      }
    }
    return out;
  }

  /** The profile set with each profile's policy (the admin's view). */
  async adminHotspotSet(): Promise<{ rev: number; profiles: AdminHotspotProfile[] }> {
    const set = await this.hotspotSet();
    const policies = new Map((await this.hotspotPolicies()).map((p) => [p.name, p.policy]));
    return { rev: set.rev, profiles: set.profiles.map((p) => (policies.has(p.name) ? { ...p, policy: policies.get(p.name)! } : p)) };
  }

  /**
   * Replaces the profile set and bumps its revision, in one transaction (audited). Returns the new revision.
   * @param policies - per profile (same index), its validated policy or undefined
   */
  async replaceHotspots(profiles: readonly HotspotProfile[], actor: string, policies: readonly (HotspotPolicy | undefined)[] = []): Promise<number> {
    return this.registry.tx(async () => {
      // one writer at a time: the revision row is locked (PostgreSQL; SQLite's transaction holds the write lock)
      await this.registry.storage.get(`SELECT rev FROM hotspot_revision WHERE id = 1${this.registry.storage.forUpdate}`);
      const rev = (await this.hotspotSet()).rev + 1;
      await this.registry.storage.run("DELETE FROM hotspot_profiles");
      const insert = "INSERT INTO hotspot_profiles (position, name, ssid, roaming_consortium, anonymous_identity, server_name, ca_pem, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
      for (const [i, p] of profiles.entries()) {
        const policy = policies[i] ? JSON.stringify(policies[i]) : null;
        await this.registry.storage.run(insert, [i, p.name, p.ssid ?? null, p.roamingConsortium?.join(",") ?? null, p.anonymousIdentity ?? null, p.radius.serverName, p.radius.ca, policy]);
      }
      await this.registry.storage.run("INSERT INTO hotspot_revision (id, rev, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET rev = excluded.rev, updated_at = excluded.updated_at", [rev, this.registry.now()]);
      await this.registry.audit(actor, "hotspots.set", null, `rev=${rev} profiles=${profiles.map((p) => p.name).join(",")}`);
      return rev;
    });
  }

  /**
   * Stores what a device said in `hello`. A new sealing key voids a pending
   * change sealed to the old one (the device can no longer open it): the change
   * is dropped and its outcome recorded as UNREADABLE for the operator.
   * A format-3 (P-256) key, once registered, is pinned (trust on first use, as
   * SSH host keys): a hello with another key keeps the registered one, is
   * audited (`network.key-refused`) and returns false, because whoever holds a
   * leaked secret could otherwise put its own key in and receive the next
   * rotation (docs/protocol.md 9.5). The operator clears the pin
   * (resetSealingKey) when a device really lost its key. A format-2 key of
   * older firmware is not pinned (those devices get no sealed rotation) and may
   * be replaced by a format-3 one (a firmware update).
   * @returns false when the key was refused
   */
  async storeHello(id: string, hello: { key: Uint8Array; rev: number; net?: { kind: string; ssid: string }; failures?: NetworkFailureReport[] }): Promise<boolean> {
    return this.registry.tx(async () => {
      const row = await this.#locked(id);
      if (!row) return false;
      const key = Buffer.from(hello.key);
      const pinned = row.seal_key !== null && row.seal_key.length === SEAL_PUBLIC_KEY_BYTES;
      if (pinned && !key.equals(row.seal_key as Buffer)) {
        await this.registry.audit("mqtt", "network.key-refused", id, "hello with another sealing key: the registered key stays (operator: reset the sealing key)");
        await this.registry.storage.run("UPDATE devices SET config_rev = ?, net_kind = ?, net_ssid = ? WHERE id = ?", [hello.rev, hello.net?.kind ?? null, hello.net?.ssid ?? null, id]);
        if (hello.failures?.length) {
          await this.registry.storage.run("UPDATE devices SET net_failures = ?, net_failures_at = ? WHERE id = ?", [JSON.stringify(hello.failures), this.registry.now(), id]);
        }
        return false;
      }
      if (row.seal_key && !key.equals(row.seal_key) && row.net_sealed_seq !== null) {
        await this.registry.storage.run(`UPDATE devices SET net_sealed = NULL, net_sealed_seq = NULL, net_action = NULL, net_result = 'UNREADABLE', net_result_seq = ?,
             net_result_reason = NULL, net_result_detail = 'the device changed its sealing key; set the network again', net_result_at = ? WHERE id = ?`, [row.net_sealed_seq, this.registry.now(), id]);
        await this.registry.audit("mqtt", "network.voided", id, `seq=${row.net_sealed_seq}: sealing key changed`);
      }
      await this.registry.storage.run("UPDATE devices SET seal_key = ?, config_rev = ?, net_kind = ?, net_ssid = ? WHERE id = ?", [key, hello.rev, hello.net?.kind ?? null, hello.net?.ssid ?? null, id]);
      if (hello.failures?.length) {
        await this.registry.storage.run("UPDATE devices SET net_failures = ?, net_failures_at = ? WHERE id = ?", [JSON.stringify(hello.failures), this.registry.now(), id]);
      }
      return true;
    });
  }

  /**
   * Forgets a device's sealing key (its next hello registers a new one), for a
   * device that really lost its key (flash erased). A pending change sealed to
   * the old key is voided (UNREADABLE). Audited.
   */
  async resetSealingKey(id: string, actor: string): Promise<void> {
    await this.registry.tx(async () => {
      const row = await this.#locked(id);
      if (!row) return;
      await this.registry.storage.run("UPDATE devices SET seal_key = NULL WHERE id = ?", [id]);
      if (row.net_sealed_seq !== null) {
        await this.registry.storage.run(`UPDATE devices SET net_sealed = NULL, net_sealed_seq = NULL, net_action = NULL, net_result = 'UNREADABLE', net_result_seq = ?,
             net_result_reason = NULL, net_result_detail = 'the sealing key was reset; set the network again', net_result_at = ? WHERE id = ?`, [row.net_sealed_seq, this.registry.now(), id]);
      }
      await this.registry.audit(actor, "network.key-reset", id, row.seal_key ? "sealing key forgotten" : "no key registered");
    });
  }

  /** Stores a sealed change as the device's pending one (replacing any), with the next sequence number. Returns it. */
  async storeSealedChange(id: string, action: "set" | "forget", seal: (seq: number) => Uint8Array, actor: string): Promise<number> {
    return this.registry.tx(async () => {
      const row = await this.#locked(id);
      if (!row) throw new Error(`no device ${id}`);
      const seq = row.net_seq + 1;
      await this.registry.storage.run("UPDATE devices SET net_seq = ?, net_sealed = ?, net_sealed_seq = ?, net_action = ? WHERE id = ?", [seq, Buffer.from(seal(seq)), seq, action, id]);
      await this.registry.audit(actor, `network.${action}`, id, `seq=${seq}`);
      return seq;
    });
  }

  /** Records the outcome of change `seq`; a pending change with that seq is delivered and dropped. */
  async storeResult(id: string, result: { seq: number; result: NetworkResult; reason?: string; detail?: string }): Promise<void> {
    await this.registry.tx(async () => {
      const row = await this.#locked(id);
      if (!row || result.seq > row.net_seq) return;
      if (row.net_sealed_seq === result.seq) {
        await this.registry.storage.run("UPDATE devices SET net_sealed = NULL, net_sealed_seq = NULL, net_action = NULL WHERE id = ?", [id]);
      }
      if (row.net_result_seq !== null && result.seq < row.net_result_seq) return;
      await this.registry.storage.run("UPDATE devices SET net_result = ?, net_result_seq = ?, net_result_reason = ?, net_result_detail = ?, net_result_at = ? WHERE id = ?", [result.result, result.seq, result.reason ?? null, result.detail ?? null, this.registry.now(), id]);
      await this.registry.audit("mqtt", "network.result", id, `seq=${result.seq} ${result.result}${result.reason ? ` ${result.reason}` : ""}`);
    });
  }
}
