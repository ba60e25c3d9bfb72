/*
 * The HotspotStore over the registry's storage (cloud/storage: SQLite or
 * PostgreSQL): which device is on which NAS, its session start, last interim
 * and stop with its cause, the last authentication and the last Disconnect
 * outcome survive a restart of the cloud, and on PostgreSQL every node sees
 * the sessions any node recorded (a revocation on one node disconnects a
 * session whose accounting went to another).
 *
 * Two tables (both backends' schemas): `hotspot_devices` (one row per device:
 * last_auth, session, last_disconnect as JSON) and `hotspot_live` (one row per
 * live session, keyed by NAS client and Acct-Session-Id). An accounting update
 * reads both rows and writes them in one transaction (rows locked on
 * PostgreSQL), with the idempotency rules of applyAccounting(). Bounded like
 * the in-memory store: at most `maxLive` live rows (the least recently
 * updated go) and `maxDevices` device rows (checked every 1,000 writes);
 * a live session with no update for `staleMs` counts as gone and is deleted.
 * JSON read back is size-bounded and parsed defensively.
 */
import type { Storage } from "../storage/store";
import {
  applyAccounting, type AccountingEffect, type AccountingUpdate, type DisconnectRecord, type HotspotAuth, type HotspotSession,
  type HotspotStatus, type HotspotStore, type MemoryHotspotStoreOptions,
} from "./session-store";

/** Largest JSON value read back (a session is well under 2 KiB). */
const MAX_JSON = 16 * 1024;

