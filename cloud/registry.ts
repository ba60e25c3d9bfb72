/*
 * The device registry, on SQLite (better-sqlite3, the embedded default) or
 * PostgreSQL (several cloud nodes), behind one asynchronous storage interface
 * (cloud/storage/store.ts): each query is written once here.
 *
 * Holds product CAs, devices, provisioning keys (lots) and their allowlists,
 * the cloud's own TLS identity and an append-only audit log. Every secret and
 * private key is sealed with AES-256-GCM under the master key (sealing.ts),
 * bound to its row. Each method that writes runs in one transaction and writes
 * its audit record in that same transaction, so a refusal changes nothing.
 *
 * Atomicity lives in the database, not in process memory: a login counter is
 * a conditional UPDATE (... WHERE last_counter < ?), a pending secret is stored
 * only WHERE none is pending, a commit swaps WHERE the same generation is
 * still pending, and a read-then-write runs in one transaction that locks the
 * row (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite), so two
 * nodes racing on one device end with one outcome.
 *
 * Durability (SQLite): WAL with synchronous=NORMAL. Every transaction commits before the
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
import { CloudError } from "./errors";
import { SecretBox } from "./sealing";
import { keyFingerprint } from "./master-key";
import { deviceNetworkView, type DeviceNetworkView } from "./network-registry";
import { SqliteStorage } from "./storage/sqlite";
import type { Storage } from "./storage/store";

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

/** Options of Registry.open and Registry.connect. */
export interface RegistryOptions {
  /** wall clock in ms (tests may pin it) */
  now?: () => number;
}

/** Where a registry lives: a data directory (SQLite) or a PostgreSQL URL. */
export type RegistryLocation = { dataDir: string; database?: undefined } | { database: string; dataDir?: string };

/**
 * The registry: every query written once over the asynchronous storage
 * interface (cloud/storage/store.ts), served by SQLite or PostgreSQL.
 */
export class Registry {
  readonly storage: Storage;
  readonly box: SecretBox;
  /** the public fingerprint of the master key (master-key.ts keyFingerprint) */
  readonly keyFingerprint: string;
  readonly now: () => number;
  /** the database file (SQLite), or the server's URL without its password (PostgreSQL) */
  readonly path: string;

  private constructor(storage: Storage, masterKey: Uint8Array, path: string, now: () => number) {
    this.storage = storage;
    this.box = new SecretBox(masterKey);
    this.keyFingerprint = keyFingerprint(masterKey);
    this.path = path;
    this.now = now;
  }

  /** The better-sqlite3 connection of a SQLite registry (tools and tests), else undefined. */
  get db(): SqliteStorage["db"] | undefined {
    return this.storage instanceof SqliteStorage ? this.storage.db : undefined;
  }

  /**
   * Opens (creating if needed) `<dataDir>/registry.sqlite` and checks the master key.
   * The folder is made 0700 and the file 0600 from the start.
   * @throws CloudError FILE_INSECURE when the folder or the file is open to group or others
   * @throws CloudError MASTER_KEY_WRONG when the database was created under another key
   */
  static async open(dataDir: string, masterKey: Uint8Array, options: RegistryOptions = {}): Promise<Registry> {
    const storage = SqliteStorage.open(dataDir);
    return Registry.#start(storage, storage.path, masterKey, options);
  }

  /**
   * Connects to a PostgreSQL registry (`postgres://user@host:port/db`), creating its schema if missing, and checks the master key.
   * @throws CloudError MASTER_KEY_WRONG when the database was created under another key
   */
  static async connect(url: string, masterKey: Uint8Array, options: RegistryOptions = {}): Promise<Registry> {
    const { PostgresStorage } = await import("./storage/postgres");
    const storage = await PostgresStorage.connect(url);
    return Registry.#start(storage, storage.displayUrl, masterKey, options);
  }

  /** Opens the registry at `location`: PostgreSQL when `database` is set, else SQLite in `dataDir`. */
  static async at(location: RegistryLocation, masterKey: Uint8Array, options: RegistryOptions = {}): Promise<Registry> {
    return location.database !== undefined ? Registry.connect(location.database, masterKey, options) : Registry.open(location.dataDir, masterKey, options);
  }

  /** A registry over an open storage backend (tests). */
  static async over(storage: Storage, masterKey: Uint8Array, options: RegistryOptions = {}): Promise<Registry> {
    return Registry.#start(storage, storage.dialect, masterKey, options);
  }

