/*
 * Where the login limits live (issue 10 item 3): the per-device and per-lot
 * login rates and the per-(device id, source) failure counts and lockouts of
 * cloud/limits.ts LoginGuard, behind one asynchronous interface with two homes:
 *
 * - MemoryLoginLimits: LoginGuard in this process's memory, on the monotonic
 *   clock (the SQLite default: one node, lost at restart, as before);
 * - SqlLoginLimits: two PostgreSQL tables (login_buckets, login_pairs) that
 *   every node of one registry reads and writes, on the wall clock (ms since
 *   the epoch, the clock every node shares), so a lockout earned on one node
 *   is enforced on all of them and survives a restart.
 *
 * Every change of the shared state is one statement, atomic in the database:
 * a token is taken by `INSERT ... ON CONFLICT DO UPDATE ... WHERE tokens
 * after refill >= 1` (the conflicting row is locked and re-read, so two
 * nodes taking the last token at once get one true and one false); a failure
 * is counted, and a lockout started at the threshold, by one upsert whose SET
 * reads the row as it was (two nodes counting at once count twice; only the
 * one that reaches the threshold starts the lockout). Rows expire: a bucket
 * once it would be full again (forgetting it changes nothing), a pair
 * `lockoutMaxMs` after its last failure and the end of its lock.
 */
import { DEFAULT_LOGIN_LIMITS, LoginGuard, monotonicNow, type FailureOutcome, type LoginLimits } from "./limits";
import { NOT_COUNTED } from "./auth/failures";
import type { Storage } from "./storage/store";

/** The login limits of cloud/auth, wherever they are held. Times are ms on `now()`'s clock. */
export interface LoginLimitStore {
  readonly limits: LoginLimits;
  /** "memory" (this process) or "shared" (the database every node uses) */
  readonly where: "memory" | "shared";
  /** The clock of every `now` argument (monotonic in memory, wall clock when shared). */
  now(): number;
  /** Takes a login token for `id`; false = rate limited. */
  admitDevice(id: string, now: number): Promise<boolean>;
  /** Takes a temporary-login token for `lot`; false = rate limited. */
  admitLot(lot: string, now: number): Promise<boolean>;
  /** The end of the lockout of (`id`, `source`), if it is locked at `now`. */
  lockedUntil(id: string, source: string, now: number): Promise<number | undefined>;
  /** A login of `id` from `source` succeeded: the pair's failures and lockouts restart. */
  succeeded(id: string, source: string): Promise<void>;
  /** Forgets the failures and locks of `id` from every source. Returns whether a pair was locked. */
  unlock(id: string, now: number): Promise<boolean>;
  /** Counts a refusal (unless NOT_COUNTED) and, at the threshold, locks the pair. */
  failed(id: string, source: string, failure: string, now: number): Promise<FailureOutcome>;
}

/** LoginGuard in this process's memory (cloud/limits.ts), on the monotonic clock. */
export class MemoryLoginLimits implements LoginLimitStore {
  readonly where = "memory" as const;
  readonly guard: LoginGuard;

  constructor(limits: Partial<LoginLimits> = {}, readonly now: () => number = monotonicNow) {
    this.guard = new LoginGuard(limits);
  }

  get limits(): LoginLimits {
    return this.guard.limits;
  }

  async admitDevice(id: string, now: number): Promise<boolean> {
    return this.guard.admitDevice(id, now);
  }

  async admitLot(lot: string, now: number): Promise<boolean> {
    return this.guard.admitLot(lot, now);
  }

  async lockedUntil(id: string, source: string, now: number): Promise<number | undefined> {
    return this.guard.lockedUntil(id, source, now);
  }

  async succeeded(id: string, source: string): Promise<void> {
    this.guard.succeeded(id, source);
  }

  async unlock(id: string, now: number): Promise<boolean> {
    return this.guard.unlock(id, now);
  }

  async failed(id: string, source: string, failure: string, now: number): Promise<FailureOutcome> {
    return this.guard.failed(id, source, failure, now);
  }
}

/** ms between two sweeps of expired rows by one node. */
const SWEEP_EVERY_MS = 60_000;

const TAKE = `INSERT INTO login_buckets AS b (scope, key, tokens, at) VALUES (?, ?, CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT))
ON CONFLICT (scope, key) DO UPDATE SET
  tokens = LEAST(CAST(? AS DOUBLE PRECISION), b.tokens + GREATEST(0, EXCLUDED.at - b.at) / 1000.0 * CAST(? AS DOUBLE PRECISION)) - 1,
  at = GREATEST(b.at, EXCLUDED.at)
WHERE LEAST(CAST(? AS DOUBLE PRECISION), b.tokens + GREATEST(0, EXCLUDED.at - b.at) / 1000.0 * CAST(? AS DOUBLE PRECISION)) >= 1
RETURNING b.tokens`;

// every SET expression reads the row as it was before this statement
const FAIL = `INSERT INTO login_pairs AS p (device_id, source, failures, lockouts, locked_until, updated_at)
VALUES (?, ?, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS BIGINT), CAST(? AS BIGINT))
ON CONFLICT (device_id, source) DO UPDATE SET
  failures = CASE WHEN p.failures + 1 >= CAST(? AS INTEGER) THEN 0 ELSE p.failures + 1 END,
  lockouts = CASE WHEN p.failures + 1 >= CAST(? AS INTEGER) THEN p.lockouts + 1 ELSE p.lockouts END,
  locked_until = CASE WHEN p.failures + 1 >= CAST(? AS INTEGER)
    THEN EXCLUDED.updated_at + CAST(LEAST(CAST(? AS DOUBLE PRECISION), CAST(? AS DOUBLE PRECISION) * POWER(2, LEAST(30, p.lockouts))) AS BIGINT)
    ELSE p.locked_until END,
  updated_at = EXCLUDED.updated_at
RETURNING p.failures, p.lockouts, p.locked_until`;

