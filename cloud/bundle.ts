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
 * Import: the checksum is verified first, then every row is validated (the first
 * bad one is reported with its 1-based line number, BUNDLE_INVALID); then one
 * transaction inserts every row (IMMEDIATE on SQLite), secrets sealed with
 * AES-256-GCM bound to row and generation as Registry does. The bundle's
 * SHA-256 is recorded in the same transaction, so importing the same bundle
 * again changes nothing and answers `alreadyImported: true`.
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
  /** devices registered by this call (0 when already imported) */
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

/**
 * Verifies and imports a bundle. All or nothing; idempotent per bundle content.
 * @param bundle - the bundle bytes
 * @param checksumText - the checksum file's text (`<hex>  <name>`), or the bare hex
 * @throws CloudError BUNDLE_INVALID (checksum: field "checksum"; rows: `line`), CA_NOT_FOUND, CA_REVOKED, LOT_EXISTS
 */
export async function importBundle(registry: Registry, actor: string, bundle: Buffer, checksumText: string): Promise<BundleImportResult> {
  const expected = checksumText.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (!SHA256_HEX.test(expected)) throw new CloudError("BUNDLE_INVALID", "checksum file must start with 64 hex digits", { field: "checksum" });
  const sha256 = bundleSha256(bundle);
  if (sha256 !== expected) throw new CloudError("BUNDLE_INVALID", "SHA-256 of the bundle does not match its checksum file", { field: "checksum" });
  const storage = registry.storage;
  const done = await storage.get<{ lot: string; option: BundleHeader["option"] }>("SELECT lot, option FROM imported_bundles WHERE sha256 = ?", [sha256]);
  if (done) return { sha256, lot: done.lot, option: done.option, imported: 0, alreadyImported: true };
  const { header, rows, lines } = parseBundle(bundle.toString("utf8"));
  const now = registry.now();
  const tag = `bundle=${sha256.slice(0, 16)} lot=${header.lot}`;
  const auditSql = "INSERT INTO audit (at, actor, action, device_id, detail) VALUES (?, ?, 'device.register', ?, ?)";
  const actorName = actor.slice(0, 64);
  // a registered id inserts nothing: reported with its line, and the transaction rolls back
  const insertOnce = async (line: number, id: string, sql: string, args: SqlValue[]) => {
    if ((await storage.run(`${sql} ON CONFLICT DO NOTHING`, args)).changes !== 1) bad(line, `device ${id} is already registered`);
  };
  const fresh = await registry.tx(async () => {
    if (await storage.get("SELECT 1 FROM imported_bundles WHERE sha256 = ?", [sha256])) return false;
    if (header.option === "secret") {
      const insert = "INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES (?, 'secret', ?, 0, ?)";
      const detail = `kind=secret ${tag}`;
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        await insertOnce(lines[i], row.deviceId, insert, [row.deviceId, registry.box.seal(Buffer.from(row.secretHex!, "hex"), deviceSecretAad(row.deviceId, 0)), now]);
        await storage.run(auditSql, [now, actorName, row.deviceId, detail]);
      }
    } else if (header.option === "certificate") {
      const ca = await registry.ca(header.caName!);
      if (!ca) throw new CloudError("CA_NOT_FOUND", `no CA named ${header.caName}`, { field: "caName" });
      if (ca.revoked) throw new CloudError("CA_REVOKED", `CA ${header.caName} is revoked`, { field: "caName" });
      const insert = "INSERT INTO devices (id, kind, ca_name, cert_fingerprint, created_at) VALUES (?, 'certificate', ?, ?, ?)";
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        await insertOnce(lines[i], row.deviceId, insert, [row.deviceId, ca.name, row.certFingerprint ?? null, now]);
        await storage.run(auditSql, [now, actorName, row.deviceId, `kind=certificate ca=${ca.name} ${tag}`]);
      }
    } else {
      if (await registry.lot(header.lot)) throw new CloudError("LOT_EXISTS", `lot ${header.lot} exists`, { field: "lot" });
      for (let i = 0; i < rows.length; i++) {
        if (await storage.get("SELECT 1 FROM devices WHERE id = ?", [rows[i].deviceId])) bad(lines[i], `device ${rows[i].deviceId} is already registered`);
      }
      await registry.insertLot(header.lot, Buffer.from(header.provisioningKeyHex!, "hex"), rows.map((r) => r.deviceId), actor);
    }
    // two nodes importing the same bundle at once: the later commit finds the row and rolls back
    const recorded = await storage.run("INSERT INTO imported_bundles (sha256, lot, option, devices, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", [sha256, header.lot, header.option, rows.length, now]);
    if (recorded.changes !== 1) throw new CloudError("BUNDLE_INVALID", "the same bundle was imported meanwhile", { field: "bundle" });
    await registry.audit(actor, "bundle.import", null, `${tag} option=${header.option} devices=${rows.length}`);
    return true;
  });
  return { sha256, lot: header.lot, option: header.option, imported: fresh ? rows.length : 0, alreadyImported: !fresh };
}
