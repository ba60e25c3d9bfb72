/*
 * The PostgreSQL backend of the storage interface (the `pg` driver,
 * PostgreSQL 15): the registry shared by several cloud nodes.
 *
 * A pool of connections serves the statements; `tx(fn)` takes one
 * connection, BEGIN ... COMMIT (READ COMMITTED), and every statement of `fn`'s
 * async context runs on it. The registry makes its read-then-write steps
 * safe across nodes with conditional UPDATEs and SELECT ... FOR UPDATE.
 * A transaction that fails with a serialization failure or a deadlock
 * (40001, 40P01) is run again, at most 5 times.
 *
 * Notices between nodes (a revocation closes the session on whichever node
 * holds it) are LISTEN/NOTIFY on one dedicated connection; NOTIFY inside a
 * transaction is delivered when it commits.
 *
 * Types: BIGINT and COUNT(*) come back as JS numbers (all values are ms
 * timestamps, counters and counts well below 2^53), BYTEA as Buffer.
 * The schema (POSTGRES_SCHEMA) is created if missing, under an advisory lock
 * so two nodes starting at once do not race.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { numberPlaceholders, type RunResult, type SqlValue, type Storage } from "./store";

/** The registry schema on PostgreSQL (the same tables and columns as SQLITE_SCHEMA). */
export const POSTGRES_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS server_tls (name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL, key_enc BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS product_cas (
  name TEXT PRIMARY KEY, cert_pem TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE, key_enc BYTEA,
  revoked INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('secret', 'certificate', 'temporary')),
  secret_enc BYTEA, generation BIGINT NOT NULL DEFAULT 0,
  pending_secret_enc BYTEA, pending_generation BIGINT, pending_nonce BYTEA,
  lot TEXT, ca_name TEXT, cert_fingerprint TEXT,
  temp_retired INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
  last_counter BIGINT NOT NULL DEFAULT -1,
  state TEXT, credential TEXT, last_failure TEXT, last_failure_detail TEXT, last_failure_at BIGINT,
  last_seen BIGINT, locked_until BIGINT, lockouts INTEGER NOT NULL DEFAULT 0, claimed_at BIGINT, created_at BIGINT NOT NULL,
  seal_key BYTEA, config_rev BIGINT, net_kind TEXT, net_ssid TEXT, net_seq BIGINT NOT NULL DEFAULT 0,
  net_sealed BYTEA, net_sealed_seq BIGINT, net_action TEXT, net_result TEXT, net_result_seq BIGINT,
  net_result_reason TEXT, net_result_detail TEXT, net_result_at BIGINT, net_failures TEXT, net_failures_at BIGINT);
