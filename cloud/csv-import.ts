/*
 * Bulk registration from CSV (cloud/csv.ts's format) in short transactions,
 * as bundle imports are (cloud/bundle.ts): the running cloud runs it in its
 * admin worker thread (cloud/admin-worker.ts), off the event loop that serves devices.
 *
 * 1. Checked before anything is written: every line (CSV_INVALID with `line`),
 *    the CA and the lot, every id against the registry (already registered:
 *    CSV_INVALID with its line), a CA for certificate rows, a lot for
 *    temporary ones. A bad CSV changes nothing.
 * 2. A journal row in imported_bundles (option "csv", keyed by a SHA-256 of
 *    the CSV and its CA and lot, complete = 0) says the import is under way.
 * 3. The rows in transactions of IMPORT_BATCH_ROWS, each device with its
 *    `device.register` audit record (temporary rows join the lot's allowlist),
 *    pausing between them as long as each held the write lock.
 * 4. complete = 1 and one `device.import` record.
 *
 * Cut short after step 2, the same CSV imported again finishes it (rows it
 * wrote, recognized by kind and the journal's time, are skipped). Imported
 * whole, the same CSV again is refused as before (its ids are registered),
 * unless it has only temporary rows (the allowlist takes them again).
 */
import { createHash } from "node:crypto";
import { CloudError } from "./errors";
import { parseRegistrationCsv, type CsvRow } from "./csv";
import { IMPORT_BATCH_ROWS, type BundleImportOptions } from "./bundle";
import { deviceSecretAad, type Registry } from "./registry";
import type { SqlValue } from "./storage/store";

/** What a CSV import did. */
export interface CsvImportResult {
  imported: number;
  secret: number;
  certificate: number;
  temporary: number;
}

/** Rows per INSERT statement, and ids per conflict-check SELECT. */
const STATEMENT_ROWS = 250;

const defaultPause = (heldMs: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Math.ceil(heldMs))));

function bad(line: number, message: string): never {
  throw new CloudError("CSV_INVALID", message, { line });
}

/**
 * Imports a registration CSV: all or nothing for a bad CSV, written in short transactions.
 * @param caName - the CA of certificate rows (validated by the caller)
 * @param lotName - the lot of temporary rows (validated by the caller)
 * @throws CloudError CSV_INVALID (with `line`), TOO_LARGE, CA_NOT_FOUND, CA_REVOKED, LOT_NOT_FOUND, LOT_RETIRED
 */
