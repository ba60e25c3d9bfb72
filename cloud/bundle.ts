/*
 * Registration bundles from the manufacturing line (tools/manufacturing/make-lot.ts):
 * one JSON-lines file per lot plus its SHA-256 checksum file, imported all or
 * nothing, idempotently.
 *
 * Format (docs/manufacturing.md):
 *   line 1  {"format":"wcm-bundle","version":1,"lot":"...","option":"secret|temporary|certificate","count":N,
 *            "caName"?: "...", "provisioningKeyHex"?: "64 hex"}
 *   line 2+ {"deviceId":"..."} plus "secretHex" (secret) or "certFingerprint" (certificate, optional pin)
 * Checksum file: `<sha256 hex>  <bundle file name>` (sha256sum format).
 *
 * Import (importBundle): the checksum is verified first, then every row is
 * validated (the first bad one is reported with its 1-based line number,
 * BUNDLE_INVALID) and every id checked against the registry, all before the
 * first write: a bad bundle changes nothing. Then the bundle is recorded as
 * being imported (imported_bundles.complete = 0) and its rows written in short
 * transactions (IMPORT_BATCH_ROWS each, secrets sealed with AES-256-GCM bound
 * to row and generation as Registry does, sealed before the transaction
 * begins), with pauses between them so the logins' writes on SQLite get in;
 * last, complete = 1. Importing the same bundle again changes nothing and
 * answers `alreadyImported: true`; an import cut short is finished by importing
 * the same bundle again. The running cloud does this in a worker thread
 * (cloud/admin-worker.ts), never on the event loop that serves devices.
 */
import { createHash } from "node:crypto";
import { DEVICE_ID_PATTERN } from "../modules/protocol";
import { CloudError } from "./errors";
import { deviceSecretAad, type Registry } from "./registry";
import { NAME_PATTERN } from "./admin-input";
import type { SqlValue } from "./storage/store";

/** Largest bundle accepted, in bytes. */
export const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
/** Most devices in one bundle. */
export const MAX_BUNDLE_DEVICES = 2_000_000;
/** The `format` of line 1. */
export const BUNDLE_FORMAT = "wcm-bundle";

