/*
 * esbuild bundling for the XS runs: one IIFE, ES2022, platform "neutral" (no
 * Node built-ins, no `process.env` shims), so what runs in XS is what a device
 * would get. Used by test/xs-core.test.ts and bench/xs-footprint.ts.
 */
import { build, type BuildOptions } from "esbuild";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Options every XS bundle uses. */
export const XS_BUNDLE_OPTIONS: BuildOptions = {
  bundle: true,
  format: "iife",
  target: "es2022",
  platform: "neutral",
  mainFields: ["module", "main"],
  conditions: ["import", "default"],
  write: false,
  legalComments: "none",
  logLevel: "silent",
};

/**
 * Bundles a TypeScript entry file (or `source` text resolved from the root).
 * @returns the bundle's JavaScript text
 */
export async function bundleForXs(entry: string | { source: string }, options: BuildOptions = {}): Promise<string> {
  const input = typeof entry === "string"
    ? { entryPoints: [resolve(ROOT, entry)] }
    : { stdin: { contents: entry.source, resolveDir: ROOT, loader: "ts" as const, sourcefile: "xs-entry.ts" } };
  const result = await build({ ...XS_BUNDLE_OPTIONS, ...input, ...options });
  const file = result.outputFiles?.[0];
  if (!file) throw new Error("esbuild produced no output");
  return file.text;
}