  static async #start(storage: Storage, path: string, masterKey: Uint8Array, options: RegistryOptions): Promise<Registry> {
    const registry = new Registry(storage, masterKey, path, options.now ?? Date.now);
    try {
      await registry.#checkMasterKey();
      return registry;
    } catch (error) {
      await storage.close();
      throw error;
    }
  }

  async #checkMasterKey(): Promise<void> {
    await this.tx(async () => {
      const row = await this.storage.get<{ value: Buffer }>("SELECT value FROM meta WHERE key = 'key_check'" + this.storage.forUpdate);
      if (!row) {
        const sealed = this.box.seal(Buffer.from(KEY_CHECK_PLAINTEXT), "meta:key_check");
        await this.storage.run("INSERT INTO meta (key, value) VALUES ('key_check', ?) ON CONFLICT DO NOTHING", [sealed]);
        await this.storage.run("INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?) ON CONFLICT DO NOTHING", [Buffer.from(this.keyFingerprint)]);
        return;
      }
      let opened = "";
      try {
        opened = Buffer.from(this.box.open(row.value, "meta:key_check")).toString();
      } catch {
        // which key seals the rows (set at creation and by rekey): names both keys, so an interrupted rekey is easy to finish
      }
      if (opened !== KEY_CHECK_PLAINTEXT) {
        const sealedBy = (await this.storage.get<{ value: Buffer }>("SELECT value FROM meta WHERE key = 'key_fingerprint'"))?.value.toString();
        throw new CloudError("MASTER_KEY_WRONG", `the registry is sealed under another master key${sealedBy ? ` (fingerprint ${sealedBy})` : ""} than this one (fingerprint ${this.keyFingerprint})`);
      }
    });
  }

  /** Closes the storage backend. */
  async close(): Promise<void> {
    await this.storage.close();
  }

  /** Runs `fn` in one transaction (IMMEDIATE on SQLite); a throw rolls everything back. A nested call joins the outer one. */
  tx<T>(fn: () => Promise<T>): Promise<T> {
    return this.storage.tx(fn);
  }

  /** Appends an audit record. Never pass a secret in `detail`. */
  async audit(actor: string, action: string, deviceId?: string | null, detail?: string | null): Promise<void> {
    await this.storage.run("INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, ?, ?, ?)", [this.now(), actor.slice(0, 64), action.slice(0, 64), deviceId ?? null, detail === undefined || detail === null ? null : detail.slice(0, 200)]);
  }

  /**
   * The most recent audit records, newest first (at most `limit`, 1..10000),
   * filtered by device, action (exact, or a prefix ending in `.` or `*`), actor,
   * time range (ms, `since` inclusive, `until` exclusive) and below a sequence
   * number (`before`, for paging).
   */
  async auditLog(limit = 100, deviceId?: string, filter: AuditFilter = {}): Promise<AuditRecord[]> {
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
    const rows = (await this.storage.all(sql, [...args, bounded])) as
      { seq: number; at: number; actor: string; action: string; device_id: string | null; detail: string | null }[];
    return rows.map((r) => ({ seq: r.seq, at: iso(r.at)!, actor: r.actor, action: r.action, deviceId: r.device_id, detail: r.detail }));
  }

  // ------------------------------------------------------------ server TLS identity

  /** The stored server identity, if any. */
  async serverTls(name: string): Promise<{ certPem: string; keyDer: Uint8Array } | undefined> {
    const row = (await this.storage.get("SELECT cert_pem, key_enc FROM server_tls WHERE name = ?", [name])) as { cert_pem: string; key_enc: Buffer } | undefined;
    return row && { certPem: row.cert_pem, keyDer: this.box.open(row.key_enc, `server_tls:${name}`) };
  }

  /** Stores a server certificate and its (sealed) key under `name`, unless one exists. */
  async storeServerTls(name: string, certPem: string, keyDer: Uint8Array): Promise<void> {
    await this.storage.run("INSERT INTO server_tls (name, cert_pem, key_enc) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [name, certPem, this.box.seal(keyDer, `server_tls:${name}`)]);
  }

  /** Replaces (or stores) the server certificate and sealed key under `name` (a renewal). */
  async replaceServerTls(name: string, certPem: string, keyDer: Uint8Array): Promise<void> {
    await this.storage.run(
      "INSERT INTO server_tls (name, cert_pem, key_enc) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET cert_pem = excluded.cert_pem, key_enc = excluded.key_enc",
      [name, certPem, this.box.seal(keyDer, `server_tls:${name}`)],
    );
  }

  // ------------------------------------------------------------ product CAs

  /** A product CA by name. */
  async ca(name: string): Promise<CaRow | undefined> {
    return (await this.storage.get("SELECT * FROM product_cas WHERE name = ?", [name])) as CaRow | undefined;
  }

  /** Every product CA (revoked ones too). */
  async cas(): Promise<CaRow[]> {
    return (await this.storage.all("SELECT * FROM product_cas ORDER BY name")) as CaRow[];
  }

  /** The CA's private key, when the cloud created the CA. */
  caKey(row: CaRow): Uint8Array | undefined {
    return row.key_enc ? this.box.open(row.key_enc, `ca:${row.name}:key`) : undefined;
  }

  /** Inserts a product CA. @throws CA_EXISTS */
  async insertCa(name: string, certPem: string, fp: string, keyDer: Uint8Array | undefined, actor: string): Promise<void> {
    await this.tx(async () => {
      if ((await this.ca(name))) throw new CloudError("CA_EXISTS", `a CA named ${name} exists`, { field: "name" });
      if ((await this.storage.get("SELECT 1 FROM product_cas WHERE fingerprint = ?", [fp]))) {
        throw new CloudError("CA_EXISTS", "this certificate is already registered under another name", { field: "certificate" });
      }
      await this.storage.run("INSERT INTO product_cas (name, cert_pem, fingerprint, key_enc, revoked, created_at) VALUES (?, ?, ?, ?, 0, ?)", [name, certPem, fp, keyDer ? this.box.seal(keyDer, `ca:${name}:key`) : null, this.now()]);
      await this.audit(actor, keyDer ? "ca.create" : "ca.register", null, `ca=${name} sha256=${fp.slice(0, 16)}`);
    });
  }

  /** Revokes a product CA: every device under it is refused from the next connect. @throws CA_NOT_FOUND */
  async revokeCa(name: string, actor: string): Promise<void> {
    await this.tx(async () => {
      if (!(await this.ca(name))) throw new CloudError("CA_NOT_FOUND", `no CA named ${name}`, { field: "name" });
      await this.storage.run("UPDATE product_cas SET revoked = 1 WHERE name = ?", [name]);
      await this.audit(actor, "ca.revoke", null, `ca=${name}`);
    });
  }

  // ------------------------------------------------------------ revoked certificates

  /**
   * The revocation of a certificate of CA `caName` with `serial` (normalized)
   * or SHA-256 `fingerprint`, if either is revoked. One indexed lookup.
   */
  async certificateRevocation(caName: string, serial: string, fingerprint: string): Promise<RevokedCertificate | undefined> {
    const row = (await this.storage.get("SELECT * FROM revoked_certificates WHERE key IN (?, ?) LIMIT 1", [`serial:${caName}:${serial}`, `sha256:${fingerprint}`])) as RevokedRow | undefined;
    return row && revokedView(row);
  }

  /**
   * Revokes one certificate, by (CA, serial) or by fingerprint; audited
   * (`certificate.revoke`). Returns false when it was already revoked (nothing written).
   * @throws CA_NOT_FOUND for an unknown CA
   */
  async revokeCertificate(entry: { caName: string; serial: string } | { fingerprint: string }, reason: string | null, actor: string): Promise<boolean> {
    return this.tx(async () => {
      if ("caName" in entry && !(await this.ca(entry.caName))) throw new CloudError("CA_NOT_FOUND", `no CA named ${entry.caName}`, { field: "caName" });
      const key = "caName" in entry ? `serial:${entry.caName}:${entry.serial}` : `sha256:${entry.fingerprint}`;
      const result = await this.storage.run("INSERT INTO revoked_certificates (key, ca_name, serial, fingerprint, source, reason, revoked_at) VALUES (?, ?, ?, ?, 'admin', ?, ?) ON CONFLICT DO NOTHING", [key, "caName" in entry ? entry.caName : null, "caName" in entry ? entry.serial : null, "fingerprint" in entry ? entry.fingerprint : null, reason, this.now()]);
      if (result.changes === 0) return false;
      const what = "caName" in entry ? `ca=${entry.caName} serial=${entry.serial}` : `sha256=${entry.fingerprint}`;
      await this.audit(actor, "certificate.revoke", null, `${what}${reason ? ` reason=${reason}` : ""}`);
      return true;
    });
  }

  /**
   * Adds the serials of a verified CRL of CA `caName` to the revoked
   * certificates (entries are never removed: certificateHold is not honoured
   * as temporary); one audit row `ca.crl-import`. Returns how many were new.
   */
  async importCrlSerials(caName: string, serials: string[], crlNumber: string | undefined, actor: string): Promise<number> {
    return this.tx(async () => {
      if (!(await this.ca(caName))) throw new CloudError("CA_NOT_FOUND", `no CA named ${caName}`, { field: "caName" });
      const insert = "INSERT INTO revoked_certificates (key, ca_name, serial, fingerprint, source, reason, revoked_at) VALUES (?, ?, ?, NULL, 'crl', ?, ?) ON CONFLICT DO NOTHING";
      const now = this.now();
      let added = 0;
      for (const serial of serials) added += (await this.storage.run(insert, [`serial:${caName}:${serial}`, caName, serial, crlNumber === undefined ? "crl" : `crl ${crlNumber}`, now])).changes;
      await this.audit(actor, "ca.crl-import", null, `ca=${caName}${crlNumber === undefined ? "" : ` crlNumber=${crlNumber}`} entries=${serials.length} new=${added}`);
      return added;
    });
  }

  /** Revoked certificates, newest first (of one CA, or all), at most `limit` (1..10000). */
  async revokedCertificates(caName?: string, limit = 1000): Promise<RevokedCertificate[]> {
    const bounded = Math.max(1, Math.min(10_000, Math.floor(limit)));
    const rows = (caName === undefined
      ? (await this.storage.all("SELECT * FROM revoked_certificates ORDER BY revoked_at DESC, key LIMIT ?", [bounded]))
      : (await this.storage.all("SELECT * FROM revoked_certificates WHERE ca_name = ? ORDER BY revoked_at DESC, key LIMIT ?", [caName, bounded]))) as RevokedRow[];
    return rows.map(revokedView);
  }

  // ------------------------------------------------------------ devices

  /** A device row read to be changed in the current transaction: locked (FOR UPDATE) on PostgreSQL. */
  async #deviceForUpdate(id: string): Promise<DeviceRow | undefined> {
    return this.storage.get<DeviceRow>(`SELECT * FROM devices WHERE id = ?${this.storage.forUpdate}`, [id]);
  }

  /** A device row, or undefined. */
  async device(id: string): Promise<DeviceRow | undefined> {
    return (await this.storage.get("SELECT * FROM devices WHERE id = ?", [id])) as DeviceRow | undefined;
  }

  /**
   * What a live session's checks read of a device (revoked? kind, pending rotation), or undefined when
   * it is gone: three columns, not the whole row with its sealed blobs (read on every connect).
   */
  async deviceStanding(id: string): Promise<Pick<DeviceRow, "revoked" | "kind" | "pending_generation"> | undefined> {
    return (await this.storage.get("SELECT revoked, kind, pending_generation FROM devices WHERE id = ?", [id])) as Pick<DeviceRow, "revoked" | "kind" | "pending_generation"> | undefined;
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
  async listDevices(limit = 1000, offset = 0): Promise<DeviceView[]> {
    const rows = (await this.storage.all("SELECT * FROM devices ORDER BY id LIMIT ? OFFSET ?", [Math.max(1, Math.min(10_000, Math.floor(limit))), Math.max(0, Math.floor(offset))])) as DeviceRow[];
    return rows.map((row) => this.view(row));
  }

  /** Number of devices. */
  async countDevices(): Promise<number> {
    return ((await this.storage.get("SELECT COUNT(*) AS n FROM devices")) as { n: number }).n;
  }

  private async requireAbsent(id: string): Promise<void> {
    if ((await this.device(id))) throw new CloudError("DEVICE_EXISTS", `device ${id} is already registered`, { field: "id" });
  }

  /** Inserts a shared-secret device (generation 0, the manufactured secret). Call inside tx(). @throws DEVICE_EXISTS */
  async insertSecretDevice(id: string, secret: Uint8Array, actor: string): Promise<void> {
    await this.requireAbsent(id);
    await this.storage.run("INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES (?, 'secret', ?, 0, ?)", [id, this.box.seal(secret, deviceSecretAad(id, 0)), this.now()]);
    await this.audit(actor, "device.register", id, "kind=secret");
  }

  /** Inserts a certificate device under a CA, optionally pinned to one certificate. Call inside tx(). @throws DEVICE_EXISTS */
  async insertCertificateDevice(id: string, caName: string, certFingerprint: string | null, actor: string): Promise<void> {
    await this.requireAbsent(id);
    await this.storage.run("INSERT INTO devices (id, kind, ca_name, cert_fingerprint, created_at) VALUES (?, 'certificate', ?, ?, ?)", [id, caName, certFingerprint, this.now()]);
    await this.audit(actor, "device.register", id, `kind=certificate ca=${caName}${certFingerprint ? ` sha256=${certFingerprint.slice(0, 16)}` : ""}`);
  }

  /** Pins a certificate device to a new certificate (re-issue). Call inside tx(). */
  async pinCertificate(id: string, certFingerprint: string, actor: string): Promise<void> {
    await this.storage.run("UPDATE devices SET cert_fingerprint = ? WHERE id = ?", [certFingerprint, id]);
    await this.audit(actor, "device.certificate", id, `sha256=${certFingerprint.slice(0, 16)}`);
  }

  /**
   * Resets a device's login counter to 0, so a device whose flash was erased
   * (its counter restarts at 1) can log in again. Audited. @throws DEVICE_NOT_FOUND
   */
  async resetLoginCounter(id: string, actor: string): Promise<void> {
    await this.tx(async () => {
      if (!(await this.device(id))) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      await this.storage.run("UPDATE devices SET last_counter = 0 WHERE id = ?", [id]);
      await this.audit(actor, "device.counter-reset", id);
    });
  }

  /** Revokes a device. @throws DEVICE_NOT_FOUND */
  async revokeDevice(id: string, actor: string): Promise<void> {
    await this.tx(async () => {
      if (!(await this.device(id))) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      await this.storage.run("UPDATE devices SET revoked = 1 WHERE id = ?", [id]);
      await this.audit(actor, "device.revoke", id);
    });
  }

  /**
   * Accepts a login: stores `counter` only if it exceeds the stored one (compare
   * and set, durable before the caller sends CONNACK). Returns false on a replay.
   */
  async acceptLoginCounter(id: string, counter: number): Promise<boolean> {
    const result = await this.storage.run("UPDATE devices SET last_counter = ?, last_seen = ?, lockouts = 0, locked_until = NULL WHERE id = ? AND last_counter < ? AND revoked = 0", [counter, this.now(), id, counter]);
    return result.changes === 1;
  }

  /** Accepts a certificate login (no counter). */
  async touch(id: string): Promise<void> {
    await this.storage.run("UPDATE devices SET last_seen = ?, lockouts = 0, locked_until = NULL WHERE id = ?", [this.now(), id]);
  }

  /**
   * Creates the row of a temporary device at its first successful login (its
   * claim, audited as device.claim with `source`). Returns false if a row appeared meanwhile.
   */
  async insertTemporaryDevice(id: string, lot: string, counter: number, source?: ClaimSource): Promise<boolean> {
    return this.tx(async () => {
      const now = this.now();
      // another node's first login of the same id may insert first: then nothing is written here
      const inserted = await this.storage.run(
        "INSERT INTO devices (id, kind, generation, lot, last_counter, last_seen, claimed_at, created_at) VALUES (?, 'temporary', 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [id, lot, counter, now, now, now],
      );
      if (inserted.changes !== 1) return false;
      await this.audit("mqtt", "device.claim", id, `lot=${lot} ${claimDetail(source)}`);
      await this.#checkLineRate(lot, now);
      return true;
    });
  }

  /**
   * Records the claim of a temporary row that has none (a reprovisioned device's
   * next temporary login), audited as device.claim. Returns false when it was claimed already.
   */
  async recordClaim(id: string, source?: ClaimSource): Promise<boolean> {
    return this.tx(async () => {
      const now = this.now();
      const row = await this.device(id);
      if (!row || row.lot === null || row.claimed_at !== null) return false;
      const claimed = await this.storage.run("UPDATE devices SET claimed_at = ? WHERE id = ? AND claimed_at IS NULL", [now, id]);
      if (claimed.changes !== 1) return false;
      await this.audit("mqtt", "device.claim", id, `lot=${row.lot} ${claimDetail(source)} reprovisioned`);
      await this.#checkLineRate(row.lot, now);
      return true;
    });
  }

  /** Claims of `lot` in the hour before `now`. */
  async claimsLastHour(lot: string, now = this.now()): Promise<number> {
    return ((await this.storage.get("SELECT COUNT(*) AS n FROM devices WHERE lot = ? AND claimed_at > ?", [lot, now - LINE_RATE_WINDOW_MS])) as { n: number }).n;
  }

  /** Audits lot.claim-rate-exceeded (at most once an hour) when the lot's claims in the last hour pass its line rate. Call inside tx(). */
  async #checkLineRate(lot: string, now: number): Promise<void> {
    const row = await this.lot(lot);
    if (!row || row.line_rate === null) return;
    const claims = await this.claimsLastHour(lot, now);
    if (claims <= row.line_rate) return;
    if (row.rate_alert_at !== null && row.rate_alert_at > now - LINE_RATE_WINDOW_MS) return;
    const alerted = await this.storage.run(
      "UPDATE provisioning_keys SET rate_alert_at = ? WHERE lot = ? AND (rate_alert_at IS NULL OR rate_alert_at <= ?)",
      [now, lot, now - LINE_RATE_WINDOW_MS],
    );
    if (alerted.changes !== 1) return;
    await this.audit("mqtt", "lot.claim-rate-exceeded", null, `lot=${lot} claims=${claims} in 1h lineRate=${row.line_rate}/h`);
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
  async reprovision(id: string, actor: string): Promise<{ previousGeneration: number; wasRevoked: boolean }> {
    return this.tx(async () => {
      const row = await this.#deviceForUpdate(id);
      if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
      if (row.lot === null) throw new CloudError("INVALID_INPUT", "only a device of a temporary lot can be reprovisioned (others: register it again)", { field: "deviceId" });
      const lot = await this.lot(row.lot);
      if (!lot) throw new CloudError("LOT_NOT_FOUND", `no lot ${row.lot}`, { field: "deviceId" });
      if (lot.revoked) throw new CloudError("LOT_RETIRED", `lot ${lot.lot}'s key is revoked: its devices cannot log in with it again`, { field: "deviceId" });
      if (lot.retired) throw new CloudError("LOT_RETIRED", `lot ${lot.lot} is retired: no temporary login would be accepted`, { field: "deviceId" });
      await this.storage.run(`UPDATE devices SET kind = 'temporary', secret_enc = NULL, pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL,
           temp_retired = 0, revoked = 0, last_counter = 0, locked_until = NULL, lockouts = 0, claimed_at = NULL,
           state = NULL, credential = NULL, seal_key = NULL, net_sealed = NULL, net_sealed_seq = NULL, net_action = NULL WHERE id = ?`, [id]);
      await this.audit(actor, "device.reprovision", id, `lot=${lot.lot} previous-generation=${row.generation}${row.revoked ? " was-revoked" : ""}`);
      return { previousGeneration: row.generation, wasRevoked: row.revoked === 1 };
    });
  }

  /**
   * Records why a login or request of `id` failed (on the row if it exists, and in the audit log).
   * @param via - who refused: "mqtt" (login.refused) or "radius" (radius.refused)
   * @param suppressed - earlier refusals of `id` that were not written (cloud/limits.ts RefusalAudit)
   */
  async recordFailure(id: string, code: string, detail?: string, via: "mqtt" | "radius" = "mqtt", suppressed = 0): Promise<void> {
    await this.tx(async () => {
      await this.storage.run("UPDATE devices SET last_failure = ?, last_failure_detail = ?, last_failure_at = ? WHERE id = ?", [code, detail === undefined ? null : detail.slice(0, 200), this.now(), id]);
      const more = suppressed > 0 ? ` (+${suppressed} refusals not written)` : "";
      await this.audit(via, via === "radius" ? "radius.refused" : "login.refused", id, `${detail ? `${code}: ${detail}` : code}${more}`);
    });
  }

  /**
   * Records that attempts for a device from one source are locked out until
   * `until` (ms; cloud/auth keeps the lock, per id and source, in memory: a
   * proven credential still gets in). Stored as the last failure and
   * `lockedUntil` for operators, and audited. Returns false when there is no
   * such device row.
   */
  async lockDevice(id: string, until: number, lockouts: number, detail: string, via: "mqtt" | "radius" = "mqtt"): Promise<boolean> {
    return this.tx(async () => {
      const result = await this.storage.run("UPDATE devices SET locked_until = ?, lockouts = ?, last_failure = 'LOCKED_OUT', last_failure_detail = ?, last_failure_at = ? WHERE id = ?", [until, lockouts, detail.slice(0, 200), this.now(), id]);
      if (result.changes !== 1) return false;
      await this.audit(via, "login.lockout", id, `until=${new Date(until).toISOString()} lockout=${lockouts} ${detail}`);
      return true;
    });
  }

  /** Ends a device's lockout and forgets its lockout count. Audited. @throws DEVICE_NOT_FOUND */
  async unlockDevice(id: string, actor: string): Promise<void> {
    await this.tx(async () => {
      const row = await this.device(id);
      if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "id" });
      await this.storage.run("UPDATE devices SET locked_until = NULL, lockouts = 0 WHERE id = ?", [id]);
      await this.audit(actor, "device.unlock", id, row.locked_until !== null && row.locked_until > this.now() ? "was locked" : "was not locked");
    });
  }

  /**
   * Stores a newly issued secret as pending, unless one is pending already.
   * Returns false (nothing stored) when a pending secret exists.
   */
  async storePending(id: string, secret: Uint8Array, generation: number, nonce: Uint8Array, actor: string): Promise<boolean> {
    return this.tx(async () => {
      // conditional on the row as the caller read it: nothing pending, and `generation` still the next one
      const result = await this.storage.run(
        "UPDATE devices SET pending_secret_enc = ?, pending_generation = ?, pending_nonce = ? WHERE id = ? AND pending_secret_enc IS NULL AND revoked = 0 AND generation = ?",
        [this.box.seal(secret, deviceSecretAad(id, generation)), generation, Buffer.from(nonce), id, generation - 1],
      );
      if (result.changes !== 1) return false;
      await this.audit(actor, "secret.issue", id, `gen=${generation}`);
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
  async commitPending(id: string, generation: number, actor: string, counter?: number): Promise<boolean> {
    return this.tx(async () => {
      const row = await this.#deviceForUpdate(id);
      if (!row || row.revoked || row.pending_secret_enc === null || row.pending_generation !== generation) return false;
      if (counter !== undefined && !(counter > row.last_counter)) return false;
      // the swap is conditional too: it happens once, whoever else commits the same generation
      const swap = `UPDATE devices SET secret_enc = pending_secret_enc, generation = pending_generation, kind = 'secret', credential = 'permanent',
           temp_retired = CASE WHEN lot IS NULL THEN temp_retired ELSE 1 END,
           pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL, last_seen = ?`;
      const pending = "WHERE id = ? AND revoked = 0 AND pending_secret_enc IS NOT NULL AND pending_generation = ?";
      const result = counter === undefined
        ? await this.storage.run(`${swap} ${pending}`, [this.now(), id, generation])
        : await this.storage.run(`${swap}, last_counter = ?, lockouts = 0 ${pending} AND last_counter < ?`, [this.now(), counter, id, generation, counter]);
      if (result.changes !== 1) return false;
      await this.audit(actor, "secret.commit", id, `gen=${generation}${row.kind === "temporary" ? " temporary-retired" : ""}`);
      return true;
    });
  }

  /** Stores a device's status report. */
  async storeStatus(id: string, state: string, credential: string, lastFailure?: { reason: string; detail?: string }): Promise<void> {
    if (lastFailure) {
      await this.storage.run(`UPDATE devices SET state = ?, credential = ?, last_seen = ?,
           last_failure_at = CASE WHEN last_failure IS NOT DISTINCT FROM ? AND last_failure_detail IS NOT DISTINCT FROM ? THEN last_failure_at ELSE ? END,
           last_failure = ?, last_failure_detail = ? WHERE id = ?`, [state, credential, this.now(), lastFailure.reason, lastFailure.detail ?? null, this.now(), lastFailure.reason, lastFailure.detail ?? null, id]);
    } else {
      await this.storage.run("UPDATE devices SET state = ?, credential = ?, last_seen = ? WHERE id = ?", [state, credential, this.now(), id]);
    }
  }

  // ------------------------------------------------------------ provisioning keys

  /** A lot by name. */
  async lot(lot: string): Promise<LotRow | undefined> {
    return (await this.storage.get("SELECT * FROM provisioning_keys WHERE lot = ?", [lot])) as LotRow | undefined;
  }

  /** Every lot with its allowlist size. */
  async lots(): Promise<(Omit<LotRow, "key_enc"> & { devices: number })[]> {
    return (await this.storage.all(`SELECT lot, has_allowlist, retired, revoked, line_rate, rate_alert_at, created_at,
         (SELECT COUNT(*) FROM lot_devices d WHERE d.lot = p.lot) AS devices FROM provisioning_keys p ORDER BY lot`)) as (Omit<LotRow, "key_enc"> & { devices: number })[];
  }

  /** Claims of a lot: ever (rows with a claim) and in the last hour. */
  async lotClaims(lot: string): Promise<{ claimed: number; lastHour: number }> {
    const claimed = ((await this.storage.get("SELECT COUNT(*) AS n FROM devices WHERE lot = ? AND claimed_at IS NOT NULL", [lot])) as { n: number }).n;
    return { claimed, lastHour: (await this.claimsLastHour(lot)) };
  }

  /** Sets (or clears, with null) a lot's line rate in claims per hour. Audited. @throws LOT_NOT_FOUND */
  async setLineRate(lot: string, lineRate: number | null, actor: string): Promise<void> {
    await this.tx(async () => {
      if (!(await this.lot(lot))) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      await this.storage.run("UPDATE provisioning_keys SET line_rate = ?, rate_alert_at = NULL WHERE lot = ?", [lineRate, lot]);
      await this.audit(actor, "lot.line-rate", null, `lot=${lot} lineRate=${lineRate === null ? "none" : `${lineRate}/h`}`);
    });
  }

  /** The provisioning key of a lot. */
  lotKey(row: LotRow): Uint8Array {
    return this.box.open(row.key_enc, `lot:${row.lot}:key`);
  }

  /** Unretired lots whose key `id` may use: those listing it, and those without an allowlist. */
  async lotsAllowing(id: string): Promise<LotRow[]> {
    return (await this.storage.all(`SELECT * FROM provisioning_keys p WHERE retired = 0 AND
         (has_allowlist = 0 OR EXISTS (SELECT 1 FROM lot_devices d WHERE d.lot = p.lot AND d.device_id = ?)) ORDER BY lot`, [id])) as LotRow[];
  }

  /** True when the lot lists `id` (or has no allowlist). */
  async lotAllows(row: LotRow, id: string): Promise<boolean> {
    return row.has_allowlist === 0 || (await this.storage.get("SELECT 1 FROM lot_devices WHERE lot = ? AND device_id = ?", [row.lot, id])) !== undefined;
  }

  /** Inserts a lot with its key, optional allowlist and line rate (claims/hour). @throws LOT_EXISTS */
  async insertLot(lot: string, key: Uint8Array, allowlist: string[] | undefined, actor: string, lineRate: number | null = null): Promise<void> {
    await this.tx(async () => {
      if ((await this.lot(lot))) throw new CloudError("LOT_EXISTS", `lot ${lot} exists`, { field: "lot" });
      await this.storage.run("INSERT INTO provisioning_keys (lot, key_enc, has_allowlist, retired, line_rate, created_at) VALUES (?, ?, ?, 0, ?, ?)", [lot, this.box.seal(key, `lot:${lot}:key`), allowlist ? 1 : 0, lineRate, this.now()]);
      if (allowlist) await this.addToAllowlist(lot, allowlist);
      await this.audit(actor, "lot.create", null, `lot=${lot} allowlist=${allowlist ? allowlist.length : "none"}`);
    });
  }

  /** Adds ids to a lot's allowlist. Call inside tx(). */
  async addToAllowlist(lot: string, ids: string[]): Promise<void> {
    for (const id of ids) await this.storage.run("INSERT INTO lot_devices (lot, device_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [lot, id]);
  }

  /**
   * Retires a lot's provisioning key ("the lot is done"): no new temporary
   * login; a live temporary session may still finish its issuance, a pending
   * issued secret may still be committed; devices that hold a permanent
   * secret are not affected. Retiring twice changes nothing. @throws LOT_NOT_FOUND
   */
  async retireLot(lot: string, actor: string): Promise<void> {
    await this.tx(async () => {
      const row = await this.lot(lot);
      if (!row) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      if (row.retired) return;
      await this.storage.run("UPDATE provisioning_keys SET retired = 1 WHERE lot = ?", [lot]);
      await this.audit(actor, "lot.retire", null, `lot=${lot}`);
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
  async revokeLotKey(lot: string, actor: string): Promise<string[]> {
    return this.tx(async () => {
      if (!(await this.lot(lot))) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
      await this.storage.run("UPDATE provisioning_keys SET retired = 1, revoked = 1 WHERE lot = ?", [lot]);
      const temporary = ((await this.storage.all("SELECT id FROM devices WHERE lot = ? AND kind = 'temporary'", [lot])) as { id: string }[]).map((r) => r.id);
      const dropped = (await this.storage.run("UPDATE devices SET pending_secret_enc = NULL, pending_generation = NULL, pending_nonce = NULL WHERE lot = ? AND kind = 'temporary' AND pending_secret_enc IS NOT NULL", [lot])).changes;
      await this.audit(actor, "lot.key-revoke", null, `lot=${lot} temporary=${temporary.length} pending-dropped=${dropped}`);
      return temporary;
    });
  }

  /**
   * Revokes a whole lot: its key is retired and revoked (revokeLotKey) and every
   * device of the lot (temporary or permanent) is revoked, each audited.
   * Returns the revoked device ids. @throws LOT_NOT_FOUND
   */
  async revokeLot(lot: string, actor: string): Promise<string[]> {
    return this.tx(async () => {
      await this.revokeLotKey(lot, actor);
      const ids = ((await this.storage.all("SELECT id FROM devices WHERE lot = ? AND revoked = 0", [lot])) as { id: string }[]).map((r) => r.id);
      for (const id of ids) {
        await this.storage.run("UPDATE devices SET revoked = 1 WHERE id = ?", [id]);
        await this.audit(actor, "device.revoke", id, `lot=${lot}`);
      }
      await this.audit(actor, "lot.revoke", null, `lot=${lot} devices=${ids.length}`);
      return ids;
    });
  }

  // ------------------------------------------------------------ RADIUS clients (NAS)

  /** A NAS client by name. */
  async nasClient(name: string): Promise<NasClientRow | undefined> {
    return (await this.storage.get("SELECT * FROM nas_clients WHERE name = ?", [name])) as NasClientRow | undefined;
  }

  /** Every NAS client, by name. */
  async nasClients(): Promise<NasClientRow[]> {
    return (await this.storage.all("SELECT * FROM nas_clients ORDER BY name")) as NasClientRow[];
  }

  /** NAS clients that may send from `address`: those registered with it, and those with address "*". */
  async nasClientsFor(address: string): Promise<NasClientRow[]> {
    return (await this.storage.all("SELECT * FROM nas_clients WHERE address = ? OR address = '*' ORDER BY name", [address])) as NasClientRow[];
  }

  /** The shared secret of a NAS client. */
  nasSecret(row: NasClientRow): Uint8Array {
    return this.box.open(row.secret_enc, `nas:${row.name}:secret`);
  }

  /** Inserts a NAS client with its (sealed) shared secret. @throws NAS_EXISTS */
  async insertNasClient(name: string, address: string, secret: Uint8Array, actor: string): Promise<void> {
    await this.tx(async () => {
      if ((await this.nasClient(name))) throw new CloudError("NAS_EXISTS", `a NAS client named ${name} exists`, { field: "name" });
      await this.storage.run("INSERT INTO nas_clients (name, address, secret_enc, created_at) VALUES (?, ?, ?, ?)", [name, address, this.box.seal(secret, `nas:${name}:secret`), this.now()]);
      await this.audit(actor, "nas.add", null, `nas=${name} address=${address}`);
    });
  }

  /** Removes a NAS client: its packets are dropped from then on. @throws NAS_NOT_FOUND */
  async removeNasClient(name: string, actor: string): Promise<void> {
    await this.tx(async () => {
      if (!(await this.nasClient(name))) throw new CloudError("NAS_NOT_FOUND", `no NAS client named ${name}`, { field: "name" });
      await this.storage.run("DELETE FROM nas_clients WHERE name = ?", [name]);
      await this.audit(actor, "nas.remove", null, `nas=${name}`);
    });
  }
}
