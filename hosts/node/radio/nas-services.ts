/*
 * The simulated access point's RADIUS services beyond authentication, written
 * from the RFCs independently of cloud/radius (so the tests check one
 * implementation against another):
 *
 * - accounting client (RFC 2866): Accounting-Request Start after an accepted
 *   802.1X authentication, Interim-Update every `interimMs`, Stop with
 *   Acct-Terminate-Cause when the session ends; Request Authenticator =
 *   MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret); the same
 *   bytes retransmitted until an Accounting-Response with a valid Response
 *   Authenticator arrives (or the retries run out);
 * - Dynamic Authorization server (RFC 5176): Disconnect-Request checked
 *   (Request Authenticator, Message-Authenticator when present, Event-Timestamp
 *   within 300 s, section 3.4), the session found by Acct-Session-Id or
 *   User-Name / Calling-Station-Id, ended (the station is deauthenticated), and
 *   answered Disconnect-ACK, or Disconnect-NAK with Error-Cause 503
 *   (Session-Context-Not-Found); CoA-Request gets CoA-NAK 405
 *   (Unsupported-Service). Faults: silent, NAK everything.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { attribute, decodeRadius, encodeRadius, firstAttribute, type RadiusAttribute } from "./radius-codec";

/** RADIUS codes and attributes this module uses. */
const CODE = { accountingRequest: 4, accountingResponse: 5, disconnectRequest: 40, disconnectAck: 41, disconnectNak: 42, coaRequest: 43, coaNak: 45 } as const;
const A = {
  userName: 1, nasIpAddress: 4, framedIpAddress: 8, calledStationId: 30, callingStationId: 31, nasIdentifier: 32,
  acctStatusType: 40, acctDelayTime: 41, acctInputOctets: 42, acctOutputOctets: 43, acctSessionId: 44, acctSessionTime: 46,
  acctTerminateCause: 49, eventTimestamp: 55, nasPortType: 61, messageAuthenticator: 80, errorCause: 101,
} as const;
/** Acct-Terminate-Cause values (RFC 2866 section 5.10) the AP sends. */
export const CAUSE = { userRequest: 1, lostCarrier: 2, idleTimeout: 4, sessionTimeout: 5, adminReset: 6, nasReboot: 11 } as const;

/** One live 802.1X session of a station. */
export interface NasSession {
  station: string;
  userName: string;
  acctSessionId: string;
  startedAt: number;
}

/** One line of the services' log (the AP appends it to its events). */
export type NasServiceEvent = { kind: "acct-sent" | "acct-answered" | "acct-timeout" | "das-request" | "das-answer" | "das-discarded"; detail: string; station?: string };

export interface NasServicesConfig {
  secret: string;
  nasIdentifier: string;
  /** "AA-BB-...:SSID" */
  calledStationId: string;
  /** the cloud's accounting address; none: no accounting */
  accounting?: { host: string; port: number; timeoutMs?: number; retries?: number; interimMs?: number };
  /** where the AP listens for Disconnect/CoA requests (0 = ephemeral); none: not listening */
  dynamicAuthorization?: { host?: string; port: number };
}

/** Faults of the Dynamic Authorization server. */
export interface DasFaults {
  /** answer nothing */
  silent: boolean;
  /** NAK every request (Error-Cause 501 Administratively-Prohibited) */
  nakAll: boolean;
}

