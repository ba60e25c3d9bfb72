/*
 * The SQLite backend of the storage interface (better-sqlite3): the embedded
 * default, one file `<dataDir>/registry.sqlite` (folder 0700, file 0600).
 *
 * better-sqlite3 runs every statement to completion on the calling thread; the
 * interface is asynchronous so the registry reads the same over PostgreSQL.
 * One connection serves the process, so a transaction holds an in-process
 * lock: while `tx(fn)` runs, statements from other async contexts wait until
 * it commits or rolls back (they would otherwise land inside it). Each
 * transaction is BEGIN IMMEDIATE: it takes SQLite's write lock at once, so
 * a read-then-write inside it cannot race another process on the same file.
 *
 * Durability: WAL with synchronous=NORMAL (see cloud/registry.ts).
 * Schema: the tables below, created if missing, plus the columns added
 * after the first schema (older registries open unchanged).
 */
import Database from "better-sqlite3";
import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assertOwnerOnly, ensureOwnerOnlyDir, touchOwnerOnlyFile } from "../owner-files";
import type { RunResult, SqlValue, Storage } from "./store";

/** The registry schema on SQLite. */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS server_tls (name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL, key_enc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS product_cas (
  name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE, key_enc BLOB,
  revoked INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('secret', 'certificate', 'temporary')),
  secret_enc BLOB, generation INTEGER NOT NULL DEFAULT 0,
  pending_secret_enc BLOB, pending_generation INTEGER, pending_nonce BLOB,
  lot TEXT, ca_name TEXT, cert_fingerprint TEXT,
  temp_retired INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
  last_counter INTEGER NOT NULL DEFAULT -1,
  state TEXT, credential TEXT, last_failure TEXT, last_failure_detail TEXT, last_failure_at INTEGER,
  last_seen INTEGER, locked_until INTEGER, lockouts INTEGER NOT NULL DEFAULT 0, claimed_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS provisioning_keys (
  lot TEXT PRIMARY KEY, key_enc BLOB NOT NULL, has_allowlist INTEGER NOT NULL,
  retired INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0, line_rate INTEGER, rate_alert_at INTEGER,
  created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lot_devices (lot TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (lot, device_id));
CREATE INDEX IF NOT EXISTS lot_devices_by_device ON lot_devices (device_id);
CREATE INDEX IF NOT EXISTS devices_by_lot ON devices (lot);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, device_id TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS revoked_certificates (
  key TEXT PRIMARY KEY, ca_name TEXT, serial TEXT, fingerprint TEXT, source TEXT NOT NULL, reason TEXT, revoked_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_certificates_by_ca ON revoked_certificates (ca_name);
CREATE TABLE IF NOT EXISTS nas_clients (
  name TEXT PRIMARY KEY, address TEXT NOT NULL, secret_enc BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hotspot_profiles (
  position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ssid TEXT, roaming_consortium TEXT,
  anonymous_identity TEXT, server_name TEXT NOT NULL, ca_pem TEXT NOT NULL, policy TEXT);
CREATE TABLE IF NOT EXISTS hotspot_revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hotspot_devices (
  device_id TEXT PRIMARY KEY, last_auth TEXT, session TEXT, last_disconnect TEXT, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS hotspot_devices_by_update ON hotspot_devices (updated_at);
CREATE TABLE IF NOT EXISTS hotspot_live (
  nas TEXT NOT NULL, acct_session_id TEXT NOT NULL, device_id TEXT NOT NULL, session TEXT NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (nas, acct_session_id));
CREATE INDEX IF NOT EXISTS hotspot_live_by_device ON hotspot_live (device_id);
CREATE INDEX IF NOT EXISTS hotspot_live_by_update ON hotspot_live (updated_at);
CREATE TABLE IF NOT EXISTS radius_tls_sessions (id_mac BLOB PRIMARY KEY, sealed BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS radius_tls_sessions_expires ON radius_tls_sessions (expires);
CREATE TABLE IF NOT EXISTS imported_bundles (sha256 TEXT PRIMARY KEY, lot TEXT NOT NULL, option TEXT NOT NULL, devices INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
`;

/** Columns added after the first schema: added to older registries at open (table, column, declaration). */
export const SQLITE_ADDED_COLUMNS: readonly [string, string, string][] = [
  ["devices", "locked_until", "INTEGER"],
  ["devices", "lockouts", "INTEGER NOT NULL DEFAULT 0"],
  ["provisioning_keys", "revoked", "INTEGER NOT NULL DEFAULT 0"],
  ["provisioning_keys", "line_rate", "INTEGER"],
  ["provisioning_keys", "rate_alert_at", "INTEGER"],
  ["devices", "claimed_at", "INTEGER"],
  // the network columns (cloud/network-registry.ts)
  ["devices", "seal_key", "BLOB"],
  ["devices", "config_rev", "INTEGER"],
  ["devices", "net_kind", "TEXT"],
  ["devices", "net_ssid", "TEXT"],
  ["devices", "net_seq", "INTEGER NOT NULL DEFAULT 0"],
  ["devices", "net_sealed", "BLOB"],
  ["devices", "net_sealed_seq", "INTEGER"],
  ["devices", "net_action", "TEXT"],
  ["devices", "net_result", "TEXT"],
  ["devices", "net_result_seq", "INTEGER"],
  ["devices", "net_result_reason", "TEXT"],
  ["devices", "net_result_detail", "TEXT"],
  ["devices", "net_result_at", "INTEGER"],
  ["devices", "net_failures", "TEXT"],
  ["devices", "net_failures_at", "INTEGER"],
  // the walled-garden policy of a hotspot profile (cloud/radius/policy.ts), JSON
  ["hotspot_profiles", "policy", "TEXT"],
];

/** Adds the missing columns of SQLITE_ADDED_COLUMNS to existing tables, then creates what is missing. Idempotent. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    for (const [table, column, declaration] of SQLITE_ADDED_COLUMNS) {
      const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
      const hasColumn = db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(column) !== undefined;
      if (hasTable && !hasColumn) {
        db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${declaration}`);
        // rows of temporary lots from before claims were recorded were claimed when they were made
        if (column === "claimed_at") db.exec("UPDATE devices SET claimed_at = created_at WHERE lot IS NOT NULL");
      }
    }
    db.exec(SQLITE_SCHEMA);
    // a registry made before the network columns: its devices table came from SQLITE_SCHEMA's first version
    const have = new Set((db.prepare("PRAGMA table_info(devices)").all() as { name: string }[]).map((c) => c.name));
    for (const [table, column, declaration] of SQLITE_ADDED_COLUMNS) {
      if (table === "devices" && !have.has(column)) db.exec(`ALTER TABLE devices ADD COLUMN ${column} ${declaration}`);
    }
  }).immediate();
}

function bind(args: readonly SqlValue[] | undefined): unknown[] {
  if (!args) return [];
  return args.map((value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value));
}

/** The SQLite backend. */
export class SqliteStorage implements Storage {
  readonly dialect = "sqlite" as const;
  readonly forUpdate = "";
  /** the better-sqlite3 connection (tools and migrations) */
  readonly db: Database.Database;
  /** the database file */
  readonly path: string;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #context = new AsyncLocalStorage<SqliteStorage>();
  readonly #notices = new EventEmitter();
  /** resolves when the open transaction ends (undefined: none open) */
  #busy: Promise<void> | undefined;
  /** notices sent inside the open transaction, delivered at its commit */
  #queued: [string, string][] = [];

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    this.#notices.setMaxListeners(0);
  }

  /**
   * Opens (creating if needed) `<dataDir>/registry.sqlite`, WAL, and brings its schema up to date.
   * @throws CloudError FILE_INSECURE when the folder or the file is open to group or others
   */
  static open(dataDir: string): SqliteStorage {
    ensureOwnerOnlyDir(dataDir);
    const path = join(dataDir, "registry.sqlite");
    // made 0600 before SQLite opens it: SQLite gives -wal and -shm the database file's mode
    if (existsSync(path)) assertOwnerOnly(path, "the registry");
    else touchOwnerOnlyFile(path);
    const db = new Database(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      db.pragma("busy_timeout = 5000");
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteStorage(db, path);
  }

  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  inTransaction(): boolean {
    return this.#context.getStore() === this;
  }

  async get<T>(sql: string, args?: readonly SqlValue[]): Promise<T | undefined> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return this.#stmt(sql).get(...bind(args)) as T | undefined;
  }

  async all<T>(sql: string, args?: readonly SqlValue[]): Promise<T[]> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return this.#stmt(sql).all(...bind(args)) as T[];
  }

  async run(sql: string, args?: readonly SqlValue[]): Promise<RunResult> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return { changes: this.#stmt(sql).run(...bind(args)).changes };
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return fn();
    // checked and taken in one synchronous step, so two waiters never both begin
    while (this.#busy) await this.#busy;
    let end!: () => void;
    this.#busy = new Promise<void>((resolve) => (end = resolve));
    try {
      this.db.exec("BEGIN IMMEDIATE");
      let result: T;
      try {
        result = await this.#context.run(this, fn);
        this.db.exec("COMMIT");
      } catch (error) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        this.#queued = [];
        throw error;
      }
      const queued = this.#queued;
      this.#queued = [];
      for (const [channel, payload] of queued) this.#deliver(channel, payload);
      return result;
    } finally {
      this.#busy = undefined;
      end();
    }
  }

  #deliver(channel: string, payload: string): void {
    setImmediate(() => this.#notices.emit(channel, payload));
  }

  async listen(channel: string, onNotice: (payload: string) => void): Promise<() => Promise<void>> {
    this.#notices.on(channel, onNotice);
    return async () => {
      this.#notices.off(channel, onNotice);
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    if (this.inTransaction()) this.#queued.push([channel, payload]);
    else this.#deliver(channel, payload);
  }

  async close(): Promise<void> {
    while (this.#busy) await this.#busy;
    if (this.db.open) this.db.close();
  }
}