CREATE TABLE IF NOT EXISTS provisioning_keys (
  lot TEXT PRIMARY KEY, key_enc BYTEA NOT NULL, has_allowlist INTEGER NOT NULL,
  retired INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0, line_rate BIGINT, rate_alert_at BIGINT,
  created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS lot_devices (lot TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (lot, device_id));
CREATE INDEX IF NOT EXISTS lot_devices_by_device ON lot_devices (device_id);
CREATE INDEX IF NOT EXISTS devices_by_lot ON devices (lot);
CREATE TABLE IF NOT EXISTS audit (
  seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, device_id TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS revoked_certificates (
  key TEXT PRIMARY KEY, ca_name TEXT, serial TEXT, fingerprint TEXT, source TEXT NOT NULL, reason TEXT, revoked_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_certificates_by_ca ON revoked_certificates (ca_name);
CREATE TABLE IF NOT EXISTS nas_clients (
  name TEXT PRIMARY KEY, address TEXT NOT NULL, secret_enc BYTEA NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS hotspot_profiles (
  position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ssid TEXT, roaming_consortium TEXT,
  anonymous_identity TEXT, server_name TEXT NOT NULL, ca_pem TEXT NOT NULL, policy TEXT);
ALTER TABLE hotspot_profiles ADD COLUMN IF NOT EXISTS policy TEXT;
CREATE TABLE IF NOT EXISTS hotspot_revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev BIGINT NOT NULL, updated_at BIGINT NOT NULL);
INSERT INTO hotspot_revision (id, rev, updated_at) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS hotspot_devices (
  device_id TEXT PRIMARY KEY, last_auth TEXT, session TEXT, last_disconnect TEXT, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS hotspot_devices_by_update ON hotspot_devices (updated_at);
CREATE TABLE IF NOT EXISTS hotspot_live (
  nas TEXT NOT NULL, acct_session_id TEXT NOT NULL, device_id TEXT NOT NULL, session TEXT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (nas, acct_session_id));
CREATE INDEX IF NOT EXISTS hotspot_live_by_device ON hotspot_live (device_id);
CREATE INDEX IF NOT EXISTS hotspot_live_by_update ON hotspot_live (updated_at);
CREATE TABLE IF NOT EXISTS radius_tls_sessions (id_mac BYTEA PRIMARY KEY, sealed BYTEA NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS radius_tls_sessions_expires ON radius_tls_sessions (expires);
CREATE TABLE IF NOT EXISTS imported_bundles (sha256 TEXT PRIMARY KEY, lot TEXT NOT NULL, option TEXT NOT NULL, devices BIGINT NOT NULL, at BIGINT NOT NULL);
-- the login limits every node shares (cloud/shared-limits.ts)
CREATE TABLE IF NOT EXISTS login_buckets (
  scope TEXT NOT NULL, key TEXT NOT NULL, tokens DOUBLE PRECISION NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX IF NOT EXISTS login_buckets_by_at ON login_buckets (scope, at);
CREATE TABLE IF NOT EXISTS login_pairs (
  device_id TEXT NOT NULL, source TEXT NOT NULL, failures INTEGER NOT NULL, lockouts INTEGER NOT NULL,
  locked_until BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (device_id, source));
CREATE INDEX IF NOT EXISTS login_pairs_by_age ON login_pairs (updated_at);
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_no_change ON audit;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
`;

/** Advisory lock key of schema creation. */
const SCHEMA_LOCK = 0x77636d01;
/** How many times a transaction is run again after a serialization failure or deadlock. */
const RETRIES = 5;

const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    // 20 int8, 1700 numeric (COUNT(*) is int8)
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

function bind(args: readonly SqlValue[] | undefined): unknown[] {
  if (!args) return [];
  return args.map((value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value));
}

/** The URL without its password, for logs and `Registry.path`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://(unparsable url)";
  }
}

interface TxContext {
  storage: PostgresStorage;
  client: pg.PoolClient;
}

/** The PostgreSQL backend. */
export class PostgresStorage implements Storage {
  readonly dialect = "postgres" as const;
  readonly forUpdate = " FOR UPDATE";
  readonly pool: pg.Pool;
  /** the server's URL without its password */
  readonly displayUrl: string;
  readonly #context = new AsyncLocalStorage<TxContext>();
  readonly #sql = new Map<string, string>();
  readonly #listeners = new Map<string, Set<(payload: string) => void>>();
  #listener: pg.Client | undefined;
  #listenerReady: Promise<pg.Client> | undefined;
  #closed = false;
  readonly #url: string;

  private constructor(url: string, pool: pg.Pool) {
    this.#url = url;
    this.pool = pool;
    this.displayUrl = redactUrl(url);
  }

  /**
   * Connects a pool to `url` (postgres://user[:password]@host[:port]/database, or
   * ?host=/socket/dir) and creates the schema if missing.
   * @param poolSize - connections in the pool (default 10)
   */
  static async connect(url: string, poolSize = 10): Promise<PostgresStorage> {
    const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
    // an idle client's error (the server went away) must not crash the process: the next query reports it
    pool.on("error", () => {});
    const storage = new PostgresStorage(url, pool);
    try {
      const client = await pool.connect();
      try {
        await client.query("SELECT pg_advisory_lock($1)", [SCHEMA_LOCK]);
        try {
          await client.query(POSTGRES_SCHEMA);
        } finally {
          await client.query("SELECT pg_advisory_unlock($1)", [SCHEMA_LOCK]);
        }
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return storage;
  }

  #text(sql: string): string {
    let text = this.#sql.get(sql);
    if (text === undefined) {
      text = numberPlaceholders(sql);
      this.#sql.set(sql, text);
    }
    return text;
  }

  #current(): TxContext | undefined {
    const context = this.#context.getStore();
    return context?.storage === this ? context : undefined;
  }

  async #query<T>(sql: string, args: readonly SqlValue[] | undefined): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    const runner = this.#current()?.client ?? this.pool;
    return runner.query<T & pg.QueryResultRow>(this.#text(sql), bind(args));
  }

  inTransaction(): boolean {
    return this.#current() !== undefined;
  }

  async get<T>(sql: string, args?: readonly SqlValue[]): Promise<T | undefined> {
    return (await this.#query<T>(sql, args)).rows[0];
  }

  async all<T>(sql: string, args?: readonly SqlValue[]): Promise<T[]> {
    return (await this.#query<T>(sql, args)).rows;
  }

  async run(sql: string, args?: readonly SqlValue[]): Promise<RunResult> {
    return { changes: (await this.#query(sql, args)).rowCount ?? 0 };
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return fn();
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      const context: TxContext = { storage: this, client };
      let broken = false;
      try {
        await client.query("BEGIN");
        const result = await this.#context.run(context, fn);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
        const code = (error as { code?: string }).code;
        if ((code === "40001" || code === "40P01") && attempt < RETRIES) continue;
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  async #listenClient(): Promise<pg.Client> {
    if (!this.#listenerReady) {
      this.#listenerReady = (async () => {
        const client = new pg.Client({ connectionString: this.#url, types });
        client.on("error", () => {});
        client.on("notification", (message) => {
          const set = this.#listeners.get(message.channel);
          if (set) for (const onNotice of set) onNotice(message.payload ?? "");
        });
        await client.connect();
        this.#listener = client;
        return client;
      })();
    }
    return this.#listenerReady;
  }

  async listen(channel: string, onNotice: (payload: string) => void): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`bad channel name ${channel}`);
    const client = await this.#listenClient();
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
      await client.query(`LISTEN ${channel}`);
    }
    set.add(onNotice);
    return async () => {
      set.delete(onNotice);
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    // pg_notify inside a transaction is sent at its commit
    await this.run("SELECT pg_notify(?, ?)", [channel, payload]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) await listener.end().catch(() => {});
    await this.pool.end();
  }
}
