/*
 * The RADIUS authentication server (RFC 2865, RFC 3579) of the reference
 * cloud, over node:dgram.
 *
 * Per datagram: decode with bounds, find the NAS client (unknown: dropped),
 * require and verify the Message-Authenticator (missing or wrong: dropped
 * silently), answer retransmissions from the duplicate cache, then run the EAP
 * step: Identity starts a session (per-NAS rate limit, State bound to it),
 * later rounds are routed by State. Access-Accept carries EAP-Success and the
 * MSK as MS-MPPE keys; Access-Reject carries EAP-Failure and a Reply-Message
 * reason, recorded on the device row and audited. Every packet is handled in
 * its own try/catch: a bad one is counted and dropped, never fatal.
 * handle() is the whole server without a socket (tests); start() binds it.
 */
import type { CloudLog, LogFields, LogLevel } from "../log";
import { constants, randomBytes, type X509Certificate } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { createSecureContext, type SecureContext } from "node:tls";
import type { DigestPort } from "../../modules/ports";
import type { Registry } from "../registry";
import { Authenticator } from "../auth/authenticator";
import { TokenBuckets, type RateLimit } from "../limits";
import { EAP_CODE, EAP_TYPE, EapCodecError, decodeEap, encodeEap } from "./eap";
import { DuplicateCache, SessionTable } from "./limits";
import { mppeKeyAttributes } from "./mppe";
import { NasDirectory, normalizeAddress, type NasClient } from "./nas";
import {
  ATTR, RADIUS_CODE, attribute, decodePacket, encodePacket, responseAuthenticator, joinEapMessage, signResponse, splitEapMessage, verifyMessageAuthenticator,
  type RadiusAttribute, type RadiusPacket,
} from "./packet";
import { EapSession, type EapMethod, type EapStep, type RadiusReason, type SessionContext } from "./session";
import { MemoryHotspotStore, type HotspotSession, type HotspotStore } from "./session-store";
import { placeOf } from "./place";
import { decodeAccounting, verifyAccountingRequest } from "./accounting";
import { DYNAMIC_AUTHORIZATION_PORT, DisconnectClient, type DisconnectOutcome } from "./dynamic-authorization";
import { DEFAULT_SESSION_LIFETIME_S, MemorySessionStore, sessionIdentity, type TlsSessionStore } from "../tls-sessions";
import type { TlsSessionOptions } from "../mqtt-server";
import { bindingKey, decodeBinding, encodeBinding } from "./resumption";
import { policyAttributes } from "./policy";
import { NetworkRegistry, type ProfilePolicy } from "../network-registry";

export type { RadiusReason } from "./session";
export { placeOf } from "./place";

/** Options of the RADIUS server. */
export interface RadiusServerOptions {
  registry: Registry;
  digest: DigestPort;
  /** the server certificate (RADIUS_SERVER_NAME) and key, PEM */
  certPem: string;
  keyPem: string;
  /** listen address (default 127.0.0.1) and UDP port (default 1812; 0 = ephemeral) */
  host?: string;
  port?: number;
  /** most TLS bytes per EAP message (default 1000); a smaller Framed-MTU from the NAS lowers it per session */
  fragmentSize?: number;
  /**
   * TLS session resumption for EAP-TLS and EAP-TTLS (default: an in-memory LRU
   * of 10,000 sessions by id, 1 h lifetime, tickets under per-process keys);
   * `{ enabled: false }`: every authentication is a full handshake
   */
  tlsSessions?: TlsSessionOptions;
  /** UDP port of the accounting listener (RFC 2866; conventionally 1813; 0 = ephemeral; undefined = no accounting) */
  accountingPort?: number;
  /** Acct-Interim-Interval sent in Access-Accept, seconds (default 600; 0 = none) */
  acctInterimIntervalS?: number;
  /**
   * Disconnect-Requests (RFC 5176) to the NAS holding a live session: UDP port on
   * the NAS (default 3799; per NAS client name in `ports`), wait per try (default
   * 1000 ms), retransmissions (default 2)
   */
  dynamicAuthorization?: { port?: number; ports?: Record<string, number>; timeoutMs?: number; retries?: number };
  /** where authentications and accounting sessions are recorded (default: a MemoryHotspotStore of this node) */
  hotspots?: HotspotStore;
  /** most bytes of one reassembled TLS message from a peer (default 64 KiB) */
  maxReassembly?: number;
  /** most concurrent EAP sessions (default 1000); the least recently used is evicted */
  maxSessions?: number;
  /** ms after which an idle EAP session is dropped (default 30000) */
  sessionIdleMs?: number;
  /**
   * the credential decision shared with the MQTT endpoint (one limiter and
   * audit state); default: one of its own over `registry`, with `deviceRate`
   * as its per-device login rate and `now` as its clock
   */
  auth?: Authenticator;
  /** verified logins per device when the server makes its own Authenticator (default burst 10, 0.2/s) */
  deviceRate?: RateLimit;
  /** new EAP sessions per NAS client (default burst 500, 200/s) */
  nasRate?: RateLimit;
  /** ms a response is kept for retransmitted requests (default 5000) */
  duplicateTtlMs?: number;
  /** Session-Timeout sent in Access-Accept, seconds (default 3600; 0 = none) */
  sessionTimeoutS?: number;
  /** structured log lines (cloud/log.ts); none when undefined */
  log?: CloudLog;
  /** clock in ms (tests) */
  now?: () => number;
}

