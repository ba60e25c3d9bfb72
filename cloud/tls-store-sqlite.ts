/*
 * A TLS resumption store that survives a cloud restart: TLS 1.2 sessions (by
 * session id) and the TLS ticket keys of each rotation period, in
 * `<dataDir>/tls-sessions.sqlite` (mode 0600 from creation, like the registry).
 *
 * Every value is sealed (AES-256-GCM, cloud/sealing.ts) under a key derived
 * from the master key for this purpose only, bound to its row (the session id
 * or the period), so a copy of the file without the master key opens nothing:
 * an SSL_SESSION holds the session's master secret and a ticket key opens
 * every ticket of its period. Bounded: at most `maxEntries` sessions (expired
 * ones first, then those closest to expiry, are deleted), ticket keys of
 * past periods are deleted when a new period starts. WAL with
 * synchronous=NORMAL: a SIGKILL loses nothing committed.
 *
 * It implements TlsSessionStore and TicketKeyStore (cloud/tls-sessions.ts),
 * the interfaces a shared Redis or PostgreSQL store implements for several
 * nodes.
 */
import { createHmac, hkdfSync } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { assertOwnerOnly, ensureOwnerOnlyDir, touchOwnerOnlyFile } from "./owner-files";
import { SecretBox } from "./sealing";
import { TLS_STORE_SCHEMA as SCHEMA } from "./storage/schema";
import { DEFAULT_SESSION_CACHE_ENTRIES, MAX_SESSION_BYTES, TICKET_KEY_BYTES, type SessionStoreStats, type TicketKeyStore, type TlsSessionStore } from "./tls-sessions";

/** Derives the store's own sealing key from the master key (HKDF-SHA256, its own label). */
export function resumptionKey(masterKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", masterKey, Buffer.alloc(0), "wcm tls resumption store v1", 32));
}

/** Options of SqliteResumptionStore. */
export interface SqliteResumptionStoreOptions {
  /** sessions kept (default 10000) */
  maxEntries?: number;
  /** ms clock (tests may pin it) */
  now?: () => number;
}

