/*
 * TLS session resumption for the MQTT endpoint.
 *
 * TLS 1.2 by session id (what Moddable's client does: one cached session per
 * server name, modules/crypt/ssl/ssl_cache.js, no SessionTicket extension):
 * node:tls keeps no server-side session cache of its own, so the endpoint
 * stores each authenticated full-handshake session (its SSL_SESSION DER) in a
 * TlsSessionStore and loads it back from the `resumeSession` event. Only
 * sessions of connections whose CONNECT was accepted are stored, so
 * unauthenticated handshakes cannot push devices' sessions out of the cache.
 * TLS 1.2 clients that offer session tickets, and every TLS 1.3 client, get
 * stateless tickets sealed under the server's ticket keys (node:tls
 * `ticketKeys`); they need no store. The login decision runs in full on every
 * CONNECT, resumed or not; the client certificate of a resumed session is the
 * one of its full handshake (OpenSSL keeps it in the session).
 *
 * Ticket keys rotate by period (TicketKeyStore): the keys of period
 * floor(now / rotation) come from the store, made there by the first node
 * that asks, so every node sharing a store seals and opens the same tickets
 * and a restarted node opens the tickets it issued before. node:tls holds one
 * set of ticket keys at a time, so a rotation ends the tickets of the period
 * before: a ticket is good for min(lifetime, the rest of its period).
 *
 * The stores are interfaces so a shared one (Redis, PostgreSQL) can replace
 * the defaults: the cloud's default is SqliteResumptionStore
 * (cloud/tls-store-sqlite.ts, in the data folder, survives a restart);
 * MemorySessionStore is an in-memory LRU bounded in entries, each entry living
 * `lifetime` from its handshake, with ticket keys that die with the process.
 */

/**
 * Where TLS 1.2 sessions are kept between connections. Keys are session ids
 * (1-32 bytes), values SSL_SESSION DER (about 1-2 KB with a client
 * certificate). Implementations must bound their size and honour `ttlMs`.
 */
export interface TlsSessionStore {
  /** The session stored under `id`, if it is there and not expired. */
  get(id: Uint8Array): Promise<Uint8Array | undefined>;
  /** Stores `session` under `id` for `ttlMs`. */
  set(id: Uint8Array, session: Uint8Array, ttlMs: number): Promise<void>;
  /** Forgets the session under `id`. */
  delete(id: Uint8Array): Promise<void>;
}

/**
 * Where the TLS ticket keys of each rotation period are kept. `ticketKeys`
 * is get-or-create, atomic over every node sharing the store (Redis SET NX,
 * PostgreSQL INSERT ... ON CONFLICT DO NOTHING): it returns the keys stored
 * for `period`, storing `make()` first when there are none. A store may
 * forget the keys of earlier periods once a later one is asked for.
 */
export interface TicketKeyStore {
  ticketKeys(period: number, make: () => Uint8Array): Promise<Uint8Array>;
}

/** Bytes of one set of node:tls ticket keys (name 16, HMAC 16, AES 16). */
export const TICKET_KEY_BYTES = 48;
/** Default rotation period of the ticket keys, seconds (24 h). */
export const DEFAULT_TICKET_KEY_ROTATION_S = 86_400;

/** The rotation period `now` (ms since the epoch) falls in. */
export function ticketKeyPeriod(now: number, rotationS: number): number {
  return Math.floor(now / (rotationS * 1000));
}

/** Whether `store` also keeps ticket keys. */
export function isTicketKeyStore(store: unknown): store is TicketKeyStore {
  return typeof (store as Partial<TicketKeyStore> | undefined)?.ticketKeys === "function";
}

/** Default number of sessions the in-memory store keeps. */
export const DEFAULT_SESSION_CACHE_ENTRIES = 10_000;
/** Default lifetime of a TLS session (id or ticket), seconds. */
export const DEFAULT_SESSION_LIFETIME_S = 3600;
/** Largest SSL_SESSION the store accepts (a session carries the client certificate). */
export const MAX_SESSION_BYTES = 16_384;