export async function importCsv(registry: Registry, actor: string, csv: string, caName: string | undefined, lotName: string | undefined, options: BundleImportOptions = {}): Promise<CsvImportResult> {
  const rows = parseRegistrationCsv(csv);
  const storage = registry.storage;
  const ca = caName === undefined ? undefined : await registry.ca(caName);
  if (caName !== undefined && !ca) throw new CloudError("CA_NOT_FOUND", `no CA named ${caName}`, { field: "caName" });
  if (ca?.revoked) throw new CloudError("CA_REVOKED", `CA ${caName} is revoked`, { field: "caName" });
  const lot = lotName === undefined ? undefined : await registry.lot(lotName);
  if (lotName !== undefined && !lot) throw new CloudError("LOT_NOT_FOUND", `no lot ${lotName}`, { field: "lot" });
  if (lot?.retired) throw new CloudError("LOT_RETIRED", `lot ${lotName} is retired`, { field: "lot" });

  const key = createHash("sha256").update(`wcm-csv-import\0${caName ?? ""}\0${lotName ?? ""}\0`).update(csv).digest("hex");
  const journal = await storage.get<{ complete: number; at: number }>("SELECT complete, at FROM imported_bundles WHERE sha256 = ?", [key]);
  const resuming = journal !== undefined && Number(journal.complete) === 0;
  const now = resuming ? Number(journal.at) : registry.now();
  const optionOf = new Map<string, CsvRow>(rows.map((r) => [r.deviceId, r]));
  /** a registered row this CSV's interrupted import wrote */
  const ours = (id: string, row: { kind: string; created_at: number; ca_name: string | null; lot: string | null }) => {
    const wanted = optionOf.get(id)!;
    // a temporary id of the CSV may have claimed its login meanwhile (its allowlist row was in)
    if (wanted.option === "temporary") return resuming && row.kind === "temporary" && row.lot === lot?.lot;
    return resuming && row.kind === wanted.option && Number(row.created_at) === now && (wanted.option !== "certificate" || row.ca_name === ca?.name);
  };

  // 1. every check, in line order, before the first write
  const registered = new Map<string, { kind: string; created_at: number; ca_name: string | null; lot: string | null }>();
  for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
    const ids = rows.slice(i, i + STATEMENT_ROWS).map((r) => r.deviceId);
    for (const row of await storage.all<{ id: string; kind: string; created_at: number; ca_name: string | null; lot: string | null }>(
      `SELECT id, kind, created_at, ca_name, lot FROM devices WHERE id IN (${ids.map(() => "?").join(", ")})`, ids)) registered.set(row.id, row);
  }
  const written = new Set<string>();
  const counts: CsvImportResult = { imported: 0, secret: 0, certificate: 0, temporary: 0 };
  for (const row of rows) {
    const found = registered.get(row.deviceId);
    if (found) {
      if (!ours(row.deviceId, found)) bad(row.line, `device ${row.deviceId} is already registered`);
      written.add(row.deviceId);
    }
    if (row.option === "certificate" && !ca) bad(row.line, "certificate rows need a CA (caName / --ca)");
    if (row.option === "temporary" && !lot) bad(row.line, "temporary rows need a lot (lot / --lot)");
    counts[row.option]++;
    counts.imported++;
  }

  // 2. the journal
  await registry.tx(async () => {
    if (resuming) return;
    const started = journal
      ? await storage.run("UPDATE imported_bundles SET complete = 0, at = ? WHERE sha256 = ? AND complete = 1", [now, key])
      : await storage.run("INSERT INTO imported_bundles (sha256, lot, option, devices, at, complete) VALUES (?, ?, 'csv', ?, ?, 0) ON CONFLICT DO NOTHING", [key, lotName ?? "", rows.length, now]);
    if (started.changes !== 1) throw new CloudError("CSV_INVALID", "the same CSV is being imported meanwhile", { field: "csv" });
  });

  // 3. the rows, in short transactions
  const batchRows = Math.max(1, Math.min(options.batchRows ?? IMPORT_BATCH_ROWS, 50_000));
  const pause = options.betweenBatches ?? defaultPause;
  const actorName = actor.slice(0, 64);
  let done = 0;
  for (let start = 0; start < rows.length; start += batchRows) {
    const batch = rows.slice(start, start + batchRows).filter((r) => !written.has(r.deviceId));
    if (batch.length === 0) continue;
    const secrets = batch.filter((r) => r.option === "secret").map((r): SqlValue[] => [r.deviceId, registry.box.seal(Buffer.from(r.secretHex!, "hex"), deviceSecretAad(r.deviceId, 0)), now]);
    const certificates = batch.filter((r) => r.option === "certificate").map((r): SqlValue[] => [r.deviceId, ca?.name ?? null, now]);
    const temporaries = batch.filter((r) => r.option === "temporary").map((r): SqlValue[] => [lot!.lot, r.deviceId]);
    const began = performance.now();
    await registry.tx(async () => {
      const insert = async (values: SqlValue[][], sql: (part: SqlValue[][]) => string, detail: string) => {
        for (let i = 0; i < values.length; i += STATEMENT_ROWS) {
          const part = values.slice(i, i + STATEMENT_ROWS);
          const inserted = new Set((await storage.all<{ id: string }>(`${sql(part)} ON CONFLICT DO NOTHING RETURNING id`, part.flat())).map((r) => r.id));
          for (const [id] of part as [string][]) {
            if (inserted.has(id)) continue;
            const row = await storage.get<{ kind: string; created_at: number; ca_name: string | null }>("SELECT kind, created_at, ca_name FROM devices WHERE id = ?", [id]);
            if (!row || !(row.kind === optionOf.get(id)!.option && Number(row.created_at) === now)) {
              bad(optionOf.get(id)!.line, `device ${id} was registered by someone else while the CSV was imported: the import stopped here, ${done} rows of it are in`);
            }
          }
          if (inserted.size > 0) {
            await storage.run(`INSERT INTO audit (at, actor, action, device_id, detail) VALUES ${[...inserted].map(() => "(?, ?, 'device.register', ?, ?)").join(", ")}`,
              [...inserted].flatMap((id) => [now, actorName, id, detail]));
          }
        }
      };
      await insert(secrets, (part) => `INSERT INTO devices (id, kind, secret_enc, generation, created_at) VALUES ${part.map(() => "(?, 'secret', ?, 0, ?)").join(", ")}`, "kind=secret");
      await insert(certificates, (part) => `INSERT INTO devices (id, kind, ca_name, cert_fingerprint, created_at) VALUES ${part.map(() => "(?, 'certificate', ?, NULL, ?)").join(", ")}`, `kind=certificate ca=${ca?.name}`);
      for (let i = 0; i < temporaries.length; i += STATEMENT_ROWS) {
        const part = temporaries.slice(i, i + STATEMENT_ROWS);
        await storage.run(`INSERT INTO lot_devices (lot, device_id) VALUES ${part.map(() => "(?, ?)").join(", ")} ON CONFLICT DO NOTHING`, part.flat());
      }
    });
    done += batch.length;
    await pause(performance.now() - began, done);
  }

  // 4. done
  await registry.tx(async () => {
    await storage.run("UPDATE imported_bundles SET complete = 1 WHERE sha256 = ?", [key]);
    await registry.audit(actor, "device.import", null, `rows=${counts.imported}`);
  });
  return counts;
}
