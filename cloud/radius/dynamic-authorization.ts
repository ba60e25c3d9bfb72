/*
 * Dynamic Authorization (RFC 5176), the cloud's side: Disconnect-Request to
 * the NAS that holds a device's live hotspot session (from accounting), with
 * retransmissions of the same bytes (RFC 5080 section 2.2.1) and a reported
 * outcome: ACK, NAK (with its Error-Cause), or no answer.
 *
 * The request names the session as RFC 5176 section 3 asks: User-Name,
 * Acct-Session-Id, Calling-Station-Id, and the NAS by NAS-IP-Address or
 * NAS-Identifier; Event-Timestamp (section 3.4, replay protection) and a
 * Message-Authenticator (computed, like the Request Authenticator, over the
 * packet with a zero authenticator) are always included. The Request
 * Authenticator is MD5(Code + Identifier + Length + 16 zero octets +
 * Attributes + Secret) (section 3.5); answers are checked (Response
 * Authenticator, Message-Authenticator when present) and dropped when bad.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { ATTR, MIN_PACKET, RADIUS_CODE, attribute, decodePacket, encodePacket, messageAuthenticatorOffset, type RadiusAttribute } from "./packet";

/** Error-Cause values (RFC 5176 section 3.6) by name. */
export const ERROR_CAUSE: Record<number, string> = {
  201: "Residual-Session-Context-Removed", 202: "Invalid-EAP-Packet", 401: "Unsupported-Attribute", 402: "Missing-Attribute",
  403: "NAS-Identification-Mismatch", 404: "Invalid-Request", 405: "Unsupported-Service", 406: "Unsupported-Extension",
  407: "Invalid-Attribute-Value", 501: "Administratively-Prohibited", 502: "Request-Not-Routable", 503: "Session-Context-Not-Found",
  504: "Session-Context-Not-Removable", 505: "Other-Proxy-Processing-Error", 506: "Resources-Unavailable", 507: "Request-Initiated",
  508: "Multiple-Session-Selection-Unsupported",
};

/** The default UDP port of Dynamic Authorization servers (NASes), RFC 5176 section 3. */
export const DYNAMIC_AUTHORIZATION_PORT = 3799;

/** Which session to end, and where. */
export interface DisconnectTarget {
  /** NAS client name (for logs and the outcome) */
  nas: string;
  secret: Buffer;
  address: string;
  port: number;
  userName: string;
  acctSessionId?: string;
  callingStationId?: string;
  nasIdentifier?: string;
  /** the NAS-IP-Address to name, when the NAS gave one */
  nasIpAddress?: string;
}

/** How a Disconnect-Request ended. */
export type DisconnectOutcome =
  | { kind: "ack"; nas: string; attempts: number }
  | { kind: "nak"; nas: string; attempts: number; errorCause?: number; error?: string }
  | { kind: "no-answer"; nas: string; attempts: number };

/** Timing of the client. */
export interface DisconnectClientOptions {
  /** wait per transmission, ms (default 1000) */
  timeoutMs?: number;
  /** retransmissions after the first (default 2) */
  retries?: number;
  /** clock for Event-Timestamp (ms; default Date.now) */
  now?: () => number;
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

/** Builds a signed Disconnect-Request or CoA-Request (code 40 or 43). */
export function signDynamicRequest(code: number, identifier: number, secret: Buffer, attributes: RadiusAttribute[]): Buffer {
  const withMa = [...attributes.filter((a) => a.type !== ATTR.messageAuthenticator), { type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }];
  const packet = encodePacket(code, identifier, Buffer.alloc(16), withMa);
  createHmac("md5", secret).update(packet).digest().copy(packet, packet.length - 16);
  createHash("md5").update(packet).update(secret).digest().copy(packet, 4);
  return packet;
}

/**
 * Checks a received Disconnect/CoA-Request (the NAS side: the simulated AP):
 * the Request Authenticator, and the Message-Authenticator when present.
 */
export function verifyDynamicRequest(raw: Buffer, secret: Buffer): boolean {
  return raw.length >= MIN_PACKET && authenticatorsValid(raw, Buffer.alloc(16), secret);
}

/** A Disconnect/CoA response answers the request whose authenticator is `requestAuthenticator`. */
function responseValid(raw: Buffer, requestAuthenticator: Buffer, secret: Buffer): boolean {
  return authenticatorsValid(raw, requestAuthenticator, secret);
}

/**
 * The packet's Authenticator is MD5 over it with `authenticatorField` in place of its own,
 * and its Message-Authenticator (when present: exactly one, 16 bytes) is the HMAC-MD5 over
 * the same bytes with that attribute's value zeroed.
 */
function authenticatorsValid(raw: Buffer, authenticatorField: Buffer, secret: Buffer): boolean {
  const copy = Buffer.from(raw);
  authenticatorField.copy(copy, 4);
  if (!timingSafeEqual(createHash("md5").update(copy).update(secret).digest(), raw.subarray(4, 20))) return false;
  const ma = decodePacket(raw).attributes.filter((a) => a.type === ATTR.messageAuthenticator);
  if (ma.length === 0) return true;
  if (ma.length !== 1 || ma[0].value.length !== 16) return false;
  const offset = messageAuthenticatorOffset(raw);
  copy.fill(0, offset + 2, offset + 18);
  return timingSafeEqual(createHmac("md5", secret).update(copy).digest(), ma[0].value);
}

/** The attributes that name one session (RFC 5176 section 3). */
export function sessionAttributes(target: DisconnectTarget, nowMs: number): RadiusAttribute[] {
  const attrs: RadiusAttribute[] = [{ type: ATTR.userName, value: Buffer.from(target.userName) }];
  if (target.acctSessionId) attrs.push({ type: ATTR.acctSessionId, value: Buffer.from(target.acctSessionId, "latin1") });
  if (target.callingStationId) attrs.push({ type: ATTR.callingStationId, value: Buffer.from(target.callingStationId) });
  if (target.nasIpAddress && isIP(target.nasIpAddress) === 4) attrs.push({ type: ATTR.nasIpAddress, value: Buffer.from(target.nasIpAddress.split(".").map(Number)) });
  else if (target.nasIdentifier) attrs.push({ type: ATTR.nasIdentifier, value: Buffer.from(target.nasIdentifier) });
  attrs.push({ type: ATTR.eventTimestamp, value: uint32(Math.floor(nowMs / 1000)) });
  return attrs;
}

/** Sends Disconnect-Requests from one UDP socket. */
export class DisconnectClient {
  readonly #socket4: Socket;
  readonly #socket6: Socket;
  /** by identifier: the answer is matched by it and checked with the request's authenticator */
  readonly #pending = new Map<number, (raw: Buffer) => void>();
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #now: () => number;
  #identifier = Math.floor(Math.random() * 256);
  #closed = false;

