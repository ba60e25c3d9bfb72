/*
 * Abuse limits of the cloud (MQTT and RADIUS), in memory and sans I/O (the clock is passed in):
 *
 * - BoundedMap: a Map with a size bound that evicts the least recently used entry.
 * - TokenBuckets: per-key token buckets (login rate per device id, per lot,
 *   new connections per source address) over a BoundedMap.
 * - LoginGuard: per-device and per-lot login rates, consecutive failures
 *   per (device id, source) and the lockout period of such a pair (in memory;
 *   cloud/shared-limits.ts holds the same state in PostgreSQL for several nodes).
 * - RefusalAudit: decides which login refusals get an audit row, so a flood of
 *   failed logins writes a bounded number of rows (one per id, reason and window, and a
 *   global budget; the rest are counted and written as one aggregate row).
 * - ConnectionLimiter: caps concurrent unauthenticated connections per source
 *   address and in total (a full cap evicts the oldest connection of the
 *   source holding the most, never the newcomer), and the rate of new
 *   connections per source, so a flood before CONNECT costs bounded memory
 *   and bounded TLS handshakes and cannot hold the slots devices need.
 *
 * Every map is bounded; eviction from the maps only ever forgets (a fresh
 * bucket is full, a forgotten failure count restarts at 0), never refuses a client.
 */
import { NOT_COUNTED } from "./auth/failures";

/** A Map whose size is bounded: inserting past the bound evicts the least recently used entry. */
export class BoundedMap<K, V> {
  readonly #map = new Map<K, V>();
  /** entries evicted so far */
  evictions = 0;

  constructor(readonly maxSize: number, private readonly onEvict?: (key: K, value: V) => void) {}

  get size(): number {
    return this.#map.size;
  }

  /** The entry, marked as most recently used. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }

  /** Peeks without touching the use order. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.maxSize) {
      const oldest = this.#map.keys().next().value as K;
      const evicted = this.#map.get(oldest) as V;
      this.#map.delete(oldest);
      this.evictions++;
      this.onEvict?.(oldest, evicted);
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

/** Burst size and sustained rate of a token bucket. */
export interface RateLimit {
  /** tokens a full bucket holds (the burst) */
  burst: number;
  /** tokens added per second */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Milliseconds from a monotonic clock (never steps with the wall clock): the clock of every limiter. */
export function monotonicNow(): number {
  return performance.now();
}

/** Token buckets per key over a bounded map: the one token-bucket implementation (MQTT and RADIUS). */
export class TokenBuckets {
  readonly #buckets: BoundedMap<string, Bucket>;

  constructor(readonly limit: RateLimit, maxKeys = 100_000) {
    this.#buckets = new BoundedMap(maxKeys);
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Whether `take(key, now)` would succeed, without taking (nor tracking a new key). */
  peek(key: string, now: number): boolean {
    const bucket = this.#buckets.peek(key);
    if (!bucket) return this.limit.burst >= 1;
    return Math.min(this.limit.burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.limit.perSecond) >= 1;
  }

  /**
   * Takes one token for `key` at time `now` (ms, from a monotonic clock:
   * monotonicNow). Time that runs backwards refills nothing and drains nothing.
   * @returns false when the bucket is empty
   */
  take(key: string, now: number): boolean {
    const bucket = this.#buckets.get(key) ?? { tokens: this.limit.burst, at: now };
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.limit.perSecond);
    bucket.at = now;
    const ok = bucket.tokens >= 1;
    if (ok) bucket.tokens -= 1;
    this.#buckets.set(key, bucket);
    return ok;
  }
}

/** Settings of the login guard. */
export interface LoginLimits {
  /** verified logins per device id (default burst 10, 0.2/s: one every 5 s sustained); only a proven credential spends it */
  perDevice: RateLimit;
  /** verified temporary-credential logins per provisioning key / lot (default burst 1000, 100/s) */
  perLot: RateLimit;
  /** consecutive refused logins of one device id from one source that start a lockout of that pair (default 10) */
  lockoutThreshold: number;
  /** first lockout period; each further lockout of the pair doubles it (default 60 s) */
  lockoutBaseMs: number;
  /** longest lockout period (default 1 h) */
  lockoutMaxMs: number;
  /** ms a refusal of a locked-out (id, source) pair is held before it is sent (default 1000, FreeRADIUS's reject_delay) */
  rejectDelayMs: number;
  /** device ids and (id, source) pairs tracked in memory, LRU-evicted beyond (default 50,000) */
  maxTrackedIds: number;
}

/** The defaults of the login guard. */
export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perDevice: { burst: 10, perSecond: 0.2 },
  perLot: { burst: 1000, perSecond: 100 },
  lockoutThreshold: 10,
  lockoutBaseMs: 60_000,
  lockoutMaxMs: 3_600_000,
  rejectDelayMs: 1000,
  maxTrackedIds: 50_000,
};

interface PairState {
  failures: number;
  /** lockouts of this pair so far (the next one lasts twice as long) */
  lockouts: number;
  lockedUntil: number;
}

/** What a refused login did to the failure count of its (id, source) pair. */
export interface FailureOutcome {
  /** consecutive counted failures now */
  failures: number;
  /** set when this failure starts a lockout: its end (ms) and the lockout's number */
  lockout?: { until: number; count: number };
}

function pairKey(id: string, source: string): string {
  return `${id}\n${source}`;
}

/**
 * Per-device and per-lot login rates and the lockout rule, in memory.
 *
 * Failures count per (device id, source): a source is the client's address
 * (MQTT) or the NAS and Calling-Station-Id (RADIUS). A lockout holds only that
 * pair, and only its refusals: cloud/auth verifies every proof first, and a
 * proven credential is accepted from a locked pair too, so an attacker who
 * knows an id slows down only its own attempts.
 */
export class LoginGuard {
  readonly limits: LoginLimits;
  readonly #device: TokenBuckets;
  readonly #lot: TokenBuckets;
  readonly #pairs: BoundedMap<string, PairState>;

