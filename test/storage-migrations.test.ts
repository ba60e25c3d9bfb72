/*
 * Schema migrations (cloud/storage/schema.ts): a registry at every schema
 * version that shipped before versions were recorded (test/fixtures/schema/,
 * the sqlite_master of a fresh registry made by each commit that changed the
 * tables, produced by running that commit's own Registry.open) is filled with
 * rows, sealed secrets included, and opened by today's code: every table and
 * column of today's schema exists, every row and value that was there is
 * unchanged, every sealed secret opens, and the version is recorded. A
 * registry newer than the code is refused untouched; PostgreSQL from its first
 * shipped schema (no version table) migrates the same way.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { isCloudError } from "../cloud/errors";
import { deviceSecretAad, Registry } from "../cloud/registry";
import { SecretBox } from "../cloud/sealing";
import { MIGRATIONS, SCHEMA_VERSION } from "../cloud/storage/schema";
import { PostgresStorage } from "../cloud/storage/postgres";
import { createDatabase, postgresUnavailable } from "./support/postgres";

const FIXTURES = new URL("./fixtures/schema/", import.meta.url).pathname;
const KEY = new Uint8Array(32).fill(0x5a);
const box = new SecretBox(KEY);
const secret = Buffer.alloc(32, 0x11);
const pending = Buffer.alloc(32, 0x22);
const lotKey = Buffer.alloc(32, 0x33);
const nasSecret = Buffer.from("radius-shared-secret");
const tlsKey = Buffer.from("server private key der");
const caKey = Buffer.from("ca private key der");

/** One row per table as today's code writes it; a fixture gets the columns its version has. */
function rows(): Record<string, Record<string, unknown>[]> {
  return {
    meta: [{ key: "key_check", value: box.seal(Buffer.from("wcm master key check v1"), "meta:key_check") }],
    server_tls: [{ name: "server", cert_pem: "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n", key_enc: box.seal(tlsKey, "server_tls:server") }],
    product_cas: [{ name: "lamps", cert_pem: "pem", fingerprint: "ab".repeat(32), key_enc: box.seal(caKey, "ca:lamps:key"), revoked: 0, created_at: 1000 }],
    devices: [
      {
        id: "lamp-1", kind: "secret", secret_enc: box.seal(secret, deviceSecretAad("lamp-1", 3)), generation: 3,
        pending_secret_enc: box.seal(pending, deviceSecretAad("lamp-1", 4)), pending_generation: 4, pending_nonce: Buffer.alloc(16, 1),
        last_counter: 41, state: "ONLINE", credential: "permanent", last_failure: "BAD_PASSWORD", last_failure_detail: "d", last_failure_at: 1500,
        last_seen: 1600, locked_until: 2000, lockouts: 2, created_at: 1001, seal_key: Buffer.alloc(65, 4), config_rev: 7, net_kind: "private",
        net_ssid: "home", net_seq: 3, net_sealed: Buffer.alloc(40, 5), net_sealed_seq: 3, net_action: "set",
      },
      { id: "temp-1", kind: "temporary", lot: "lot-a", last_counter: 5, created_at: 1002 },
      { id: "cert-1", kind: "certificate", ca_name: "lamps", cert_fingerprint: "cd".repeat(32), revoked: 1, created_at: 1003 },
    ],
    provisioning_keys: [{ lot: "lot-a", key_enc: box.seal(lotKey, "lot:lot-a:key"), has_allowlist: 1, retired: 0, revoked: 0, line_rate: 100, created_at: 1004 }],
    lot_devices: [{ lot: "lot-a", device_id: "temp-1" }, { lot: "lot-a", device_id: "temp-2" }],
    audit: [{ at: 1005, actor: "admin:cli", action: "registry.init", device_id: null, detail: null }, { at: 1006, actor: "mqtt", action: "login.ok", device_id: "lamp-1", detail: "x" }],
    imported_bundles: [{ sha256: "ef".repeat(32), lot: "lot-a", option: "temporary", devices: 2, at: 1007 }],
    nas_clients: [{ name: "ap-1", address: "10.0.0.2", secret_enc: box.seal(nasSecret, "nas:ap-1:secret"), created_at: 1008 }],
    hotspot_profiles: [{ position: 0, name: "zip", ssid: "ZipKey", server_name: "radius.example", ca_pem: "pem", policy: '{"sessionTimeout":3600}' }],
    hotspot_devices: [{ device_id: "lamp-1", last_auth: "{}", session: null, last_disconnect: null, updated_at: 1011 }],
    hotspot_live: [{ nas: "ap-1", acct_session_id: "s1", device_id: "lamp-1", session: "{}", updated_at: 1012 }],
    hotspot_revision: [{ id: 1, rev: 4, updated_at: 1009 }],
    revoked_certificates: [{ key: "lamps:0a", ca_name: "lamps", serial: "0a", fingerprint: null, source: "admin", reason: "lost", revoked_at: 1010 }],
  };
}

