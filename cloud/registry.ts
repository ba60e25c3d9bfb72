/*
 * The device registry on SQLite (better-sqlite3).
 *
 * Holds product CAs, devices, provisioning keys (lots) and their allowlists,
 * the cloud's own TLS identity and an append-only audit log. Every secret and
 * private key is sealed with AES-256-GCM under the master key (sealing.ts),
 * bound to its row. Each method that writes runs in one transaction and writes
 * its audit record in that same transaction, so a refusal changes nothing.
 *
 * Durability: WAL with synchronous=NORMAL. Every transaction commits before the
 * answer that depends on it leaves, so a crash of the cloud process (SIGKILL)
 * loses nothing; an OS crash or power loss may roll back the last transactions.
 * The protocol is built to survive exactly that (docs/protocol.md, issuance
 * recovery): a lost pending secret makes the device fall back to the credential
 * it replaces, a lost commit is redone by the device's next login, a lost
 * counter update reopens at most the last logins' counters. FULL would add an
 * fsync to every login on the event loop (measured: ~80 logins/s instead of
 * several hundred on this machine).
 *
 * Callers validate input (services.ts, login.ts, issuance.ts); this module
 * enforces state rules (exists, revoked, pending) and throws CloudError.
 */
import Database from "better-sqlite3";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CloudError } from "./errors";
import { assertOwnerOnly, ensureOwnerOnlyDir, touchOwnerOnlyFile } from "./owner-files";
import { SecretBox } from "./sealing";
import { deviceNetworkView, migrateNetworkSchema, type DeviceNetworkView } from "./network-registry";

/** How a device proves its identity to the cloud. */
export type DeviceKind = "secret" | "certificate" | "temporary";

/** A device row as stored (sealed columns are opaque blobs). */
export interface DeviceRow {
  id: string;
  kind: DeviceKind;
  secret_enc: Buffer | null;
  generation: number;
  pending_secret_enc: Buffer | null;
  pending_generation: number | null;
  pending_nonce: Buffer | null;
  lot: string | null;
  ca_name: string | null;
  cert_fingerprint: string | null;
  temp_retired: number;
  revoked: number;
  last_counter: number;
  state: string | null;
  credential: string | null;
  last_failure: string | null;
  last_failure_detail: string | null;
  last_failure_at: number | null;
  last_seen: number | null;
  /** end of a lockout (ms), or null */
  locked_until: number | null;
  /** lockouts since the last successful login or unlock (the next one lasts longer) */
  lockouts: number;
  /** when a temporary login first claimed the id (since registration or the last reprovision), or null */
  claimed_at: number | null;
  created_at: number;
}

/** What the admin sees of a device: never a secret. */
export interface DeviceView {
  deviceId: string;
  kind: DeviceKind;
  generation: number;
  pendingGeneration: number | null;
  lot: string | null;
  ca: string | null;
  certFingerprint: string | null;
  tempRetired: boolean;
  revoked: boolean;
  state: string | null;
  credential: string | null;
  lastFailure: string | null;
  lastFailureDetail: string | null;
  lastFailureAt: string | null;
  lastSeen: string | null;
  /** hotspot revision, sealing key, network, pending change, last result, reported failures (cloud/network-registry.ts) */
  network: DeviceNetworkView;
  /** end of the current lockout, when the device is locked out */
  lockedUntil: string | null;
  /** lockouts since the last successful login or unlock */
  lockouts: number;
  createdAt: string;
}

/** A product CA row. */
export interface CaRow {
  name: string;
  cert_pem: string;
  fingerprint: string;
  key_enc: Buffer | null;
  revoked: number;
  created_at: number;
}

/** One revoked certificate: by its CA and serial, or by its SHA-256 fingerprint. */
export interface RevokedCertificate {
  /** the CA whose serial this is (null for a fingerprint entry) */
  caName: string | null;
  /** normalized serial (pki.normalizeSerial), or null */
  serial: string | null;
  /** SHA-256 fingerprint, or null */
  fingerprint: string | null;
  /** "admin" (cert revoke) or "crl" (ca import-crl) */
  source: "admin" | "crl";
  reason: string | null;
  revokedAt: string;
}

/** A provisioning key (lot) row. */
export interface LotRow {
  lot: string;
  key_enc: Buffer;
  has_allowlist: number;
  retired: number;
  /** the key was revoked (compromised): implies retired */
  revoked: number;
  /** the line's expected rate of first claims (claims per hour), or null */
  line_rate: number | null;
  /** when lot.claim-rate-exceeded was last audited (at most once an hour) */
  rate_alert_at: number | null;
  created_at: number;
}

/** How a first claim arrived (audited with device.claim): never a secret. */
export interface ClaimSource {
  /** the TCP source address */
  address: string;
  /** TLS protocol version, e.g. TLSv1.2 */
  tls: string;
  /** the negotiated cipher suite */
  cipher: string;
  /** whether the client presented a certificate */
  clientCertificate: boolean;
}

/** The audit detail of a claim's source. */
export function claimDetail(source: ClaimSource | undefined): string {
  if (!source) return "source=unknown";
  const clean = (text: string) => text.replace(/[^A-Za-z0-9.:_-]/g, "?").slice(0, 64);
  return `source=${clean(source.address)} tls=${clean(source.tls)} cipher=${clean(source.cipher)} client-cert=${source.clientCertificate ? "yes" : "no"}`;
}

