/*
 * The registry's life beyond serving: backup, restore and rekey (the CLI's
 * `backup`, `restore`, `rekey`; each runs in its own process, never on the
 * event loop that serves devices), and the `serve.pid` lock that keeps
 * restore and rekey away from a running cloud.
 *
 * - backup: `VACUUM INTO` a fresh owner-only file beside the target, from the
 *   CLI's own connection: one read transaction, so the copy is consistent
 *   while the cloud keeps writing (WAL: writers are not blocked, and unlike the
 *   page-stepping backup API it never restarts when another connection
 *   writes). The copy is checked (integrity_check, the key check opens), then
 *   `<file>.sha256` is written in sha256sum's format and the copy renamed into place.
 * - restore: the backup is copied into the data folder, the copy's SHA-256
 *   checked against the checksum file, its integrity and master key checked
 *   (a backup sealed under another key is refused, MASTER_KEY_WRONG), and only
 *   then renamed over `registry.sqlite` (the registry it replaces is kept
 *   beside, checkpointed, as `registry.sqlite.replaced-<time>`).
 * - rekey: every sealed value is opened under the old key and sealed under the
 *   new one, and the key check (the marker of which key seals the rows) and
 *   `meta.key_fingerprint` replaced, all in one transaction: a kill at any
 *   point leaves the registry wholly under one key. Run again after a crash it
 *   finishes (or finds the work done).
 */
import { createHash } from "node:crypto";
import { closeSync, copyFileSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import { CloudError } from "../errors";
import { keyFingerprint } from "../master-key";
import { touchOwnerOnlyFile, ensureOwnerOnlyDir } from "../owner-files";
import { deviceSecretAad, type Registry } from "../registry";
import { SecretBox } from "../sealing";
import { SCHEMA_VERSION } from "./schema";

/** The plaintext of the key check row (meta.key_check), as cloud/registry.ts seals it. */
const KEY_CHECK_PLAINTEXT = "wcm master key check v1";

/** The SHA-256 of a file, streamed. */
export function fileSha256(path: string): string {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// ------------------------------------------------------------------ serve lock

/** The lock file a running `serve` keeps in its data folder. */
export function serveLockPath(dataDir: string): string {
  return join(dataDir, "serve.pid");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Records this process as the data folder's `serve`; returns the release (also run at exit). */
export function claimServeLock(dataDir: string): () => void {
  const path = serveLockPath(dataDir);
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
  const release = () => {
    try {
      if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
    } catch {
      // gone already
    }
  };
  process.once("exit", release);
  return release;
}

/** The pid of a live `serve` (another process) holding the data folder, or undefined. */
export function servingPid(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(serveLockPath(dataDir), "utf8").trim());
  } catch {
    return undefined;
  }
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) ? pid : undefined;
}

/**
 * Refuses when a live `serve` holds the data folder (its `serve.pid` names a running process).
 * @throws CloudError REGISTRY_IN_USE
 */
export function assertNotServing(dataDir: string, what: string): void {
  const pid = servingPid(dataDir);
  if (pid !== undefined) {
    throw new CloudError("REGISTRY_IN_USE", `serve (pid ${pid}, ${serveLockPath(dataDir)}) holds this data folder: stop it before ${what} (remove the file if no serve runs)`);
  }
}

// ------------------------------------------------------------------ backup and restore

/** What `backup` wrote. */
export interface BackupReport {
  backup: string;
  checksumFile: string;
  sha256: string;
  bytes: number;
  schemaVersion: number;
  devices: number;
  keyFingerprint: string;
  ms: number;
}

/** Opens a registry file read-only and checks it: integrity, a registry's key check, opened by `key`. Returns its schema version and device count. */
function checkRegistryFile(path: string, key: Uint8Array, what: string): { schemaVersion: number; devices: number } {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    throw new CloudError("BACKUP_INVALID", `${what} is not a SQLite database`);
  }
  try {
    let ok: unknown;
    try {
      ok = db.pragma("integrity_check", { simple: true });
    } catch {
      throw new CloudError("BACKUP_INVALID", `${what} is not a SQLite database`);
    }
    if (ok !== "ok") throw new CloudError("BACKUP_INVALID", `${what} fails SQLite's integrity check`);
    const schemaVersion = db.pragma("user_version", { simple: true }) as number;
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() !== undefined;
    const check = hasMeta ? (db.prepare("SELECT value FROM meta WHERE key = 'key_check'").get() as { value: Buffer } | undefined) : undefined;
    if (!check) throw new CloudError("BACKUP_INVALID", `${what} is not a wcm registry (no key check)`);
    let opened: string;
    try {
      opened = Buffer.from(new SecretBox(key).open(check.value, "meta:key_check")).toString();
    } catch {
      const sealedBy = (db.prepare("SELECT value FROM meta WHERE key = 'key_fingerprint'").get() as { value: Buffer } | undefined)?.value.toString();
      throw new CloudError("MASTER_KEY_WRONG", `${what} is sealed under another master key${sealedBy ? ` (fingerprint ${sealedBy})` : ""} than this one (fingerprint ${keyFingerprint(key)}): give the key it was made under`);
    }
    if (opened !== KEY_CHECK_PLAINTEXT) throw new CloudError("MASTER_KEY_WRONG", `${what} is sealed under another master key`);
    const devices = (db.prepare("SELECT COUNT(*) AS n FROM devices").get() as { n: number }).n;
    return { schemaVersion, devices };
  } finally {
    db.close();
  }
}