  constructor(options: DisconnectClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 1000;
    this.#retries = options.retries ?? 2;
    this.#now = options.now ?? Date.now;
    this.#socket4 = createSocket("udp4");
    this.#socket6 = createSocket("udp6");
    for (const socket of [this.#socket4, this.#socket6]) {
      socket.on("message", (raw) => this.#pending.get(raw.length >= 2 ? raw[1] : -1)?.(raw));
      socket.on("error", () => undefined); // ICMP port unreachable reads as silence: the retries run out
      socket.unref();
    }
  }

  /**
   * Asks the NAS to end the session; resolves with the outcome (never throws for the network).
   * @example await client.disconnect({ nas: "ap-1", secret, address: "10.0.0.2", port: 3799, userName: "lamp-1", acctSessionId: "5A3F" })
   */
  disconnect(target: DisconnectTarget): Promise<DisconnectOutcome> {
    return this.#send(RADIUS_CODE.disconnectRequest, target, sessionAttributes(target, this.#now()));
  }

  #send(code: number, target: DisconnectTarget, attrs: RadiusAttribute[]): Promise<DisconnectOutcome> {
    const identifier = this.#identifier = (this.#identifier + 1) & 0xff;
    const bytes = signDynamicRequest(code, identifier, target.secret, attrs);
    const requestAuthenticator = Buffer.from(bytes.subarray(4, 20));
    const socket = isIP(target.address) === 6 ? this.#socket6 : this.#socket4;
    const key = identifier;
    return new Promise((resolve) => {
      let attempts = 0;
      let timer: NodeJS.Timeout | undefined;
      const finish = (outcome: DisconnectOutcome) => {
        if (timer) clearTimeout(timer);
        this.#pending.delete(key);
        resolve(outcome);
      };
      this.#pending.set(key, (raw) => {
        let packet;
        try {
          packet = decodePacket(raw);
        } catch {
          return;
        }
        if (!responseValid(packet.raw, requestAuthenticator, target.secret)) return;
        if (packet.code === RADIUS_CODE.disconnectAck || packet.code === RADIUS_CODE.coaAck) return finish({ kind: "ack", nas: target.nas, attempts });
        if (packet.code === RADIUS_CODE.disconnectNak || packet.code === RADIUS_CODE.coaNak) {
          const cause = attribute(packet, ATTR.errorCause);
          const errorCause = cause && cause.length === 4 ? cause.readUInt32BE(0) : undefined;
          return finish({ kind: "nak", nas: target.nas, attempts, ...(errorCause !== undefined ? { errorCause, error: ERROR_CAUSE[errorCause] ?? `Error-Cause ${errorCause}` } : {}) });
        }
      });
      const transmit = () => {
        if (this.#closed || attempts > this.#retries) return finish({ kind: "no-answer", nas: target.nas, attempts });
        attempts++;
        socket.send(bytes, target.port, target.address, () => undefined);
        timer = setTimeout(transmit, this.#timeoutMs);
      };
      transmit();
    });
  }

  /** Stops waiting and closes the sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of [this.#socket4, this.#socket6]) {
      try {
        socket.close();
      } catch {
        // not bound yet
      }
    }
  }
}
