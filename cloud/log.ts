/*
 * Structured logs of the cloud: one JSON object per line (pino), with a level,
 * an ISO time, a message and flat fields (`event`, `deviceId`, `conn`, `reqId`,
 * `reason`, ...).
 *
 * Secrets are kept out by construction: a log call takes a message and fields
 * whose values are strings, numbers or booleans only, so no record, buffer or
 * key object can be handed to the logger; anything else that reaches it at run
 * time (a cast, an any) is written as "[not logged]". Call sites put ids,
 * reasons and counts in the fields, never a password, key or token.
 * Every `npm test` runs the whole suite with debug logs on and searches every
 * line for the secrets it made (test/support/log-scan-hooks.ts);
 * test/logs-no-secrets.test.ts does the same for the demo.
 *
 * CloudLog is also a LogPort (modules/ports.ts): `(level, message)` without
 * fields is a valid call, so the portable core and older callers log through it.
 */
import { closeSync, openSync } from "node:fs";
import pino from "pino";

/** Levels, least to most severe (config key log.level). */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A value a log line may carry: never an object. */
export type LogValue = string | number | boolean | null | undefined;
/** The fields of one log line. */
export type LogFields = Readonly<Record<string, LogValue>>;

/** The cloud's log function. */
export type CloudLog = (level: LogLevel, message: string, fields?: LogFields) => void;

/** Longest string value written (longer ones are cut, with "…"). */
export const MAX_LOG_STRING = 512;

function clean(value: unknown): LogValue {
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "string") return value.length > MAX_LOG_STRING ? `${value.slice(0, MAX_LOG_STRING)}…` : value;
  return "[not logged]";
}

/** A logger and how to stop it. */
export interface Logger {
  log: CloudLog;
  /** writes out what is buffered and closes a file it opened */
  close(): void;
}

/**
 * A pino logger writing JSON lines at `level` and above to `file` (appended,
 * owner-only) or standard error.
 * @example const { log } = createLogger({ level: "info" }); log("info", "started", { event: "start" });
 */
export function createLogger(options: { level: LogLevel; file?: string; name?: string }): Logger {
  const fd = options.file === undefined ? 2 : openSync(options.file, "a", 0o600);
  const destination = pino.destination({ fd, sync: true });
  const logger = pino({
    level: options.level,
    base: { pid: process.pid, ...(options.name ? { name: options.name } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
  const log: CloudLog = (level, message, fields) => {
    if (!logger.isLevelEnabled(level)) return;
    const out: Record<string, LogValue> = {};
    if (fields) for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = clean(value);
    logger[level](out, String(clean(message)));
  };
  return {
    log,
    close() {
      destination.flushSync();
      if (fd !== 2) closeSync(fd);
    },
  };
}

/** `log` with `bound` fields on every line (e.g. a request id); undefined stays undefined. */
export function withFields(log: CloudLog | undefined, bound: LogFields): CloudLog | undefined {
  if (!log) return undefined;
  return (level, message, fields) => log(level, message, fields ? { ...bound, ...fields } : bound);
}

/** The message of a thrown value, for a log line (never the value itself). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : typeof error === "string" ? error : "non-Error thrown";
}