/** Counters of the server. */
export interface RadiusStats {
  received: number;
  malformed: number;
  unknownClient: number;
  badAuthenticator: number;
  unsupportedCode: number;
  duplicates: number;
  challenges: number;
  accepts: number;
  rejects: number;
  /** EAP responses dropped by a session (stale identifier, still busy) */
  staleEap: number;
  /** packets that raised an unexpected error (dropped) */
  errors: number;
  /** rejects per reason */
  reasons: Partial<Record<RadiusReason, number>>;
  /** Access-Accepts and Access-Rejects by `"<accept|reject> <tls|ttls|none> <reason or ->"` (method none: refused before EAP chose one) */
  decisions: Record<string, number>;
  /** Accounting-Requests answered, by Acct-Status-Type; repeats (retransmits, or an update already applied); ignored (not a device's session); dropped (bad authenticator, malformed, not recorded) */
  accounting: { start: number; interim: number; stop: number; nasRestart: number; duplicate: number; ignored: number; dropped: number };
  /** Disconnect-Requests by outcome */
  disconnects: { ack: number; nak: number; noAnswer: number };
  /** live hotspot sessions per NAS client name, as of the last accounting update (liveSessionsPerNas() asks the store) */
  liveSessionsPerNas: Record<string, number>;
  /** accepts after a full TLS handshake, after a resumed one, and sessions stored for resumption */
  tlsFull: number;
  tlsResumed: number;
  tlsSessionsStored: number;
}

/** Which listener a datagram arrived on. */
export type Listener = "auth" | "accounting";

/** The outcome of one Disconnect-Request for one live session. */
export interface DisconnectReport {
  nas: string;
  acctSessionId: string;
  /** where it went */
  address: string;
  outcome: DisconnectOutcome;
}

/** The address a datagram came from. */
export type Source = Pick<RemoteInfo, "address" | "port">;

const MAX_IDENTITY = 253;
/** EAPOL header (4) + EAP-TLS header with the length field (10): what a fragment adds on the link */
const EAP_TLS_OVERHEAD = 14;
/** Framed-MTU values honoured (RFC 2865 section 5.12 allows 64..65535; below 100 a handshake needs more rounds than MAX_ROUNDS) */
const MIN_FRAMED_MTU = 100;
const MAX_FRAMED_MTU = 65535;

/** TLS bytes per fragment for a NAS that sent `framedMtu`: the server's own size, lowered to fit the MTU. */
export function fragmentSizeFor(configured: number, framedMtu: number | undefined): number {
  if (framedMtu === undefined || framedMtu < MIN_FRAMED_MTU || framedMtu > MAX_FRAMED_MTU) return configured;
  return Math.min(configured, framedMtu - EAP_TLS_OVERHEAD);
}

function uint32(value: Buffer | undefined): number | undefined {
  return value && value.length === 4 ? value.readUInt32BE(0) : undefined;
}


/** The RADIUS server. */
export class RadiusServer {
  readonly stats: RadiusStats = {
    received: 0, malformed: 0, unknownClient: 0, badAuthenticator: 0, unsupportedCode: 0, duplicates: 0,
    challenges: 0, accepts: 0, rejects: 0, staleEap: 0, errors: 0, reasons: {}, decisions: {}, tlsFull: 0, tlsResumed: 0, tlsSessionsStored: 0,
    accounting: { start: 0, interim: 0, stop: 0, nasRestart: 0, duplicate: 0, ignored: 0, dropped: 0 },
    disconnects: { ack: 0, nak: 0, noAnswer: 0 }, liveSessionsPerNas: {},
  };
  readonly sessions: SessionTable<EapSession>;
  readonly #options: RadiusServerOptions;
  readonly #nas: NasDirectory;
  readonly #duplicates: DuplicateCache;
  /** the credential decision */
  readonly auth: Authenticator;
  readonly #nasBuckets: TokenBuckets;
  #secureContext: SecureContext;
  readonly #now: () => number;
  /** authentications and accounting sessions */
  readonly hotspots: HotspotStore;
  /** where TLS sessions are kept for resumption (undefined: resumption off) */
  readonly tlsSessionStore: TlsSessionStore | undefined;
  readonly #sessionLifetimeS: number;
  /** the TLSSocket `server` option that turns node's session-id callbacks on */
  readonly #resumption: EventEmitter | undefined;
  #socket: Socket | undefined;
  #accountingSocket: Socket | undefined;
  readonly #acctDuplicates: DuplicateCache;
  #disconnectClient: DisconnectClient | undefined;
  /** the client certificate of each device's last EAP-TLS accept on this node (to recheck live sessions when certificates are revoked) */
  readonly #leaves = new Map<string, X509Certificate>();
  #sweep: NodeJS.Timeout | undefined;
  /** the hotspot profiles' policies, read at most once a second (a profile change applies within a second) */
  #policies: { at: number; list: Promise<ProfilePolicy[]> } | undefined;
  /** session-id lookups in flight (the TLS engines wait for them) */
  #lookups = 0;
  /** TLS session store writes in flight */
  readonly #writes = new Set<Promise<unknown>>();

