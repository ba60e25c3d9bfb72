/*
 * Where devices are on hotspots: the last RADIUS authentication of each device
 * (accept or reject, through which NAS and called station) and its accounting
 * sessions (RFC 2866 Start / Interim-Update / Stop), behind an async
 * interface so a shared backend (the registry's storage, Redis) can replace
 * the in-memory one when the cloud runs on several nodes.
 *
 * Accounting is idempotent: a session is keyed by (NAS, Acct-Session-Id); a
 * repeated Start or Stop changes nothing, an update older than what is stored
 * is ignored, an Interim-Update or Stop for an unknown session creates it
 * (the NAS's view wins after a restart of the cloud). Bounded: at most
 * `maxDevices` device entries and `maxLive` live sessions (the least recently
 * updated is dropped), and a live session with no update for `staleMs` counts
 * as gone (a NAS that died without a Stop).
 */

/** Where a device authenticated or has a session. */
export interface HotspotPlace {
  /** the NAS client's name */
  nas: string;
  /** Called-Station-Id as the NAS sent it ("AA-BB-CC-DD-EE-FF:SSID", RFC 3580 section 3.20) */
  calledStationId?: string;
  /** the SSID part of Called-Station-Id */
  ssid?: string;
  /** Calling-Station-Id: the station's MAC address */
  callingStationId?: string;
}

/** The last authentication of a device. */
export interface HotspotAuth extends HotspotPlace {
  /** ms */
  at: number;
  outcome: "accept" | "reject";
  /** the Reply-Message of a reject */
  reason?: string;
  /** EAP method of an accept, and whether its TLS session was resumed */
  method?: "ttls" | "tls";
  resumed?: boolean;
  /** the lot whose key a temporary device's accept used */
  lot?: string;
}

/** One accounting session. */
export interface HotspotSession extends HotspotPlace {
  deviceId: string;
  acctSessionId: string;
  /** where Disconnect/CoA requests go: NAS-IP-Address (or NAS-IPv6-Address), else the packet's source */
  nasAddress: string;
  /** the source address of the NAS's packets (finds its NAS client again) */
  clientAddress?: string;
  nasIdentifier?: string;
  framedIp?: string;
  /** ms */
  startedAt: number;
  lastInterimAt?: number;
  stoppedAt?: number;
  /** Acct-Terminate-Cause by name (RFC 2866 section 5.10), e.g. "User-Request", "Session-Timeout" */
  terminateCause?: string;
  /** Acct-Session-Time, Acct-Input-Octets, Acct-Output-Octets of the last update */
  sessionTimeS?: number;
  inputOctets?: number;
  outputOctets?: number;
  /** ms of the last update received */
  updatedAt: number;
}

/** One Disconnect-Request sent for a device (RFC 5176). */
export interface DisconnectRecord {
  /** ms */
  at: number;
  nas: string;
  acctSessionId: string;
  reason: string;
  outcome: "ack" | "nak" | "no-answer";
  attempts: number;
  /** the NAK's Error-Cause by name */
  error?: string;
}

/** What the device status shows of hotspots. */
export interface HotspotStatus {
  lastAuth?: HotspotAuth;
  /** the live session, or the last one */
  session?: HotspotSession;
  lastDisconnect?: DisconnectRecord;
}

/** One accounting update as the server decoded it. */
export interface AccountingUpdate extends HotspotPlace {
  kind: "start" | "interim" | "stop";
  deviceId: string;
  acctSessionId: string;
  nasAddress: string;
  clientAddress?: string;
  nasIdentifier?: string;
  framedIp?: string;
  /** when the event happened: arrival time minus Acct-Delay-Time, ms */
  at: number;
  terminateCause?: string;
  sessionTimeS?: number;
  inputOctets?: number;
  outputOctets?: number;
}

/** What an update did. */
export type AccountingEffect = "started" | "updated" | "stopped" | "duplicate" | "stale";

/** The store's interface (async: a shared backend answers over the network). */
export interface HotspotStore {
  /** Records an authentication outcome of `deviceId`. */
  recordAuth(deviceId: string, auth: HotspotAuth): Promise<void>;
  /** Applies one accounting update (idempotent). */
  account(update: AccountingUpdate): Promise<AccountingEffect>;
  /** Accounting-On/Off from `nas`: every live session it had ends (cause NAS-Reboot); returns how many. */
  nasRestarted(nas: string, at: number): Promise<number>;
  /** Records the outcome of a Disconnect-Request for `deviceId`. */
  recordDisconnect(deviceId: string, record: DisconnectRecord): Promise<void>;
  /** The device's hotspot status, undefined when it has none. */
  status(deviceId: string): Promise<HotspotStatus | undefined>;
  /** Live sessions, of one device or all. */
  liveSessions(deviceId?: string): Promise<HotspotSession[]>;
  /** Live sessions per NAS client name. */
  livePerNas(): Promise<Record<string, number>>;
}