const columnsOf = (db: Database.Database, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
const tablesOf = (db: Database.Database) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
const dump = (db: Database.Database, table: string) => db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all() as Record<string, unknown>[];

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "wcm-migrate-"));
  chmodSync(dir, 0o700);
  return dir;
}

/** A registry file from a fixture, filled with the rows its version can hold; returns every table's rows. */
function buildAt(fixture: string, dir: string): Record<string, Record<string, unknown>[]> {
  const db = new Database(join(dir, "registry.sqlite"));
  chmodSync(join(dir, "registry.sqlite"), 0o600);
  db.exec(readFileSync(join(FIXTURES, fixture), "utf8"));
  assert.equal(db.pragma("user_version", { simple: true }), 0, "a shipped registry recorded no version");
  for (const [table, list] of Object.entries(rows())) {
    if (!tablesOf(db).includes(table)) continue;
    const have = new Set(columnsOf(db, table));
    for (const row of list) {
      const keys = Object.keys(row).filter((k) => have.has(k));
      db.prepare(`INSERT INTO ${table} (${keys.join(", ")}) VALUES (${keys.map(() => "?").join(", ")})`).run(...keys.map((k) => row[k]));
    }
  }
  const before: Record<string, Record<string, unknown>[]> = {};
  for (const table of tablesOf(db)) before[table] = dump(db, table);
  db.close();
  return before;
}

