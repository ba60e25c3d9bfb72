/*
 * The MQTT endpoint: aedes behind node:tls, with per-device authentication,
 * topic ACLs, packet size bounds and the issuance service on the request topic.
 *
 * TLS: 1.2 minimum (1.3 allowed), ECDHE suites only, chosen by server
 * preference (Moddable offers plain-RSA suites first). Client certificates are
 * requested but verified by login.ts against the registered product CAs, not
 * by OpenSSL, so password devices connect without one.
 * ACL: a device publishes only to its own req, status and app/<suffix> topics
 * and subscribes only to its own res and app/... topics. An unauthorized
 * PUBLISH closes the connection ([MQTT-3.3.5-2] allows that or a silent ack);
 * an unauthorized SUBSCRIBE is refused with 0x80 in SUBACK ([MQTT-3.9.3]).
 * Abuse limits (cloud/limits.ts): at TCP accept, caps on unauthenticated
 * connections per source address and in total and on new connections per
 * source (a refused socket is closed before any TLS work). At CONNECT the
 * credential decision is cloud/auth's (the same as RADIUS's): proofs first,
 * then login rates, lockouts per (id, source address), the throttled audit.
 */
import type { CloudLog, LogFields, LogLevel } from "./log";
import { createServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { constants as cryptoConstants, randomBytes } from "node:crypto";
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from "aedes";
import type { DigestPort } from "../modules/ports";
import { APP_SUFFIX_PATTERN, MAX_APP_PAYLOAD_BYTES, MAX_CONFIG_BYTES, deviceTopics, encodeNotice, encodeResponse, parseTopic, type CloudResponse } from "../modules/protocol";
import type { IssuanceService } from "./issuance";
import { Authenticator, type Refusal, type Session } from "./auth/authenticator";
import { CONNACK_OF } from "./auth/failures";
import { ConnectionLimiter, monotonicNow, type ConnectionLimits, type ConnectionTicket, type QueuedConnection, type LoginLimits, type RefusalAuditLimits } from "./limits";
import { GuardedConnection } from "./packet-guard";
import {
  DEFAULT_SESSION_LIFETIME_S, DEFAULT_TICKET_KEY_ROTATION_S, MemorySessionStore, TICKET_KEY_BYTES, isTicketKeyStore, sessionIdentity, ticketKeyPeriod,
  type TicketKeyStore, type TlsSessionStore,
} from "./tls-sessions";
import type { ClaimSource, Registry } from "./registry";
import type { CloudMetrics } from "./metrics";
import type { SharedEmitter } from "./redis";

/** TLS 1.2 suites, in the server's order of preference: ECDHE only (forward secrecy). */
export const TLS12_CIPHERS = [
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
].join(":");

/**
 * Largest MQTT packet (remaining length) the broker accepts: the largest payload
 * on any wcm topic (an app payload, or a `config` response, which only the cloud
 * sends) plus topic and header room.
 */
/** CONNACK, remaining length 2, no session present, return code 3 (server unavailable) [MQTT-3.2.2.3] */
const BUSY_CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x03]);

export const DEFAULT_MAX_PACKET_BYTES = Math.max(MAX_APP_PAYLOAD_BYTES, MAX_CONFIG_BYTES) + 512;

/** Options of MqttServer.start. */
export interface MqttServerOptions {
  registry: Registry;
  digest: DigestPort;
  issuance: IssuanceService;
  host: string;
  /** 0 = ephemeral */
  port: number;
  certPem: string;
  keyPem: string;
  /** ms a connection may take to finish TLS and send CONNECT (default 10000) */
  connectTimeoutMs?: number;
  maxPacketBytes?: number;
  /** most simultaneous TCP connections (default 10000) */
  maxConnections?: number;
  /** abuse limits (defaults: cloud/limits.ts) */
  limits?: AbuseLimits;
  /** the credential decision shared with the other front ends (default: one made from registry, digest and limits) */
  auth?: Authenticator;
  /** monotonic ms clock of the connection limits (default monotonicNow; tests may pin it) */
  now?: () => number;
  /** structured log lines (cloud/log.ts); none when undefined */
  log?: CloudLog;
  /** TLS session resumption (defaults: in-memory LRU of 10000 sessions, 1 h lifetime) */
  tlsSessions?: TlsSessionOptions;
  /** where logins, shed connections and issuance outcomes are counted (cloud/metrics.ts) */
  metrics?: CloudMetrics;
  /** the message emitter shared with other nodes (cloud/redis.ts); default aedes's in-process one. Closed with the broker. */
  mq?: SharedEmitter;
}