/** Counters of a MemorySessionStore. */
export interface SessionStoreStats {
  hits: number;
  misses: number;
  stored: number;
  evicted: number;
  expired: number;
}

/** The in-memory LRU store: at most `maxEntries` sessions, least recently used evicted first. */
export class MemorySessionStore implements TlsSessionStore, TicketKeyStore {
  readonly stats: SessionStoreStats = { hits: 0, misses: 0, stored: 0, evicted: 0, expired: 0 };
  readonly #entries = new Map<string, { session: Uint8Array; expires: number }>();
  #ticketKeys: { period: number; keys: Uint8Array } | undefined;

  /**
   * @param maxEntries - bound on stored sessions (default 10000)
   * @param now - ms clock (tests may pin it)
   */
  constructor(readonly maxEntries = DEFAULT_SESSION_CACHE_ENTRIES, private readonly now: () => number = Date.now) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
  }

  /** Sessions held now (expired ones included until touched). */
  get size(): number {
    return this.#entries.size;
  }

  async get(id: Uint8Array): Promise<Uint8Array | undefined> {
    const key = Buffer.from(id).toString("hex");
    const entry = this.#entries.get(key);
    if (!entry) {
      this.stats.misses++;
      return undefined;
    }
    this.#entries.delete(key);
    if (entry.expires <= this.now()) {
      this.stats.expired++;
      this.stats.misses++;
      return undefined;
    }
    this.#entries.set(key, entry); // most recently used last
    this.stats.hits++;
    return entry.session;
  }

  async set(id: Uint8Array, session: Uint8Array, ttlMs: number): Promise<void> {
    if (id.length === 0 || id.length > 32 || session.length > MAX_SESSION_BYTES) return;
    const key = Buffer.from(id).toString("hex");
    this.#entries.delete(key);
    this.#entries.set(key, { session, expires: this.now() + ttlMs });
    this.stats.stored++;
    while (this.#entries.size > this.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as string);
      this.stats.evicted++;
    }
  }

  async delete(id: Uint8Array): Promise<void> {
    this.#entries.delete(Buffer.from(id).toString("hex"));
  }

  /** The ticket keys of `period`, in this process only (a restart makes new ones). */
  async ticketKeys(period: number, make: () => Uint8Array): Promise<Uint8Array> {
    if (this.#ticketKeys?.period !== period) this.#ticketKeys = { period, keys: make() };
    return this.#ticketKeys.keys;
  }
}

/** Reads one DER TLV at `offset`: its tag, where its value starts and ends (also used by cloud/radius/resumption.ts). */
export function tlv(der: Uint8Array, offset: number): { tag: number; start: number; end: number } | undefined {
  if (offset + 2 > der.length) return undefined;
  const tag = der[offset];
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 3 || start + bytes > der.length) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = (length << 8) | der[start + i];
    start += bytes;
  }
  const end = start + length;
  return end <= der.length ? { tag, start, end } : undefined;
}

/**
 * The protocol version and session id of an SSL_SESSION DER (OpenSSL's
 * SSL_SESSION_ASN1: SEQUENCE { version, sslVersion, cipher, sessionID, ... }).
 * @returns undefined when `der` is not one
 */
export function sessionIdentity(der: Uint8Array): { version: number; id: Uint8Array } | undefined {
  const outer = tlv(der, 0);
  if (!outer || outer.tag !== 0x30) return undefined;
  const version = tlv(der, outer.start);
  if (!version || version.tag !== 0x02) return undefined;
  const sslVersion = tlv(der, version.end);
  if (!sslVersion || sslVersion.tag !== 0x02 || sslVersion.end - sslVersion.start > 2) return undefined;
  let protocol = 0;
  for (let i = sslVersion.start; i < sslVersion.end; i++) protocol = (protocol << 8) | der[i];
  const cipher = tlv(der, sslVersion.end);
  if (!cipher || cipher.tag !== 0x04) return undefined;
  const id = tlv(der, cipher.end);
  if (!id || id.tag !== 0x04 || id.end - id.start > 32) return undefined;
  return { version: protocol, id: der.subarray(id.start, id.end) };
}
