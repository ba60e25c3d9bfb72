/*
 * The registry schema, in one place: one ordered list of forward-only
 * migrations (MIGRATIONS), run at every open, each in its own transaction
 * together with the version it reaches.
 *
 * - SQLite records the version in `PRAGMA user_version` (the file header,
 *   written inside the step's transaction). Steps 1..6 are the schemas that
 *   shipped before versions were recorded (test/fixtures/schema/vN-<commit>.sql,
 *   one per commit that changed the tables). A registry from then has
 *   user_version 0 whatever its shape, so each of those steps is written to be
 *   re-run safely (CREATE ... IF NOT EXISTS, a column added only when missing)
 *   and all of them run on it. Steps 7..11 landed beside the version list (their
 *   registries too may say 0), so they are written the same way.
 * - PostgreSQL records it in the one-row table `schema_version`; the backend
 *   shipped at schema 6 (its whole DDL is step 6's), so steps 1..5 have no
 *   PostgreSQL part. Steps run under an advisory lock (two nodes starting at once).
 *
 * A registry newer than this code (a downgrade) is refused: SCHEMA_TOO_NEW.
 * The TLS resumption store (`tls-sessions.sqlite`, a cache the cloud may drop)
 * has its own schema, TLS_STORE_SCHEMA, here too.
 */
import type Database from "better-sqlite3";
import type pg from "pg";
import { CloudError } from "../errors";

/** One schema step. */
export interface Migration {
  /** the version the registry has after this step (1, 2, ...) */
  version: number;
  /** what changed, and the commit that first shipped it */
  summary: string;
  /** the step on SQLite (inside its transaction) */
  sqlite(db: Database.Database): void;
  /** the step on PostgreSQL (one script, inside its transaction), or null when the backend did not exist yet */
  postgres: string | null;
}

/** Columns the network features added to `devices` (cloud/network-registry.ts reads them). */
export const NETWORK_DEVICE_COLUMNS: readonly [string, string][] = [
  ["seal_key", "BLOB"],
  ["config_rev", "INTEGER"],
  ["net_kind", "TEXT"],
  ["net_ssid", "TEXT"],
  ["net_seq", "INTEGER NOT NULL DEFAULT 0"],
  ["net_sealed", "BLOB"],
  ["net_sealed_seq", "INTEGER"],
  ["net_action", "TEXT"],
  ["net_result", "TEXT"],
  ["net_result_seq", "INTEGER"],
  ["net_result_reason", "TEXT"],
  ["net_result_detail", "TEXT"],
  ["net_result_at", "INTEGER"],
  ["net_failures", "TEXT"],
  ["net_failures_at", "INTEGER"],
];

/** Adds `column` to `table` unless it is there; true when it was added. */
function addColumn(db: Database.Database, table: string, column: string, declaration: string): boolean {
  if (db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(column) !== undefined) return false;
  db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${declaration}`);
  return true;
}

/** The PostgreSQL schema as it shipped (df99e63): step 6's PostgreSQL part. */
const POSTGRES_V6 = `
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
  anonymous_identity TEXT, server_name TEXT NOT NULL, ca_pem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hotspot_revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev BIGINT NOT NULL, updated_at BIGINT NOT NULL);
