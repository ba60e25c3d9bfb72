/*
 * The SQLite backend of the storage interface (better-sqlite3): the embedded
 * default, one file `<dataDir>/registry.sqlite` (folder 0700, file 0600).
 *
 * better-sqlite3 runs every statement to completion on the calling thread; the
 * interface is asynchronous so the registry reads the same over PostgreSQL.
 * One connection serves the process, so a transaction holds an in-process
 * lock: while `tx(fn)` runs, statements from other async contexts wait until
 * it commits or rolls back (they would otherwise land inside it). Each
 * transaction is BEGIN IMMEDIATE: it takes SQLite's write lock at once, so
 * a read-then-write inside it cannot race another process on the same file.
 *
 * Durability: WAL with synchronous=NORMAL (see cloud/registry.ts).
 * Schema: cloud/storage/schema.ts (the ordered migrations, run at open;
 * the version in PRAGMA user_version).
 */
import Database from "better-sqlite3";
import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assertOwnerOnly, ensureOwnerOnlyDir, touchOwnerOnlyFile } from "../owner-files";
import { migrateSqlite } from "./schema";
import type { RunResult, SqlValue, Storage } from "./store";

function bind(args: readonly SqlValue[] | undefined): unknown[] {
  if (!args) return [];
  return args.map((value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value));
}

/** The SQLite backend. */
export class SqliteStorage implements Storage {
  readonly dialect = "sqlite" as const;
  readonly forUpdate = "";
  /** the better-sqlite3 connection (tools and migrations) */
  readonly db: Database.Database;
  /** the database file */
  readonly path: string;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #context = new AsyncLocalStorage<SqliteStorage>();
  readonly #notices = new EventEmitter();
  /** resolves when the open transaction ends (undefined: none open) */
  #busy: Promise<void> | undefined;
  /** notices sent inside the open transaction, delivered at its commit */
  #queued: [string, string][] = [];

  private constructor(db: Database.Database, path: string) {
    this.db = db;
    this.path = path;
    this.#notices.setMaxListeners(0);
  }

  /**
   * Opens (creating if needed) `<dataDir>/registry.sqlite`, WAL, and brings its schema up to date.
   * @throws CloudError FILE_INSECURE when the folder or the file is open to group or others
   */
  static open(dataDir: string): SqliteStorage {
    ensureOwnerOnlyDir(dataDir);
    const path = join(dataDir, "registry.sqlite");
    // made 0600 before SQLite opens it: SQLite gives -wal and -shm the database file's mode
    if (existsSync(path)) assertOwnerOnly(path, "the registry");
    else touchOwnerOnlyFile(path);
    const db = new Database(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      db.pragma("busy_timeout = 5000");
      migrateSqlite(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteStorage(db, path);
  }

  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  inTransaction(): boolean {
    return this.#context.getStore() === this;
  }

  async get<T>(sql: string, args?: readonly SqlValue[]): Promise<T | undefined> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return this.#stmt(sql).get(...bind(args)) as T | undefined;
  }

  async all<T>(sql: string, args?: readonly SqlValue[]): Promise<T[]> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return this.#stmt(sql).all(...bind(args)) as T[];
  }

  async run(sql: string, args?: readonly SqlValue[]): Promise<RunResult> {
    while (this.#busy && !this.inTransaction()) await this.#busy;
    return { changes: this.#stmt(sql).run(...bind(args)).changes };
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return fn();
    // checked and taken in one synchronous step, so two waiters never both begin
    while (this.#busy) await this.#busy;
    let end!: () => void;
    this.#busy = new Promise<void>((resolve) => (end = resolve));
    try {
      this.db.exec("BEGIN IMMEDIATE");
      let result: T;
      try {
        result = await this.#context.run(this, fn);
        this.db.exec("COMMIT");
      } catch (error) {
        if (this.db.inTransaction) this.db.exec("ROLLBACK");
        this.#queued = [];
        throw error;
      }
      const queued = this.#queued;
      this.#queued = [];
      for (const [channel, payload] of queued) this.#deliver(channel, payload);
      return result;
    } finally {
      this.#busy = undefined;
      end();
    }
  }

  #deliver(channel: string, payload: string): void {
    setImmediate(() => this.#notices.emit(channel, payload));
  }

  async listen(channel: string, onNotice: (payload: string) => void): Promise<() => Promise<void>> {
    this.#notices.on(channel, onNotice);
    return async () => {
      this.#notices.off(channel, onNotice);
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    if (this.inTransaction()) this.#queued.push([channel, payload]);
    else this.#deliver(channel, payload);
  }

  async close(): Promise<void> {
    while (this.#busy) await this.#busy;
    if (this.db.open) this.db.close();
  }
}
