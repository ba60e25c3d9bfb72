/*
 * The one asynchronous storage interface of the registry. cloud/registry.ts
 * writes its queries once against it; two backends implement it:
 *
 * - sqlite.ts: better-sqlite3, one file in the data directory (the embedded
 *   default: `npm start` and a fresh `npm test` need nothing else);
 * - postgres.ts: the `pg` driver, PostgreSQL 15, shared by several cloud nodes.
 *
 * Queries use `?` placeholders (the PostgreSQL backend numbers them) and the
 * SQL both engines speak (ON CONFLICT DO NOTHING, IS NOT DISTINCT FROM).
 * `tx(fn)` runs `fn` in one transaction; every statement issued while `fn`
 * runs (in its async context, AsyncLocalStorage) belongs to it, and a nested
 * tx() joins the outer one. A throw rolls everything back.
 * `forUpdate` is the row-lock suffix of a SELECT inside a transaction
 * (" FOR UPDATE" on PostgreSQL; SQLite's IMMEDIATE transaction already holds
 * the write lock, so there it is empty).
 */

/** One value bound to a `?` placeholder. */
export type SqlValue = string | number | bigint | Buffer | Uint8Array | null;

/** What a write did. */
export interface RunResult {
  /** rows inserted, updated or deleted */
  changes: number;
}

/** Which engine a Storage runs on. */
export type Dialect = "sqlite" | "postgres";

/** A storage backend. */
export interface Storage {
  readonly dialect: Dialect;
  /** " FOR UPDATE" where the engine locks rows, else "" */
  readonly forUpdate: string;
  /** The first row of `sql`, or undefined. */
  get<T>(sql: string, args?: readonly SqlValue[]): Promise<T | undefined>;
  /** Every row of `sql`. */
  all<T>(sql: string, args?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a write. */
  run(sql: string, args?: readonly SqlValue[]): Promise<RunResult>;
  /** Runs `fn` in one transaction (joins the current one when called inside it). */
  tx<T>(fn: () => Promise<T>): Promise<T>;
  /** Whether the caller runs inside a transaction of this storage. */
  inTransaction(): boolean;
  /**
   * Subscribes to storage-wide notices of other nodes on `channel` (PostgreSQL
   * LISTEN/NOTIFY); a single-process backend delivers only its own. Returns an unsubscribe function.
   */
  listen(channel: string, onNotice: (payload: string) => void): Promise<() => Promise<void>>;
  /** Sends a notice to every listener of `channel` (on every node), after the current transaction commits. */
  notify(channel: string, payload: string): Promise<void>;
  /** Closes the backend (idempotent). */
  close(): Promise<void>;
}

/** Replaces `?` placeholders outside quoted text by `$1`, `$2`, ... (PostgreSQL). */
export function numberPlaceholders(sql: string): string {
  let out = "";
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === "?") {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}