/** How the endpoint resumes TLS sessions (cloud/tls-sessions.ts). */
export interface TlsSessionOptions {
  /** where TLS 1.2 session-id sessions live (default: a MemorySessionStore) */
  store?: TlsSessionStore;
  /** lifetime of a session id or ticket from its full handshake, seconds (default 3600) */
  lifetimeS?: number;
  /** 48 bytes of fixed TLS ticket keys, never rotated (default: from ticketKeyStore, rotated) */
  ticketKeys?: Uint8Array;
  /** where the ticket keys of each rotation period come from (default: `store` when it keeps ticket keys, else a MemorySessionStore) */
  ticketKeyStore?: TicketKeyStore;
  /** rotation period of the ticket keys, seconds (default 86400); a ticket dies at the end of its period */
  ticketKeyRotationS?: number;
  /** wall clock of the rotation periods, ms since the epoch (default Date.now; tests may pin it) */
  wallClock?: () => number;
  /** false: no resumption at all (every connect is a full handshake) */
  enabled?: boolean;
}

/** Settings of the abuse limits, each partial over its defaults (cloud/limits.ts). */
export interface AbuseLimits {
  login?: Partial<LoginLimits>;
  connections?: Partial<ConnectionLimits>;
  refusalAudit?: Partial<RefusalAuditLimits>;
}

/** Counters for operators and tests. */
export interface MqttStats {
  tlsErrors: number;
  oversized: number;
  refusedPublish: number;
  refusedSubscribe: number;
  loginsAccepted: number;
  loginsRefused: number;
  /** connections closed at accept by the per-source or total rate */
  connectionsRefused: number;
  /** over-capacity connections answered CONNACK 3 (server unavailable) after TLS, instead of a reset */
  busyAnswered: number;
  /** busy connections closed unanswered: TLS did not end (or no CONNECT came) within helloTimeoutMs */
  busyExpired: number;
  /** admitted connections closed because no ClientHello began within helloTimeoutMs, or no login ended within connectTimeoutMs */
  helloExpired: number;
  loginExpired: number;
  /** logins refused with RATE_LIMITED */
  rateLimited: number;
  /** TLS handshakes completed in full, and resumed (session id or ticket) */
  tlsFull: number;
  tlsResumed: number;
  /** TLS 1.2 sessions of accepted logins written to the session store */
  tlsSessionsStored: number;
}

/** Where a connection came from and how its TLS was set up (audited with a first claim). */
function claimSource(socket: TLSSocket): ClaimSource {
  return {
    address: socket.remoteAddress ?? "?",
    tls: socket.getProtocol?.() ?? "?",
    cipher: socket.getCipher?.()?.name ?? "?",
    clientCertificate: socket.getPeerX509Certificate?.() !== undefined,
  };
}

/** "temporary", "secret" or "certificate" (metrics labels and log fields). */
function credentialName(credential: Session["credential"]): string {
  return credential === "t" ? "temporary" : credential === "s" ? "secret" : "certificate";
}

function authError(refusal: Refusal): AuthenticateError {
  const error = new Error(`${refusal.failure}: ${refusal.detail}`) as AuthenticateError;
  error.returnCode = CONNACK_OF[refusal.failure];
  return error;
}

function subscriptionAllowed(topic: string, session: Session): boolean {
  const topics = deviceTopics(session.deviceId);
  if (topic === topics.response) return true;
  if (!topic.startsWith(`${topics.app}/`)) return false;
  const levels = topic.slice(topics.app.length + 1).split("/");
  if (levels.length > 16) return false;
  return levels.every((level, i) =>
    level === "+" || (level === "#" && i === levels.length - 1) || (level.length <= 64 && APP_SUFFIX_PATTERN.test(level)));
}