/**
 * Writes a consistent copy of a SQLite registry to `target` and `<target>.sha256`, while the cloud may run.
 * @throws CloudError INVALID_INPUT when the target exists or the registry is not on SQLite
 */
export function backupRegistry(registry: Registry, key: Uint8Array, target: string): BackupReport {
  const db = registry.db;
  if (!db) throw new CloudError("INVALID_INPUT", "backup copies a SQLite registry; for PostgreSQL use pg_dump (docs/deploy.md)", { field: "database" });
  const checksumFile = `${target}.sha256`;
  if (existsSync(target) || existsSync(checksumFile)) throw new CloudError("INVALID_INPUT", `${existsSync(target) ? target : checksumFile} exists: a backup never overwrites`, { field: "backup" });
  const started = Date.now();
  const partial = join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
  // VACUUM INTO writes into an empty file and keeps its mode: owner-only from the start
  touchOwnerOnlyFile(partial);
  try {
    db.prepare("VACUUM INTO ?").run(partial);
    fsyncPath(partial);
    const { schemaVersion, devices } = checkRegistryFile(partial, key, "the backup");
    const sha256 = fileSha256(partial);
    writeFileSync(checksumFile, `${sha256}  ${basename(target)}\n`, { mode: 0o600 });
    fsyncPath(checksumFile);
    renameSync(partial, target);
    fsyncPath(dirname(target));
    return { backup: target, checksumFile, sha256, bytes: statSync(target).size, schemaVersion, devices, keyFingerprint: keyFingerprint(key), ms: Date.now() - started };
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}

/** What `restore` did. */
export interface RestoreReport {
  restored: string;
  from: string;
  sha256: string;
  schemaVersion: number;
  devices: number;
  /** where the registry it replaced was moved, or null */
  replaced: string | null;
}

/**
 * Restores `backup` into `dataDir` after checking its checksum, integrity and master key. The cloud must be stopped.
 * @param checksumText - the checksum file's text (`<hex>  <name>`, sha256sum's format)
 * @param replace - move an existing registry aside instead of refusing
 * @throws CloudError BACKUP_INVALID, MASTER_KEY_WRONG, SCHEMA_TOO_NEW, REGISTRY_IN_USE, INVALID_INPUT (a registry exists without `replace`)
 */
export function restoreRegistry(dataDir: string, key: Uint8Array, backup: string, checksumText: string, replace: boolean): RestoreReport {
  const expected = checksumText.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (!/^[0-9a-f]{64}$/.test(expected)) throw new CloudError("BACKUP_INVALID", "the checksum file must start with 64 hex digits (sha256sum's format)", { field: "checksum" });
  assertNotServing(dataDir, "restore");
  ensureOwnerOnlyDir(dataDir);
  const live = join(dataDir, "registry.sqlite");
  if (existsSync(live) && !replace) throw new CloudError("INVALID_INPUT", `${dataDir} holds a registry: give --replace to move it aside and restore`, { field: "data" });
  const staged = join(dataDir, `.registry.sqlite.restoring-${process.pid}`);
  touchOwnerOnlyFile(staged);
  try {
    // what is checked is the copy that will be installed, not the file it came from
    copyFileSync(backup, staged);
    fsyncPath(staged);
    const sha256 = fileSha256(staged);
    if (sha256 !== expected) throw new CloudError("BACKUP_INVALID", "the SHA-256 of the backup does not match its checksum file: nothing restored", { field: "checksum" });
    const { schemaVersion, devices } = checkRegistryFile(staged, key, "the backup");
    if (schemaVersion > SCHEMA_VERSION) throw new CloudError("SCHEMA_TOO_NEW", `the backup has schema version ${schemaVersion}, newer than this cloud's ${SCHEMA_VERSION}`);
    let replaced: string | null = null;
    if (existsSync(live)) {
      // fold the WAL into the old file so the copy kept aside is whole
      const old = new Database(live);
      try {
        old.pragma("wal_checkpoint(TRUNCATE)");
      } finally {
        old.close();
      }
      replaced = `${live}.replaced-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      renameSync(live, replaced);
    }
    rmSync(`${live}-wal`, { force: true });
    rmSync(`${live}-shm`, { force: true });
    renameSync(staged, live);
    fsyncPath(dataDir);
    return { restored: live, from: backup, sha256, schemaVersion, devices, replaced };
  } finally {
    rmSync(staged, { force: true });
  }
}

// ------------------------------------------------------------------ rekey

/** One sealed column: how to page its rows and the AAD each value is bound to. */
interface SealedColumn {
  table: string;
  column: string;
  /** the key column(s) a row is updated by (ordered paging on the first) */
  keys: string[];
  /** extra columns the AAD needs */
  extra: string[];
  aad(row: Record<string, unknown>): string;
}

/** Every column that holds a value sealed under the master key (the key check aside). */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "server_tls", column: "key_enc", keys: ["name"], extra: [], aad: (r) => `server_tls:${r.name}` },
  { table: "product_cas", column: "key_enc", keys: ["name"], extra: [], aad: (r) => `ca:${r.name}:key` },
  { table: "devices", column: "secret_enc", keys: ["id"], extra: ["generation"], aad: (r) => deviceSecretAad(r.id as string, Number(r.generation)) },
  { table: "devices", column: "pending_secret_enc", keys: ["id"], extra: ["pending_generation"], aad: (r) => deviceSecretAad(r.id as string, Number(r.pending_generation)) },
  { table: "provisioning_keys", column: "key_enc", keys: ["lot"], extra: [], aad: (r) => `lot:${r.lot}:key` },
  { table: "nas_clients", column: "secret_enc", keys: ["name"], extra: [], aad: (r) => `nas:${r.name}:secret` },
];

/** What `rekey` did. */
export interface RekeyReport {
  /** sealed values re-sealed */
  resealed: number;
  from: string;
  to: string;
  ms: number;
}

/** Rows per page while re-sealing (the transaction holds them all; the page only bounds memory). */
const PAGE = 1000;

/**
 * Re-seals every secret of `registry` (opened under the old key) under `newKey`,
 * with the key check and `meta.key_fingerprint`, in one transaction.
 * @param point - called at each step (each row, then "commit"): a fault-injection point for the crash tests
 * @throws CloudError INVALID_INPUT when the new key is the old one
 */
export async function rekeyRegistry(registry: Registry, oldKey: Uint8Array, newKey: Uint8Array, point: (label: string) => void = () => {}): Promise<RekeyReport> {
  const from = keyFingerprint(oldKey);
  const to = keyFingerprint(newKey);
  if (Buffer.from(oldKey).equals(Buffer.from(newKey))) throw new CloudError("INVALID_INPUT", "the new master key is the key in use", { field: "new-master-key-file" });
  const started = Date.now();
  const next = new SecretBox(newKey);
  const storage = registry.storage;
  let resealed = 0;
  await registry.tx(async () => {
    for (const sealed of SEALED_COLUMNS) {
      const [key] = sealed.keys;
      const select = `SELECT ${[...sealed.keys, ...sealed.extra, sealed.column].join(", ")} FROM ${sealed.table} WHERE ${sealed.column} IS NOT NULL AND ${key} > ? ORDER BY ${key} LIMIT ${PAGE}`;
      const update = `UPDATE ${sealed.table} SET ${sealed.column} = ? WHERE ${key} = ?`;
      for (let after = ""; ;) {
        const rows = await storage.all<Record<string, unknown>>(select, [after]);
        for (const row of rows) {
          const aad = sealed.aad(row);
          const plain = registry.box.open(row[sealed.column] as Buffer, aad);
          await storage.run(update, [next.seal(plain, aad), row[key] as string]);
          plain.fill(0);
          resealed++;
          point(`${sealed.table}.${sealed.column} ${row[key] as string}`);
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1][key] as string;
      }
    }
    await storage.run("UPDATE meta SET value = ? WHERE key = 'key_check'", [next.seal(Buffer.from(KEY_CHECK_PLAINTEXT), "meta:key_check")]);
    await storage.run("INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [Buffer.from(to)]);
    await registry.audit("admin:cli", "registry.rekey", null, `from=${from} to=${to} resealed=${resealed}`);
    point("commit");
  });
  point("committed");
  return { resealed, from, to, ms: Date.now() - started };
}