  constructor(options: RadiusServerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.hotspots = options.hotspots ?? new MemoryHotspotStore({ now: this.#now });
    this.#nas = new NasDirectory(options.registry, this.#now);
    this.#duplicates = new DuplicateCache(options.duplicateTtlMs ?? 5000);
    this.#acctDuplicates = new DuplicateCache(options.duplicateTtlMs ?? 5000);
    this.auth = options.auth ?? new Authenticator({
      registry: options.registry, digest: options.digest, now: options.now, log: options.log,
      limits: options.deviceRate ? { perDevice: options.deviceRate } : undefined,
    });
    this.#nasBuckets = new TokenBuckets(options.nasRate ?? { burst: 500, perSecond: 200 }, 10_000);
    this.sessions = new SessionTable<EapSession>(options.maxSessions ?? 1000, options.sessionIdleMs ?? 30_000);
    const tls = options.tlsSessions ?? {};
    this.tlsSessionStore = tls.enabled === false ? undefined : tls.store ?? new MemorySessionStore();
    this.#sessionLifetimeS = tls.lifetimeS ?? DEFAULT_SESSION_LIFETIME_S;
    this.#secureContext = this.#makeSecureContext(options.certPem, options.keyPem);
    const store = this.tlsSessionStore;
    if (store) {
      // node:tls runs its session-id callbacks for a TLSSocket whose `server` has these listeners
      const resumption = Object.assign(new EventEmitter(), { _contexts: [] });
      resumption.on("resumeSession", (id: Buffer, callback: (error: Error | null, session: Buffer | null) => void) => {
        if (id.length === 0 || id.length > 32) return callback(null, null);
        this.#lookups++;
        store.get(id).then(
          (session) => {
            this.#lookups--;
            callback(null, session ? Buffer.from(session) : null);
          },
          (error: Error) => {
            this.#lookups--;
            this.#log("warn", `radius: cannot read the TLS session store: ${error.message}`);
            callback(null, null);
          },
        );
      });
      this.#resumption = resumption;
    }
  }

  /**
   * A TLS 1.2 context for the EAP tunnels: ECDHE suites, one session id context
   * for every node, tickets only with resumption on.
   */
  #makeSecureContext(certPem: string, keyPem: string): SecureContext {
    const tls = this.#options.tlsSessions ?? {};
    const secureContext = createSecureContext({
      cert: certPem, key: keyPem, minVersion: "TLSv1.2", maxVersion: "TLSv1.2",
      // ECDHE only, by server preference
      ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"
        + ":ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA",
      honorCipherOrder: true,
      // tickets only with resumption on (stateless, sealed under ticketKeys: every node that shares the store needs the same keys)
      ...(this.tlsSessionStore ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
    });
    const context = secureContext.context as { setSessionIdContext(id: string): void; setSessionTimeout(s: number): void; setTicketKeys(keys: Buffer): void };
    // one session id context for every node (sessions may be shared), one lifetime for ids and tickets
    context.setSessionIdContext("wcm-radius-eap-v1");
    context.setSessionTimeout(this.#sessionLifetimeS);
    if (tls.ticketKeys) context.setTicketKeys(Buffer.from(tls.ticketKeys));
    return secureContext;
  }

  /**
   * Serves another certificate and key from the next EAP conversation on
   * (SIGHUP); conversations already under way finish with the old one.
   */
  replaceIdentity(certPem: string, keyPem: string): void {
    this.#secureContext = this.#makeSecureContext(certPem, keyPem);
  }

  /**
   * Stores the TLS 1.2 session of an accepted full handshake, for resumption by
   * session id, and for EAP-TTLS what its inner login proved (the binding,
   * resumption.ts), found again by ticket or id.
   */
  #rememberSession(der: Buffer | undefined, step: Extract<EapStep, { kind: "accept" }>): void {
    const store = this.tlsSessionStore;
    const identity = der && sessionIdentity(der);
    if (!store || !der || !identity || identity.version !== 0x0303) return;
    const ttlMs = this.#sessionLifetimeS * 1000;
    const failed = (error: Error) => this.#log("warn", `radius: cannot store a TLS session: ${error.message}`);
    if (identity.id.length > 0) {
      this.stats.tlsSessionsStored++;
      this.#track(store.set(Uint8Array.from(identity.id), Uint8Array.from(der), ttlMs).catch(failed));
    }
    const used = step.decision.credential;
    const key = bindingKey(der);
    if (step.method === "ttls" && key && used !== "certificate") {
      const binding = { deviceId: step.deviceId, used, generation: step.decision.generation ?? 0, ...(step.decision.lot ? { lot: step.decision.lot } : {}) };
      this.#track(store.set(key, encodeBinding(binding), ttlMs).catch(failed));
    }
  }

  /** Keeps a store write in flight until it settles, so close() can wait for it (a restart keeps what was accepted). */
  #track(write: Promise<unknown>): void {
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  /** Forgets the session of a refused authentication, so it is not resumed again. */
  #forgetSession(der: Buffer | undefined): void {
    const identity = der && sessionIdentity(der);
    if (this.tlsSessionStore && identity && identity.id.length > 0) {
      this.tlsSessionStore.delete(Uint8Array.from(identity.id)).catch(() => undefined);
    }
    const key = der && bindingKey(der);
    if (this.tlsSessionStore && key) this.tlsSessionStore.delete(key).catch(() => undefined);
  }

  /**
   * The policy of the hotspot profile whose SSID the Access-Request names
   * (Called-Station-Id "MAC:SSID", RFC 3580 section 3.20), if any.
   */
  async #policyFor(ssid: string | undefined): Promise<ProfilePolicy | undefined> {
    if (ssid === undefined) return undefined;
    const now = this.#now();
    if (!this.#policies || now - this.#policies.at > 1000 || now < this.#policies.at) {
      this.#policies = { at: now, list: new NetworkRegistry(this.#options.registry).hotspotPolicies() };
      this.#policies.list.catch(() => { this.#policies = undefined; });
    }
    // a failed read throws: the Accept is not sent (fails closed: never an Accept without its walled garden)
    return (await this.#policies.list).find((p) => p.ssid === ssid);
  }

  /** The bound UDP port (after start()). */
  get port(): number {
    return this.#socket?.address().port ?? 0;
  }

  /** The bound accounting port (after start(), when accountingPort was given), else undefined. */
  get accountingPort(): number | undefined {
    return this.#accountingSocket?.address().port;
  }

  async #bind(port: number, listener: Listener): Promise<Socket> {
    const socket = createSocket(this.#options.host?.includes(":") ? "udp6" : "udp4");
    socket.on("message", (message, rinfo) => {
      this.handle(message, rinfo, listener).then((response) => {
        if (response) socket.send(response, rinfo.port, rinfo.address);
      }, () => {
        this.stats.errors++;
      });
    });
    socket.on("error", (error) => this.#log("error", `radius ${listener} socket: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, this.#options.host ?? "127.0.0.1", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return socket;
  }

  /**
   * Binds the UDP socket.
   * @returns the port
   */
  async start(): Promise<number> {
    const socket = await this.#bind(this.#options.port ?? 1812, "auth");
    if (this.#options.accountingPort !== undefined) {
      try {
        this.#accountingSocket = await this.#bind(this.#options.accountingPort, "accounting");
      } catch (error) {
        socket.close();
        throw error;
      }
    }
    this.#socket = socket;
    this.#sweep = setInterval(() => this.sessions.sweep(this.#now()), 5000);
    this.#sweep.unref();
    return this.port;
  }

  /** Stops listening and ends every EAP session. */
  async close(): Promise<void> {
    if (this.#sweep) clearInterval(this.#sweep);
    await Promise.allSettled([...this.#writes]);
    this.sessions.clear();
    this.#disconnectClient?.close();
    this.#disconnectClient = undefined;
    for (const socket of [this.#socket, this.#accountingSocket]) {
      if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
    this.#socket = undefined;
    this.#accountingSocket = undefined;
  }

  #log(level: LogLevel, message: string, fields?: LogFields): void {
    this.#options.log?.(level, message, fields);
  }

  /** Counts one decision by method ("tls", "ttls", or "none" before the method is known) and reason. */
  #decided(decision: "accept" | "reject", method: EapMethod | "none", reason: string): void {
    const key = `${decision} ${method} ${reason}`;
    this.stats.decisions[key] = (this.stats.decisions[key] ?? 0) + 1;
  }

  /**
   * Handles one datagram as if it arrived from `source` on `listener` (the
   * authentication port: Access-Request, Status-Server; the accounting port: Accounting-Request).
   * @returns the response datagram, or undefined when the packet is dropped
   * @example const reply = await server.handle(datagram, { address: "127.0.0.1", port: 50000 });
   */
  async handle(datagram: Uint8Array, source: Source, listener: Listener = "auth"): Promise<Buffer | undefined> {
    this.stats.received++;
    let packet: RadiusPacket;
    try {
      packet = decodePacket(datagram);
    } catch (error) {
      this.stats.malformed++;
      this.#log("debug", `radius: malformed packet from ${source.address}: ${(error as Error).message}`);
      return undefined;
    }
    try {
      if (listener === "accounting" ? packet.code !== RADIUS_CODE.accountingRequest : packet.code !== RADIUS_CODE.accessRequest && packet.code !== RADIUS_CODE.statusServer) {
        this.stats.unsupportedCode++;
        return undefined;
      }
      const nasId = attribute(packet, ATTR.nasIdentifier)?.toString("utf8");
      const nas = await this.#nas.lookup(source.address, nasId);
      if (!nas) {
        this.stats.unknownClient++;
        this.#log("warn", `radius: packet from unknown client ${source.address}`);
        return undefined;
      }
      if (listener === "accounting") return await this.#accountingRequest(packet, nas, source);
      if (!verifyMessageAuthenticator(packet, nas.secret)) {
        this.stats.badAuthenticator++;
        this.#log("warn", `radius: missing or wrong Message-Authenticator from ${nas.name}`);
        return undefined;
      }
      if (packet.code === RADIUS_CODE.statusServer) return signResponse(RADIUS_CODE.accessAccept, packet, nas.secret, []);
      const key = `${nas.name}|${normalizeAddress(source.address)}:${source.port}`;
      const now = this.#now();
      const verdict = this.#duplicates.check(key, packet.identifier, packet.authenticator, now);
      if (verdict.kind !== "new") {
        this.stats.duplicates++;
        return verdict.kind === "resend" ? verdict.response : undefined;
      }
      let response: Buffer | undefined;
      try {
        response = await this.#access(packet, nas);
      } finally {
        this.#duplicates.answer(key, packet.identifier, packet.authenticator, response, this.#now());
      }
      return response;
    } catch (error) {
      this.stats.errors++;
      this.#log("error", `radius: packet from ${source.address} failed: ${(error as Error).message}`);
      return undefined;
    }
  }

  /**
   * One Accounting-Request (RFC 2866): authenticated by the Request
   * Authenticator (and the Message-Authenticator when present), a retransmit
   * answered from the duplicate cache, the update applied to the HotspotStore
   * (idempotent), then the Accounting-Response. Not recorded (the store
   * failed): no response, so the NAS retries (RFC 2866 section 2).
   */
  async #accountingRequest(packet: RadiusPacket, nas: NasClient, source: Source): Promise<Buffer | undefined> {
    if (!verifyAccountingRequest(packet, nas.secret)) {
      this.stats.badAuthenticator++;
      this.stats.accounting.dropped++;
      this.#log("warn", `radius: accounting request from ${nas.name} with a wrong authenticator`);
      return undefined;
    }
    const key = `${nas.name}|${normalizeAddress(source.address)}:${source.port}`;
    const verdict = this.#acctDuplicates.check(key, packet.identifier, packet.authenticator, this.#now());
    if (verdict.kind !== "new") {
      this.stats.duplicates++;
      this.stats.accounting.duplicate++;
      return verdict.kind === "resend" ? verdict.response : undefined;
    }
    let response: Buffer | undefined;
    try {
      const request = decodeAccounting(packet, nas.name, normalizeAddress(source.address), Date.now());
      if (request.kind === "ignored") {
        this.stats.accounting.ignored++;
        this.#log("debug", `radius: accounting from ${nas.name} ignored: ${request.why}`);
      } else if (request.kind === "nas-restart") {
        const ended = await this.hotspots.nasRestarted(request.nas, request.at);
        this.stats.accounting.nasRestart++;
        this.#log("info", `radius: ${nas.name} sent Accounting-${request.status === "on" ? "On" : "Off"}: ${ended} sessions ended`);
      } else {
        const effect = await this.hotspots.account({ ...request.update, clientAddress: normalizeAddress(source.address) });
        if (effect === "duplicate" || effect === "stale") this.stats.accounting.duplicate++;
        else this.stats.accounting[request.update.kind]++;
      }
      this.stats.liveSessionsPerNas = await this.hotspots.livePerNas();
      // no attributes, no Message-Authenticator (RFC 2866 section 4.2; radclient rejects one computed as for Access replies)
      response = encodePacket(RADIUS_CODE.accountingResponse, packet.identifier, packet.authenticator, []);
      responseAuthenticator(response, packet.authenticator, nas.secret).copy(response, 4);
    } catch (error) {
      this.stats.accounting.dropped++;
      this.#log("warn", `radius: accounting from ${nas.name} not recorded: ${(error as Error).message}`);
    } finally {
      this.#acctDuplicates.answer(key, packet.identifier, packet.authenticator, response, this.#now());
    }
    return response;
  }

  /** Live hotspot sessions per NAS client name (from the store). */
  async liveSessionsPerNas(): Promise<Record<string, number>> {
    return this.hotspots.livePerNas();
  }

  /**
   * Sends a Disconnect-Request (RFC 5176) for every live hotspot session of
   * `deviceId` to the NAS that holds it, with retries, and records each outcome
   * in the device's hotspot status. Never throws for the network.
   * @param reason - why, for the log and the status ("device revoked", "operator")
   * @returns one outcome per live session (none: the device has no live session)
   */
  async disconnectDevice(deviceId: string, reason: string): Promise<DisconnectReport[]> {
    const sessions = await this.hotspots.liveSessions(deviceId);
    return Promise.all(sessions.map((session) => this.#disconnect(session, reason)));
  }

  async #disconnect(session: HotspotSession, reason: string): Promise<DisconnectReport> {
    const nas = await this.#nas.lookup(session.clientAddress ?? session.nasAddress, session.nas);
    const base = { nas: session.nas, acctSessionId: session.acctSessionId, address: session.nasAddress };
    if (!nas) return { ...base, outcome: { kind: "nak", nas: session.nas, attempts: 0, error: "NAS client no longer registered" } };
    const settings = this.#options.dynamicAuthorization ?? {};
    this.#disconnectClient ??= new DisconnectClient({ timeoutMs: settings.timeoutMs, retries: settings.retries });
    const port = settings.ports?.[session.nas] ?? settings.port ?? DYNAMIC_AUTHORIZATION_PORT;
    const outcome = await this.#disconnectClient.disconnect({
      nas: session.nas, secret: nas.secret, address: session.nasAddress, port, userName: session.deviceId,
      acctSessionId: session.acctSessionId, callingStationId: session.callingStationId, nasIdentifier: session.nasIdentifier,
      nasIpAddress: session.nasAddress,
    });
    if (outcome.kind === "ack") this.stats.disconnects.ack++;
    else if (outcome.kind === "nak") this.stats.disconnects.nak++;
    else this.stats.disconnects.noAnswer++;
    this.#log(outcome.kind === "ack" ? "info" : "warn", `radius: Disconnect-Request for ${session.deviceId} (${reason}) to ${session.nas} ${session.nasAddress}:${port}: ${outcome.kind}${outcome.kind === "nak" && outcome.error ? ` ${outcome.error}` : ""} after ${outcome.attempts} transmissions`);
    await this.hotspots.recordDisconnect(session.deviceId, {
      at: this.#now(), nas: session.nas, acctSessionId: session.acctSessionId, reason, outcome: outcome.kind,
      attempts: outcome.attempts, ...(outcome.kind === "nak" && outcome.error ? { error: outcome.error } : {}),
    }).catch(() => undefined);
    return { ...base, outcome };
  }

  /** Devices with a live hotspot session on this cloud's store (for revocations by CA, lot or certificate). */
  async liveDevices(): Promise<string[]> {
    return [...new Set((await this.hotspots.liveSessions()).map((s) => s.deviceId))];
  }

  /** Disconnects the live hotspot sessions of the devices for which `predicate` holds. */
  async disconnectWhere(predicate: (deviceId: string) => boolean | Promise<boolean>, reason: string): Promise<DisconnectReport[]> {
    const out: DisconnectReport[] = [];
    for (const id of await this.liveDevices()) if (await predicate(id)) out.push(...await this.disconnectDevice(id, reason));
    return out;
  }

  /** Disconnects the devices of a revoked lot: `ids` from the registry, and temporary devices accepted with the lot's key (no row yet). */
  async disconnectLot(lot: string, ids: string[], reason: string): Promise<DisconnectReport[]> {
    const named = new Set(ids);
    const out: DisconnectReport[] = [];
    for (const id of await this.liveDevices()) {
      if (named.has(id) || (await this.hotspots.status(id))?.lastAuth?.lot === lot) out.push(...await this.disconnectDevice(id, reason));
    }
    return out;
  }

  /** Disconnects the live sessions of devices whose certificate (last EAP-TLS accept on this node) is no longer good. */
  async recheckCertificates(reason: string): Promise<DisconnectReport[]> {
    const out: DisconnectReport[] = [];
    for (const id of await this.liveDevices()) {
      const leaf = this.#leaves.get(id);
      if (leaf && !(await this.auth.certificateStillGood(id, leaf))) out.push(...await this.disconnectDevice(id, reason));
    }
    return out;
  }

  /**
   * What a session asks of the cloud. `source` is where the device is, for
   * the lockouts per (id, source): the NAS and the station's
   * Calling-Station-Id (its MAC address), as FreeRADIUS keys per station.
   */
  #context(source: string, framedMtu: number | undefined): SessionContext {
    return {
      secureContext: this.#secureContext,
      ...(this.#resumption ? { resumption: this.#resumption, lookupsPending: () => this.#lookups > 0 } : {}),
      fragmentSize: fragmentSizeFor(this.#options.fragmentSize ?? 1000, framedMtu),
      maxReassembly: this.#options.maxReassembly ?? 64 * 1024,
      checkPassword: (userName, password) => this.auth.hotspotPassword(userName, password, source),
      checkCertificate: (identity: string, leaf: X509Certificate | undefined) => this.auth.hotspotCertificate(identity, leaf, source),
      checkResumed: async (session) => {
        const key = session && this.tlsSessionStore && bindingKey(session);
        if (!key) return undefined;
        let stored: Uint8Array | undefined;
        try {
          stored = await this.tlsSessionStore!.get(key);
        } catch (error) {
          this.#log("warn", `radius: cannot read the TLS session store: ${(error as Error).message}`);
        }
        const binding = stored && decodeBinding(stored);
        return binding ? this.auth.hotspotResumed(binding, source) : undefined;
      },
    };
  }

  async #reject(request: RadiusPacket, nas: NasClient, reason: RadiusReason, detail: string, deviceId: string | undefined, eap?: Buffer, decided = false, method: EapMethod | "none" = "none"): Promise<Buffer> {
    this.stats.rejects++;
    this.stats.reasons[reason] = (this.stats.reasons[reason] ?? 0) + 1;
    this.#decided("reject", method, reason);
    this.#log("info", `radius: reject: ${detail}`, { event: "radius.reject", deviceId, nas: nas.name, method, reason });
    if (deviceId !== undefined) this.#record(deviceId, { ...placeOf(request, nas.name), at: this.#now(), outcome: "reject", reason });
    if (deviceId !== undefined && !decided) {
      try {
        await this.#options.registry.recordFailure(deviceId, reason, detail, "radius");
      } catch (error) {
        this.#log("error", `radius: recording a failure failed: ${(error as Error).message}`);
      }
    }
    const attrs: RadiusAttribute[] = [{ type: ATTR.replyMessage, value: Buffer.from(reason) }];
    if (eap) attrs.push(...splitEapMessage(eap));
    return signResponse(RADIUS_CODE.accessReject, request, nas.secret, attrs);
  }

  /** The device status: last authentication and place (never fatal). */
  #record(deviceId: string, auth: Parameters<HotspotStore["recordAuth"]>[1]): void {
    this.hotspots.recordAuth(deviceId, auth).catch((error: Error) => this.#log("error", `radius: recording a hotspot authentication failed: ${error.message}`));
  }

  #failure(identifier: number): Buffer {
    return encodeEap({ code: EAP_CODE.failure, identifier, data: Buffer.alloc(0) });
  }


  async #access(packet: RadiusPacket, nas: NasClient): Promise<Buffer | undefined> {
    const eapBytes = joinEapMessage(packet);
    if (!eapBytes) return this.#reject(packet, nas, "METHOD_UNSUPPORTED", "no EAP-Message (only EAP is served)", undefined);
    let eap;
    try {
      eap = decodeEap(eapBytes);
    } catch (error) {
      if (!(error instanceof EapCodecError)) throw error;
      return this.#reject(packet, nas, "BAD_EAP", error.message, undefined, this.#failure(eapBytes.length > 1 ? eapBytes[1] : 0));
    }
    const state = attribute(packet, ATTR.state);
    const now = this.#now();
    if (!state) {
      if (eap.code !== EAP_CODE.response || eap.type !== EAP_TYPE.identity) {
        return this.#reject(packet, nas, "BAD_EAP", "a conversation starts with EAP-Response/Identity", undefined, this.#failure(eap.identifier));
      }
      if (eap.data.length > MAX_IDENTITY) return this.#reject(packet, nas, "BAD_EAP", "identity over 253 bytes", undefined, this.#failure(eap.identifier));
      if (!this.#nasBuckets.take(nas.name, now)) return this.#reject(packet, nas, "RATE_LIMITED", `NAS ${nas.name} rate limit`, undefined, this.#failure(eap.identifier));
      const identity = eap.data.toString("utf8");
      const station = attribute(packet, ATTR.callingStationId)?.toString("latin1").slice(0, 64).toLowerCase() ?? "-";
      const framedMtu = uint32(attribute(packet, ATTR.framedMtu));
      const session = new EapSession(this.#context(`${nas.name}/${station}`, framedMtu), nas.name, identity, await this.auth.eapMethod(identity) as EapMethod);
      const stateValue = randomBytes(16);
      this.sessions.add(stateValue.toString("hex"), session, now);
      return this.#answer(packet, nas, session.start(eap.identifier), stateValue, session.method);
    }
    const stateKey = state.toString("hex");
    const session = this.sessions.get(stateKey, now);
    if (!session || session.nasName !== nas.name) {
      return this.#reject(packet, nas, "TIMEOUT", "unknown or expired EAP session", undefined, this.#failure(eap.identifier));
    }
    const step = await session.step(eap);
    if (step.kind === "accept" || step.kind === "reject") this.sessions.remove(stateKey);
    if (step.kind === "reject" && step.delayMs) await new Promise((resolve) => setTimeout(resolve, step.delayMs).unref());
    return this.#answer(packet, nas, step, state, session.method);
  }

  async #answer(request: RadiusPacket, nas: NasClient, step: EapStep, state: Buffer, method: EapMethod): Promise<Buffer | undefined> {
    switch (step.kind) {
      case "drop":
        this.stats.staleEap++;
        this.#log("debug", `radius: EAP response dropped: ${step.detail}`, { event: "radius.drop", nas: nas.name });
        return undefined;
      case "challenge":
        this.stats.challenges++;
        return signResponse(RADIUS_CODE.accessChallenge, request, nas.secret, [...splitEapMessage(step.eap), { type: ATTR.state, value: state }]);
      case "reject":
        if (step.resumed) this.#forgetSession(step.tlsSession);
        return this.#reject(request, nas, step.reason, step.detail, step.deviceId, step.eap, step.decided, method);
      case "accept": {
        // the walled garden of the profile whose SSID this is: Filter-Id, WISPr bandwidth, its Session-Timeout
        const profile = await this.#policyFor(placeOf(request, nas.name).ssid);
        this.stats.accepts++;
        if (step.resumed) this.stats.tlsResumed++;
        else {
          this.stats.tlsFull++;
          this.#rememberSession(step.tlsSession, step);
        }
        this.#decided("accept", step.method, "-");
        this.#log("info", "radius: accept", { event: "radius.accept", deviceId: step.deviceId, nas: nas.name, method: step.method, credential: step.decision.credential, resumed: step.resumed });
        this.#record(step.deviceId, { ...placeOf(request, nas.name), at: this.#now(), outcome: "accept", method: step.method, resumed: step.resumed, ...(step.decision.lot ? { lot: step.decision.lot } : {}) });
        try {
          await this.#options.registry.touch(step.deviceId); // last seen (a temporary device without a row: nothing)
        } catch (error) {
          this.#log("error", `radius: recording last seen failed: ${(error as Error).message}`);
        }
        const attrs: RadiusAttribute[] = [
          { type: ATTR.userName, value: Buffer.from(step.deviceId) },
          ...splitEapMessage(step.eap),
          ...mppeKeyAttributes(step.msk, nas.secret, request.authenticator),
        ];
        // RFC 5247 section 1.4 / RFC 4072 section 4.1.4: the EAP Session-Id as EAP-Key-Name, for a NAS that asked (sent the attribute)
        if (step.sessionId && attribute(request, ATTR.eapKeyName) !== undefined) attrs.push({ type: ATTR.eapKeyName, value: step.sessionId });
        if (step.leaf) {
          if (this.#leaves.size >= 100_000) this.#leaves.delete(this.#leaves.keys().next().value as string);
          this.#leaves.delete(step.deviceId);
          this.#leaves.set(step.deviceId, step.leaf);
        }
        const interim = this.#options.acctInterimIntervalS ?? 600;
        if (interim > 0) {
          const value = Buffer.alloc(4);
          value.writeUInt32BE(interim);
          attrs.push({ type: ATTR.acctInterimInterval, value });
        }
        if (profile) attrs.push(...policyAttributes(profile.name, profile.policy));
        const timeout = this.#options.sessionTimeoutS ?? 3600;
        if (timeout > 0 && profile?.policy.sessionTimeoutS === undefined) {
          const value = Buffer.alloc(4);
          value.writeUInt32BE(timeout);
          attrs.push({ type: ATTR.sessionTimeout, value });
        }
        step.msk.fill(0);
        return signResponse(RADIUS_CODE.accessAccept, request, nas.secret, attrs);
      }
    }
  }
}
