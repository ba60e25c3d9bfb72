/*
 * A compact RADIUS client + EAP peer (EAP-TTLS/PAP and EAP-TLS) that plays
 * access point and device at once, for the RADIUS unit tests and the load
 * generator of bench/radius-bench.ts. Not product code: the device-side peer
 * lives in hosts/node/radio/.
 *
 * authenticate() runs one whole conversation over a transport (in-process
 * RadiusServer.handle, or UDP with udpTransport) and reports the outcome, the
 * number of Access-Request/response round trips, the MSK the peer derived and
 * the MS-MPPE keys the server sent.
 */
import { constants, randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { createSecureContext, type SecureContext } from "node:tls";
import { AVP_CODE, encodeAvps } from "../cloud/radius/avp";
import { EAP_CODE, EAP_TYPE, TLS_FLAG, decodeEap, decodeTlsFrame, encodeEap, encodeTlsFrame, type TlsFrame } from "../cloud/radius/eap";
import { FragmentReceiver, FragmentSender } from "../cloud/radius/fragments";
import { readMppeKeys } from "../cloud/radius/mppe";
import { ATTR, RADIUS_CODE, attribute, decodePacket, joinEapMessage, signRequest, splitEapMessage, verifyResponse, type RadiusAttribute } from "../cloud/radius/packet";
import { MSK_LABEL } from "../cloud/radius/session";
import { TlsTunnel } from "../cloud/radius/tls-tunnel";

/** Sends one Access-Request and resolves with the response datagram (undefined: no answer). */
export type Transport = (request: Buffer) => Promise<Buffer | undefined>;

/** Who authenticates, and how. */
export interface PeerOptions {
  nasSecret: string;
  method: "ttls" | "tls";
  /** EAP-TLS identity, or the TTLS inner User-Name (device id) */
  identity: string;
  /** TTLS outer identity (default "anonymous@wcm") */
  anonymousIdentity?: string;
  password?: string;
  certPem?: string;
  keyPem?: string;
  /** trust anchor and expected name of the RADIUS server certificate */
  caPem: string;
  serverName: string;
  /** the peer's own fragment size (default 1000) */
  fragmentSize?: number;
  nasIdentifier?: string;
  /** Calling-Station-Id (the station's MAC address), sent when given */
  callingStationId?: string;
  /** TLS versions the peer offers (default TLS 1.2 only) */
  tlsVersions?: { min: "TLSv1.2" | "TLSv1.3"; max: "TLSv1.2" | "TLSv1.3" };
  /** TTLS: these inner AVPs instead of PAP's (tests of other inner methods) */
  innerAvps?: Buffer;
  /** TTLS: send the inner login on a resumed session too (default false: skipped, as wpa_supplicant does) */
  innerOnResume?: boolean;
  /** offer TLS session tickets (default false, as wpa_supplicant: phase1 tls_disable_session_ticket=1) */
  tickets?: boolean;
  /** a TLS session of an earlier conversation to resume (PeerResult.session) */
  session?: Buffer;
  /** extra attributes of every Access-Request (Framed-MTU 1500 is sent unless one is given here) */
  attributes?: RadiusAttribute[];
}

/** Outcome of one conversation. */
export interface PeerResult {
  ok: boolean;
  /** the final RADIUS code (2 accept, 3 reject) or 0 when the server went silent or the peer gave up */
  code: number;
  /** Reply-Message of a reject, or the peer's own error */
  reason?: string;
  /** Access-Request / response exchanges */
  roundTrips: number;
  msk?: Buffer;
  mppe?: { recv?: Buffer; send?: Buffer };
  /** the TLS alert the server sent before its EAP-Failure (the peer's TLS error), if any */
  alert?: string;
  /** the peer's EAP Session-Id (Type || client.random || server.random) and the EAP-Key-Name of the Accept */
  sessionId?: Buffer;
  keyName?: Buffer;
  /** the TLS session to resume next time (ticket or id), and whether this one was resumed */
  session?: Buffer;
  resumed?: boolean;
}

const MAX_EXCHANGES = 120;

/** TLS client contexts by trust anchor and client certificate (parsing them per conversation costs more than the handshake). */
const contexts = new Map<string, SecureContext>();

function clientContext(options: PeerOptions): SecureContext {
  const versions = options.tlsVersions ?? { min: "TLSv1.2", max: "TLSv1.2" };
  const key = `${options.caPem}|${options.certPem ?? ""}|${options.keyPem ?? ""}|${versions.min}|${versions.max}|${options.tickets === true}`;
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext({ ca: options.caPem, cert: options.certPem, key: options.keyPem, minVersion: versions.min, maxVersion: versions.max,
      ...(options.tickets ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
    });
    if (contexts.size > 64) contexts.clear();
    contexts.set(key, context);
  }
  return context;
}

/** Runs one EAP authentication. */
export async function authenticate(transport: Transport, options: PeerOptions): Promise<PeerResult> {
  const secret = Buffer.from(options.nasSecret, "latin1");
  const methodType = options.method === "tls" ? EAP_TYPE.tls : EAP_TYPE.ttls;
  const sender = new FragmentSender(options.fragmentSize ?? 1000, 0);
  const receiver = new FragmentReceiver(256 * 1024);
  let tunnel: TlsTunnel | undefined;
  let sentAvps = false;
  let state: Buffer | undefined;
  let roundTrips = 0;
  let alert: string | undefined;
  let clientRandom: Buffer | undefined;
  let serverRandom: Buffer | undefined;
  let session: Buffer | undefined;
  let identifier = randomBytes(1)[0];
  const identity = options.method === "ttls" ? options.anonymousIdentity ?? "anonymous@wcm" : options.identity;
  let eapOut = encodeEap({ code: EAP_CODE.response, identifier: 0, type: EAP_TYPE.identity, data: Buffer.from(identity) });
  try {
    for (let i = 0; i < MAX_EXCHANGES; i++) {
      const attrs: RadiusAttribute[] = [
        { type: ATTR.userName, value: Buffer.from(identity) },
        { type: ATTR.nasIdentifier, value: Buffer.from(options.nasIdentifier ?? "bench-ap") },
        ...(options.attributes?.some((a) => a.type === ATTR.framedMtu) ? [] : [{ type: ATTR.framedMtu, value: Buffer.from([0, 0, 5, 220]) }]),
        ...(options.attributes ?? []),
        ...splitEapMessage(eapOut),
      ];
      if (state) attrs.push({ type: ATTR.state, value: state });
      if (options.callingStationId) attrs.push({ type: ATTR.callingStationId, value: Buffer.from(options.callingStationId) });
      const authenticator = randomBytes(16);
      identifier = (identifier + 1) & 0xff;
      const response = await transport(signRequest(identifier, authenticator, secret, attrs));
      roundTrips++;
      if (!response) return { ok: false, code: 0, reason: "no answer", roundTrips };
      const packet = decodePacket(response);
      if (!verifyResponse(packet, authenticator, secret)) return { ok: false, code: 0, reason: "bad response authenticator", roundTrips };
      if (packet.code === RADIUS_CODE.accessReject) {
        return { ok: false, code: packet.code, reason: attribute(packet, ATTR.replyMessage)?.toString() ?? "rejected", roundTrips, ...(alert ? { alert } : {}) };
      }
      if (packet.code === RADIUS_CODE.accessAccept) {
        if (!tunnel?.secure) return { ok: false, code: packet.code, reason: "accepted before the tunnel was up", roundTrips };
        const msk = tunnel.exportKey(MSK_LABEL[options.method], 64);
        const keyName = attribute(packet, ATTR.eapKeyName);
        const sessionId = clientRandom && serverRandom ? Buffer.concat([Buffer.from([methodType]), clientRandom, serverRandom]) : undefined;
        return {
          ok: true, code: packet.code, roundTrips, msk, mppe: readMppeKeys(packet.attributes, secret, authenticator),
          resumed: tunnel.socket.isSessionReused(), ...(session ?? tunnel.socket.getSession() ? { session: session ?? tunnel.socket.getSession() } : {}),
          ...(sessionId ? { sessionId } : {}), ...(keyName ? { keyName } : {}),
        };
      }
      if (packet.code !== RADIUS_CODE.accessChallenge) return { ok: false, code: 0, reason: `unexpected code ${packet.code}`, roundTrips };
      state = attribute(packet, ATTR.state);
      const request = decodeEap(joinEapMessage(packet) ?? Buffer.alloc(0));
      const reply = (frame: TlsFrame) => encodeEap({ code: EAP_CODE.response, identifier: request.identifier, type: methodType, data: encodeTlsFrame(frame) });
      if (request.type !== methodType) {
        eapOut = encodeEap({ code: EAP_CODE.response, identifier: request.identifier, type: EAP_TYPE.nak, data: Buffer.from([methodType]) });
        continue;
      }
      const frame = decodeTlsFrame(request.data);
      if (frame.flags & TLS_FLAG.start) {
        tunnel?.destroy();
        tunnel = new TlsTunnel({ secureContext: clientContext(options), servername: options.serverName, ...(options.session ? { session: options.session } : {}) });
        tunnel.socket.on("session", (value: Buffer) => {
          session = value;
        });
        await tunnel.settle();
        const hello = tunnel.drain();
        clientRandom = hello.length >= 43 && hello[0] === 22 && hello[5] === 1 ? Buffer.from(hello.subarray(11, 43)) : undefined;
        sender.load(hello);
        eapOut = reply(sender.next());
        continue;
      }
      if (!tunnel) return { ok: false, code: 0, reason: "TLS data before Start", roundTrips };
      if (sender.pending && frame.fragment.length === 0) {
        eapOut = reply(sender.next());
        continue;
      }
      const message = receiver.add(frame);
      if (message === undefined) {
        eapOut = reply({ flags: 0, version: 0, fragment: Buffer.alloc(0) });
        continue;
      }
      if (!serverRandom && message.length >= 43 && message[0] === 22 && message[5] === 2) serverRandom = Buffer.from(message.subarray(11, 43));
      await tunnel.feed(message);
      if (tunnel.error) {
        // as wpa_supplicant does: an empty response to the server's alert, then wait for its EAP-Failure (RFC 5216 section 2.1.3)
        if (alert || !/SSL alert number/.test(tunnel.error.message)) return { ok: false, code: 0, reason: `tls: ${tunnel.error.message}`, roundTrips, ...(alert ? { alert } : {}) };
        alert = tunnel.error.message;
        eapOut = reply({ flags: 0, version: 0, fragment: Buffer.alloc(0) });
        continue;
      }
      if (tunnel.secure && options.method === "ttls" && !sentAvps && (options.innerOnResume || !tunnel.socket.isSessionReused())) {
        sentAvps = true;
        await tunnel.write(options.innerAvps ?? encodeAvps([
          { code: AVP_CODE.userName, data: Buffer.from(options.identity) },
          { code: AVP_CODE.userPassword, data: padPassword(options.password ?? "") },
        ]));
      }
      const out = tunnel.drain();
      if (out.length === 0) eapOut = reply({ flags: 0, version: 0, fragment: Buffer.alloc(0) });
      else {
        sender.load(out);
        eapOut = reply(sender.next());
      }
    }
    return { ok: false, code: 0, reason: "too many exchanges", roundTrips };
  } finally {
    tunnel?.destroy();
  }
}

function padPassword(password: string): Buffer {
  const bytes = Buffer.from(password, "utf8");
  const out = Buffer.alloc(Math.max(16, Math.ceil(bytes.length / 16) * 16));
  bytes.copy(out);
  return out;
}

/** A UDP transport to host:port with per-identifier matching and retransmission. */
export class UdpTransport {
  readonly #socket: Socket;
  readonly #pending = new Map<number, (response: Buffer | undefined) => void>();

  constructor(readonly host: string, readonly port: number, readonly timeoutMs = 2000, readonly retries = 2) {
    this.#socket = createSocket("udp4");
    this.#socket.on("message", (message) => {
      if (message.length < 2) return;
      const resolve = this.#pending.get(message[1]);
      if (resolve) resolve(message);
    });
  }

  /** The transport function (one outstanding request per RADIUS identifier). */
  readonly send: Transport = (request) => new Promise((resolve) => {
    const id = request[1];
    let tries = 0;
    let timer: NodeJS.Timeout;
    const finish = (response: Buffer | undefined) => {
      clearTimeout(timer);
      this.#pending.delete(id);
      resolve(response);
    };
    const attempt = () => {
      if (tries++ > this.retries) return finish(undefined);
      this.#socket.send(request, this.port, this.host);
      timer = setTimeout(attempt, this.timeoutMs);
    };
    this.#pending.set(id, finish);
    attempt();
  });

  close(): void {
    this.#socket.close();
  }
}