/** One hour, the window of a lot's line rate. */
export const LINE_RATE_WINDOW_MS = 3_600_000;

/** A RADIUS client (access point or controller) row; `address` is an IP address or "*" (matched by NAS-Identifier). */
export interface NasClientRow {
  name: string;
  address: string;
  secret_enc: Buffer;
  created_at: number;
}

/** Filters of Registry.auditLog (all optional, combined with AND). */
export interface AuditFilter {
  /** exact action, or a prefix ending in `.` or `*` (e.g. `login.`, `device.*`) */
  action?: string;
  actor?: string;
  /** ms since the epoch, inclusive */
  since?: number;
  /** ms since the epoch, exclusive */
  until?: number;
  /** only records with a smaller sequence number (paging) */
  before?: number;
}

/** One audit record. */
export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  deviceId: string | null;
  detail: string | null;
}

const SCHEMA = `
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
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
`;

/** Columns added after the first schema: added to older registries at open. */
const ADDED_COLUMNS: [table: string, column: string, declaration: string][] = [
  ["devices", "locked_until", "INTEGER"],
  ["devices", "lockouts", "INTEGER NOT NULL DEFAULT 0"],
  ["provisioning_keys", "revoked", "INTEGER NOT NULL DEFAULT 0"],
  ["provisioning_keys", "line_rate", "INTEGER"],
  ["provisioning_keys", "rate_alert_at", "INTEGER"],
  ["devices", "claimed_at", "INTEGER"],
];

const KEY_CHECK_PLAINTEXT = "wcm master key check v1";

/** Additional data that binds a sealed device secret to its row and generation. */
export function deviceSecretAad(id: string, generation: number): string {
  return `device:${id}:secret:${generation}`;
}

interface RevokedRow {
  key: string; ca_name: string | null; serial: string | null; fingerprint: string | null; source: "admin" | "crl"; reason: string | null; revoked_at: number;
}