const md5 = (...parts: Uint8Array[]) => {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

function dashed(mac: string): string {
  return mac.toUpperCase().replace(/:/g, "-");
}

/** The AP's accounting client and Dynamic Authorization server. */
export class NasServices {
  readonly sessions = new Map<string, NasSession>();
  readonly faults: DasFaults = { silent: false, nakAll: false };
  #acctSocket: Socket | undefined;
  #dasSocket: Socket | undefined;
  #identifier = randomBytes(1)[0];
  #waiting = new Map<number, { authenticator: Uint8Array; done: () => void }>();
  #interims = new Map<string, NodeJS.Timeout>();
  #secret: Uint8Array;

  /**
   * @param end - ends a station's association (the AP deauthenticates it); the services then send the Stop
   * @param log - event sink
   */
  constructor(readonly config: NasServicesConfig, private readonly end: (station: string, cause: number) => void, private readonly log: (event: NasServiceEvent) => void) {
    this.#secret = new TextEncoder().encode(config.secret);
  }

  /** Binds the Dynamic Authorization socket; returns its port (undefined: not configured). */
  async listen(): Promise<number | undefined> {
    const das = this.config.dynamicAuthorization;
    if (!das) return undefined;
    const socket = createSocket("udp4");
    socket.on("message", (message, rinfo) => this.#onDas(new Uint8Array(message), rinfo.address, rinfo.port));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(das.port, das.host ?? "127.0.0.1", () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", () => undefined);
    this.#dasSocket = socket;
    return socket.address().port;
  }

  /** The bound Dynamic Authorization port. */
  get dasPort(): number | undefined {
    return this.#dasSocket?.address().port;
  }

  /** A station was accepted: its accounting session starts. */
  start(station: string, userName: string, now: number): NasSession {
    const session: NasSession = { station, userName, acctSessionId: randomBytes(8).toString("hex").toUpperCase(), startedAt: now };
    this.sessions.set(station, session);
    void this.#account(session, 1, now);
    const interim = this.config.accounting?.interimMs;
    if (interim) {
      const timer = setInterval(() => void this.#account(session, 3, Date.now()), interim);
      timer.unref();
      this.#interims.set(station, timer);
    }
    return session;
  }

  /** A station's session ended with `cause`: the Stop goes out (resolves when answered or given up). */
  async stop(station: string, cause: number, now: number): Promise<void> {
    const session = this.sessions.get(station);
    if (!session) return;
    this.sessions.delete(station);
    const timer = this.#interims.get(station);
    if (timer) clearInterval(timer);
    this.#interims.delete(station);
    await this.#account(session, 2, now, cause);
  }

  /** Sends one Accounting-Request and waits for its response (retransmitting the same bytes). */
  async #account(session: NasSession, status: 1 | 2 | 3, now: number, cause?: number): Promise<boolean> {
    const acct = this.config.accounting;
    if (!acct) return false;
    this.#acctSocket ??= (() => {
      const socket = createSocket("udp4");
      socket.on("message", (message) => this.#onAcctResponse(new Uint8Array(message)));
      socket.on("error", () => undefined);
      socket.unref();
      return socket;
    })();
    const identifier = this.#identifier = (this.#identifier + 1) & 0xff;
    const attributes: RadiusAttribute[] = [
      attribute(A.acctStatusType, status),
      attribute(A.userName, session.userName),
      attribute(A.acctSessionId, session.acctSessionId),
      attribute(A.nasIdentifier, this.config.nasIdentifier),
      attribute(A.nasIpAddress, new Uint8Array([127, 0, 0, 1])),
      attribute(A.calledStationId, this.config.calledStationId),
      attribute(A.callingStationId, dashed(session.station)),
      attribute(A.nasPortType, 19),
      ...(status !== 1 ? [attribute(A.acctSessionTime, Math.floor((now - session.startedAt) / 1000))] : []),
      ...(status !== 1 ? [attribute(A.acctInputOctets, 1000), attribute(A.acctOutputOctets, 2000)] : []),
      ...(status === 2 ? [attribute(A.acctTerminateCause, cause ?? CAUSE.userRequest)] : []),
    ];
    const packet = encodeRadius({ code: CODE.accountingRequest, identifier, authenticator: new Uint8Array(16), attributes });
    const authenticator = md5(packet, this.#secret);
    packet.set(authenticator, 4);
    const kind = status === 1 ? "Start" : status === 2 ? "Stop" : "Interim-Update";
    const retries = acct.retries ?? 2;
    for (let attempt = 0; attempt <= retries; attempt++) {
      this.log({ kind: "acct-sent", detail: `Accounting-Request ${kind} id ${identifier}${attempt ? " (retransmit)" : ""}`, station: session.station });
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiting.delete(identifier);
          resolve(false);
        }, acct.timeoutMs ?? 1000);
        this.#waiting.set(identifier, { authenticator, done: () => {
          clearTimeout(timer);
          resolve(true);
        } });
        this.#acctSocket!.send(packet, acct.port, acct.host);
      });
      if (answered) {
        this.log({ kind: "acct-answered", detail: `Accounting-Response to ${kind} id ${identifier}`, station: session.station });
        return true;
      }
    }
    this.log({ kind: "acct-timeout", detail: `no Accounting-Response to ${kind} id ${identifier}`, station: session.station });
    return false;
  }

  #onAcctResponse(bytes: Uint8Array): void {
    try {
      const packet = decodeRadius(bytes);
      const waiting = this.#waiting.get(packet.identifier);
      if (!waiting || packet.code !== CODE.accountingResponse) return;
      const copy = Uint8Array.from(bytes.subarray(0, (bytes[2] << 8) | bytes[3]));
      copy.set(waiting.authenticator, 4);
      if (!timingSafeEqual(md5(copy, this.#secret), packet.authenticator)) return;
      this.#waiting.delete(packet.identifier);
      waiting.done();
    } catch {
      // malformed: ignored
    }
  }

  #verifyRequest(bytes: Uint8Array): boolean {
    const length = (bytes[2] << 8) | bytes[3];
    const zeroed = Uint8Array.from(bytes.subarray(0, length));
    zeroed.fill(0, 4, 20);
    if (!timingSafeEqual(md5(zeroed, this.#secret), bytes.subarray(4, 20))) return false;
    for (let at = 20; at + 2 <= length; at += Math.max(2, zeroed[at + 1])) {
      if (zeroed[at] !== A.messageAuthenticator) continue;
      const given = bytes.slice(at + 2, at + 18);
      zeroed.fill(0, at + 2, at + 18);
      return timingSafeEqual(new Uint8Array(createHmac("md5", this.#secret).update(zeroed).digest()), given);
    }
    return true;
  }

  #answer(code: number, request: { identifier: number; authenticator: Uint8Array }, attributes: RadiusAttribute[], to: { address: string; port: number }): void {
    const packet = encodeRadius({ code, identifier: request.identifier, authenticator: request.authenticator, attributes });
    packet.set(md5(packet, this.#secret), 4);
    this.log({ kind: "das-answer", detail: `${code === CODE.disconnectAck ? "Disconnect-ACK" : code === CODE.disconnectNak ? "Disconnect-NAK" : "CoA-NAK"} id ${request.identifier}` });
    this.#dasSocket?.send(packet, to.port, to.address);
  }

  #onDas(bytes: Uint8Array, address: string, port: number): void {
    let packet;
    try {
      packet = decodeRadius(bytes);
    } catch (error) {
      this.log({ kind: "das-discarded", detail: (error as Error).message });
      return;
    }
    if (packet.code !== CODE.disconnectRequest && packet.code !== CODE.coaRequest) return this.log({ kind: "das-discarded", detail: `code ${packet.code}` });
    if (!this.#verifyRequest(bytes)) return this.log({ kind: "das-discarded", detail: "bad authenticator" });
    const stamp = firstAttribute(packet, A.eventTimestamp);
    const seconds = stamp && stamp.length === 4 ? new DataView(stamp.buffer, stamp.byteOffset).getUint32(0) : undefined;
    if (seconds === undefined || Math.abs(Date.now() / 1000 - seconds) > 300) return this.log({ kind: "das-discarded", detail: "Event-Timestamp missing or outside 300 s" });
    this.log({ kind: "das-request", detail: `${packet.code === CODE.disconnectRequest ? "Disconnect" : "CoA"}-Request id ${packet.identifier}` });
    if (this.faults.silent) return;
    const to = { address, port };
    if (packet.code === CODE.coaRequest) return this.#answer(CODE.coaNak, packet, [attribute(A.errorCause, 405)], to);
    if (this.faults.nakAll) return this.#answer(CODE.disconnectNak, packet, [attribute(A.errorCause, 501)], to);
    const text = (type: number) => {
      const value = firstAttribute(packet, type);
      return value ? new TextDecoder().decode(value) : undefined;
    };
    const sessionId = text(A.acctSessionId);
    const userName = text(A.userName);
    const calling = text(A.callingStationId);
    const match = [...this.sessions.values()].find((s) => (sessionId === undefined || s.acctSessionId === sessionId)
      && (userName === undefined || s.userName === userName) && (calling === undefined || dashed(s.station) === calling));
    if (!match || (sessionId === undefined && userName === undefined && calling === undefined)) {
      return this.#answer(CODE.disconnectNak, packet, [attribute(A.errorCause, 503)], to);
    }
    this.end(match.station, CAUSE.adminReset);
    this.#answer(CODE.disconnectAck, packet, [], to);
  }

  /** Ends the timers and closes the sockets. */
  close(): void {
    for (const timer of this.#interims.values()) clearInterval(timer);
    this.#interims.clear();
    for (const socket of [this.#acctSocket, this.#dasSocket]) {
      try {
        socket?.close();
      } catch {
        // closed
      }
    }
    this.#acctSocket = undefined;
    this.#dasSocket = undefined;
  }
}