INSERT INTO hotspot_revision (id, rev, updated_at) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS imported_bundles (sha256 TEXT PRIMARY KEY, lot TEXT NOT NULL, option TEXT NOT NULL, devices BIGINT NOT NULL, at BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_no_change ON audit;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
`;

/** Every schema step, oldest first. Append only: a shipped step is never edited. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1, summary: "the first registry (73d936b): meta, server TLS, product CAs, devices, lots and allowlists, the append-only audit log", postgres: null,
    sqlite(db) {
      db.exec(`
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
  last_seen INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS provisioning_keys (
  lot TEXT PRIMARY KEY, key_enc BLOB NOT NULL, has_allowlist INTEGER NOT NULL,
  retired INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS lot_devices (lot TEXT NOT NULL, device_id TEXT NOT NULL, PRIMARY KEY (lot, device_id));
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, device_id TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS lot_devices_by_device ON lot_devices (device_id);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;`);
    },
  },
  {
    version: 2, summary: "manufacturing bundles (edad076): imported_bundles (then made at the first import)", postgres: null,
    sqlite(db) {
      db.exec("CREATE TABLE IF NOT EXISTS imported_bundles (sha256 TEXT PRIMARY KEY, lot TEXT NOT NULL, option TEXT NOT NULL, devices INTEGER NOT NULL, at INTEGER NOT NULL)");
    },
  },
  {
    version: 3, summary: "RADIUS and lockouts (4141cf1): nas_clients, devices.locked_until and lockouts, provisioning_keys.revoked, devices_by_lot", postgres: null,
    sqlite(db) {
      addColumn(db, "devices", "locked_until", "INTEGER");
      addColumn(db, "devices", "lockouts", "INTEGER NOT NULL DEFAULT 0");
      addColumn(db, "provisioning_keys", "revoked", "INTEGER NOT NULL DEFAULT 0");
      db.exec(`
CREATE TABLE IF NOT EXISTS nas_clients (
  name TEXT PRIMARY KEY, address TEXT NOT NULL, secret_enc BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS devices_by_lot ON devices (lot);`);
    },
  },
  {
    version: 4, summary: "networks (60e377d): the device network columns, hotspot_profiles, hotspot_revision", postgres: null,
    sqlite(db) {
      for (const [column, declaration] of NETWORK_DEVICE_COLUMNS) addColumn(db, "devices", column, declaration);
      db.exec(`
CREATE TABLE IF NOT EXISTS hotspot_profiles (
  position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ssid TEXT, roaming_consortium TEXT,
  anonymous_identity TEXT, server_name TEXT NOT NULL, ca_pem TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hotspot_revision (id INTEGER PRIMARY KEY CHECK (id = 1), rev INTEGER NOT NULL, updated_at INTEGER NOT NULL);`);
    },
  },
  {
    version: 5, summary: "certificate revocation (ec1e24c): revoked_certificates", postgres: null,
    sqlite(db) {
      db.exec(`
CREATE TABLE IF NOT EXISTS revoked_certificates (
  key TEXT PRIMARY KEY, ca_name TEXT, serial TEXT, fingerprint TEXT, source TEXT NOT NULL, reason TEXT, revoked_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_certificates_by_ca ON revoked_certificates (ca_name);`);
    },
  },
  {
    version: 6, summary: "claims and line rates (d630f55): devices.claimed_at, provisioning_keys.line_rate and rate_alert_at; the PostgreSQL backend (df99e63) starts here",
    postgres: POSTGRES_V6,
    sqlite(db) {
      // rows of temporary lots from before claims were recorded were claimed when they were made
      if (addColumn(db, "devices", "claimed_at", "INTEGER")) db.exec("UPDATE devices SET claimed_at = created_at WHERE lot IS NOT NULL");
      addColumn(db, "provisioning_keys", "line_rate", "INTEGER");
      addColumn(db, "provisioning_keys", "rate_alert_at", "INTEGER");
    },
  },
  {
    version: 7, summary: "hotspot policies (b4c2355): hotspot_profiles.policy (the walled-garden policy, JSON)",
    postgres: "ALTER TABLE hotspot_profiles ADD COLUMN IF NOT EXISTS policy TEXT",
    sqlite(db) {
      addColumn(db, "hotspot_profiles", "policy", "TEXT");
    },
  },
  {
    version: 8, summary: "hotspot accounting in the registry (9f36985): hotspot_devices, hotspot_live",
    postgres: `
CREATE TABLE IF NOT EXISTS hotspot_devices (
  device_id TEXT PRIMARY KEY, last_auth TEXT, session TEXT, last_disconnect TEXT, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS hotspot_devices_by_update ON hotspot_devices (updated_at);
CREATE TABLE IF NOT EXISTS hotspot_live (
  nas TEXT NOT NULL, acct_session_id TEXT NOT NULL, device_id TEXT NOT NULL, session TEXT NOT NULL, updated_at BIGINT NOT NULL,
  PRIMARY KEY (nas, acct_session_id));
CREATE INDEX IF NOT EXISTS hotspot_live_by_device ON hotspot_live (device_id);
CREATE INDEX IF NOT EXISTS hotspot_live_by_update ON hotspot_live (updated_at);`,
    sqlite(db) {
      db.exec(`
CREATE TABLE IF NOT EXISTS hotspot_devices (
  device_id TEXT PRIMARY KEY, last_auth TEXT, session TEXT, last_disconnect TEXT, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS hotspot_devices_by_update ON hotspot_devices (updated_at);
CREATE TABLE IF NOT EXISTS hotspot_live (
  nas TEXT NOT NULL, acct_session_id TEXT NOT NULL, device_id TEXT NOT NULL, session TEXT NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (nas, acct_session_id));
CREATE INDEX IF NOT EXISTS hotspot_live_by_device ON hotspot_live (device_id);
CREATE INDEX IF NOT EXISTS hotspot_live_by_update ON hotspot_live (updated_at);`);
    },
  },
  {
    version: 9, summary: "login limits shared by every node (d493b3b): login_buckets, login_pairs (PostgreSQL only: SQLite keeps them in memory)",
    postgres: `
CREATE TABLE IF NOT EXISTS login_buckets (
  scope TEXT NOT NULL, key TEXT NOT NULL, tokens DOUBLE PRECISION NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (scope, key));
CREATE INDEX IF NOT EXISTS login_buckets_by_at ON login_buckets (scope, at);
CREATE TABLE IF NOT EXISTS login_pairs (
  device_id TEXT NOT NULL, source TEXT NOT NULL, failures INTEGER NOT NULL, lockouts INTEGER NOT NULL,
  locked_until BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (device_id, source));
CREATE INDEX IF NOT EXISTS login_pairs_by_age ON login_pairs (updated_at);`,
    sqlite() {},
  },
  {
    version: 10, summary: "RADIUS TLS sessions in the registry's storage (145a23b): radius_tls_sessions",
    postgres: `
CREATE TABLE IF NOT EXISTS radius_tls_sessions (id_mac BYTEA PRIMARY KEY, sealed BYTEA NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS radius_tls_sessions_expires ON radius_tls_sessions (expires);`,
    sqlite(db) {
      db.exec(`
CREATE TABLE IF NOT EXISTS radius_tls_sessions (id_mac BLOB PRIMARY KEY, sealed BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS radius_tls_sessions_expires ON radius_tls_sessions (expires);`);
    },
  },
  {
    version: 11, summary: "bundle imports in short transactions (issue 9 item 6): imported_bundles.complete (0 while an import's rows are still being written)",
    postgres: "ALTER TABLE imported_bundles ADD COLUMN IF NOT EXISTS complete INTEGER NOT NULL DEFAULT 1;",
    sqlite(db) {
      const columns = (db.prepare("PRAGMA table_info(imported_bundles)").all() as { name: string }[]).map((c) => c.name);
      if (!columns.includes("complete")) db.exec("ALTER TABLE imported_bundles ADD COLUMN complete INTEGER NOT NULL DEFAULT 1");
    },
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

function tooNew(found: number): CloudError {
  return new CloudError("SCHEMA_TOO_NEW", `the registry has schema version ${found}, newer than this cloud's ${SCHEMA_VERSION}: run the newer cloud (migrations only go forward)`);
}

/**
 * Brings a SQLite registry to SCHEMA_VERSION: each missing step in its own
 * IMMEDIATE transaction with its `user_version`. Returns the version it started from.
 * @throws CloudError SCHEMA_TOO_NEW when the file is newer than this code
 */
export function migrateSqlite(db: Database.Database): number {
  const from = db.pragma("user_version", { simple: true }) as number;
  if (from > SCHEMA_VERSION) throw tooNew(from);
  for (const step of MIGRATIONS) {
    if (step.version <= from) continue;
    db.transaction(() => {
      step.sqlite(db);
      db.pragma(`user_version = ${step.version}`);
    }).immediate();
  }
  return from;
}

/** Advisory lock key of PostgreSQL migrations. */
const SCHEMA_LOCK = 0x77636d01;

/**
 * Brings a PostgreSQL registry to SCHEMA_VERSION under an advisory lock: each
 * missing step in its own transaction with the new version in `schema_version`.
 * Returns the version it started from.
 * @throws CloudError SCHEMA_TOO_NEW when the database is newer than this code
 */
export async function migratePostgres(client: pg.ClientBase): Promise<number> {
  await client.query("SELECT pg_advisory_lock($1)", [SCHEMA_LOCK]);
  try {
    await client.query("CREATE TABLE IF NOT EXISTS schema_version (one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)");
    const row = (await client.query<{ version: number }>("SELECT version FROM schema_version")).rows[0];
    const from = row?.version ?? 0;
    if (from > SCHEMA_VERSION) throw tooNew(from);
    for (const step of MIGRATIONS) {
      if (step.version <= from) continue;
      await client.query("BEGIN");
      try {
        if (step.postgres) await client.query(step.postgres);
        await client.query("INSERT INTO schema_version (one, version) VALUES (1, $1) ON CONFLICT (one) DO UPDATE SET version = excluded.version", [step.version]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
    }
    return from;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [SCHEMA_LOCK]);
  }
}

/** The schema of the TLS resumption store (`tls-sessions.sqlite`: a cache, made if missing, never migrated: it may be deleted). */
export const TLS_STORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS tls_sessions (id_mac BLOB PRIMARY KEY, sealed BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tls_sessions_expires ON tls_sessions (expires);
CREATE TABLE IF NOT EXISTS tls_ticket_keys (period INTEGER PRIMARY KEY, sealed BLOB NOT NULL);
`;