  constructor(limits: Partial<LoginLimits> = {}) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...limits };
    this.#device = new TokenBuckets(this.limits.perDevice, this.limits.maxTrackedIds);
    this.#lot = new TokenBuckets(this.limits.perLot, 10_000);
    this.#pairs = new BoundedMap(this.limits.maxTrackedIds);
  }

  /** Ids and pairs tracked in memory (each bounded by maxTrackedIds). */
  get trackedIds(): number {
    return Math.max(this.#pairs.size, this.#device.size);
  }

  /** Takes a login token for `id`; false = rate limited. */
  admitDevice(id: string, now: number): boolean {
    return this.#device.take(id, now);
  }

  /** Takes a temporary-login token for `lot`; false = rate limited. */
  admitLot(lot: string, now: number): boolean {
    return this.#lot.take(lot, now);
  }

  /** The end of the lockout of (`id`, `source`), if it is locked at `now`. */
  lockedUntil(id: string, source: string, now: number): number | undefined {
    const state = this.#pairs.peek(pairKey(id, source));
    return state && state.lockedUntil > now ? state.lockedUntil : undefined;
  }

  /** A login of `id` from `source` succeeded: the pair's failures and lockouts restart. */
  succeeded(id: string, source: string): void {
    this.#pairs.delete(pairKey(id, source));
  }

  /** An operator unlocked `id`: forget the failures and locks of every source. Returns whether a pair was locked. */
  unlock(id: string, now: number): boolean {
    let locked = false;
    const prefix = `${id}\n`;
    for (const [key, state] of [...this.#pairs.entries()]) {
      if (!key.startsWith(prefix)) continue;
      if (state.lockedUntil > now) locked = true;
      this.#pairs.delete(key);
    }
    return locked;
  }

  /** The lockout period of the `count`-th lockout. */
  lockoutPeriod(count: number): number {
    return Math.min(this.limits.lockoutMaxMs, this.limits.lockoutBaseMs * 2 ** Math.min(30, Math.max(0, count - 1)));
  }

  /**
   * A login of `id` from `source` was refused with `failure`. Counts it
   * (unless it is in NOT_COUNTED) and, at the threshold, locks the pair.
   */
  failed(id: string, source: string, failure: string, now: number): FailureOutcome {
    const key = pairKey(id, source);
    if (NOT_COUNTED.has(failure)) return { failures: this.#pairs.peek(key)?.failures ?? 0 };
    const state = this.#pairs.get(key) ?? { failures: 0, lockouts: 0, lockedUntil: 0 };
    state.failures++;
    let lockout: FailureOutcome["lockout"];
    if (state.failures >= this.limits.lockoutThreshold) {
      const count = state.lockouts + 1;
      lockout = { until: now + this.lockoutPeriod(count), count };
      state.failures = 0;
      state.lockouts = count;
      state.lockedUntil = lockout.until;
    }
    this.#pairs.set(key, state);
    return lockout ? { failures: this.limits.lockoutThreshold, lockout } : { failures: state.failures };
  }
}

/** Settings of the refusal audit throttle. */
export interface RefusalAuditLimits {
  /** at most one refusal row per device id and reason within this window (default 60 s) */
  windowMs: number;
  /** refusal rows per second over all ids (default burst 100, 20/s) */
  global: RateLimit;
  /** (id, reason) windows remembered (default 50,000) */
  maxTrackedIds: number;
}

export const DEFAULT_REFUSAL_AUDIT: RefusalAuditLimits = { windowMs: 60_000, global: { burst: 100, perSecond: 20 }, maxTrackedIds: 50_000 };

interface RefusalState {
  failure: string;
  windowStart: number;
  suppressed: number;
}

/**
 * Decides which refusals are written (device row and audit log). A refusal is
 * written when its id has no recent row for the same reason and the global
 * budget allows; otherwise it is counted. The counts come back on the next
 * written row of that id and reason ("+N suppressed") or, through takeAggregate(), in one
 * periodic aggregate row; none is lost, even when an id is evicted.
 */
export class RefusalAudit {
  readonly limits: RefusalAuditLimits;
  readonly #ids: BoundedMap<string, RefusalState>;
  readonly #global: TokenBuckets;
  #aggregate = 0;
  #aggregateByFailure = new Map<string, number>();

  constructor(limits: Partial<RefusalAuditLimits> = {}) {
    this.limits = { ...DEFAULT_REFUSAL_AUDIT, ...limits };
    this.#ids = new BoundedMap(this.limits.maxTrackedIds, (_id, state) => this.#addAggregate(state.failure, state.suppressed));
    this.#global = new TokenBuckets(this.limits.global, 1);
  }

  #addAggregate(failure: string, count: number): void {
    if (count <= 0) return;
    this.#aggregate += count;
    if (this.#aggregateByFailure.size < 64 || this.#aggregateByFailure.has(failure)) {
      this.#aggregateByFailure.set(failure, (this.#aggregateByFailure.get(failure) ?? 0) + count);
    }
  }

  /**
   * Whether to write this refusal now; when yes, `suppressed` is the number of
   * refusals of this id that were not written since its last row.
   */
  admit(id: string, failure: string, now: number): { write: boolean; suppressed: number } {
    // one window per (id, reason): refusals of one id whose reasons interleave (concurrent logins
    // decided in any order around a lockout) do not each open a fresh window
    const key = `${id}\n${failure}`;
    const state = this.#ids.get(key);
    const fresh = !state || now - state.windowStart >= this.limits.windowMs;
    if (fresh && this.#global.take("*", now)) {
      const suppressed = state?.suppressed ?? 0;
      this.#ids.set(key, { failure, windowStart: now, suppressed: 0 });
      return { write: true, suppressed };
    }
    if (state) state.suppressed++;
    else this.#addAggregate(failure, 1);
    return { write: false, suppressed: 0 };
  }

  /**
   * The refusals counted but not written, per reason, and resets the count:
   * refusals of ids whose window has ended (their own row will not come) plus
   * those dropped by the global budget or eviction; with `all` (at shutdown)
   * those of every id, whose next row would never come.
   */
  takeAggregate(now: number, all = false): { total: number; byFailure: Record<string, number> } | undefined {
    for (const [key, state] of [...this.#ids.entries()]) {
      if (all || now - state.windowStart >= this.limits.windowMs) {
        this.#addAggregate(state.failure, state.suppressed);
        this.#ids.delete(key);
      }
    }
    if (this.#aggregate === 0) return undefined;
    const out = { total: this.#aggregate, byFailure: Object.fromEntries(this.#aggregateByFailure) };
    this.#aggregate = 0;
    this.#aggregateByFailure = new Map();
    return out;
  }
}

/** Settings of the connection limiter. */
export interface ConnectionLimits {
  /** concurrent unauthenticated connections from one source address (default 64): beyond it the source's oldest is closed */
  unauthenticatedPerSource: number;
  /**
   * concurrent unauthenticated connections in total (default 256: each one in a TLS handshake holds ~40 KB of TLS state):
   * beyond it the oldest connection of the source holding the most is closed
   */
  unauthenticatedTotal: number;
  /** new connections per source address (default burst 100, 20/s): bounds TLS handshakes per source */
  newPerSource: RateLimit;
  /**
   * new connections over all sources (default burst 300, 300/s, about what one
   * core completes in TLS handshakes): beyond it a flood is shed at accept,
   * before any TLS object exists. Two buckets of this size: one for sources
   * holding at least lightPending unauthenticated connections, one for the
   * others, so sources that hold many cannot spend the rate of devices that
   * come with one or a few (a household behind one NAT address)
   */
  newTotal: RateLimit;
  /** a source holding fewer unauthenticated connections than this draws on the light sources' rate bucket (default 4) */
  lightPending: number;
  /** ms a connection may stay silent after accept before its ClientHello starts (default 3000) */
  helloTimeoutMs: number;
  /** source addresses tracked (default 50,000) */
  maxTrackedSources: number;
  /**
   * connections answered "busy" (TLS, then CONNACK 3 to the first bytes, then closed; docs/protocol.md
   * section 10) at once, in place of a reset at accept or the eviction of a connection still within
   * staleMs (default 64; 0: reset and evict as before)
   */
  busyTotal: number;
  /** busy answers begun per second (default burst 100, 100/s): bounds the TLS work they cost */
  busyRate: RateLimit;
  /** an unauthenticated connection younger than this (ms, default 3000, the ClientHello deadline) is not evicted for a newcomer of a source holding as many: the newcomer waits or is answered busy */
  staleMs: number;
  /**
   * TCP connections held at accept, unread and without TLS state, until they may start (default 4096; 0: no
   * queue): in place of a reset by rate or an eviction of a young connection of a balanced source
   */
  queueTotal: number;
  /** connections of one source waiting at accept (default 64) */
  queuePerSource: number;
  /** ms a connection may wait at accept; then it is closed (default 15000: with the 10 s login deadline, within a device's 30 s connect timeout) */
  queueDeadlineMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  unauthenticatedPerSource: 64,
  unauthenticatedTotal: 256,
  newPerSource: { burst: 100, perSecond: 20 },
  newTotal: { burst: 300, perSecond: 300 },
  lightPending: 4,
  helloTimeoutMs: 3000,
  maxTrackedSources: 50_000,
  busyTotal: 64,
  busyRate: { burst: 100, perSecond: 100 },
  staleMs: 3000,
  queueTotal: 4096,
  queuePerSource: 64,
  queueDeadlineMs: 15_000,
};

/** Counts of ConnectionLimiter.admit decisions (each newcomer counts once in admitted, sourceRate, totalRate or a busy* entry; evictions count the connections closed for it). */
export interface AdmissionDecisions {
  admitted: number;
  /** refused (reset) by the per-source rate */
  sourceRate: number;
  /** refused (reset) by the total rate with no busy ticket left */
  totalRate: number;
  /** busy tickets: over the total rate, at the per-source cap, at the total cap */
  busyRate: number;
  busySourceCap: number;
  busyTotalCap: number;
  /** a busy answer was due but busyTotal or busyRate was exhausted (the old rule applied) */
  busyBound: number;
  /** held at accept (queued), started from the queue later, closed at the queue deadline, gone while waiting (the client closed), not queued because the queue (or the source's share) was full */
  queued: number;
  dequeued: number;
  queueExpired: number;
  queueCancelled: number;
  queueFull: number;
  /** evictions: at the per-source cap, at the total cap from a source holding more (a flood), at the total cap of a young connection of a balanced source; of those, stale ones */
  evictedSourceCap: number;
  evictedTotalCapFlood: number;
  evictedTotalCapYoung: number;
  evictedStale: number;
}

/** Why a connection was refused at accept. */
export type ConnectionRefusal = "SOURCE_RATE" | "TOTAL_RATE";

/** A connection held at accept (ConnectionLimiter queue): `start` gets its ticket when it may begin TLS. */
export interface QueuedConnection {
  readonly queued: true;
  /** the connection closed while it waited: forget it (idempotent) */
  cancel(): void;
}

interface Waiting {
  readonly source: string;
  readonly at: number;
  readonly start: (ticket: ConnectionTicket) => void;
  readonly close: () => void;
  done: boolean;
}

/** One admitted unauthenticated connection, or one to be answered busy. */
export interface ConnectionTicket {
  readonly source: string;
  /** when it was admitted or last made progress (ms): ConnectionLimiter.progressed */
  at: number;
  /** answer CONNACK 3 after TLS and close: counted apart, never evicted */
  readonly busy: boolean;
  /** closes the connection (called when it is evicted) */
  readonly close: () => void;
}

/**
 * Admission of TCP connections before TLS: a connection is unauthenticated
 * from accept until its CONNECT is accepted (or it closes).
 *
 * Full caps evict rather than refuse: a source at its own cap loses its
 * oldest connection, and at the total cap the source holding the most
 * unauthenticated connections loses its oldest. A flood of idle sockets from
 * some sources thus churns through its own slots, while a device from any
 * other source keeps its one connection until it logs in. Refused (rate)
 * connections are closed at once, before any TLS work.
 *
 * Busy answers (docs/protocol.md section 10): where the total rate would
 * refuse, or a cap would evict a connection younger than staleMs that belongs
 * to a source holding no more than the newcomer's (a fleet from balanced
 * sources, not a flood; at the total cap only for a newcomer whose source
 * already holds one, so an address with none pending always gets a slot), the newcomer gets a busy ticket instead while
 * busyTotal and busyRate allow: it is answered CONNACK 3 so the device waits a
 * short jittered window instead of backing off as from a network failure.
 * Beyond those bounds the old rule applies (reset or evict).
 */
export class ConnectionLimiter {
  readonly limits: ConnectionLimits;
  /** connections closed to make room, so far */
  evictions = 0;
  readonly #perSource = new Map<string, Set<ConnectionTicket>>();
  readonly #rate: TokenBuckets;
  readonly #totalRate: TokenBuckets;
  readonly #lightRate: TokenBuckets;
  readonly #busyRate: TokenBuckets;
  #total = 0;
  #busy = 0;
  readonly #busyLive = new WeakSet<ConnectionTicket>();
  /** connections answered busy so far */
  busyAnswers = 0;
  /** every admission decision so far, by where it was made (figures for operators and bench:reconnect) */
  readonly decisions: AdmissionDecisions = {
    admitted: 0, sourceRate: 0, totalRate: 0, busyRate: 0, busySourceCap: 0, busyTotalCap: 0, busyBound: 0,
    evictedSourceCap: 0, evictedTotalCapFlood: 0, evictedTotalCapYoung: 0, evictedStale: 0,
    queued: 0, dequeued: 0, queueExpired: 0, queueCancelled: 0, queueFull: 0,
  };
  /** waiting connections by source (each list in arrival order); the Map's order is the round-robin order */
  readonly #queue = new Map<string, Waiting[]>();
  /** every waiting connection in arrival order (for the deadline) */
  #arrivals: Waiting[] = [];
  #queued = 0;

  constructor(limits: Partial<ConnectionLimits> = {}) {
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...limits };
    this.#rate = new TokenBuckets(this.limits.newPerSource, this.limits.maxTrackedSources);
    this.#totalRate = new TokenBuckets(this.limits.newTotal, 1);
    this.#lightRate = new TokenBuckets(this.limits.newTotal, 1);
    this.#busyRate = new TokenBuckets(this.limits.busyRate, 1);
  }

  /** Connections being answered busy now. */
  get busy(): number {
    return this.#busy;
  }

  /** A busy ticket if the busy bounds allow one now. */
  #busyTicket(source: string, now: number, close: () => void): ConnectionTicket | undefined {
    if (this.#busy >= this.limits.busyTotal || !this.#busyRate.take("*", now)) return undefined;
    this.#busy++;
    this.busyAnswers++;
    const ticket: ConnectionTicket = { source, at: now, busy: true, close };
    this.#busyLive.add(ticket);
    return ticket;
  }

  /** The oldest connection of `set` is younger than staleMs. */
  #young(set: Set<ConnectionTicket>, now: number): boolean {
    const oldest = set.values().next().value as ConnectionTicket | undefined;
    return oldest !== undefined && now - oldest.at < this.limits.staleMs;
  }

  /** Unauthenticated connections now. */
  get unauthenticated(): number {
    return this.#total;
  }

  /** Unauthenticated connections of `source` now. */
  pending(source: string): number {
    return this.#perSource.get(source)?.size ?? 0;
  }

  /** Connections waiting at accept now. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Whether a connection of `source` may start now without a refusal, a busy answer or the eviction of
   * a young connection of a source holding no more than it: "ok", "source" (its own rate or cap) or
   * "global" (the total rate or cap: no other source may start either, except those of other buckets).
   */
  #startable(source: string, now: number): "ok" | "source" | "global" {
    if (!this.#rate.peek(source, now)) return "source";
    const mine = this.#perSource.get(source);
    const held = mine?.size ?? 0;
    if (!(held < this.limits.lightPending ? this.#lightRate : this.#totalRate).peek("*", now)) return "global";
    let total = this.#total;
    if (mine && held >= this.limits.unauthenticatedPerSource) {
      if (this.#young(mine, now)) return "source";
      total--;
    }
    if (total >= this.limits.unauthenticatedTotal) {
      let largest: Set<ConnectionTicket> | undefined;
      for (const set of this.#perSource.values()) if (!largest || set.size > largest.size) largest = set;
      if (largest && largest.size <= held + 1 && this.#young(largest, now)) return held === 0 ? "global" : "source";
    }
    return "ok";
  }

  /**
   * Admits a new connection from `source`, evicting others when a cap is full.
   * With `start` (and queueTotal > 0), a connection that may not start now without being refused, answered
   * busy or evicting a young connection of a balanced source waits at accept instead (fair across sources,
   * queuePerSource and queueTotal bounded, queueDeadlineMs): `start` gets its ticket from drain() later.
   * @param close - closes this connection if it is evicted (or its wait ends) later
   * @returns the ticket (the caller must release() it exactly once; a busy one is answered CONNACK 3), a queued connection, or why it is refused
   */
  admit(source: string, now: number, close: () => void): ConnectionTicket | ConnectionRefusal;
  admit(source: string, now: number, close: () => void, start: (ticket: ConnectionTicket) => void): ConnectionTicket | QueuedConnection | ConnectionRefusal;
  admit(source: string, now: number, close: () => void, start?: (ticket: ConnectionTicket) => void): ConnectionTicket | QueuedConnection | ConnectionRefusal {
    if (start && this.limits.queueTotal > 0 && (this.#queued > 0 || this.#startable(source, now) !== "ok")) {
      const list = this.#queue.get(source);
      if (this.#queued < this.limits.queueTotal && (list?.length ?? 0) < this.limits.queuePerSource) {
        const waiting: Waiting = { source, at: now, start, close, done: false };
        if (list) list.push(waiting);
        else this.#queue.set(source, [waiting]);
        this.#arrivals.push(waiting);
        this.#queued++;
        this.decisions.queued++;
        return { queued: true, cancel: () => this.#unqueue(waiting, "queueCancelled") };
      }
      this.decisions.queueFull++;
    }
    return this.#admitNow(source, now, close);
  }

  #unqueue(waiting: Waiting, why: "queueCancelled" | "queueExpired" | "dequeued"): void {
    if (waiting.done) return;
    waiting.done = true;
    this.#queued--;
    this.decisions[why]++;
    const list = this.#queue.get(waiting.source);
    if (list) {
      const i = list.indexOf(waiting);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#queue.delete(waiting.source);
    }
  }

  /**
   * Starts waiting connections that may start now, one per source in turn (round robin), and closes
   * those waiting longer than queueDeadlineMs. Call it when a connection is released and on a short timer
   * while connections wait.
   * @returns how many were started
   */
  drain(now: number): number {
    let head = 0;
    while (head < this.#arrivals.length && (this.#arrivals[head].done || now - this.#arrivals[head].at >= this.limits.queueDeadlineMs)) {
      const waiting = this.#arrivals[head++];
      if (waiting.done) continue;
      this.#unqueue(waiting, "queueExpired");
      waiting.close();
    }
    if (head > 0) this.#arrivals = this.#arrivals.slice(head);
    let started = 0;
    let progress = true;
    while (this.#queued > 0 && progress) {
      progress = false;
      for (const [source, list] of [...this.#queue]) {
        const reason = this.#startable(source, now);
        if (reason === "global") return started;
        if (reason === "source") continue;
        const waiting = list[0];
        this.#unqueue(waiting, "dequeued");
        // the source goes to the back of the round robin
        if (list.length > 0) {
          this.#queue.delete(source);
          this.#queue.set(source, list);
        }
        const ticket = this.#admitNow(source, now, waiting.close);
        if (typeof ticket === "string") {
          waiting.close();
          continue;
        }
        started++;
        progress = true;
        waiting.start(ticket);
      }
    }
    return started;
  }

  #admitNow(source: string, now: number, close: () => void): ConnectionTicket | ConnectionRefusal {
    const d = this.decisions;
    if (!this.#rate.take(source, now)) {
      d.sourceRate++;
      return "SOURCE_RATE";
    }
    const mine = this.#perSource.get(source);
    const light = (mine?.size ?? 0) < this.limits.lightPending;
    if (!(light ? this.#lightRate : this.#totalRate).take("*", now)) {
      const busy = this.#busyTicket(source, now, close);
      if (busy) d.busyRate++;
      else {
        if (this.limits.busyTotal > 0) d.busyBound++;
        d.totalRate++;
      }
      return busy ?? "TOTAL_RATE";
    }
    if (mine && mine.size >= this.limits.unauthenticatedPerSource) {
      const young = this.#young(mine, now);
      const busy = young ? this.#busyTicket(source, now, close) : undefined;
      if (busy) {
        d.busySourceCap++;
        return busy;
      }
      if (young && this.limits.busyTotal > 0) d.busyBound++;
      if (!young) d.evictedStale++;
      d.evictedSourceCap++;
      this.#evictOldest(mine);
    }
    let first = true;
    while (this.#total >= this.limits.unauthenticatedTotal) {
      let largest: Set<ConnectionTicket> | undefined;
      for (const set of this.#perSource.values()) if (!largest || set.size > largest.size) largest = set;
      if (!largest) break;
      const held = this.#perSource.get(source)?.size ?? 0;
      const young = this.#young(largest, now);
      // a newcomer whose address holds none always gets a slot (issue 8: flooders' slots never lock a device out)
      if (first && held > 0 && largest.size <= held + 1 && young) {
        const busy = this.#busyTicket(source, now, close);
        if (busy) {
          d.busyTotalCap++;
          return busy;
        }
        if (this.limits.busyTotal > 0) d.busyBound++;
      }
      first = false;
      if (!young) d.evictedStale++;
      if (largest.size > held + 1) d.evictedTotalCapFlood++;
      else d.evictedTotalCapYoung++;
      this.#evictOldest(largest);
    }
    d.admitted++;
    const ticket: ConnectionTicket = { source, at: now, busy: false, close };
    let set = this.#perSource.get(source);
    if (!set) this.#perSource.set(source, (set = new Set()));
    set.add(ticket);
    this.#total++;
    return ticket;
  }

  #evictOldest(set: Set<ConnectionTicket>): void {
    const oldest = set.values().next().value as ConnectionTicket | undefined;
    if (!oldest) return;
    this.release(oldest);
    this.evictions++;
    oldest.close();
  }

  /**
   * The connection made progress (its TLS handshake ended, its CONNECT arrived): it is young again and
   * last in the eviction order (its source last among sources), so a loaded cloud does not evict, as
   * stale, handshakes that it is itself slow to finish; an idle connection still ages from its last
   * progress and is evicted first. No effect on a busy or released ticket.
   */
  progressed(ticket: ConnectionTicket, now: number): void {
    if (ticket.busy) return;
    const set = this.#perSource.get(ticket.source);
    if (!set || !set.delete(ticket)) return;
    ticket.at = Math.max(ticket.at, now);
    set.add(ticket);
    this.#perSource.delete(ticket.source);
    this.#perSource.set(ticket.source, set);
  }

  /** The connection authenticated, closed or was evicted: it no longer counts. Idempotent. */
  release(ticket: ConnectionTicket): void {
    if (ticket.busy) {
      if (this.#busyLive.delete(ticket)) this.#busy--;
      return;
    }
    const set = this.#perSource.get(ticket.source);
    if (!set || !set.delete(ticket)) return;
    if (set.size === 0) this.#perSource.delete(ticket.source);
    this.#total = Math.max(0, this.#total - 1);
  }
}