describe("storage migrations", () => {
  const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith(".sql")).sort((a, b) => Number(a.slice(1).split("-")[0]) - Number(b.slice(1).split("-")[0]));
  const dirs: string[] = [];
  let today: { tables: string[]; columns: Map<string, string[]> };

  before(async () => {
    const dir = freshDir();
    dirs.push(dir);
    await (await Registry.open(dir, KEY)).close();
    const db = new Database(join(dir, "registry.sqlite"), { readonly: true });
    today = { tables: tablesOf(db), columns: new Map(tablesOf(db).map((t) => [t, columnsOf(db, t)])) };
    assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
    db.close();
  });
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("migrations_OrderedFromOne_OneFixturePerShippedVersion", () => {
    assert.deepEqual(MIGRATIONS.map((m) => m.version), MIGRATIONS.map((_, i) => i + 1));
    // every SQLite schema that shipped before versions were recorded has its fixture (step 9 is PostgreSQL only)
    assert.deepEqual(fixtures.map((f) => Number(f.slice(1).split("-")[0])), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(SCHEMA_VERSION >= 9);
  });

  for (const fixture of ["v1-73d936b.sql", "v2-edad076.sql", "v3-4141cf1.sql", "v4-60e377d.sql", "v5-ec1e24c.sql", "v6-d630f55.sql", "v7-b4c2355.sql", "v8-9f36985.sql"]) {
    it(`open_RegistryAt_${fixture.replace(".sql", "")}_MigratesWithNoDataLost`, async () => {
      const dir = freshDir();
      dirs.push(dir);
      const before = buildAt(fixture, dir);
      const registry = await Registry.open(dir, KEY);
      try {
        // every sealed secret opens under the key it was sealed with
        const lamp = (await registry.device("lamp-1"))!;
        assert.deepEqual(Buffer.from(registry.activeSecret(lamp)!), secret);
        assert.deepEqual(Buffer.from(registry.pendingSecret(lamp)!), pending);
        assert.deepEqual(Buffer.from(registry.lotKey((await registry.lot("lot-a"))!)), lotKey);
        assert.deepEqual(Buffer.from((await registry.serverTls("server"))!.keyDer), tlsKey);
        assert.deepEqual(Buffer.from(registry.caKey((await registry.ca("lamps"))!)!), caKey);
        if (before.nas_clients) assert.deepEqual(Buffer.from(registry.nasSecret((await registry.nasClient("ap-1"))!)), nasSecret);
        assert.equal((await registry.auditLog(10)).length, 2);
        // the registry works at today's schema: a write that uses the newest columns
        await registry.setLineRate("lot-a", 5, "test");
      } finally {
        await registry.close();
      }
      const db = new Database(join(dir, "registry.sqlite"), { readonly: true });
      try {
        assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
        assert.deepEqual(tablesOf(db), today.tables);
        for (const table of today.tables) assert.deepEqual([...columnsOf(db, table)].sort(), [...today.columns.get(table)!].sort(), table);
        for (const [table, old] of Object.entries(before)) {
          const now = dump(db, table);
          if (table === "audit") {
            // appended to (lot.line-rate), never changed
            assert.deepEqual(now.slice(0, old.length), old.map((row, i) => ({ ...now[i], ...row })));
            continue;
          }
          assert.equal(now.length, old.length, table);
          for (let i = 0; i < old.length; i++) {
            const expect = table === "provisioning_keys" ? { ...old[i], line_rate: 5, rate_alert_at: null } : old[i];
            for (const [column, value] of Object.entries(expect)) assert.deepEqual(now[i][column], value, `${table}.${column}`);
          }
        }
        // defaults of the added columns, and the claims of rows made before claims were recorded
        const temp = db.prepare("SELECT lockouts, net_seq, claimed_at, created_at FROM devices WHERE id = 'temp-1'").get() as Record<string, number>;
        assert.equal(temp.lockouts, 0);
        assert.equal(temp.net_seq, 0);
        assert.equal(temp.claimed_at, Number(fixture.slice(1).split("-")[0]) >= 6 ? null : temp.created_at);
      } finally {
        db.close();
      }
    });
  }

  it("open_CurrentRegistry_RunsNoStep_SecondOpenSameSchema", async () => {
    const dir = freshDir();
    dirs.push(dir);
    await (await Registry.open(dir, KEY)).close();
    const schema = () => {
      const db = new Database(join(dir, "registry.sqlite"), { readonly: true });
      const sql = db.prepare("SELECT sql FROM sqlite_master ORDER BY name").all();
      db.close();
      return sql;
    };
    const first = schema();
    await (await Registry.open(dir, KEY)).close();
    assert.deepEqual(schema(), first);
  });

  it("open_RegistryNewerThanTheCode_SchemaTooNew_FileUnchanged", async () => {
    const dir = freshDir();
    dirs.push(dir);
    await (await Registry.open(dir, KEY)).close();
    let db = new Database(join(dir, "registry.sqlite"));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.exec("CREATE TABLE from_the_future (x INTEGER)");
    db.close();
    await assert.rejects(Registry.open(dir, KEY), (error) => isCloudError(error, "SCHEMA_TOO_NEW") && /newer than this cloud/.test(error.message));
    db = new Database(join(dir, "registry.sqlite"), { readonly: true });
    assert.equal(db.pragma("user_version", { simple: true }), SCHEMA_VERSION + 1);
    assert.ok(tablesOf(db).includes("from_the_future"));
    db.close();
  });

  it("connect_PostgresAtItsFirstSchema_MigratesWithNoDataLost", async function () {
    const why = postgresUnavailable();
    if (why) {
      this.skip();
      return;
    }
    const url = await createDatabase();
    // the database as df99e63 left it: step 6's DDL, no schema_version table, a device and a lot in it
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(MIGRATIONS.find((m) => m.version === 6)!.postgres!);
      await client.query("INSERT INTO meta (key, value) VALUES ('key_check', $1)", [box.seal(Buffer.from("wcm master key check v1"), "meta:key_check")]);
      await client.query("INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES ('lamp-1', 'secret', $1, 3, 1001)", [box.seal(secret, deviceSecretAad("lamp-1", 3))]);
      await client.query("INSERT INTO provisioning_keys (lot, key_enc, has_allowlist, created_at) VALUES ('lot-a', $1, 0, 1004)", [box.seal(lotKey, "lot:lot-a:key")]);
    } finally {
      await client.end();
    }
    const registry = await Registry.over(await PostgresStorage.connect(url), KEY);
    try {
      assert.deepEqual(Buffer.from(registry.activeSecret((await registry.device("lamp-1"))!)!), secret);
      assert.deepEqual(Buffer.from(registry.lotKey((await registry.lot("lot-a"))!)), lotKey);
      assert.equal((await registry.storage.get<{ version: number }>("SELECT version FROM schema_version"))!.version, SCHEMA_VERSION);
    } finally {
      await registry.close();
    }
    // a second connect runs no step; a newer database is refused
    const again = await PostgresStorage.connect(url);
    await again.run("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 1]);
    await again.close();
    await assert.rejects(PostgresStorage.connect(url), (error) => isCloudError(error, "SCHEMA_TOO_NEW"));
  });
});