/**
 * One accounting update applied to the session it names (the live one, or the
 * device's last one with the same NAS and Acct-Session-Id): the idempotency
 * rules of every HotspotStore. `next` is undefined when nothing changes.
 * @param now - arrival time, ms (updatedAt)
 */
export function applyAccounting(session: HotspotSession | undefined, update: AccountingUpdate, now: number): { effect: AccountingEffect; next?: HotspotSession } {
  if (session && session.deviceId !== update.deviceId) return { effect: "stale" }; // an Acct-Session-Id reused for another device: keep the first
  if (session?.stoppedAt !== undefined) return { effect: "duplicate" }; // after its Stop nothing changes
  if (session && update.kind === "start") return { effect: "duplicate" };
  if (session && (session.lastInterimAt ?? session.startedAt) > update.at && update.kind === "interim") return { effect: "stale" };
  const base: HotspotSession = session ?? {
    deviceId: update.deviceId, acctSessionId: update.acctSessionId, nas: update.nas, nasAddress: update.nasAddress,
    startedAt: update.kind === "start" ? update.at : update.at - (update.sessionTimeS ?? 0) * 1000, updatedAt: now,
  };
  const next: HotspotSession = {
    ...base,
    ...(update.calledStationId ? { calledStationId: update.calledStationId } : {}),
    ...(update.ssid ? { ssid: update.ssid } : {}),
    ...(update.callingStationId ? { callingStationId: update.callingStationId } : {}),
    ...(update.nasIdentifier ? { nasIdentifier: update.nasIdentifier } : {}),
    ...(update.framedIp ? { framedIp: update.framedIp } : {}),
    ...(update.clientAddress ? { clientAddress: update.clientAddress } : {}),
    nasAddress: update.nasAddress,
    ...(update.sessionTimeS !== undefined ? { sessionTimeS: update.sessionTimeS } : {}),
    ...(update.inputOctets !== undefined ? { inputOctets: update.inputOctets } : {}),
    ...(update.outputOctets !== undefined ? { outputOctets: update.outputOctets } : {}),
    ...(update.kind === "interim" ? { lastInterimAt: update.at } : {}),
    ...(update.kind === "stop" ? { stoppedAt: update.at, terminateCause: update.terminateCause ?? "Unknown" } : {}),
    updatedAt: now,
  };
  const effect: AccountingEffect = !session ? (update.kind === "stop" ? "stopped" : "started") : update.kind === "stop" ? "stopped" : "updated";
  return { effect, next };
}

/** Bounds of the in-memory store. */
export interface MemoryHotspotStoreOptions {
  /** default 100,000 */
  maxDevices?: number;
  /** default 100,000 */
  maxLive?: number;
  /** a live session with no update for this long is gone (default 3 interim intervals of 600 s, plus a minute) */
  staleMs?: number;
  now?: () => number;
}

/** The in-memory HotspotStore of one node. */
export class MemoryHotspotStore implements HotspotStore {
  readonly #status = new Map<string, HotspotStatus>();
  readonly #live = new Map<string, HotspotSession>();
  readonly #maxDevices: number;
  readonly #maxLive: number;
  readonly #staleMs: number;
  readonly #now: () => number;

  constructor(options: MemoryHotspotStoreOptions = {}) {
    this.#maxDevices = options.maxDevices ?? 100_000;
    this.#maxLive = options.maxLive ?? 100_000;
    this.#staleMs = options.staleMs ?? 3 * 600_000 + 60_000;
    this.#now = options.now ?? Date.now;
  }

  #entry(deviceId: string): HotspotStatus {
    let entry = this.#status.get(deviceId);
    if (entry) {
      this.#status.delete(deviceId); // most recent last
    } else {
      entry = {};
      if (this.#status.size >= this.#maxDevices) this.#status.delete(this.#status.keys().next().value as string);
    }
    this.#status.set(deviceId, entry);
    return entry;
  }

  async recordAuth(deviceId: string, auth: HotspotAuth): Promise<void> {
    this.#entry(deviceId).lastAuth = { ...auth };
  }

