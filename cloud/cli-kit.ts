/*
 * What the cloud CLI (cloud/cli.ts) and make-lot (tools/manufacturing/make-lot.ts)
 * share: option parsing per command (node:util parseArgs, strict: unknown
 * flags and missing values refused, `--flag value` and `--flag=value`), the
 * exit codes, the one error format (text `error <CODE>: <message>` on stderr,
 * or with --json `{"error":{"code","message",...},"exit":N}` on stdout), and
 * reading input files and secrets (a file path, or `-` for standard input:
 * never a secret on the command line).
 *
 * Exit codes (EXIT): 0 ok; 1 refused (a typed cloud error: the input was read but
 * the cloud said no); 2 usage or input (an unknown command or flag, a missing or
 * unreadable file, an invalid configuration, a registry that does not exist);
 * 3 stopped early (make-lot --stop-after: re-run to resume); 70 internal (a bug:
 * the message says only what failed).
 */
import { readFileSync, statSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CloudError, isCloudError } from "./errors";

/** The package version (both tools' --version). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** Exit codes of both tools (the file header). */
export const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, STOPPED: 3, INTERNAL: 70 } as const;

/** A command-line mistake: exit 2 with a pointer to --help. */
export class UsageError extends Error {
  readonly code = "USAGE";
}

/** One option of a command. */
export interface OptionSpec {
  type: "string" | "boolean";
  /** shown in --help, e.g. `<file>` */
  value?: string;
  help: string;
  short?: string;
  multiple?: boolean;
}

/** What parseCommandLine returns. */
export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parses argv with the given options (strict).
 * @throws UsageError for an unknown option, a missing value or a value given to a boolean flag
 */
export function parseCommandLine(argv: string[], options: Record<string, OptionSpec>): ParsedArgs {
  const config: ParseArgsConfig["options"] = {};
  for (const [name, spec] of Object.entries(options)) {
    config[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options: config, strict: true, allowPositionals: true });
    return { values: values as ParsedArgs["values"], positionals };
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "").replace(/\s+/g, " ");
    throw new UsageError(message);
  }
}

/** The --help text of a command's options. */
export function optionsHelp(options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options).map(([name, spec]) => [`  --${name}${spec.value ? ` ${spec.value}` : ""}`, spec.help]);
  const width = Math.max(0, ...rows.map((r) => r[0].length)) + 2;
  return rows.map(([flag, help]) => `${flag.padEnd(width)}${help}`).join("\n");
}

/**
 * Reads an input file (or standard input for `-`) with a size bound.
 * @throws CloudError FILE_UNREADABLE naming the file (missing, unreadable, a directory), TOO_LARGE over `limit`
 */
export function readInputFile(path: string, limit: number, what: string, stdin?: () => Buffer): Buffer {
  let bytes: Buffer;
  if (path === "-") {
    bytes = (stdin ?? readStdin)();
  } else {
    try {
      const size = statSync(path).size;
      if (size > limit) throw new CloudError("TOO_LARGE", `${what} ${path} is larger than ${limit} bytes`);
      bytes = readFileSync(path);
    } catch (error) {
      if (isCloudError(error)) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const why: Record<string, string> = { ENOENT: "no such file", EACCES: "permission denied", EISDIR: "is a directory" };
      throw new CloudError("FILE_UNREADABLE", `cannot read ${what} ${path}: ${why[code ?? ""] ?? code ?? "error"}`);
    }
  }
  if (bytes.length > limit) throw new CloudError("TOO_LARGE", `${what} ${path === "-" ? "(standard input)" : path} is larger than ${limit} bytes`);
  return bytes;
}

/** Standard input in full (a secret piped in: `printf %s "$S" | wcm ... --secret-file -`). */
export function readStdin(): Buffer {
  try {
    return readFileSync(0);
  } catch (error) {
    throw new CloudError("FILE_UNREADABLE", `cannot read standard input: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** A secret from a file or standard input: its text without one trailing newline (and, with `trim`, surrounding white space). */
export function readSecret(path: string, what: string, options: { trim?: boolean; stdin?: () => Buffer } = {}): string {
  const text = readInputFile(path, 4096, what, options.stdin).toString("utf8");
  return options.trim ? text.trim() : text.replace(/\r?\n$/, "");
}

/** The exit code and the text or JSON of an error, in the one format of both tools. */
export function formatError(error: unknown, json: boolean): { exit: number; text: string } {
  let code: string;
  let message: string;
  let exit: number;
  const extra: Record<string, unknown> = {};
  if (error instanceof UsageError) {
    code = "USAGE";
    message = error.message;
    exit = EXIT.USAGE;
  } else if (isCloudError(error)) {
    code = error.code;
    message = error.message.slice(code.length + 2);
    exit = INPUT_CODES.has(code) ? EXIT.USAGE : EXIT.REFUSED;
    if (error.field !== undefined) extra.field = error.field;
    if (error.line !== undefined) extra.line = error.line;
    const problems = (error as { problems?: unknown }).problems;
    if (Array.isArray(problems)) extra.problems = problems;
  } else {
    code = "INTERNAL";
    message = (error as Error)?.message ?? String(error);
    exit = EXIT.INTERNAL;
  }
  if (json) return { exit, text: JSON.stringify({ error: { code, message, ...extra }, exit }) };
  const problems = Array.isArray(extra.problems) ? `\n${(extra.problems as string[]).map((p) => `  ${p}`).join("\n")}` : "";
  return { exit, text: `error ${code}: ${code === "CONFIG_INVALID" && problems ? message.replace(/:.*$/s, ":") : message}${problems}${exit === EXIT.USAGE && code === "USAGE" ? " (run with --help)" : ""}` };
}

/** Cloud error codes that mean the operator's input could not be used (exit 2, like a usage error). */
const INPUT_CODES = new Set(["FILE_UNREADABLE", "CONFIG_INVALID", "REGISTRY_MISSING"]);
