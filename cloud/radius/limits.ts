/*
 * Bounds of the RADIUS server: the duplicate-request cache (RFC 5080 section 2.2.2), and a bounded table of
 * half-open EAP sessions (cap, idle timeout, least recently used evicted).
 * Every structure has a fixed maximum size; time comes from the caller.
 * Token buckets (per NAS, and the login rates of cloud/auth) are the cloud's
 * one implementation in cloud/limits.ts.
 */

/** A cached answer to one request, keyed by source and identifier. */
interface CachedAnswer {
  authenticator: string;
  /** undefined while the request is still being processed */
  response: Buffer | undefined;
  at: number;
}

/** What to do with a request given the duplicate cache. */
export type DuplicateVerdict = { kind: "new" } | { kind: "in-progress" } | { kind: "resend"; response: Buffer };

/** Recent answers, so a retransmitted request gets the same answer instead of a second EAP step. */
export class DuplicateCache {
  readonly #entries = new Map<string, CachedAnswer>();

  /** @param ttlMs - how long an answer is kept; @param maxEntries - the bound */
  constructor(readonly ttlMs = 5000, readonly maxEntries = 8192) {}

  /** Looks up a request; a new one is registered as in progress. */
  check(source: string, identifier: number, authenticator: Buffer, now: number): DuplicateVerdict {
    const key = `${source}#${identifier}`;
    const hex = authenticator.toString("hex");
    const entry = this.#entries.get(key);
    if (entry && entry.authenticator === hex && now - entry.at <= this.ttlMs) {
      return entry.response ? { kind: "resend", response: entry.response } : { kind: "in-progress" };
    }
    if (entry) this.#entries.delete(key);
    while (this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { authenticator: hex, response: undefined, at: now });
    return { kind: "new" };
  }

  /** Stores the answer to a request (or forgets it when there is none: a dropped request may be retried). */
  answer(source: string, identifier: number, authenticator: Buffer, response: Buffer | undefined, now: number): void {
    const key = `${source}#${identifier}`;
    const entry = this.#entries.get(key);
    if (!entry || entry.authenticator !== authenticator.toString("hex")) return;
    if (response === undefined) this.#entries.delete(key);
    else {
      entry.response = response;
      entry.at = now;
    }
  }

  /** Number of cached entries. */
  get size(): number {
    return this.#entries.size;
  }
}

/** Something the session table can end. */
export interface Closable {
  close(): void;
}

/** Half-open EAP sessions by State, bounded: at most `max`, idle ones expire, the least recently used is evicted. */
export class SessionTable<T extends Closable> {
  readonly #sessions = new Map<string, { session: T; at: number }>();
  /** sessions ended by eviction because the table was full */
  evicted = 0;
  /** sessions ended because they were idle too long */
  expired = 0;

  constructor(readonly max: number, readonly idleMs: number) {}

  /** Adds a session, evicting the least recently used one when full. */
  add(key: string, session: T, now: number): void {
    this.sweep(now);
    while (this.#sessions.size >= this.max) {
      const [oldest, entry] = this.#sessions.entries().next().value!;
      this.#sessions.delete(oldest);
      entry.session.close();
      this.evicted++;
    }
    this.#sessions.set(key, { session, at: now });
  }

  /** The live session for `key` (touching it), or undefined when unknown or idle too long. */
  get(key: string, now: number): T | undefined {
    const entry = this.#sessions.get(key);
    if (!entry) return undefined;
    this.#sessions.delete(key);
    if (now - entry.at > this.idleMs) {
      entry.session.close();
      this.expired++;
      return undefined;
    }
    entry.at = now;
    this.#sessions.set(key, entry);
    return entry.session;
  }

  /** Ends and removes a session. */
  remove(key: string): void {
    const entry = this.#sessions.get(key);
    if (!entry) return;
    this.#sessions.delete(key);
    entry.session.close();
  }

  /** Ends sessions idle longer than the timeout. */
  sweep(now: number): void {
    for (const [key, entry] of this.#sessions) {
      if (now - entry.at <= this.idleMs) break; // ordered by last use
      this.#sessions.delete(key);
      entry.session.close();
      this.expired++;
    }
  }

  /** Ends every session. */
  clear(): void {
    for (const entry of this.#sessions.values()) entry.session.close();
    this.#sessions.clear();
  }

  /** Number of live sessions. */
  get size(): number {
    return this.#sessions.size;
  }
}