function parse<T>(text: string | null | undefined): T | undefined {
  if (typeof text !== "string" || text.length > MAX_JSON) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

interface DeviceRow {
  last_auth: string | null;
  session: string | null;
  last_disconnect: string | null;
}

/** The HotspotStore of the registry's storage (restart-proof; shared by the nodes on PostgreSQL). */
export class StorageHotspotStore implements HotspotStore {
  readonly #storage: Storage;
  readonly #maxDevices: number;
  readonly #maxLive: number;
  readonly #staleMs: number;
  readonly #now: () => number;
  #writes = 0;

  constructor(storage: Storage, options: MemoryHotspotStoreOptions = {}) {
    this.#storage = storage;
    this.#maxDevices = options.maxDevices ?? 100_000;
    this.#maxLive = options.maxLive ?? 100_000;
    this.#staleMs = options.staleMs ?? 3 * 600_000 + 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Sets one JSON column of a device's row (made if missing). */
  async #setColumn(deviceId: string, column: "last_auth" | "session" | "last_disconnect", value: unknown): Promise<void> {
    await this.#storage.run(
      `INSERT INTO hotspot_devices (device_id, ${column}, updated_at) VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET ${column} = excluded.${column}, updated_at = excluded.updated_at`,
      [deviceId, JSON.stringify(value), this.#now()],
    );
    if (++this.#writes % 1000 === 0) await this.#boundDevices();
  }

  async #boundDevices(): Promise<void> {
    const count = (await this.#storage.get<{ n: number }>("SELECT COUNT(*) AS n FROM hotspot_devices"))?.n ?? 0;
    if (count <= this.#maxDevices) return;
    await this.#storage.run(
      "DELETE FROM hotspot_devices WHERE device_id IN (SELECT device_id FROM hotspot_devices ORDER BY updated_at LIMIT ?)",
      [count - this.#maxDevices],
    );
  }

  async recordAuth(deviceId: string, auth: HotspotAuth): Promise<void> {
    await this.#setColumn(deviceId, "last_auth", auth);
  }

  async recordDisconnect(deviceId: string, record: DisconnectRecord): Promise<void> {
    await this.#setColumn(deviceId, "last_disconnect", record);
  }

  async account(update: AccountingUpdate): Promise<AccountingEffect> {
    const storage = this.#storage;
    return storage.tx(async () => {
      const liveRow = await storage.get<{ session: string }>(
        `SELECT session FROM hotspot_live WHERE nas = ? AND acct_session_id = ?${storage.forUpdate}`, [update.nas, update.acctSessionId],
      );
      const deviceRow = await storage.get<DeviceRow>(`SELECT session FROM hotspot_devices WHERE device_id = ?${storage.forUpdate}`, [update.deviceId]);
      const live = parse<HotspotSession>(liveRow?.session);
      const lastOfDevice = parse<HotspotSession>(deviceRow?.session);
      const last = lastOfDevice?.nas === update.nas && lastOfDevice.acctSessionId === update.acctSessionId ? lastOfDevice : undefined;
      const { effect, next } = applyAccounting(live ?? last, update, this.#now());
      if (!next) return effect;
      await this.#setColumn(update.deviceId, "session", next);
      if (update.kind === "stop") {
        await storage.run("DELETE FROM hotspot_live WHERE nas = ? AND acct_session_id = ?", [update.nas, update.acctSessionId]);
      } else {
        const inserted = await storage.run(
          "INSERT INTO hotspot_live (nas, acct_session_id, device_id, session, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (nas, acct_session_id) DO UPDATE SET device_id = excluded.device_id, session = excluded.session, updated_at = excluded.updated_at",
          [update.nas, update.acctSessionId, update.deviceId, JSON.stringify(next), next.updatedAt],
        );
        if (inserted.changes > 0 && !liveRow) await this.#boundLive();
      }
      return effect;
    });
  }

  async #boundLive(): Promise<void> {
    const count = (await this.#storage.get<{ n: number }>("SELECT COUNT(*) AS n FROM hotspot_live"))?.n ?? 0;
    if (count <= this.#maxLive) return;
    await this.#storage.run(
      "DELETE FROM hotspot_live WHERE (nas, acct_session_id) IN (SELECT nas, acct_session_id FROM hotspot_live ORDER BY updated_at LIMIT ?)",
      [count - this.#maxLive],
    );
  }

  async nasRestarted(nas: string, at: number): Promise<number> {
    const storage = this.#storage;
    return storage.tx(async () => {
      const rows = await storage.all<{ device_id: string; session: string }>(`SELECT device_id, session FROM hotspot_live WHERE nas = ?${storage.forUpdate}`, [nas]);
      for (const row of rows) {
        const session = parse<HotspotSession>(row.session);
        const device = parse<HotspotSession>((await storage.get<DeviceRow>(`SELECT session FROM hotspot_devices WHERE device_id = ?${storage.forUpdate}`, [row.device_id]))?.session);
        if (session && device?.acctSessionId === session.acctSessionId && device.nas === nas) {
          await this.#setColumn(row.device_id, "session", { ...session, stoppedAt: at, terminateCause: "NAS-Reboot", updatedAt: this.#now() });
        }
      }
      await storage.run("DELETE FROM hotspot_live WHERE nas = ?", [nas]);
      return rows.length;
    });
  }

  async status(deviceId: string): Promise<HotspotStatus | undefined> {
    const row = await this.#storage.get<DeviceRow>("SELECT last_auth, session, last_disconnect FROM hotspot_devices WHERE device_id = ?", [deviceId]);
    if (!row) return undefined;
    const lastAuth = parse<HotspotAuth>(row.last_auth);
    const session = parse<HotspotSession>(row.session);
    const lastDisconnect = parse<DisconnectRecord>(row.last_disconnect);
    return { ...(lastAuth ? { lastAuth } : {}), ...(session ? { session } : {}), ...(lastDisconnect ? { lastDisconnect } : {}) };
  }

  /** Deletes live sessions with no update for staleMs (a NAS that went away without a Stop); returns the cutoff. */
  async #sweep(): Promise<number> {
    const cutoff = this.#now() - this.#staleMs;
    await this.#storage.run("DELETE FROM hotspot_live WHERE updated_at < ?", [cutoff]);
    return cutoff;
  }

  async liveSessions(deviceId?: string): Promise<HotspotSession[]> {
    const cutoff = await this.#sweep();
    const rows = deviceId === undefined
      ? await this.#storage.all<{ session: string }>("SELECT session FROM hotspot_live WHERE updated_at >= ? ORDER BY updated_at", [cutoff])
      : await this.#storage.all<{ session: string }>("SELECT session FROM hotspot_live WHERE device_id = ? AND updated_at >= ? ORDER BY updated_at", [deviceId, cutoff]);
    return rows.map((r) => parse<HotspotSession>(r.session)).filter((s): s is HotspotSession => s !== undefined);
  }

  async livePerNas(): Promise<Record<string, number>> {
    const cutoff = await this.#sweep();
    const rows = await this.#storage.all<{ nas: string; n: number }>("SELECT nas, COUNT(*) AS n FROM hotspot_live WHERE updated_at >= ? GROUP BY nas", [cutoff]);
    const out: Record<string, number> = {};
    for (const row of rows) out[row.nas] = Number(row.n);
    return out;
  }
}