/**
 * The login limits in the database every node shares (PostgreSQL), on the
 * wall clock. Tables: login_buckets and login_pairs (cloud/storage/postgres.ts).
 */
export class SqlLoginLimits implements LoginLimitStore {
  readonly where = "shared" as const;
  readonly limits: LoginLimits;
  #sweptAt = -Infinity;

  constructor(private readonly storage: Storage, limits: Partial<LoginLimits> = {}, readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...limits };
  }

  async #take(scope: "device" | "lot", key: string, limit: { burst: number; perSecond: number }, now: number): Promise<boolean> {
    if (limit.burst < 1) return false;
    await this.#sweep(now);
    const at = Math.floor(now);
    const row = await this.storage.get(TAKE, [scope, key, limit.burst - 1, at, limit.burst, limit.perSecond, limit.burst, limit.perSecond]);
    return row !== undefined;
  }

  admitDevice(id: string, now: number): Promise<boolean> {
    return this.#take("device", id, this.limits.perDevice, now);
  }

  admitLot(lot: string, now: number): Promise<boolean> {
    return this.#take("lot", lot, this.limits.perLot, now);
  }

  async lockedUntil(id: string, source: string, now: number): Promise<number | undefined> {
    const row = await this.storage.get<{ locked_until: number }>("SELECT locked_until FROM login_pairs WHERE device_id = ? AND source = ? AND locked_until > ?", [id, source, Math.floor(now)]);
    return row?.locked_until;
  }

  async succeeded(id: string, source: string): Promise<void> {
    await this.storage.run("DELETE FROM login_pairs WHERE device_id = ? AND source = ?", [id, source]);
  }

  async unlock(id: string, now: number): Promise<boolean> {
    return unlockShared(this.storage, id, now);
  }

  /** The lockout period of the `count`-th lockout (as LoginGuard.lockoutPeriod). */
  lockoutPeriod(count: number): number {
    return Math.min(this.limits.lockoutMaxMs, this.limits.lockoutBaseMs * 2 ** Math.min(30, Math.max(0, count - 1)));
  }

  async failed(id: string, source: string, failure: string, now: number): Promise<FailureOutcome> {
    const at = Math.floor(now);
    if (NOT_COUNTED.has(failure)) {
      const row = await this.storage.get<{ failures: number }>("SELECT failures FROM login_pairs WHERE device_id = ? AND source = ?", [id, source]);
      return { failures: row?.failures ?? 0 };
    }
    await this.#sweep(now);
    const threshold = this.limits.lockoutThreshold;
    // the row a first failure creates (a lockout at once when the threshold is 1 or less)
    const first = threshold <= 1 ? [0, 1, at + this.lockoutPeriod(1)] : [1, 0, 0];
    const row = (await this.storage.get<{ failures: number; lockouts: number; locked_until: number }>(FAIL, [
      id, source, first[0], first[1], first[2], at,
      threshold, threshold, threshold, this.limits.lockoutMaxMs, this.limits.lockoutBaseMs,
    ]))!;
    // a counted failure leaves failures at 0 only when it started a lockout
    if (row.failures === 0) return { failures: threshold, lockout: { until: row.locked_until, count: row.lockouts } };
    return { failures: row.failures };
  }

  /** Deletes expired rows, at most once a minute per node (any node's sweep serves all). */
  async #sweep(now: number): Promise<void> {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    const at = Math.floor(now);
    const full = (limit: { burst: number; perSecond: number }) => at - Math.ceil((limit.burst / Math.max(limit.perSecond, 1e-9)) * 1000);
    try {
      await this.storage.run("DELETE FROM login_buckets WHERE scope = 'device' AND at < ?", [full(this.limits.perDevice)]);
      await this.storage.run("DELETE FROM login_buckets WHERE scope = 'lot' AND at < ?", [full(this.limits.perLot)]);
      const old = at - this.limits.lockoutMaxMs;
      await this.storage.run("DELETE FROM login_pairs WHERE updated_at < ? AND locked_until < ?", [old, old]);
    } catch {
      // a failed sweep only leaves rows for the next one
    }
  }
}

/** Deletes the shared failure counts and locks of `id` (every source); whether one was locked at `now` (wall clock ms). */
export async function unlockShared(storage: Storage, id: string, now: number): Promise<boolean> {
  const rows = await storage.all<{ locked_until: number }>("DELETE FROM login_pairs WHERE device_id = ? RETURNING locked_until", [id]);
  return rows.some((row) => row.locked_until > now);
}

/**
 * The login limits for a registry on `storage`: shared tables on PostgreSQL,
 * this process's memory on SQLite.
 * @param now - the monotonic clock of the in-memory limits (tests may pin it)
 */
export function loginLimitsFor(storage: Storage, limits: Partial<LoginLimits> = {}, now?: () => number, wallNow?: () => number): LoginLimitStore {
  return storage.dialect === "postgres" ? new SqlLoginLimits(storage, limits, wallNow) : new MemoryLoginLimits(limits, now);
}
