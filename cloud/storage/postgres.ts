/*
 * The PostgreSQL backend of the storage interface (the `pg` driver,
 * PostgreSQL 15): the registry shared by several cloud nodes.
 *
 * A pool of connections serves the statements; `tx(fn)` takes one
 * connection, BEGIN ... COMMIT (READ COMMITTED), and every statement of `fn`'s
 * async context runs on it. The registry makes its read-then-write steps
 * safe across nodes with conditional UPDATEs and SELECT ... FOR UPDATE.
 * A transaction that fails with a serialization failure or a deadlock
 * (40001, 40P01) is run again, at most 5 times.
 *
 * Notices between nodes (a revocation closes the session on whichever node
 * holds it) are LISTEN/NOTIFY on one dedicated connection; NOTIFY inside a
 * transaction is delivered when it commits.
 *
 * Types: BIGINT and COUNT(*) come back as JS numbers (all values are ms
 * timestamps, counters and counts well below 2^53), BYTEA as Buffer.
 * The schema: cloud/storage/schema.ts (the ordered migrations, run at
 * connect under an advisory lock, the version in the table schema_version).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import pg from "pg";
import { migratePostgres } from "./schema";
import { numberPlaceholders, type RunResult, type SqlValue, type Storage } from "./store";

/** How many times a transaction is run again after a serialization failure or deadlock. */
const RETRIES = 5;

const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    // 20 int8, 1700 numeric (COUNT(*) is int8)
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as "text");
  },
};

function bind(args: readonly SqlValue[] | undefined): unknown[] {
  if (!args) return [];
  return args.map((value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value));
}

/** The URL without its password, for logs and `Registry.path`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://(unparsable url)";
  }
}

interface TxContext {
  storage: PostgresStorage;
  client: pg.PoolClient;
}

/** The PostgreSQL backend. */
export class PostgresStorage implements Storage {
  readonly dialect = "postgres" as const;
  readonly forUpdate = " FOR UPDATE";
  readonly pool: pg.Pool;
  /** the server's URL without its password */
  readonly displayUrl: string;
  readonly #context = new AsyncLocalStorage<TxContext>();
  readonly #sql = new Map<string, string>();
  readonly #listeners = new Map<string, Set<(payload: string) => void>>();
  #listener: pg.Client | undefined;
  #listenerReady: Promise<pg.Client> | undefined;
  #closed = false;
  readonly #url: string;

  private constructor(url: string, pool: pg.Pool) {
    this.#url = url;
    this.pool = pool;
    this.displayUrl = redactUrl(url);
  }

  /**
   * Connects a pool to `url` (postgres://user[:password]@host[:port]/database, or
   * ?host=/socket/dir) and creates the schema if missing.
   * @param poolSize - connections in the pool (default 10)
   */
  static async connect(url: string, poolSize = 10): Promise<PostgresStorage> {
    const pool = new pg.Pool({ connectionString: url, max: poolSize, types });
    // an idle client's error (the server went away) must not crash the process: the next query reports it
    pool.on("error", () => {});
    const storage = new PostgresStorage(url, pool);
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
    return storage;
  }

  #text(sql: string): string {
    let text = this.#sql.get(sql);
    if (text === undefined) {
      text = numberPlaceholders(sql);
      this.#sql.set(sql, text);
    }
    return text;
  }

  #current(): TxContext | undefined {
    const context = this.#context.getStore();
    return context?.storage === this ? context : undefined;
  }

  async #query<T>(sql: string, args: readonly SqlValue[] | undefined): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    const runner = this.#current()?.client ?? this.pool;
    return runner.query<T & pg.QueryResultRow>(this.#text(sql), bind(args));
  }

  inTransaction(): boolean {
    return this.#current() !== undefined;
  }

  async get<T>(sql: string, args?: readonly SqlValue[]): Promise<T | undefined> {
    return (await this.#query<T>(sql, args)).rows[0];
  }

  async all<T>(sql: string, args?: readonly SqlValue[]): Promise<T[]> {
    return (await this.#query<T>(sql, args)).rows;
  }

  async run(sql: string, args?: readonly SqlValue[]): Promise<RunResult> {
    return { changes: (await this.#query(sql, args)).rowCount ?? 0 };
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    if (this.inTransaction()) return fn();
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      const context: TxContext = { storage: this, client };
      let broken = false;
      try {
        await client.query("BEGIN");
        const result = await this.#context.run(context, fn);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        try {
          await client.query("ROLLBACK");
        } catch {
          broken = true;
        }
        const code = (error as { code?: string }).code;
        if ((code === "40001" || code === "40P01") && attempt < RETRIES) continue;
        throw error;
      } finally {
        client.release(broken);
      }
    }
  }

  async #listenClient(): Promise<pg.Client> {
    if (!this.#listenerReady) {
      this.#listenerReady = (async () => {
        const client = new pg.Client({ connectionString: this.#url, types });
        client.on("error", () => {});
        client.on("notification", (message) => {
          const set = this.#listeners.get(message.channel);
          if (set) for (const onNotice of set) onNotice(message.payload ?? "");
        });
        await client.connect();
        this.#listener = client;
        return client;
      })();
    }
    return this.#listenerReady;
  }

  async listen(channel: string, onNotice: (payload: string) => void): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`bad channel name ${channel}`);
    const client = await this.#listenClient();
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
      await client.query(`LISTEN ${channel}`);
    }
    set.add(onNotice);
    return async () => {
      set.delete(onNotice);
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    // pg_notify inside a transaction is sent at its commit
    await this.run("SELECT pg_notify(?, ?)", [channel, payload]);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) await listener.end().catch(() => {});
    await this.pool.end();
  }
}
