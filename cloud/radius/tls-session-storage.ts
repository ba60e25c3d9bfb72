/*
 * The RADIUS server's TLS resumption store in the registry's storage
 * (cloud/storage: SQLite or PostgreSQL): the SSL_SESSION of each accepted EAP
 * full handshake (by session id) and the binding of each EAP-TTLS session
 * (cloud/radius/resumption.ts) survive a restart, and on PostgreSQL every
 * node resumes the sessions any node stored.
 *
 * Table `radius_tls_sessions` (id_mac, sealed, expires). Keys are an HMAC of
 * the id (the database does not list the ids devices offer); values are sealed
 * (AES-256-GCM, cloud/sealing.ts) under a key derived from the master key for
 * this use only, bound to their row: an SSL_SESSION holds the session's master
 * secret. Bounded: at most `maxEntries` rows (expired ones first, then those
 * closest to expiry go; enforced every 64 writes). An unreadable row (another
 * master key, tampered) is a miss and is deleted.
 */
import { createHmac, hkdfSync } from "node:crypto";
import type { Storage } from "../storage/store";
import { SecretBox } from "../sealing";
import { DEFAULT_SESSION_CACHE_ENTRIES, MAX_SESSION_BYTES, TICKET_KEY_BYTES, type TlsSessionStore } from "../tls-sessions";

/** The store's sealing key (HKDF-SHA256 of the master key, its own label). */
export function radiusSessionKey(masterKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", masterKey, Buffer.alloc(0), "wcm radius tls sessions v1", 32));
}

/**
 * The RADIUS server's TLS ticket keys, the same on every node and after a
 * restart (HKDF-SHA256 of the master key, its own label), so a ticket issued
 * by one node is resumed by another.
 */
export function radiusTicketKeys(masterKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", masterKey, Buffer.alloc(0), "wcm radius ticket keys v1", TICKET_KEY_BYTES));
}

/** The TlsSessionStore of the registry's storage. */
export class StorageTlsSessionStore implements TlsSessionStore {
  readonly #storage: Storage;
  readonly #box: SecretBox;
  readonly #macKey: Buffer;
  readonly #now: () => number;
  readonly maxEntries: number;
  #sinceTrim = 0;

  /**
   * @param key - 32 bytes: radiusSessionKey(masterKey)
   * @param options.maxEntries - rows kept (default 10,000)
   */
  constructor(storage: Storage, key: Uint8Array, options: { maxEntries?: number; now?: () => number } = {}) {
    this.#storage = storage;
    this.#box = new SecretBox(key);
    this.#macKey = createHmac("sha256", Buffer.from(key)).update("radius-session-id").digest();
    this.maxEntries = options.maxEntries ?? DEFAULT_SESSION_CACHE_ENTRIES;
    this.#now = options.now ?? Date.now;
  }

  #idMac(id: Uint8Array): Buffer {
    return createHmac("sha256", this.#macKey).update(id).digest();
  }

  async get(id: Uint8Array): Promise<Uint8Array | undefined> {
    if (id.length === 0 || id.length > 32) return undefined;
    const mac = this.#idMac(id);
    const row = await this.#storage.get<{ sealed: Buffer; expires: number }>("SELECT sealed, expires FROM radius_tls_sessions WHERE id_mac = ?", [mac]);
    if (!row) return undefined;
    if (Number(row.expires) <= this.#now()) {
      await this.#storage.run("DELETE FROM radius_tls_sessions WHERE id_mac = ?", [mac]);
      return undefined;
    }
    try {
      return this.#box.open(row.sealed, `radius-tls-session:${mac.toString("hex")}`);
    } catch {
      await this.#storage.run("DELETE FROM radius_tls_sessions WHERE id_mac = ?", [mac]);
      return undefined;
    }
  }

  async set(id: Uint8Array, session: Uint8Array, ttlMs: number): Promise<void> {
    if (id.length === 0 || id.length > 32 || session.length > MAX_SESSION_BYTES || !(ttlMs > 0)) return;
    const mac = this.#idMac(id);
    const sealed = this.#box.seal(session, `radius-tls-session:${mac.toString("hex")}`);
    await this.#storage.run(
      "INSERT INTO radius_tls_sessions (id_mac, sealed, expires) VALUES (?, ?, ?) ON CONFLICT (id_mac) DO UPDATE SET sealed = excluded.sealed, expires = excluded.expires",
      [mac, sealed, Math.floor(this.#now() + ttlMs)],
    );
    if (++this.#sinceTrim >= 64) await this.trim();
  }

  async delete(id: Uint8Array): Promise<void> {
    if (id.length === 0 || id.length > 32) return;
    await this.#storage.run("DELETE FROM radius_tls_sessions WHERE id_mac = ?", [this.#idMac(id)]);
  }

  /** Deletes expired rows, then those closest to expiry beyond maxEntries. */
  async trim(): Promise<void> {
    this.#sinceTrim = 0;
    await this.#storage.run("DELETE FROM radius_tls_sessions WHERE expires <= ?", [this.#now()]);
    const count = Number((await this.#storage.get<{ n: number }>("SELECT COUNT(*) AS n FROM radius_tls_sessions"))?.n ?? 0);
    if (count > this.maxEntries) {
      await this.#storage.run(
        "DELETE FROM radius_tls_sessions WHERE id_mac IN (SELECT id_mac FROM radius_tls_sessions ORDER BY expires LIMIT ?)", [count - this.maxEntries],
      );
    }
  }
}
