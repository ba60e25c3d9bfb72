/*
 * Parser of the bulk-registration CSV: header `device_id,option,secret_hex`,
 * one device per line. Strict and bounded: no quoting (no field ever needs it),
 * at most MAX_CSV_BYTES and MAX_CSV_ROWS; the first bad line is reported with
 * its 1-based line number as CloudError CSV_INVALID.
 */
import { DEVICE_ID_PATTERN } from "../modules/protocol";
import { CloudError } from "./errors";

/** Largest CSV accepted, in bytes (UTF-8). */
export const MAX_CSV_BYTES = 50 * 1024 * 1024;
/** Most rows in one CSV. */
export const MAX_CSV_ROWS = 1_000_000;
/** The required header line. */
export const CSV_HEADER = "device_id,option,secret_hex";

/** One parsed row. */
export interface CsvRow {
  line: number;
  deviceId: string;
  option: "secret" | "certificate" | "temporary";
  /** hex, for option secret */
  secretHex?: string;
}

function bad(line: number, message: string): never {
  throw new CloudError("CSV_INVALID", message, { line });
}

/**
 * Parses a registration CSV.
 * @throws CloudError TOO_LARGE or CSV_INVALID (with `line`)
 * @example parseRegistrationCsv("device_id,option,secret_hex\nlamp-1,secret,00112233445566778899aabbccddeeff\n")
 */
export function parseRegistrationCsv(text: string): CsvRow[] {
  if (Buffer.byteLength(text, "utf8") > MAX_CSV_BYTES) throw new CloudError("TOO_LARGE", `CSV larger than ${MAX_CSV_BYTES} bytes`);
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines[0].trim() !== CSV_HEADER) bad(1, `header must be ${CSV_HEADER}`);
  const rows: CsvRow[] = [];
  const seen = new Set<string>();
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const text = lines[i].trim();
    if (text === "") continue;
    if (rows.length >= MAX_CSV_ROWS) bad(line, `more than ${MAX_CSV_ROWS} rows`);
    const fields = text.split(",");
    if (fields.length !== 3) bad(line, "must have exactly 3 fields: device_id,option,secret_hex");
    const [deviceId, option, secretHex] = fields.map((f) => f.trim());
    if (!DEVICE_ID_PATTERN.test(deviceId)) bad(line, "device_id must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
    if (seen.has(deviceId)) bad(line, `device_id ${deviceId} appears twice`);
    seen.add(deviceId);
    if (option === "secret") {
      if (!/^([0-9a-fA-F]{2}){16,64}$/.test(secretHex)) bad(line, "secret_hex must be 16 to 64 bytes as hex");
      rows.push({ line, deviceId, option, secretHex });
    } else if (option === "certificate" || option === "temporary") {
      if (secretHex !== "") bad(line, `secret_hex must be empty for option ${option}`);
      rows.push({ line, deviceId, option });
    } else {
      bad(line, "option must be secret, certificate or temporary");
    }
  }
  return rows;
}