  async account(update: AccountingUpdate): Promise<AccountingEffect> {
    const key = `${update.nas}\u0000${update.acctSessionId}`;
    const live = this.#live.get(key);
    const entry = this.#entry(update.deviceId);
    const last = entry.session?.nas === update.nas && entry.session.acctSessionId === update.acctSessionId ? entry.session : undefined;
    const { effect, next } = applyAccounting(live ?? last, update, this.#now());
    if (!next) return effect;
    entry.session = next;
    this.#live.delete(key);
    if (update.kind !== "stop") {
      if (this.#live.size >= this.#maxLive) this.#live.delete(this.#live.keys().next().value as string);
      this.#live.set(key, next);
    }
    return effect;
  }

  async nasRestarted(nas: string, at: number): Promise<number> {
    let ended = 0;
    for (const [key, session] of [...this.#live]) {
      if (session.nas !== nas) continue;
      this.#live.delete(key);
      const entry = this.#status.get(session.deviceId);
      if (entry?.session?.acctSessionId === session.acctSessionId) entry.session = { ...session, stoppedAt: at, terminateCause: "NAS-Reboot", updatedAt: this.#now() };
      ended++;
    }
    return ended;
  }

  async recordDisconnect(deviceId: string, record: DisconnectRecord): Promise<void> {
    this.#entry(deviceId).lastDisconnect = { ...record };
  }

  async status(deviceId: string): Promise<HotspotStatus | undefined> {
    const entry = this.#status.get(deviceId);
    if (!entry) return undefined;
    return {
      ...(entry.lastAuth ? { lastAuth: { ...entry.lastAuth } } : {}), ...(entry.session ? { session: { ...entry.session } } : {}),
      ...(entry.lastDisconnect ? { lastDisconnect: { ...entry.lastDisconnect } } : {}),
    };
  }

  #sweep(): void {
    const cutoff = this.#now() - this.#staleMs;
    for (const [key, session] of this.#live) if (session.updatedAt < cutoff) this.#live.delete(key);
  }

  async liveSessions(deviceId?: string): Promise<HotspotSession[]> {
    this.#sweep();
    return [...this.#live.values()].filter((s) => deviceId === undefined || s.deviceId === deviceId).map((s) => ({ ...s }));
  }

  async livePerNas(): Promise<Record<string, number>> {
    this.#sweep();
    const out: Record<string, number> = {};
    for (const session of this.#live.values()) out[session.nas] = (out[session.nas] ?? 0) + 1;
    return out;
  }
}

/** Splits Called-Station-Id "AA-BB-CC-DD-EE-FF:SSID" into its SSID (RFC 3580 section 3.20), if it has one. */
export function ssidOf(calledStationId: string | undefined): string | undefined {
  const match = calledStationId?.match(/^(?:[0-9a-f]{2}[-:.]?){5}[0-9a-f]{2}:(.+)$/i);
  return match ? match[1] : undefined;
}

/** A hotspot status as the admin API shows it: times as ISO 8601. */
export type HotspotStatusView = {
  lastAuth?: Omit<HotspotAuth, "at"> & { at: string };
  session?: Omit<HotspotSession, "startedAt" | "lastInterimAt" | "stoppedAt" | "updatedAt"> & {
    live: boolean; startedAt: string; lastInterimAt?: string; stoppedAt?: string; updatedAt: string;
  };
  lastDisconnect?: Omit<DisconnectRecord, "at"> & { at: string };
};

const iso = (ms: number) => new Date(ms).toISOString();

/** The admin view of a HotspotStatus. */
export function hotspotStatusView(status: HotspotStatus): HotspotStatusView {
  const out: HotspotStatusView = {};
  if (status.lastAuth) out.lastAuth = { ...status.lastAuth, at: iso(status.lastAuth.at) };
  if (status.session) {
    const { startedAt, lastInterimAt, stoppedAt, updatedAt, ...rest } = status.session;
    out.session = {
      ...rest, live: stoppedAt === undefined, startedAt: iso(startedAt), updatedAt: iso(updatedAt),
      ...(lastInterimAt !== undefined ? { lastInterimAt: iso(lastInterimAt) } : {}),
      ...(stoppedAt !== undefined ? { stoppedAt: iso(stoppedAt) } : {}),
    };
  }
  if (status.lastDisconnect) out.lastDisconnect = { ...status.lastDisconnect, at: iso(status.lastDisconnect.at) };
  return out;
}
