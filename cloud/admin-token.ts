/*
 * The admin API credential: a bearer token every admin HTTP request carries.
 *
 * Either a file the operator gives (`adminTokenFile`, `--admin-token-file`),
 * or `<data>/admin-token`, made on first start from 32 random bytes (64 hex
 * digits) and created owner-only (mode 0600 given to open(2)). Both must be
 * owner-only (FILE_INSECURE otherwise) and hold 32 to 4096 printable ASCII
 * characters without spaces (ADMIN_TOKEN_INVALID). There is no way to run the
 * admin API without one.
 */
import { readFileSync, existsSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { CloudError } from "./errors";
import { assertOwnerOnly, createOwnerOnlyFile } from "./owner-files";

/** Name of the generated token file in the data folder. */
export const ADMIN_TOKEN_FILE = "admin-token";

const TOKEN_PATTERN = /^[\x21-\x7e]{32,4096}$/;

/** Reads and checks a token file (owner-only, 32-4096 printable characters). */
export function readAdminTokenFile(path: string): string {
  if (!existsSync(path)) throw new CloudError("ADMIN_TOKEN_INVALID", `the admin token file ${path} does not exist`);
  assertOwnerOnly(path, "the admin token file");
  const text = readFileSync(path, "utf8");
  if (text.length > 8192) throw new CloudError("ADMIN_TOKEN_INVALID", `the admin token file ${path} is too large`);
  const token = text.trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new CloudError("ADMIN_TOKEN_INVALID", `the admin token file ${path} must hold 32 to 4096 printable characters without spaces`);
  }
  return token;
}

/**
 * The admin token and the file it is in: `file` when given, else
 * `<dataDir>/admin-token`, created with a fresh random token if missing.
 */
export function adminToken(dataDir: string, file?: string): { token: string; file: string } {
  if (file !== undefined) return { token: readAdminTokenFile(file), file };
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  if (!existsSync(path)) {
    try {
      createOwnerOnlyFile(path, `${randomBytes(32).toString("hex")}\n`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  return { token: readAdminTokenFile(path), file: path };
}
