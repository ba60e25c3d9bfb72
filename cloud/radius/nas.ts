/*
 * Which access point sent a packet, and its shared secret: NAS clients come
 * from the registry's nas_clients table (added with the admin services), matched
 * by the packet's source address, and by NAS-Identifier (= the client's name)
 * when several share an address or the client is registered with address "*".
 * A lookup is cached for at most `cacheMs` (default 1 s), so clients added or
 * removed while the server runs apply within a second, and a busy access point
 * costs one registry query per second instead of one per packet; opened secrets
 * are cached while their sealed value is unchanged.
 */
import type { NasClientRow, Registry } from "../registry";

/** A known NAS client. */
export interface NasClient {
  name: string;
  secret: Buffer;
}

/** IPv4-mapped IPv6 source addresses as plain IPv4 ("::ffff:10.0.0.2" -> "10.0.0.2"). */
export function normalizeAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith("::ffff:") && lower.includes(".") ? lower.slice(7) : lower;
}

/** NAS client lookup over the registry. */
export class NasDirectory {
  readonly #cache = new Map<string, { sealed: Buffer; secret: Buffer }>();
  readonly #recent = new Map<string, { client: NasClient | undefined; at: number }>();

  /** @param now - clock in ms; @param cacheMs - how long a lookup is reused */
  constructor(readonly registry: Registry, readonly now: () => number = Date.now, readonly cacheMs = 1000) {}

  /**
   * The client for a packet from `address` carrying `nasIdentifier` (if any); undefined when unknown.
   * @example await directory.lookup("127.0.0.1", undefined)
   */
  async lookup(address: string, nasIdentifier: string | undefined): Promise<NasClient | undefined> {
    const key = `${address}|${nasIdentifier ?? ""}`;
    const now = this.now();
    const recent = this.#recent.get(key);
    if (recent && now - recent.at < this.cacheMs && now >= recent.at) return recent.client;
    const client = await this.#find(address, nasIdentifier);
    if (this.#recent.size >= 4096) this.#recent.clear();
    this.#recent.set(key, { client, at: now });
    return client;
  }

  async #find(address: string, nasIdentifier: string | undefined): Promise<NasClient | undefined> {
    const source = normalizeAddress(address);
    const rows = await this.registry.nasClientsFor(source);
    let row: NasClientRow | undefined;
    if (nasIdentifier !== undefined) row = rows.find((r) => r.name === nasIdentifier);
    if (!row) {
      const byAddress = rows.filter((r) => r.address === source);
      if (byAddress.length === 1) row = byAddress[0];
    }
    if (!row) return undefined;
    const cached = this.#cache.get(row.name);
    if (cached && cached.sealed.equals(row.secret_enc)) return { name: row.name, secret: cached.secret };
    const secret = Buffer.from(this.registry.nasSecret(row));
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(row.name, { sealed: Buffer.from(row.secret_enc), secret });
    return { name: row.name, secret };
  }
}
