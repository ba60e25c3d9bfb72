/*
 * Owner-only files and folders: the data folder, the registry, the master key,
 * the admin token and the key files the cloud reads or writes.
 *
 * Files the cloud makes are created with their final mode (0600 / 0700) in the
 * open() call itself, never chmodded afterwards, so no other user can open
 * them in between. Files and folders it is given are refused (FILE_INSECURE,
 * naming the path and the chmod that fixes it) when group or others may read
 * or write them, as OpenSSH does for private keys. POSIX modes only: on
 * Windows the checks are skipped.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { CloudError } from "./errors";

const POSIX = process.platform !== "win32";

/**
 * Throws FILE_INSECURE when group or others have any permission on `path`.
 * @param what what the path is, for the message ("the master key file")
 */
export function assertOwnerOnly(path: string, what: string): void {
  if (!POSIX) return;
  const stat = statSync(path);
  if ((stat.mode & 0o077) === 0) return;
  const fix = stat.isDirectory() ? "700" : "600";
  throw new CloudError("FILE_INSECURE",
    `${what} ${path} is open to group or others (mode ${(stat.mode & 0o777).toString(8).padStart(3, "0")}): run chmod ${fix} ${path}`);
}

/** Makes `dir` (and missing parents) with mode 0700, or checks an existing one is owner-only. */
export function ensureOwnerOnlyDir(dir: string, what = "the data folder"): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  assertOwnerOnly(dir, what);
}

/**
 * Creates `path` with mode 0600 and writes `data`; fails (EEXIST) when it exists.
 * The mode is given to open(2), so the file is never readable by others.
 */
export function createOwnerOnlyFile(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, "wx", 0o600);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` empty with mode 0600 unless it exists (for files another library then opens). */
export function touchOwnerOnlyFile(path: string): void {
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/**
 * Replaces `path` with `data` atomically: a new file made with mode 0600,
 * then renamed over the old one (which keeps no say over the new mode).
 */
export function replaceOwnerOnlyFile(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  if (existsSync(tmp)) unlinkSync(tmp);
  createOwnerOnlyFile(tmp, data);
  renameSync(tmp, path);
}