const SECRET_HEX = /^([0-9a-fA-F]{2}){16,64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Line 1 of a bundle. */
export interface BundleHeader {
  format: typeof BUNDLE_FORMAT;
  version: 1;
  lot: string;
  option: "secret" | "temporary" | "certificate";
  count: number;
  /** certificate bundles: the product CA (must be registered, unrevoked) */
  caName?: string;
  /** temporary bundles: the lot's provisioning key (32 bytes hex) */
  provisioningKeyHex?: string;
}

/** One device row of a bundle. */
export interface BundleRow {
  deviceId: string;
  secretHex?: string;
  certFingerprint?: string;
}

/** What an import did. */
export interface BundleImportResult {
  sha256: string;
  lot: string;
  option: BundleHeader["option"];
  /** devices registered by this call (0 when already imported; fewer than the bundle's when it finished an interrupted import) */
  imported: number;
  alreadyImported: boolean;
}

/** SHA-256 of bundle bytes, lower-case hex. */
export function bundleSha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The checksum file's text for a bundle. */
export function checksumLine(sha256: string, fileName: string): string {
  return `${sha256}  ${fileName}\n`;
}

function bad(line: number, message: string): never {
  throw new CloudError("BUNDLE_INVALID", message, { line });
}

function parseJson(text: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    bad(line, "not a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) bad(line, "not a JSON object");
  return value as Record<string, unknown>;
}

/**
 * Parses and validates a whole bundle.
 * @throws CloudError BUNDLE_INVALID with `line`, TOO_LARGE
 */
export function parseBundle(text: string): { header: BundleHeader; rows: BundleRow[]; lines: number[] } {
  if (text.length > MAX_BUNDLE_BYTES) throw new CloudError("TOO_LARGE", `bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
  const lines = text.split("\n");
  const h = parseJson(lines[0] ?? "", 1);
  if (h.format !== BUNDLE_FORMAT || h.version !== 1) bad(1, `line 1 must be a ${BUNDLE_FORMAT} version 1 header`);
  if (typeof h.lot !== "string" || !NAME_PATTERN.test(h.lot)) bad(1, "lot must be 1-64 characters of A-Z a-z 0-9 . _ -");
  if (h.option !== "secret" && h.option !== "temporary" && h.option !== "certificate") bad(1, "option must be secret, temporary or certificate");
  if (typeof h.count !== "number" || !Number.isInteger(h.count) || h.count < 1 || h.count > MAX_BUNDLE_DEVICES) bad(1, `count must be 1..${MAX_BUNDLE_DEVICES}`);
  if (h.option === "certificate" && (typeof h.caName !== "string" || !NAME_PATTERN.test(h.caName))) bad(1, "certificate bundles need caName");
  if (h.option === "temporary" && (typeof h.provisioningKeyHex !== "string" || !/^[0-9a-f]{64}$/.test(h.provisioningKeyHex))) bad(1, "temporary bundles need provisioningKeyHex (64 hex digits)");
  const header = h as unknown as BundleHeader;
  const rows: BundleRow[] = [];
  const lineNumbers: number[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const text = lines[i];
    if (text === "") {
      if (i === lines.length - 1) break;
      bad(i + 1, "empty line");
    }
    const line = i + 1;
    if (rows.length >= header.count) bad(line, `more rows than count ${header.count}`);
    const r = parseJson(text, line);
    const id = r.deviceId;
    if (typeof id !== "string" || !DEVICE_ID_PATTERN.test(id)) bad(line, "deviceId must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
    if (seen.has(id)) bad(line, `deviceId ${id} appears twice`);
    seen.add(id);
    const row: BundleRow = { deviceId: id };
    if (header.option === "secret") {
      if (typeof r.secretHex !== "string" || !SECRET_HEX.test(r.secretHex)) bad(line, "secretHex must be 16 to 64 bytes as hex");
      row.secretHex = r.secretHex;
    } else if (r.secretHex !== undefined) bad(line, `secretHex is not allowed for option ${header.option}`);
    if (r.certFingerprint !== undefined) {
      if (header.option !== "certificate" || typeof r.certFingerprint !== "string" || !SHA256_HEX.test(r.certFingerprint)) bad(line, "certFingerprint must be a SHA-256 (64 lower-case hex) on certificate rows");
      row.certFingerprint = r.certFingerprint;
    }
    rows.push(row);
    lineNumbers.push(line);
  }
  if (rows.length !== header.count) bad(lines.length, `header count ${header.count} but ${rows.length} rows`);
  return { header, rows, lines: lineNumbers };
}

/** Rows written per transaction (each a short write: sealed before it begins). */
export const IMPORT_BATCH_ROWS = 2000;
/** Rows per INSERT statement, and ids per conflict-check SELECT. */
const STATEMENT_ROWS = 250;

/** Options of importBundle. */
export interface BundleImportOptions {
  /** rows per transaction (default IMPORT_BATCH_ROWS) */
  batchRows?: number;
  /**
   * Called after each committed batch with the ms it held the transaction; the
   * import waits for the promise it returns. Default: waits as long as the batch
   * held the write lock (at least 1 ms), so SQLite writers of other connections get in between.
   */
  betweenBatches?: (heldMs: number, written: number) => Promise<void>;
}

const defaultPause = (heldMs: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Math.ceil(heldMs))));

/** A journal row of imported_bundles. */
interface JournalRow {
  lot: string;
  option: BundleHeader["option"];
  complete: number;
  at: number;
}

/**
 * Verifies and imports a bundle: all or nothing for a bad bundle, idempotent per bundle content,
 * written in short transactions.
 *
 * 1. Checked before anything is written: the checksum, every line (BUNDLE_INVALID with `line`),
 *    every device id against the registry (already registered: BUNDLE_INVALID with its line),
 *    the CA (certificate bundles) or the lot name (temporary bundles). A bad bundle changes nothing.
 * 2. One small transaction records the bundle in `imported_bundles` with `complete = 0` (the
 *    journal; a temporary bundle's provisioning key is created in it too).
 * 3. The rows follow in transactions of `batchRows` (secrets sealed before each begins), each
 *    device with its `device.register` audit record; between batches the import pauses as long
 *    as the batch held the write lock, so on SQLite the logins' writes interleave.
 * 4. One small transaction sets `complete = 1` and audits `bundle.import`.
 *
 * Cut short after step 2 (a crash, a kill, a storage error), the bundle is half written and says so
 * (`complete = 0`); importing the same bundle again finishes it (rows it already wrote, recognized
 * by their kind and the journal's time, are skipped). A device id registered by someone else while
 * the import runs (between the check and its batch) stops the import at that line (BUNDLE_INVALID);
 * the rows before it stay registered (docs: cloud/README.md, Bulk work).
 * @param bundle - the bundle bytes
 * @param checksumText - the checksum file's text (`<hex>  <name>`), or the bare hex
 * @throws CloudError BUNDLE_INVALID (checksum: field "checksum"; rows: `line`), CA_NOT_FOUND, CA_REVOKED, LOT_EXISTS, TOO_LARGE
 */
export async function importBundle(registry: Registry, actor: string, bundle: Buffer, checksumText: string, options: BundleImportOptions = {}): Promise<BundleImportResult> {
  const expected = checksumText.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (!SHA256_HEX.test(expected)) throw new CloudError("BUNDLE_INVALID", "checksum file must start with 64 hex digits", { field: "checksum" });
  if (bundle.length > MAX_BUNDLE_BYTES) throw new CloudError("TOO_LARGE", `bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
  const sha256 = bundleSha256(bundle);
  if (sha256 !== expected) throw new CloudError("BUNDLE_INVALID", "SHA-256 of the bundle does not match its checksum file", { field: "checksum" });
  const storage = registry.storage;
  const journal = await storage.get<JournalRow>("SELECT lot, option, complete, at FROM imported_bundles WHERE sha256 = ?", [sha256]);
  if (journal && Number(journal.complete) === 1) return { sha256, lot: journal.lot, option: journal.option, imported: 0, alreadyImported: true };
  const { header, rows, lines } = parseBundle(bundle.toString("utf8"));
  const resuming = journal !== undefined;
  const now = resuming ? Number(journal.at) : registry.now();
  const tag = `bundle=${sha256.slice(0, 16)} lot=${header.lot}`;
  const actorName = actor.slice(0, 64);

  // 1. every check before the first write
  let caName: string | undefined;
  if (header.option === "certificate") {
    const ca = await registry.ca(header.caName!);
    if (!ca) throw new CloudError("CA_NOT_FOUND", `no CA named ${header.caName}`, { field: "caName" });
    if (ca.revoked) throw new CloudError("CA_REVOKED", `CA ${header.caName} is revoked`, { field: "caName" });
    caName = ca.name;
  }
  const lotRow = header.option === "temporary" ? await registry.lot(header.lot) : undefined;
  if (lotRow && !resuming) throw new CloudError("LOT_EXISTS", `lot ${header.lot} exists`, { field: "lot" });
  /** a registered row this bundle's interrupted import wrote (or, for a temporary bundle, a claim of its lot) */
  const ours = (row: { kind: string; created_at: number; ca_name: string | null; lot: string | null }) => resuming && (
    header.option === "temporary" ? row.kind === "temporary" && row.lot === header.lot
      : row.kind === header.option && Number(row.created_at) === now && (header.option !== "certificate" || row.ca_name === caName));
  const written = new Set<string>();
  const lineOf = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) lineOf.set(rows[i].deviceId, lines[i]);
  for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
    const ids = rows.slice(i, i + STATEMENT_ROWS).map((r) => r.deviceId);
    const found = await storage.all<{ id: string; kind: string; created_at: number; ca_name: string | null; lot: string | null }>(
      `SELECT id, kind, created_at, ca_name, lot FROM devices WHERE id IN (${ids.map(() => "?").join(", ")})`, ids);
    for (const row of found) {
      if (!ours(row)) bad(lineOf.get(row.id)!, `device ${row.id} is already registered`);
      written.add(row.id);
    }
  }

  // 2. the journal (and a temporary bundle's lot)
  await registry.tx(async () => {
    if (!resuming) {
      const recorded = await storage.run("INSERT INTO imported_bundles (sha256, lot, option, devices, at, complete) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING", [sha256, header.lot, header.option, rows.length, now]);
      // two imports of one bundle at once: the later one stops here
      if (recorded.changes !== 1) throw new CloudError("BUNDLE_INVALID", "the same bundle is being imported meanwhile", { field: "bundle" });
    }
    if (header.option === "temporary" && !lotRow) {
      if (await registry.lot(header.lot)) throw new CloudError("LOT_EXISTS", `lot ${header.lot} exists`, { field: "lot" });
      await storage.run("INSERT INTO provisioning_keys (lot, key_enc, has_allowlist, retired, line_rate, created_at) VALUES (?, ?, 1, 0, NULL, ?)",
        [header.lot, registry.box.seal(Buffer.from(header.provisioningKeyHex!, "hex"), `lot:${header.lot}:key`), now]);
      await registry.audit(actor, "lot.create", null, `lot=${header.lot} allowlist=${rows.length}`);
    }
  });

  // 3. the rows, in short transactions
  const batchRows = Math.max(1, Math.min(options.batchRows ?? IMPORT_BATCH_ROWS, 50_000));
  const pause = options.betweenBatches ?? defaultPause;
  let imported = 0;
  const auditDetail = header.option === "secret" ? `kind=secret ${tag}` : `kind=certificate ca=${caName} ${tag}`;
  for (let start = 0; start < rows.length; start += batchRows) {
    const batch = rows.slice(start, start + batchRows).filter((r) => !written.has(r.deviceId));
    if (batch.length === 0) continue;
    // sealed before the transaction begins: the write lock is held for the inserts only
    const values: SqlValue[][] = batch.map((row) => header.option === "secret"
      ? [row.deviceId, registry.box.seal(Buffer.from(row.secretHex!, "hex"), deviceSecretAad(row.deviceId, 0)), now]
      : header.option === "certificate" ? [row.deviceId, caName!, row.certFingerprint ?? null, now] : [header.lot, row.deviceId]);
    const began = performance.now();
    await registry.tx(async () => {
      for (let i = 0; i < values.length; i += STATEMENT_ROWS) {
        const part = values.slice(i, i + STATEMENT_ROWS);
        if (header.option === "temporary") {
          await storage.run(`INSERT INTO lot_devices (lot, device_id) VALUES ${part.map(() => "(?, ?)").join(", ")} ON CONFLICT DO NOTHING`, part.flat());
          continue;
        }
        const insert = header.option === "secret"
          ? `INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES ${part.map(() => "(?, 'secret', ?, 0, ?)").join(", ")}`
          : `INSERT INTO devices (id, kind, ca_name, cert_fingerprint, created_at) VALUES ${part.map(() => "(?, 'certificate', ?, ?, ?)").join(", ")}`;
        const inserted = new Set((await storage.all<{ id: string }>(`${insert} ON CONFLICT DO NOTHING RETURNING id`, part.flat())).map((r) => r.id));
        if (inserted.size !== part.length) {
          for (const [id] of part as [string][]) {
            if (inserted.has(id)) continue;
            const row = await storage.get<{ kind: string; created_at: number; ca_name: string | null; lot: string | null }>("SELECT kind, created_at, ca_name, lot FROM devices WHERE id = ?", [id]);
            // another import of this bundle wrote it meanwhile; anything else registered it between the check and now
            if (!row || !(row.kind === header.option && Number(row.created_at) === now)) bad(lineOf.get(id)!, `device ${id} was registered by someone else while the bundle was imported: the import stopped here, ${imported} devices of it are registered`);
          }
        }
        const audited = [...inserted];
        if (audited.length > 0) {
          await storage.run(`INSERT INTO audit (at, actor, action, device_id, detail) VALUES ${audited.map(() => "(?, ?, 'device.register', ?, ?)").join(", ")}`,
            audited.flatMap((id) => [now, actorName, id, auditDetail]));
        }
      }
    });
    imported += batch.length;
    await pause(performance.now() - began, imported);
  }

  // 4. done
  const finished = await registry.tx(async () => {
    const done = await storage.run("UPDATE imported_bundles SET complete = 1 WHERE sha256 = ? AND complete = 0", [sha256]);
    if (done.changes !== 1) return false;
    await registry.audit(actor, "bundle.import", null, `${tag} option=${header.option} devices=${rows.length}${resuming ? " resumed=yes" : ""}`);
    return true;
  });
  return { sha256, lot: header.lot, option: header.option, imported, alreadyImported: !finished };
}
