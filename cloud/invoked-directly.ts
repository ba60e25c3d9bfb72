/*
 * Whether a module is the program node was started with (not an import), so a
 * file can be both a command and a library (cloud/cli.ts, tools/manufacturing).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** True when `moduleUrl` (the caller's import.meta.url) is the script node runs. */
export function invokedDirectly(moduleUrl: string): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