function revokedView(row: RevokedRow): RevokedCertificate {
  return { caName: row.ca_name, serial: row.serial, fingerprint: row.fingerprint, source: row.source, reason: row.reason, revokedAt: new Date(row.revoked_at).toISOString() };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Options of Registry.open. */
export interface RegistryOptions {
  /** wall clock in ms (tests may pin it) */
  now?: () => number;
}

/** The registry. Synchronous: better-sqlite3 runs each statement to completion. */
export class Registry {
  readonly db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  readonly box: SecretBox;
  readonly now: () => number;
  /** the database file */
  readonly path: string;

  private constructor(db: Database.Database, box: SecretBox, path: string, now: () => number) {
    this.db = db;
    this.box = box;
    this.path = path;
    this.now = now;
  }
  /** The prepared statement for `sql`, made once and reused (preparing costs more than running). */
  stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }


  /**
   * Opens (creating if needed) `<dataDir>/registry.sqlite` and checks the master key.
   * The folder is made 0700 and the file 0600 from the start.
   * @throws CloudError FILE_INSECURE when the folder or the file is open to group or others
   * @throws CloudError MASTER_KEY_WRONG when the database was created under another key
   */
  static open(dataDir: string, masterKey: Uint8Array, options: RegistryOptions = {}): Registry {
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
      for (const [table, column, declaration] of ADDED_COLUMNS) {
        const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
        const hasColumn = db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(column) !== undefined;
        if (hasTable && !hasColumn) {
          db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${declaration}`);
          // rows of temporary lots from before claims were recorded were claimed when they were made
          if (column === "claimed_at") db.exec("UPDATE devices SET claimed_at = created_at WHERE lot IS NOT NULL");
        }
      }
      db.exec(SCHEMA);
      migrateNetworkSchema(db);
      const registry = new Registry(db, new SecretBox(masterKey), path, options.now ?? Date.now);
      registry.checkMasterKey();
      return registry;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private checkMasterKey(): void {
    const row = this.stmt("SELECT value FROM meta WHERE key = 'key_check'").get() as { value: Buffer } | undefined;
    if (!row) {
      const sealed = this.box.seal(Buffer.from(KEY_CHECK_PLAINTEXT), "meta:key_check");
      this.stmt("INSERT INTO meta (key, value) VALUES ('key_check', ?)").run(sealed);
      return;
    }
    const opened = Buffer.from(this.box.open(row.value, "meta:key_check")).toString();
    if (opened !== KEY_CHECK_PLAINTEXT) throw new CloudError("MASTER_KEY_WRONG", "the registry was created under another master key");
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in one IMMEDIATE transaction; a throw rolls everything back. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Appends an audit record. Never pass a secret in `detail`. */
  audit(actor: string, action: string, deviceId?: string | null, detail?: string | null): void {
    this.stmt("INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, ?, ?, ?)")
      .run(this.now(), actor.slice(0, 64), action.slice(0, 64), deviceId ?? null, detail === undefined || detail === null ? null : detail.slice(0, 200));
  }

  /**
   * The most recent audit records, newest first (at most `limit`, 1..10000),
   * filtered by device, action (exact, or a prefix ending in `.` or `*`), actor,
   * time range (ms, `since` inclusive, `until` exclusive) and below a sequence
   * number (`before`, for paging).
   */
  auditLog(limit = 100, deviceId?: string, filter: AuditFilter = {}): AuditRecord[] {
    const bounded = Math.max(1, Math.min(10_000, Math.floor(limit)));
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (deviceId !== undefined) {
      where.push("device_id = ?");
      args.push(deviceId);
    }
    if (filter.action !== undefined) {
      if (filter.action.endsWith("*") || filter.action.endsWith(".")) {
        const prefix = filter.action.replace(/\*$/, "");
        where.push("substr(action, 1, ?) = ?");
        args.push(prefix.length, prefix);
      } else {
        where.push("action = ?");
        args.push(filter.action);
      }
    }
    if (filter.actor !== undefined) {
      where.push("actor = ?");
      args.push(filter.actor);
    }
    if (filter.since !== undefined) {
      where.push("at >= ?");
      args.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push("at < ?");
      args.push(filter.until);
    }
    if (filter.before !== undefined) {
      where.push("seq < ?");
      args.push(filter.before);
    }
    const sql = `SELECT * FROM audit${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`;
    const rows = this.stmt(sql).all(...args, bounded) as
      { seq: number; at: number; actor: string; action: string; device_id: string | null; detail: string | null }[];
    return rows.map((r) => ({ seq: r.seq, at: iso(r.at)!, actor: r.actor, action: r.action, deviceId: r.device_id, detail: r.detail }));
  }

  // ------------------------------------------------------------ server TLS identity

  /** The stored server identity, if any. */
  serverTls(name: string): { certPem: string; keyDer: Uint8Array } | undefined {
    const row = this.stmt("SELECT cert_pem, key_enc FROM server_tls WHERE name = ?").get(name) as { cert_pem: string; key_enc: Buffer } | undefined;
    return row && { certPem: row.cert_pem, keyDer: this.box.open(row.key_enc, `server_tls:${name}`) };
  }

  /** Stores a server certificate and its (sealed) key under `name`, unless one exists. */
  storeServerTls(name: string, certPem: string, keyDer: Uint8Array): void {
    this.stmt("INSERT OR IGNORE INTO server_tls (name, cert_pem, key_enc) VALUES (?, ?, ?)")
      .run(name, certPem, this.box.seal(keyDer, `server_tls:${name}`));
  }

  /** Replaces (or stores) the server certificate and sealed key under `name` (a renewal). */
  replaceServerTls(name: string, certPem: string, keyDer: Uint8Array): void {
    this.stmt("INSERT INTO server_tls (name, cert_pem, key_enc) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET cert_pem = excluded.cert_pem, key_enc = excluded.key_enc")
      .run(name, certPem, this.box.seal(keyDer, `server_tls:${name}`));
  }

  // ------------------------------------------------------------ product CAs

  /** A product CA by name. */
  ca(name: string): CaRow | undefined {
    return this.stmt("SELECT * FROM product_cas WHERE name = ?").get(name) as CaRow | undefined;
  }

  /** Every product CA (revoked ones too). */
  cas(): CaRow[] {
    return this.stmt("SELECT * FROM product_cas ORDER BY name").all() as CaRow[];
  }

  /** The CA's private key, when the cloud created the CA. */
  caKey(row: CaRow): Uint8Array | undefined {
    return row.key_enc ? this.box.open(row.key_enc, `ca:${row.name}:key`) : undefined;
  }

  /** Inserts a product CA. @throws CA_EXISTS */
  insertCa(name: string, certPem: string, fp: string, keyDer: Uint8Array | undefined, actor: string): void {
    this.tx(() => {
      if (this.ca(name)) throw new CloudError("CA_EXISTS", `a CA named ${name} exists`, { field: "name" });
      if (this.stmt("SELECT 1 FROM product_cas WHERE fingerprint = ?").get(fp)) {
        throw new CloudError("CA_EXISTS", "this certificate is already registered under another name", { field: "certificate" });
      }
      this.stmt("INSERT INTO product_cas (name, cert_pem, fingerprint, key_enc, revoked, created_at) VALUES (?, ?, ?, ?, 0, ?)")
        .run(name, certPem, fp, keyDer ? this.box.seal(keyDer, `ca:${name}:key`) : null, this.now());
      this.audit(actor, keyDer ? "ca.create" : "ca.register", null, `ca=${name} sha256=${fp.slice(0, 16)}`);
    });
  }

  /** Revokes a product CA: every device under it is refused from the next connect. @throws CA_NOT_FOUND */
  revokeCa(name: string, actor: string): void {
    this.tx(() => {
      if (!this.ca(name)) throw new CloudError("CA_NOT_FOUND", `no CA named ${name}`, { field: "name" });
      this.stmt("UPDATE product_cas SET revoked = 1 WHERE name = ?").run(name);
      this.audit(actor, "ca.revoke", null, `ca=${name}`);
    });
  }

  // ------------------------------------------------------------ revoked certificates

  /**
   * The revocation of a certificate of CA `caName` with `serial` (normalized)
   * or SHA-256 `fingerprint`, if either is revoked. One indexed lookup.
   */
  certificateRevocation(caName: string, serial: string, fingerprint: string): RevokedCertificate | undefined {
    const row = this.stmt("SELECT * FROM revoked_certificates WHERE key IN (?, ?) LIMIT 1").get(`serial:${caName}:${serial}`, `sha256:${fingerprint}`) as RevokedRow | undefined;
    return row && revokedView(row);
  }

  /**
   * Revokes one certificate, by (CA, serial) or by fingerprint; audited
   * (`certificate.revoke`). Returns false when it was already revoked (nothing written).
   * @throws CA_NOT_FOUND for an unknown CA
   */
  revokeCertificate(entry: { caName: string; serial: string } | { fingerprint: string }, reason: string | null, actor: string): boolean {
    return this.tx(() => {
      if ("caName" in entry && !this.ca(entry.caName)) throw new CloudError("CA_NOT_FOUND", `no CA named ${entry.caName}`, { field: "caName" });
      const key = "caName" in entry ? `serial:${entry.caName}:${entry.serial}` : `sha256:${entry.fingerprint}`;
      const result = this.stmt("INSERT OR IGNORE INTO revoked_certificates (key, ca_name, serial, fingerprint, source, reason, revoked_at) VALUES (?, ?, ?, ?, 'admin', ?, ?)")
        .run(key, "caName" in entry ? entry.caName : null, "caName" in entry ? entry.serial : null, "fingerprint" in entry ? entry.fingerprint : null, reason, this.now());
      if (result.changes === 0) return false;
      const what = "caName" in entry ? `ca=${entry.caName} serial=${entry.serial}` : `sha256=${entry.fingerprint}`;
      this.audit(actor, "certificate.revoke", null, `${what}${reason ? ` reason=${reason}` : ""}`);
      return true;
    });
  }

  /**
   * Adds the serials of a verified CRL of CA `caName` to the revoked
   * certificates (entries are never removed: certificateHold is not honoured
   * as temporary); one audit row `ca.crl-import`. Returns how many were new.
   */
  importCrlSerials(caName: string, serials: string[], crlNumber: string | undefined, actor: string): number {
    return this.tx(() => {
      if (!this.ca(caName)) throw new CloudError("CA_NOT_FOUND", `no CA named ${caName}`, { field: "caName" });
      const insert = this.stmt("INSERT OR IGNORE INTO revoked_certificates (key, ca_name, serial, fingerprint, source, reason, revoked_at) VALUES (?, ?, ?, NULL, 'crl', ?, ?)");
      const now = this.now();
      let added = 0;
      for (const serial of serials) added += insert.run(`serial:${caName}:${serial}`, caName, serial, crlNumber === undefined ? "crl" : `crl ${crlNumber}`, now).changes;
      this.audit(actor, "ca.crl-import", null, `ca=${caName}${crlNumber === undefined ? "" : ` crlNumber=${crlNumber}`} entries=${serials.length} new=${added}`);
      return added;
    });
  }

  /** Revoked certificates, newest first (of one CA, or all), at most `limit` (1..10000). */
  revokedCertificates(caName?: string, limit = 1000): RevokedCertificate[] {
    const bounded = Math.max(1, Math.min(10_000, Math.floor(limit)));
    const rows = (caName === undefined
      ? this.stmt("SELECT * FROM revoked_certificates ORDER BY revoked_at DESC, key LIMIT ?").all(bounded)
      : this.stmt("SELECT * FROM revoked_certificates WHERE ca_name = ? ORDER BY revoked_at DESC, key LIMIT ?").all(caName, bounded)) as RevokedRow[];
    return rows.map(revokedView);
  }

  // ------------------------------------------------------------ devices

  /** A device row, or undefined. */
  device(id: string): DeviceRow | undefined {
    return this.stmt("SELECT * FROM devices WHERE id = ?").get(id) as DeviceRow | undefined;
  }

  /** The device's active secret (secret devices only). */
  activeSecret(row: DeviceRow): Uint8Array | undefined {
    return row.secret_enc ? this.box.open(row.secret_enc, deviceSecretAad(row.id, row.generation)) : undefined;
  }

  /** The device's pending (issued, not yet committed) secret. */
  pendingSecret(row: DeviceRow): Uint8Array | undefined {
    return row.pending_secret_enc && row.pending_generation !== null
      ? this.box.open(row.pending_secret_enc, deviceSecretAad(row.id, row.pending_generation))
      : undefined;
  }

  /** A device as the admin sees it. */
  view(row: DeviceRow): DeviceView {
    return {
      deviceId: row.id, kind: row.kind, generation: row.generation, pendingGeneration: row.pending_generation,
      lot: row.lot, ca: row.ca_name, certFingerprint: row.cert_fingerprint,
      tempRetired: row.temp_retired === 1, revoked: row.revoked === 1,
      state: row.state, credential: row.credential,
      lastFailure: row.last_failure, lastFailureDetail: row.last_failure_detail, lastFailureAt: iso(row.last_failure_at),
      lastSeen: iso(row.last_seen),
      network: deviceNetworkView(row as never),
      lockedUntil: row.locked_until !== null && row.locked_until > this.now() ? iso(row.locked_until) : null, lockouts: row.lockouts ?? 0,
      createdAt: iso(row.created_at)!,
    };
  }

  /** Devices in id order, `limit` (1..10000) from `offset`. */
  listDevices(limit = 1000, offset = 0): DeviceView[] {
    const rows = this.stmt("SELECT * FROM devices ORDER BY id LIMIT ? OFFSET ?")
      .all(Math.max(1, Math.min(10_000, Math.floor(limit))), Math.max(0, Math.floor(offset))) as DeviceRow[];
    return rows.map((row) => this.view(row));
  }

  /** Number of devices. */
  countDevices(): number {
    return (this.stmt("SELECT COUNT(*) AS n FROM devices").get() as { n: number }).n;
  }

  private requireAbsent(id: string): void {
    if (this.device(id)) throw new CloudError("DEVICE_EXISTS", `device ${id} is already registered`, { field: "id" });
  }

  /** Inserts a shared-secret device (generation 0, the manufactured secret). Call inside tx(). @throws DEVICE_EXISTS */
  insertSecretDevice(id: string, secret: Uint8Array, actor: string): void {
    this.requireAbsent(id);
    this.stmt("INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES (?, 'secret', ?, 0, ?)")
      .run(id, this.box.seal(secret, deviceSecretAad(id, 0)), this.now());
    this.audit(actor, "device.register", id, "kind=secret");
  }

  /** Inserts a certificate device under a CA, optionally pinned to one certificate. Call inside tx(). @throws DEVICE_EXISTS */
  insertCertificateDevice(id: string, caName: string, certFingerprint: string | null, actor: string): void {
    this.requireAbsent(id);
    this.stmt("INSERT INTO devices (id, kind, ca_name, cert_fingerprint, created_at) VALUES (?, 'certificate', ?, ?, ?)")
      .run(id, caName, certFingerprint, this.now());
    this.audit(actor, "device.register", id, `kind=certificate ca=${caName}${certFingerprint ? ` sha256=${certFingerprint.slice(0, 16)}` : ""}`);
  }

  /** Pins a certificate device to a new certificate (re-issue). Call inside tx(). */
  pinCertificate(id: string, certFingerprint: string, actor: string): void {
    this.stmt("UPDATE devices SET cert_fingerprint = ? WHERE id = ?").run(certFingerprint, id);
    this.audit(actor, "device.certificate", id, `sha256=${certFingerprint.slice(0, 16)}`);
  }

  /**
   * Resets a device's login counter to 0, so a device whose flash was erased
   * (its counter restarts at 1) can log in again. Audited. @throws DEVICE_NOT_FOUND
   */
  resetLoginCounter(id: string, actor: string): void {
    this.tx(() => {
      if (!this.device(id)) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      this.stmt("UPDATE devices SET last_counter = 0 WHERE id = ?").run(id);
      this.audit(actor, "device.counter-reset", id);
    });
  }

  /** Revokes a device. @throws DEVICE_NOT_FOUND */
  revokeDevice(id: string, actor: string): void {
    this.tx(() => {
      if (!this.device(id)) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      this.stmt("UPDATE devices SET revoked = 1 WHERE id = ?").run(id);
      this.audit(actor, "device.revoke", id);
    });
  }

  /**
   * Accepts a login: stores `counter` only if it exceeds the stored one (compare
   * and set, durable before the caller sends CONNACK). Returns false on a replay.
   */
  acceptLoginCounter(id: string, counter: number): boolean {
    const result = this.stmt("UPDATE devices SET last_counter = ?, last_seen = ?, lockouts = 0, locked_until = NULL WHERE id = ? AND last_counter < ? AND revoked = 0")
      .run(counter, this.now(), id, counter);
    return result.changes === 1;
  }

  /** Accepts a certificate login (no counter). */
  touch(id: string): void {
    this.stmt("UPDATE devices SET last_seen = ?, lockouts = 0, locked_until = NULL WHERE id = ?").run(this.now(), id);
  }

  /**
   * Creates the row of a temporary device at its first successful login (its
   * claim, audited as device.claim with `source`). Returns false if a row appeared meanwhile.
   */
  insertTemporaryDevice(id: string, lot: string, counter: number, source?: ClaimSource): boolean {
    return this.tx(() => {
      if (this.device(id)) return false;
      const now = this.now();
      this.stmt("INSERT INTO devices (id, kind, generation, lot, last_counter, last_seen, claimed_at, created_at) VALUES (?, 'temporary', 0, ?, ?, ?, ?, ?)")
        .run(id, lot, counter, now, now, now);
      this.audit("mqtt", "device.claim", id, `lot=${lot} ${claimDetail(source)}`);
      this.#checkLineRate(lot, now);
      return true;
    });
  }

  /**
   * Records the claim of a temporary row that has none (a reprovisioned device's
   * next temporary login), audited as device.claim. Returns false when it was claimed already.
   */
  recordClaim(id: string, source?: ClaimSource): boolean {
    return this.tx(() => {
      const now = this.now();
      const row = this.device(id);
      if (!row || row.lot === null || row.claimed_at !== null) return false;
      this.stmt("UPDATE devices SET claimed_at = ? WHERE id = ?").run(now, id);
      this.audit("mqtt", "device.claim", id, `lot=${row.lot} ${claimDetail(source)} reprovisioned`);
      this.#checkLineRate(row.lot, now);
      return true;
    });
  }

  /** Claims of `lot` in the hour before `now`. */
  claimsLastHour(lot: string, now = this.now()): number {
    return (this.stmt("SELECT COUNT(*) AS n FROM devices WHERE lot = ? AND claimed_at > ?").get(lot, now - LINE_RATE_WINDOW_MS) as { n: number }).n;
  }

  /** Audits lot.claim-rate-exceeded (at most once an hour) when the lot's claims in the last hour pass its line rate. Call inside tx(). */
  #checkLineRate(lot: string, now: number): void {
    const row = this.lot(lot);
    if (!row || row.line_rate === null) return;
    const claims = this.claimsLastHour(lot, now);
    if (claims <= row.line_rate) return;
    if (row.rate_alert_at !== null && row.rate_alert_at > now - LINE_RATE_WINDOW_MS) return;
    this.stmt("UPDATE provisioning_keys SET rate_alert_at = ? WHERE lot = ?").run(now, lot);
    this.audit("mqtt", "lot.claim-rate-exceeded", null, `lot=${lot} claims=${claims} in 1h lineRate=${row.line_rate}/h`);
  }

  /**
   * Takes a squatted identity back (services.reprovisionDevice): the device's
   * secrets (active and pending, the squatter's) are dropped, its temporary
   * credential is live again, its login counter, lockouts and claim are reset,
   * a revocation is lifted, and network state sealed to the old holder's key is
   * dropped, so the genuine device's next temporary login is accepted and issues
   * a new secret. Audited. Returns the previous generation.
   * @throws DEVICE_NOT_FOUND, INVALID_INPUT (not a device of a temporary lot), LOT_RETIRED (the lot is retired or its key revoked)
   */
  reprovision(id: string, actor: string): { previousGeneration: number; wasRevoked: boolean } {
    return this.tx(() => {
      const row = this.device(id);
      if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
      if (row.lot === null) throw new CloudError("INVALID_INPUT", "only a device of a temporary lot can be reprovisioned (others: register it again)", { field: "deviceId" });
      const lot = this.lot(row.lot);
      if (!lot) throw new CloudError("LOT_NOT_FOUND", `no lot ${row.lot}`, { field: "deviceId" });
      if (lot.revoked) throw new CloudError("LOT_RETIRED", `lot ${lot.lot}'s key is revoked: its devices cannot log in with it again`, { field: "deviceId" });
      if (lot.retired) throw new CloudError("LOT_RETIRED", `lot ${lot.lot} is retired: no temporary login would be accepted`, { field: "deviceId" });
      this.stmt(
        `UPDATE devices SET kind = 'temporary', secret_enc = NULL, pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL,
           temp_retired = 0, revoked = 0, last_counter = 0, locked_until = NULL, lockouts = 0, claimed_at = NULL,
           state = NULL, credential = NULL, seal_key = NULL, net_sealed = NULL, net_sealed_seq = NULL, net_action = NULL WHERE id = ?`,
      ).run(id);
      this.audit(actor, "device.reprovision", id, `lot=${lot.lot} previous-generation=${row.generation}${row.revoked ? " was-revoked" : ""}`);
      return { previousGeneration: row.generation, wasRevoked: row.revoked === 1 };
    });
  }

  /**
   * Records why a login or request of `id` failed (on the row if it exists, and in the audit log).
   * @param via - who refused: "mqtt" (login.refused) or "radius" (radius.refused)
   * @param suppressed - earlier refusals of `id` that were not written (cloud/limits.ts RefusalAudit)
   */
  recordFailure(id: string, code: string, detail?: string, via: "mqtt" | "radius" = "mqtt", suppressed = 0): void {
    this.tx(() => {
      this.stmt("UPDATE devices SET last_failure = ?, last_failure_detail = ?, last_failure_at = ? WHERE id = ?")
        .run(code, detail === undefined ? null : detail.slice(0, 200), this.now(), id);
      const more = suppressed > 0 ? ` (+${suppressed} refusals not written)` : "";
      this.audit(via, via === "radius" ? "radius.refused" : "login.refused", id, `${detail ? `${code}: ${detail}` : code}${more}`);
    });
  }

  /**
   * Records that attempts for a device from one source are locked out until
   * `until` (ms; cloud/auth keeps the lock, per id and source, in memory: a
   * proven credential still gets in). Stored as the last failure and
   * `lockedUntil` for operators, and audited. Returns false when there is no
   * such device row.
   */
  lockDevice(id: string, until: number, lockouts: number, detail: string, via: "mqtt" | "radius" = "mqtt"): boolean {
    return this.tx(() => {
      const result = this.stmt(
        "UPDATE devices SET locked_until = ?, lockouts = ?, last_failure = 'LOCKED_OUT', last_failure_detail = ?, last_failure_at = ? WHERE id = ?",
      ).run(until, lockouts, detail.slice(0, 200), this.now(), id);
      if (result.changes !== 1) return false;
      this.audit(via, "login.lockout", id, `until=${new Date(until).toISOString()} lockout=${lockouts} ${detail}`);
      return true;
    });
  }

  /** Ends a device's lockout and forgets its lockout count. Audited. @throws DEVICE_NOT_FOUND */
  unlockDevice(id: string, actor: string): void {
    this.tx(() => {
      const row = this.device(id);
      if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      this.stmt("UPDATE devices SET locked_until = NULL, lockouts = 0 WHERE id = ?").run(id);
      this.audit(actor, "device.unlock", id, row.locked_until !== null && row.locked_until > this.now() ? "was locked" : "was not locked");
    });
  }

  /**
   * Stores a newly issued secret as pending, unless one is pending already.
   * Returns false (nothing stored) when a pending secret exists.
   */
  storePending(id: string, secret: Uint8Array, generation: number, nonce: Uint8Array, actor: string): boolean {
    return this.tx(() => {
      const result = this.stmt(
        "UPDATE devices SET pending_secret_enc = ?, pending_generation = ?, pending_nonce = ? WHERE id = ? AND pending_secret_enc IS NULL AND revoked = 0",
      ).run(this.box.seal(secret, deviceSecretAad(id, generation)), generation, Buffer.from(nonce), id);
      if (result.changes !== 1) return false;
      this.audit(actor, "secret.issue", id, `gen=${generation}`);
      return true;
    });
  }

  /**
   * Makes the pending secret of generation `generation` the active one, in one
   * transaction: the old secret and the temporary credential stop working at the
   * same instant the new one starts. With `counter`, also stores the login counter
   * (a login with the pending secret). Returns false when nothing matching is pending
   * or the counter is stale; then nothing changed.
   */
  commitPending(id: string, generation: number, actor: string, counter?: number): boolean {
    return this.tx(() => {
      const row = this.device(id);
      if (!row || row.revoked || row.pending_secret_enc === null || row.pending_generation !== generation) return false;
      if (counter !== undefined && !(counter > row.last_counter)) return false;
      this.stmt(
        `UPDATE devices SET secret_enc = pending_secret_enc, generation = pending_generation, kind = 'secret', credential = 'permanent',
           temp_retired = CASE WHEN lot IS NULL THEN temp_retired ELSE 1 END,
           pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL,
           last_counter = CASE WHEN ? IS NULL THEN last_counter ELSE ? END, last_seen = ?,
           lockouts = CASE WHEN ? IS NULL THEN lockouts ELSE 0 END WHERE id = ?`,
      ).run(counter ?? null, counter ?? null, this.now(), counter ?? null, id);
      this.audit(actor, "secret.commit", id, `gen=${generation}${row.kind === "temporary" ? " temporary-retired" : ""}`);
      return true;
    });
  }

  /** Stores a device's status report. */
  storeStatus(id: string, state: string, credential: string, lastFailure?: { reason: string; detail?: string }): void {
    if (lastFailure) {
      this.stmt(
        `UPDATE devices SET state = ?, credential = ?, last_seen = ?,
           last_failure_at = CASE WHEN last_failure IS ? AND last_failure_detail IS ? THEN last_failure_at ELSE ? END,
           last_failure = ?, last_failure_detail = ? WHERE id = ?`,
      ).run(state, credential, this.now(), lastFailure.reason, lastFailure.detail ?? null, this.now(), lastFailure.reason, lastFailure.detail ?? null, id);
    } else {
      this.stmt("UPDATE devices SET state = ?, credential = ?, last_seen = ? WHERE id = ?").run(state, credential, this.now(), id);
    }
  }

  // ------------------------------------------------------------ provisioning keys

  /** A lot by name. */
  lot(lot: string): LotRow | undefined {
    return this.stmt("SELECT * FROM provisioning_keys WHERE lot = ?").get(lot) as LotRow | undefined;
  }

  /** Every lot with its allowlist size. */
  lots(): (Omit<LotRow, "key_enc"> & { devices: number })[] {
    return this.stmt(
      `SELECT lot, has_allowlist, retired, revoked, line_rate, rate_alert_at, created_at,
         (SELECT COUNT(*) FROM lot_devices d WHERE d.lot = p.lot) AS devices FROM provisioning_keys p ORDER BY lot`,
    ).all() as (Omit<LotRow, "key_enc"> & { devices: number })[];
  }

  /** Claims of a lot: ever (rows with a claim) and in the last hour. */
  lotClaims(lot: string): { claimed: number; lastHour: number } {
    const claimed = (this.stmt("SELECT COUNT(*) AS n FROM devices WHERE lot = ? AND claimed_at IS NOT NULL").get(lot) as { n: number }).n;
    return { claimed, lastHour: this.claimsLastHour(lot) };
  }

  /** Sets (or clears, with null) a lot's line rate in claims per hour. Audited. @throws LOT_NOT_FOUND */
  setLineRate(lot: string, lineRate: number | null, actor: string): void {
    this.tx(() => {
      if (!this.lot(lot)) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      this.stmt("UPDATE provisioning_keys SET line_rate = ?, rate_alert_at = NULL WHERE lot = ?").run(lineRate, lot);
      this.audit(actor, "lot.line-rate", null, `lot=${lot} lineRate=${lineRate === null ? "none" : `${lineRate}/h`}`);
    });
  }

  /** The provisioning key of a lot. */
  lotKey(row: LotRow): Uint8Array {
    return this.box.open(row.key_enc, `lot:${row.lot}:key`);
  }

  /** Unretired lots whose key `id` may use: those listing it, and those without an allowlist. */
  lotsAllowing(id: string): LotRow[] {
    return this.stmt(
      `SELECT * FROM provisioning_keys p WHERE retired = 0 AND
         (has_allowlist = 0 OR EXISTS (SELECT 1 FROM lot_devices d WHERE d.lot = p.lot AND d.device_id = ?)) ORDER BY lot`,
    ).all(id) as LotRow[];
  }

  /** True when the lot lists `id` (or has no allowlist). */
  lotAllows(row: LotRow, id: string): boolean {
    return row.has_allowlist === 0 || this.stmt("SELECT 1 FROM lot_devices WHERE lot = ? AND device_id = ?").get(row.lot, id) !== undefined;
  }

  /** Inserts a lot with its key, optional allowlist and line rate (claims/hour). @throws LOT_EXISTS */
  insertLot(lot: string, key: Uint8Array, allowlist: string[] | undefined, actor: string, lineRate: number | null = null): void {
    this.tx(() => {
      if (this.lot(lot)) throw new CloudError("LOT_EXISTS", `lot ${lot} exists`, { field: "lot" });
      this.stmt("INSERT INTO provisioning_keys (lot, key_enc, has_allowlist, retired, line_rate, created_at) VALUES (?, ?, ?, 0, ?, ?)")
        .run(lot, this.box.seal(key, `lot:${lot}:key`), allowlist ? 1 : 0, lineRate, this.now());
      if (allowlist) this.addToAllowlist(lot, allowlist);
      this.audit(actor, "lot.create", null, `lot=${lot} allowlist=${allowlist ? allowlist.length : "none"}`);
    });
  }

  /** Adds ids to a lot's allowlist. Call inside tx(). */
  addToAllowlist(lot: string, ids: string[]): void {
    const insert = this.stmt("INSERT OR IGNORE INTO lot_devices (lot, device_id) VALUES (?, ?)");
    for (const id of ids) insert.run(lot, id);
  }

  /**
   * Retires a lot's provisioning key ("the lot is done"): no new temporary
   * login; a live temporary session may still finish its issuance, a pending
   * issued secret may still be committed; devices that hold a permanent
   * secret are not affected. Retiring twice changes nothing. @throws LOT_NOT_FOUND
   */
  retireLot(lot: string, actor: string): void {
    this.tx(() => {
      const row = this.lot(lot);
      if (!row) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      if (row.retired) return;
      this.stmt("UPDATE provisioning_keys SET retired = 1 WHERE lot = ?").run(lot);
      this.audit(actor, "lot.retire", null, `lot=${lot}`);
    });
  }

  /**
   * Revokes a lot's provisioning key (it leaked): retired and revoked at once;
   * no temporary login, issue or commit from a temporary session; secrets
   * issued under the key but not yet committed are dropped (a genuine device
   * among them needs re-provisioning). Devices that already committed a
   * permanent secret keep it. Returns the ids of the lot's devices that were
   * still temporary (the caller closes their sessions). @throws LOT_NOT_FOUND
   */
  revokeLotKey(lot: string, actor: string): string[] {
    return this.tx(() => {
      if (!this.lot(lot)) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      this.stmt("UPDATE provisioning_keys SET retired = 1, revoked = 1 WHERE lot = ?").run(lot);
      const temporary = (this.stmt("SELECT id FROM devices WHERE lot = ? AND kind = 'temporary'").all(lot) as { id: string }[]).map((r) => r.id);
      const dropped = this.stmt(
        "UPDATE devices SET pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL WHERE lot = ? AND kind = 'temporary' AND pending_secret_enc IS NOT NULL",
      ).run(lot).changes;
      this.audit(actor, "lot.key-revoke", null, `lot=${lot} temporary=${temporary.length} pending-dropped=${dropped}`);
      return temporary;
    });
  }

  /**
   * Revokes a whole lot: its key is retired and revoked (revokeLotKey) and every
   * device of the lot (temporary or permanent) is revoked, each audited.
   * Returns the revoked device ids. @throws LOT_NOT_FOUND
   */
  revokeLot(lot: string, actor: string): string[] {
    return this.tx(() => {
      this.revokeLotKey(lot, actor);
      const ids = (this.stmt("SELECT id FROM devices WHERE lot = ? AND revoked = 0").all(lot) as { id: string }[]).map((r) => r.id);
      const revoke = this.stmt("UPDATE devices SET revoked = 1 WHERE id = ?");
      for (const id of ids) {
        revoke.run(id);
        this.audit(actor, "device.revoke", id, `lot=${lot}`);
      }
      this.audit(actor, "lot.revoke", null, `lot=${lot} devices=${ids.length}`);
      return ids;
    });
  }

  // ------------------------------------------------------------ RADIUS clients (NAS)

  /** A NAS client by name. */
  nasClient(name: string): NasClientRow | undefined {
    return this.stmt("SELECT * FROM nas_clients WHERE name = ?").get(name) as NasClientRow | undefined;
  }

  /** Every NAS client, by name. */
  nasClients(): NasClientRow[] {
    return this.stmt("SELECT * FROM nas_clients ORDER BY name").all() as NasClientRow[];
  }

  /** NAS clients that may send from `address`: those registered with it, and those with address "*". */
  nasClientsFor(address: string): NasClientRow[] {
    return this.stmt("SELECT * FROM nas_clients WHERE address = ? OR address = '*' ORDER BY name").all(address) as NasClientRow[];
  }

  /** The shared secret of a NAS client. */
  nasSecret(row: NasClientRow): Uint8Array {
    return this.box.open(row.secret_enc, `nas:${row.name}:secret`);
  }

  /** Inserts a NAS client with its (sealed) shared secret. @throws NAS_EXISTS */
  insertNasClient(name: string, address: string, secret: Uint8Array, actor: string): void {
    this.tx(() => {
      if (this.nasClient(name)) throw new CloudError("NAS_EXISTS", `a NAS client named ${name} exists`, { field: "name" });
      this.stmt("INSERT INTO nas_clients (name, address, secret_enc, created_at) VALUES (?, ?, ?, ?)")
        .run(name, address, this.box.seal(secret, `nas:${name}:secret`), this.now());
      this.audit(actor, "nas.add", null, `nas=${name} address=${address}`);
    });
  }

  /** Removes a NAS client: its packets are dropped from then on. @throws NAS_NOT_FOUND */
  removeNasClient(name: string, actor: string): void {
    this.tx(() => {
      if (!this.nasClient(name)) throw new CloudError("NAS_NOT_FOUND", `no NAS client named ${name}`, { field: "name" });
      this.stmt("DELETE FROM nas_clients WHERE name = ?").run(name);
      this.audit(actor, "nas.remove", null, `nas=${name}`);
    });
  }
}