/** The running MQTT endpoint. */
export class MqttServer {
  readonly stats: MqttStats = {
    tlsErrors: 0, oversized: 0, refusedPublish: 0, refusedSubscribe: 0, loginsAccepted: 0, loginsRefused: 0,
    connectionsRefused: 0, busyAnswered: 0, busyExpired: 0, helloExpired: 0, loginExpired: 0, rateLimited: 0, tlsFull: 0, tlsResumed: 0, tlsSessionsStored: 0,
  };
  /** the credential decision (lockouts, login rates, refusal audit) */
  readonly auth: Authenticator;
  /** where TLS 1.2 sessions are kept (undefined: resumption disabled) */
  readonly sessionStore: TlsSessionStore | undefined;
  readonly #sessionLifetimeS: number;
  readonly #ticketKeyStore: TicketKeyStore | undefined;
  #ticketPeriod = -1;
  #ticketTimer: NodeJS.Timeout | undefined;
  /** ticket key rotations since start (the first keys included) */
  ticketKeyLoads = 0;
  readonly connections: ConnectionLimiter;
  readonly #now: () => number;
  /** "address:port" of connections being answered busy */
  readonly #busy = new Set<string>();
  /** admission tickets of unauthenticated connections by "address:port" */
  readonly #unauthenticated = new Map<string, ConnectionTicket>();
  #aggregateTimer: NodeJS.Timeout | undefined;
  readonly #sessions = new WeakMap<Client, Session>();
  readonly #live = new Map<string, Client>();
  /** clients whose login is being decided, by client id (a revocation meanwhile marks them in #cut) */
  readonly #deciding = new Map<string, Set<Client>>();
  /** clients whose login decision must not open a session: their device was disconnected while it was made */
  readonly #cut = new WeakSet<Client>();
  readonly #sockets = new Set<Socket>();
  /** connection ids by "address:port", from accept to close (log lines only) */
  readonly #connIds = new Map<string, string>();
  #connections = 0;
  /** requests being answered (an asynchronous registry answers later); drain() waits for them */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** the last request being answered per session (its next one waits for it) */
  readonly #handling = new WeakMap<Session, Promise<void>>();
  #draining = false;
  readonly #metrics: {
    login: { observe(labels: Record<string, string>, seconds: number): void };
    logins: { inc(labels: Record<string, string>): void };
    shed: { inc(labels: Record<string, string>): void };
    issuance: { inc(labels: Record<string, string>): void };
  } | undefined;
  #broker!: Aedes;
  /** the TLS server: never listens itself, gets the connections the accept queue starts */
  #tls!: TlsServer;
  /** the TCP listener (pauseOnConnect: a socket is not read before it is admitted) */
  #server!: NetServer;
  #drainPending = false;
  #drainTimer: NodeJS.Timeout | undefined;
  #port = 0;

  private constructor(private readonly options: MqttServerOptions) {
    this.auth = options.auth ?? new Authenticator({
      registry: options.registry, digest: options.digest, limits: options.limits?.login,
      refusalAudit: options.limits?.refusalAudit, now: options.now, log: options.log,
    });
    this.connections = new ConnectionLimiter(options.limits?.connections);
    this.#now = options.now ?? monotonicNow;
    const tls = options.tlsSessions ?? {};
    this.sessionStore = tls.enabled === false ? undefined : tls.store ?? new MemorySessionStore();
    this.#sessionLifetimeS = tls.lifetimeS ?? DEFAULT_SESSION_LIFETIME_S;
    const m = options.metrics;
    this.#metrics = m && {
      login: m.histogram("wcm_login_seconds", "MQTT login: seconds from CONNECT to the decision (refusal delays included)", ["outcome"]),
      logins: m.counter("wcm_mqtt_connects_total", "MQTT logins decided, by outcome (accepted, refused) and refusal reason", ["outcome", "reason"]),
      shed: m.counter("wcm_mqtt_shed_total", "connections shed before login: refused at accept by rate (SOURCE_RATE, TOTAL_RATE), evicted for a newcomer, answered busy", ["how"]),
      issuance: m.counter("wcm_issuance_total", "issue and commit requests answered, by op, session kind (first issuance: temporary; rotation: secret) and outcome (ok or the reason)", ["op", "kind", "outcome"]),
    };
    this.#ticketKeyStore = !this.sessionStore || tls.ticketKeys ? undefined
      : tls.ticketKeyStore ?? (isTicketKeyStore(this.sessionStore) ? this.sessionStore : new MemorySessionStore(1));
  }

  /** The ticket keys of the current rotation period from the ticket key store (undefined: fixed keys or none). */
  async #currentTicketKeys(): Promise<Buffer | undefined> {
    const store = this.#ticketKeyStore;
    if (!store) return undefined;
    const tls = this.options.tlsSessions ?? {};
    const period = ticketKeyPeriod((tls.wallClock ?? Date.now)(), tls.ticketKeyRotationS ?? DEFAULT_TICKET_KEY_ROTATION_S);
    if (period === this.#ticketPeriod) return undefined;
    const keys = await store.ticketKeys(period, () => new Uint8Array(randomBytes(TICKET_KEY_BYTES)));
    if (keys.length !== TICKET_KEY_BYTES) throw new Error(`the ticket key store gave ${keys.length} bytes, not ${TICKET_KEY_BYTES}`);
    this.#ticketPeriod = period;
    this.ticketKeyLoads++;
    return Buffer.from(keys);
  }

  /** Rotates the ticket keys when a new period has begun (checked every minute, and by tests). */
  async rotateTicketKeys(): Promise<boolean> {
    const keys = await this.#currentTicketKeys();
    if (!keys) return false;
    this.#tls.setTicketKeys(keys);
    keys.fill(0);
    return true;
  }

  /** Starts the broker and the TLS listener. */
  static async start(options: MqttServerOptions): Promise<MqttServer> {
    const server = new MqttServer(options);
    await server.#start();
    return server;
  }

  /** True while the endpoint accepts connections (not once drain() or close() began). */
  get listening(): boolean {
    return this.#server?.listening === true && !this.#draining;
  }

  /**
   * Graceful stop: stops accepting, lets requests being answered finish, ends
   * every connection after its pending writes (TLS close_notify), then close().
   * Waits at most `boundMs` in all before destroying what is left.
   * @returns what was waited for and how many connections had to be destroyed
   */
  async drain(boundMs: number): Promise<{ inFlight: number; connections: number; destroyed: number }> {
    const deadline = Date.now() + boundMs;
    this.#draining = true;
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    const inFlight = this.#inFlight.size;
    const until = (promise: Promise<unknown>) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      void promise.finally(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await until(Promise.allSettled([...this.#inFlight]));
    const connections = this.#sockets.size;
    const ended = [...this.#sockets].map((socket) => new Promise<void>((resolve) => {
      if (socket.destroyed) return resolve();
      socket.once("close", () => resolve());
      socket.end();
    }));
    await until(Promise.all(ended));
    const destroyed = [...this.#sockets].filter((socket) => !socket.destroyed).length;
    await this.close();
    await stopped;
    return { inFlight, connections, destroyed };
  }

  /**
   * Serves another certificate chain and key to new handshakes (a renewed or
   * reloaded server certificate); open connections keep theirs, and the TLS
   * ticket keys are kept so that resumption survives.
   */
  setCertificate(certPem: string, keyPem: string): void {
    const ticketKeys = this.#tls.getTicketKeys();
    this.#tls.setSecureContext({
      cert: certPem, key: keyPem, minVersion: "TLSv1.2", ciphers: TLS12_CIPHERS, honorCipherOrder: true,
      sessionIdContext: "wcm-mqtt-v1", sessionTimeout: this.#sessionLifetimeS,
      ...(this.sessionStore ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
    });
    this.#tls.setTicketKeys(ticketKeys);
    ticketKeys.fill(0);
  }

  /** The TCP port the endpoint listens on. */
  get port(): number {
    return this.#port;
  }

  /** Connections accepted that have not (yet) logged in. */
  get unauthenticatedConnections(): number {
    return this.connections.unauthenticated;
  }

  /** Number of authenticated live sessions. */
  get liveSessions(): number {
    return this.#live.size;
  }

  #log(level: LogLevel, message: string, fields?: LogFields): void {
    this.options.log?.(level, message, fields);
  }

  /** The connection id of a socket ("c<n>", numbered at accept), for log lines. */
  #connId(socket: Socket | undefined): string | undefined {
    return socket ? this.#connIds.get(`${socket.remoteAddress}:${socket.remotePort}`) : undefined;
  }

  #loginStarted(client: Client): void {
    const set = this.#deciding.get(client.id);
    if (set) set.add(client);
    else this.#deciding.set(client.id, new Set([client]));
  }

  /** The login decision of `client` ended; returns whether a disconnect of its device came meanwhile. */
  #loginEnded(client: Client): boolean {
    const set = this.#deciding.get(client.id);
    if (set?.delete(client) && set.size === 0) this.#deciding.delete(client.id);
    return this.#cut.has(client);
  }

  #authenticated(socket: TLSSocket): void {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const ticket = this.#unauthenticated.get(key);
    if (ticket === undefined) return;
    this.#unauthenticated.delete(key);
    this.connections.release(ticket);
  }

  /** An unauthenticated connection made progress (TLS ended, CONNECT arrived): it ages from now (ConnectionLimiter.progressed). */
  #progressed(socket: TLSSocket): void {
    const ticket = this.#unauthenticated.get(`${socket.remoteAddress}:${socket.remotePort}`);
    if (ticket) this.connections.progressed(ticket, this.#now());
  }

  /**
   * Connection admission at TCP accept (cloud/limits.ts ConnectionLimiter), before any TLS state exists:
   * refused by rate, held in the accept queue (the socket stays unread until it may start), or admitted,
   * possibly evicting the oldest unauthenticated connection of the source holding the most. Deadlines: the
   * ClientHello must start within helloTimeoutMs of the start, the login complete within connectTimeoutMs.
   */
  #admit(socket: Socket): void {
    const source = socket.remoteAddress ?? "?";
    const key = `${source}:${socket.remotePort}`;
    const conn = `c${++this.#connections}`;
    this.#connIds.set(key, conn);
    const close = () => {
      this.#metrics?.shed.inc({ how: "evicted" });
      this.#log("debug", "connection evicted for a newcomer", { event: "mqtt.shed", conn, source, how: "evicted" });
      this.#unauthenticated.delete(key);
      socket.destroy();
    };
    this.#sockets.add(socket);
    // a connection waiting at accept is not read; one that closes meanwhile leaves the queue
    let waiting: QueuedConnection | undefined;
    socket.once("close", () => {
      this.#sockets.delete(socket);
      if (this.#connIds.get(key) === conn) this.#connIds.delete(key);
      waiting?.cancel();
    });
    socket.on("error", () => socket.destroy());
    const admitted = this.connections.admit(source, this.#now(), close, (ticket) => {
      waiting = undefined;
      this.#begin(socket, key, ticket);
    });
    if (typeof admitted !== "string") this.#log("debug", "connection accepted", { event: "mqtt.connection", conn, source, queued: "queued" in admitted });
    if (typeof admitted === "string") {
      this.#metrics?.shed.inc({ how: admitted });
      this.#log("debug", "connection refused at accept", { event: "mqtt.shed", conn, source, how: admitted });
      this.stats.connectionsRefused++;
      socket.destroy();
      return;
    }
    if ("queued" in admitted) {
      waiting = admitted;
      this.#scheduleDrain();
      return;
    }
    this.#begin(socket, key, admitted);
  }

  /** Starts TLS on an admitted connection (or one to be answered busy). */
  #begin(socket: Socket, key: string, admitted: ConnectionTicket): void {
    if (socket.destroyed) {
      this.connections.release(admitted);
      this.#scheduleDrain();
      return;
    }
    if (admitted.busy) {
      this.#answerBusy(socket, key, admitted);
      this.#tls.emit("connection", socket);
      return;
    }
    this.#unauthenticated.set(key, admitted);
    const hello = setTimeout(() => {
      if (socket.bytesRead !== 0) return;
      this.stats.helloExpired++;
      socket.destroy();
    }, this.connections.limits.helloTimeoutMs);
    const deadline = setTimeout(() => {
      if (this.#unauthenticated.get(key) !== admitted) return;
      this.stats.loginExpired++;
      socket.destroy();
    }, this.options.connectTimeoutMs ?? 10_000);
    hello.unref();
    deadline.unref();
    socket.on("close", () => {
      clearTimeout(hello);
      clearTimeout(deadline);
      if (this.#unauthenticated.get(key) === admitted) this.#unauthenticated.delete(key);
      this.connections.release(admitted);
      this.#scheduleDrain();
    });
    this.#tls.emit("connection", socket);
  }

  /**
   * Runs the accept queue soon (coalesced): after a release, and every 20 ms while connections wait
   * (the rate buckets refill, the deadline passes).
   */
  #scheduleDrain(): void {
    if (this.#drainPending || this.connections.queued === 0) return;
    this.#drainPending = true;
    setImmediate(() => {
      this.#drainPending = false;
      this.connections.drain(this.#now());
      if (this.connections.queued > 0 && !this.#drainTimer) {
        this.#drainTimer = setInterval(() => {
          this.connections.drain(this.#now());
          if (this.connections.queued === 0) {
            clearInterval(this.#drainTimer);
            this.#drainTimer = undefined;
          }
        }, 20);
        this.#drainTimer.unref();
      }
    });
  }

  /**
   * A connection over capacity (ConnectionLimiter busy ticket): TLS completes, its first bytes (the
   * CONNECT) are answered CONNACK 3 without being parsed or authenticated, then it is closed; the whole
   * exchange must end within helloTimeoutMs. Nothing is stored; the device waits a short jittered window
   * (docs/protocol.md section 10).
   */
  #answerBusy(socket: Socket, key: string, ticket: ConnectionTicket): void {
    this.#busy.add(key);
    this.#sockets.add(socket);
    const deadline = setTimeout(() => {
      this.stats.busyExpired++;
      socket.destroy();
    }, this.connections.limits.helloTimeoutMs);
    deadline.unref();
    socket.on("close", () => {
      clearTimeout(deadline);
      this.#busy.delete(key);
      this.#sockets.delete(socket);
      this.connections.release(ticket);
    });
  }

  /** Stores the TLS 1.2 session of a full handshake whose CONNECT was accepted, for resumption by session id. */
  #rememberSession(socket: TLSSocket): void {
    const store = this.sessionStore;
    if (!store || socket.isSessionReused() || socket.getProtocol() !== "TLSv1.2") return;
    const der = socket.getSession();
    const identity = der && sessionIdentity(der);
    if (!der || !identity || identity.version !== 0x0303 || identity.id.length === 0) return;
    this.stats.tlsSessionsStored++;
    store.set(Uint8Array.from(identity.id), Uint8Array.from(der), this.#sessionLifetimeS * 1000)
      .catch((error: Error) => this.#log("warn", `cannot store a TLS session: ${error.message}`));
  }

  /** Forgets the resumed TLS 1.2 session of a refused login, so it is not offered again. */
  #forgetSession(socket: TLSSocket): void {
    const store = this.sessionStore;
    if (!store || !socket.isSessionReused() || socket.getProtocol() !== "TLSv1.2") return;
    const der = socket.getSession();
    const identity = der && sessionIdentity(der);
    if (identity && identity.id.length > 0) store.delete(Uint8Array.from(identity.id)).catch(() => undefined);
  }

  async #start(): Promise<void> {
    const { issuance } = this.options;
    const maxPacket = this.options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    this.#broker = await Aedes.createBroker({
      ...(this.options.mq ? { mq: this.options.mq } : {}),
      connectTimeout: this.options.connectTimeoutMs ?? 10_000,
      maxClientsIdLength: 64,
      heartbeatInterval: 60_000,
      authenticate: (client, username, password, done) => {
        const socket = (client.conn as GuardedConnection).socket;
        const started = performance.now();
        if (socket) this.#progressed(socket);
        this.#loginStarted(client);
        // the claim's TLS parameters (audited with a first temporary login only) are read when the rules ask
        this.auth.mqttLogin({
          clientId: client.id, username: username ?? undefined, password: password ?? undefined,
          peerCertificate: socket?.getPeerX509Certificate?.(), source: socket?.remoteAddress ?? "?",
          get claim() {
            return socket ? claimSource(socket) : undefined;
          },
        }).then((result) => {
          // a revocation that reached this node while the decision was being made: no session
          if (this.#loginEnded(client) && result.ok) {
            this.#log("info", "login accepted, but its device was disconnected while it was decided: closed", { event: "mqtt.disconnect", deviceId: result.session.deviceId });
            client.close();
            return;
          }
          const outcome = result.ok ? "accepted" : "refused";
          this.#metrics?.logins.inc({ outcome, reason: result.ok ? "" : result.failure });
          this.#metrics?.login.observe({ outcome }, (performance.now() - started + (result.ok ? 0 : result.delayMs)) / 1000);
          const conn = this.#connId(socket);
          if (result.ok) {
            this.#sessions.set(client, result.session);
            this.stats.loginsAccepted++;
            this.#log("info", "login accepted", {
              event: "mqtt.login", deviceId: result.session.deviceId, conn, credential: credentialName(result.session.credential),
              resumed: socket?.isSessionReused?.() ?? false,
            });
            if (socket) {
              this.#authenticated(socket);
              this.#rememberSession(socket);
            }
            // live from the decision on, before CONNACK is written: a revocation from now on finds it
            this.#live.set(client.id, client);
            client.conn.once("close", () => {
              if (this.#live.get(client.id) === client) this.#live.delete(client.id);
            });
            return done(null, true);
          }
          this.stats.loginsRefused++;
          if (socket) this.#forgetSession(socket);
          if (result.failure === "RATE_LIMITED") this.stats.rateLimited++;
          this.#log("info", "login refused", { event: "mqtt.refused", deviceId: client.id.slice(0, 64), conn, reason: result.failure, delayMs: result.delayMs });
          if (result.delayMs > 0) setTimeout(() => done(authError(result), null), result.delayMs).unref();
          else done(authError(result), null);
        }, (error: Error) => {
          this.#loginEnded(client);
          this.#log("error", `login failed internally: ${error.message}`, { event: "mqtt.refused", deviceId: client.id.slice(0, 64), conn: this.#connId(socket), reason: "INTERNAL" });
          done(authError({ ok: false, deviceId: undefined, failure: "INTERNAL", detail: "internal error", delayMs: 0 }), null);
        });
      },
      authorizePublish: (client, packet, callback) => {
        const session = client ? this.#sessions.get(client) : undefined;
        const topic = parseTopic(packet.topic);
        if (!session || !topic || topic.deviceId !== session.deviceId || topic.kind === "res") {
          this.stats.refusedPublish++;
          return callback(new Error("publish not authorized"));
        }
        if (topic.kind === "app" && packet.payload.length > MAX_APP_PAYLOAD_BYTES) {
          this.stats.refusedPublish++;
          return callback(new Error("application payload too large"));
        }
        packet.retain = false;
        callback(null);
      },
      authorizeSubscribe: (client, subscription: Subscription, callback) => {
        const session = this.#sessions.get(client);
        if (!session || !subscriptionAllowed(subscription.topic, session)) {
          this.stats.refusedSubscribe++;
          return callback(null, null);
        }
        if (subscription.qos > 1) subscription.qos = 1;
        callback(null, subscription);
      },
      published: (packet, client, callback) => {
        const session = client ? this.#sessions.get(client) : undefined;
        const topic = session ? parseTopic(packet.topic) : undefined;
        if (session && topic && topic.deviceId === session.deviceId) {
          const payload = Uint8Array.from(packet.payload as Buffer);
          // one session's requests are answered in the order they came (the registry is asynchronous);
          // each is tracked so that drain() lets it finish
          const previous = this.#handling.get(session) ?? Promise.resolve();
          const handled: Promise<void> = previous.then(async () => {
            if (topic.kind === "req") {
              const answer = await issuance.handleRequest(session, payload);
              this.#countIssuance(session, answer);
              await this.#publishAndWait(deviceTopics(session.deviceId).response, encodeResponse(answer));
            } else if (topic.kind === "status") {
              await issuance.handleStatus(session, payload);
            }
          }).catch((error: Error) => this.#log("error", `request failed: ${error.message}`, { event: "issuance.error", deviceId: session.deviceId })).finally(() => {
            this.#inFlight.delete(handled);
            if (this.#handling.get(session) === handled) this.#handling.delete(session);
          });
          this.#handling.set(session, handled);
          this.#inFlight.add(handled);
        }
        callback(null);
      },
    });
    // aedes announces every SUBSCRIBE and every disconnect on $SYS/<broker>/new/subscribes and
    // .../disconnect/clients (a JSON body and a trip through the emitter, to Redis with cluster.redis, per
    // connect). Nothing here or in aedes listens to them, and no device may subscribe to $SYS: they are
    // not sent. $SYS/<broker>/new/clients (the takeover of a session on another node), heartbeat and
    // birth go on as before.
    const broker = this.#broker;
    const publishOnBroker = broker.publish.bind(broker);
    const unheard = [`$SYS/${broker.id}/new/subscribes`, `$SYS/${broker.id}/disconnect/clients`];
    broker.publish = ((packet: PublishPacket, client?: Client | null | ((error?: Error) => void), done?: (error?: Error) => void) => {
      if (packet.topic === unheard[0] || packet.topic === unheard[1]) {
        const callback = typeof client === "function" ? client : done;
        callback?.();
        return;
      }
      return (publishOnBroker as (p: PublishPacket, c?: unknown, d?: unknown) => void)(packet, client, done);
    }) as typeof broker.publish;
    this.#broker.on("clientReady", (client) => {
      // (live since its login was accepted, in authenticate above) revoked between the login's read and CONNACK
      this.auth.sessionAllowed(client.id).then((allowed) => allowed || client.close(), () => client.close());
    });
    // A device that was offline when its rotation was started hears of it as soon
    // as it subscribes to its response topic.
    this.#broker.on("subscribe", (subscriptions, client) => {
      const session = client ? this.#sessions.get(client) : undefined;
      if (session && subscriptions.some((sub) => sub.topic === deviceTopics(session.deviceId).response)) {
        this.notifyRotation(session.deviceId);
      }
    });
    this.#broker.on("clientDisconnect", (client) => {
      if (this.#live.get(client.id) === client) this.#live.delete(client.id);
      this.#log("debug", "session ended", { event: "mqtt.disconnect", deviceId: client.id, conn: this.#connId((client.conn as GuardedConnection).socket) });
    });
    this.#broker.on("clientError", (client, error) => this.#log("debug", `client error: ${error.message}`, { event: "mqtt.error", deviceId: client.id, conn: this.#connId((client.conn as GuardedConnection).socket) }));
    this.#broker.on("connectionError", (_client, error) => this.#log("debug", `connection: ${error.message}`));

    const firstTicketKeys = await this.#currentTicketKeys();
    this.#tls = createServer({
      // small MQTT packets (CONNACK, responses) must not wait for the peer's delayed ACK
      noDelay: true,
      cert: this.options.certPem,
      key: this.options.keyPem,
      minVersion: "TLSv1.2",
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: this.options.connectTimeoutMs ?? 10_000,
      // resumption: a fixed session id context (sessions do not depend on argv and
      // may be shared between nodes), one lifetime for session ids and tickets
      sessionIdContext: "wcm-mqtt-v1",
      sessionTimeout: this.#sessionLifetimeS,
      ...(this.options.tlsSessions?.ticketKeys ? { ticketKeys: Buffer.from(this.options.tlsSessions.ticketKeys) } : firstTicketKeys ? { ticketKeys: firstTicketKeys } : {}),
      ...(this.sessionStore ? {} : { secureOptions: cryptoConstants.SSL_OP_NO_TICKET }),
    });
    firstTicketKeys?.fill(0);
    if (this.#ticketKeyStore) {
      this.#ticketTimer = setInterval(() => {
        this.rotateTicketKeys().catch((error: Error) => this.#log("warn", `cannot rotate the TLS ticket keys: ${error.message}`));
      }, 60_000);
      this.#ticketTimer.unref();
    }
    const store = this.sessionStore;
    if (store) {
      // TLS 1.2 session-id resumption: node pauses the handshake until the callback
      this.#tls.on("resumeSession", (id: Buffer, callback: (error: Error | null, session: Buffer | null) => void) => {
        if (id.length === 0 || id.length > 32) return callback(null, null);
        store.get(id).then(
          (session) => callback(null, session ? Buffer.from(session) : null),
          (error: Error) => {
            this.#log("warn", `cannot read the TLS session store: ${error.message}`);
            callback(null, null);
          },
        );
      });
    }
    this.#server = createNetServer({ pauseOnConnect: true, noDelay: true });
    this.#server.maxConnections = this.options.maxConnections ?? 10_000;
    this.#server.on("connection", (socket: Socket) => this.#admit(socket));
    const window = this.auth.refusals.limits.windowMs;
    this.#aggregateTimer = setInterval(() => void this.auth.flushRefusalAudit(), window);
    this.#aggregateTimer.unref();
    this.#tls.on("secureConnection", (socket: TLSSocket) => {
      if (this.#busy.has(`${socket.remoteAddress}:${socket.remotePort}`)) {
        this.#metrics?.shed.inc({ how: "busy" });
        this.#log("debug", "connection answered busy", { event: "mqtt.shed", source: socket.remoteAddress, how: "busy" });
        this.stats.busyAnswered++;
        socket.once("data", () => socket.end(BUSY_CONNACK));
        socket.on("error", () => socket.destroy());
        return;
      }
      if (socket.isSessionReused()) this.stats.tlsResumed++;
      else this.stats.tlsFull++;
      this.#progressed(socket);
      const connection = new GuardedConnection(socket, maxPacket);
      connection.on("close", () => {
        if (connection.oversized) this.stats.oversized++;
      });
      this.#broker.handle(connection);
    });
    this.#tls.on("tlsClientError", (error) => {
      this.stats.tlsErrors++;
      this.#log("debug", `TLS handshake refused: ${error.message}`, { event: "mqtt.tls_refused" });
    });
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.options.port, this.options.host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    const address = this.#server.address();
    this.#port = typeof address === "object" && address ? address.port : this.options.port;
  }

  /** Publishes a QoS 0 message from the cloud. */
  #countIssuance(session: Session, response: CloudResponse): undefined {
    if (response.op === "issue" || response.op === "commit") {
      const labels = { op: response.op, kind: credentialName(session.credential), outcome: response.ok ? "ok" : response.reason };
      this.#metrics?.issuance.inc(labels);
      // kind temporary = first issuance, secret = rotation
      this.#log(response.ok ? "info" : "warn", response.ok ? `${response.op} answered` : `${response.op} refused`, {
        event: session.credential === "s" ? "rotation" : "issuance", deviceId: session.deviceId, ...labels,
      });
    }
    return undefined;
  }

  /** publish(), resolving once the broker has handed the packet to the subscribers' connections. */
  #publishAndWait(topic: string, payload: Uint8Array): Promise<void> {
    const packet: PublishPacket = { cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false };
    return new Promise((resolve) => this.#broker.publish(packet, (error) => {
      if (error) this.#log("warn", `publish to ${topic} failed: ${error.message}`);
      resolve();
    }));
  }

  publish(topic: string, payload: Uint8Array): void {
    const packet: PublishPacket = { cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false };
    this.#broker.publish(packet, (error) => {
      if (error) this.#log("warn", `publish to ${topic} failed: ${error.message}`);
    });
  }

  /**
   * Tells the live session of `deviceId` that a rotated secret waits for it
   * (a notice on its response topic), when that session logged in with a secret
   * and the device has a pending rotation. Returns whether a notice was sent.
   */
  async notifyRotation(deviceId: string): Promise<boolean> {
    const client = this.#live.get(deviceId);
    const session = client ? this.#sessions.get(client) : undefined;
    if (!session || session.credential !== "s") return false;
    const row = await this.options.registry.deviceStanding(deviceId);
    if (!row || row.revoked || row.kind !== "secret" || row.pending_generation === null) return false;
    this.publish(deviceTopics(deviceId).response, encodeNotice({ v: 1, notice: "rotate" }));
    return true;
  }

  /** Tells every live session that the hotspot profile set changed (`config` notice). Returns how many were told. */
  notifyConfig(): number {
    let count = 0;
    for (const [deviceId, client] of this.#live) {
      if (!this.#sessions.get(client)) continue;
      this.publish(deviceTopics(deviceId).response, encodeNotice({ v: 1, notice: "config" }));
      count++;
    }
    return count;
  }

  /** Tells the live session of `deviceId` that a sealed network change waits (`network` notice). */
  notifyNetwork(deviceId: string): boolean {
    const client = this.#live.get(deviceId);
    if (!client || !this.#sessions.get(client)) return false;
    this.publish(deviceTopics(deviceId).response, encodeNotice({ v: 1, notice: "network" }));
    return true;
  }

  /** Closes the live session of `deviceId`, if any; returns whether there was one. */
  disconnect(deviceId: string): boolean {
    // logins of this id being decided now end closed, whatever the decision (it may have read the row before the change)
    for (const deciding of this.#deciding.get(deviceId) ?? []) this.#cut.add(deciding);
    const client = this.#live.get(deviceId);
    if (!client) return false;
    this.#live.delete(deviceId);
    client.close();
    return true;
  }

  /**
   * Closes every live certificate session whose client certificate the
   * credential decision (cloud/auth) now refuses, e.g. after a certificate
   * revocation or CRL import. Resolves to how many were closed.
   */
  async recheckCertificates(): Promise<number> {
    let count = 0;
    for (const [id, client] of [...this.#live]) {
      if (this.#sessions.get(client)?.credential !== "certificate") continue;
      const leaf = (client.conn as GuardedConnection).socket?.getPeerX509Certificate?.();
      if (!(await this.auth.certificateStillGood(id, leaf)) && this.#live.get(id) === client && this.disconnect(id)) count++;
    }
    return count;
  }

  /** Closes the live sessions of every device for which `predicate` holds. */
  async disconnectWhere(predicate: (deviceId: string) => boolean | Promise<boolean>): Promise<number> {
    let count = 0;
    for (const id of new Set([...this.#live.keys(), ...this.#deciding.keys()])) {
      if ((await predicate(id)) && this.disconnect(id)) count++;
    }
    return count;
  }

  /** Stops listening, closes every connection and the broker. */
  async close(): Promise<void> {
    clearInterval(this.#aggregateTimer);
    clearInterval(this.#ticketTimer);
    clearInterval(this.#drainTimer);
    await this.auth.flushRefusalAudit(true);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#broker.close(() => resolve()));
    await closed;
  }
}