/** The restart-proof store of one cloud node (SQLite in the data folder). */
export class SqliteResumptionStore implements TlsSessionStore, TicketKeyStore {
  readonly stats: SessionStoreStats = { hits: 0, misses: 0, stored: 0, evicted: 0, expired: 0 };
  readonly maxEntries: number;
  readonly #db: Database.Database;
  readonly #box: SecretBox;
  readonly #macKey: Buffer;
  readonly #now: () => number;
  #sinceTrim = 0;
  /** prepared statements by SQL (preparing costs more than running on every resumed handshake) */
  readonly #statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database, key: Uint8Array, options: SqliteResumptionStoreOptions) {
    this.#db = db;
    this.#box = new SecretBox(key);
    // session ids are keyed by a MAC, so the file does not list the ids devices offer
    this.#macKey = Buffer.from(createHmac("sha256", key).update("session-id").digest());
    this.maxEntries = options.maxEntries ?? DEFAULT_SESSION_CACHE_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
    this.#now = options.now ?? Date.now;
  }

  /**
   * Opens (creating if needed) `<dataDir>/tls-sessions.sqlite`.
   * @param key - 32 bytes: resumptionKey(masterKey)
   * @throws CloudError FILE_INSECURE when the folder or the file is open to group or others
   */
  static open(dataDir: string, key: Uint8Array, options: SqliteResumptionStoreOptions = {}): SqliteResumptionStore {
    ensureOwnerOnlyDir(dataDir);
    const path = join(dataDir, "tls-sessions.sqlite");
    if (existsSync(path)) assertOwnerOnly(path, "the TLS session store");
    else touchOwnerOnlyFile(path);
    const db = new Database(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("busy_timeout = 5000");
      db.exec(SCHEMA);
      return new SqliteResumptionStore(db, key, options);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Sessions stored now (expired ones included until trimmed). */
  get size(): number {
    return (this.#stmt("SELECT COUNT(*) AS n FROM tls_sessions").get() as { n: number }).n;
  }

  #idMac(id: Uint8Array): Buffer {
    return createHmac("sha256", this.#macKey).update(id).digest();
  }

  async get(id: Uint8Array): Promise<Uint8Array | undefined> {
    if (id.length === 0 || id.length > 32) return undefined;
    const mac = this.#idMac(id);
    const row = this.#stmt("SELECT sealed, expires FROM tls_sessions WHERE id_mac = ?").get(mac) as { sealed: Buffer; expires: number } | undefined;
    if (!row || row.expires <= this.#now()) {
      if (row) {
        this.stats.expired++;
        this.#stmt("DELETE FROM tls_sessions WHERE id_mac = ?").run(mac);
      }
      this.stats.misses++;
      return undefined;
    }
    try {
      const session = this.#box.open(row.sealed, `tls-session:${mac.toString("hex")}`);
      this.stats.hits++;
      return session;
    } catch {
      // another master key, or a tampered row: a full handshake, and the row goes
      this.#stmt("DELETE FROM tls_sessions WHERE id_mac = ?").run(mac);
      this.stats.misses++;
      return undefined;
    }
  }

  async set(id: Uint8Array, session: Uint8Array, ttlMs: number): Promise<void> {
    if (id.length === 0 || id.length > 32 || session.length > MAX_SESSION_BYTES || !(ttlMs > 0)) return;
    const mac = this.#idMac(id);
    const sealed = this.#box.seal(session, `tls-session:${mac.toString("hex")}`);
    this.#stmt("INSERT OR REPLACE INTO tls_sessions (id_mac, sealed, expires) VALUES (?, ?, ?)").run(mac, sealed, Math.floor(this.#now() + ttlMs));
    this.stats.stored++;
    // the bound is enforced every 64 writes (and at most 64 rows over it in between)
    if (++this.#sinceTrim >= 64) this.trim();
  }

  async delete(id: Uint8Array): Promise<void> {
    if (id.length === 0 || id.length > 32) return;
    this.#stmt("DELETE FROM tls_sessions WHERE id_mac = ?").run(this.#idMac(id));
  }

  /** Deletes expired sessions, then those closest to expiry beyond maxEntries. */
  trim(): void {
    this.#sinceTrim = 0;
    const expired = this.#stmt("DELETE FROM tls_sessions WHERE expires <= ?").run(this.#now()).changes;
    this.stats.expired += expired;
    const over = this.size - this.maxEntries;
    if (over > 0) {
      this.#stmt("DELETE FROM tls_sessions WHERE id_mac IN (SELECT id_mac FROM tls_sessions ORDER BY expires LIMIT ?)").run(over);
      this.stats.evicted += over;
    }
  }

  async ticketKeys(period: number, make: () => Uint8Array): Promise<Uint8Array> {
    if (!Number.isSafeInteger(period) || period < 0) throw new RangeError("period must be a non-negative integer");
    const aad = `tls-ticket-keys:${period}`;
    const read = () => this.#stmt("SELECT sealed FROM tls_ticket_keys WHERE period = ?").get(period) as { sealed: Buffer } | undefined;
    let row = read();
    if (row) {
      try {
        const keys = this.#box.open(row.sealed, aad);
        if (keys.length === TICKET_KEY_BYTES) return keys;
      } catch {
        // unreadable (another master key): replaced below
      }
      this.#stmt("DELETE FROM tls_ticket_keys WHERE period = ?").run(period);
    }
    const keys = make();
    if (keys.length !== TICKET_KEY_BYTES) throw new RangeError(`ticket keys must be ${TICKET_KEY_BYTES} bytes`);
    this.#db.transaction(() => {
      this.#stmt("INSERT OR IGNORE INTO tls_ticket_keys (period, sealed) VALUES (?, ?)").run(period, this.#box.seal(keys, aad));
      this.#stmt("DELETE FROM tls_ticket_keys WHERE period < ?").run(period);
    })();
    row = read();
    return row ? this.#box.open(row.sealed, aad) : keys;
  }

  /** Closes the database. */
  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
