/*
 * The station's EAP peer (the supplicant of the simulated radio):
 * - EAP-Identity (outer identity), Notification, Nak to our method;
 * - EAP-TTLS with PAP inside (RFC 5281: User-Name + User-Password AVPs, the
 *   password null-padded to a multiple of 16 as §11.2.5 and wpa_supplicant do);
 * - EAP-TLS (RFC 5216) with a client certificate and key (RSA or EC);
 * both over node:tls as a TLS 1.2 client on an in-memory Duplex, with L/M/S
 * fragmentation both ways. The RADIUS server's certificate is validated
 * against server.ca and its name against server.serverName; a failure aborts
 * the conversation (EAP-SERVER-UNTRUSTED) before any inner credential is sent.
 * On success the MSK is TLS exportKeyingMaterial(64, "ttls keying material" /
 * "client EAP encryption"), which the access point checks against the MPPE keys.
 */
import * as tls from "node:tls";
import type { EapServerCheck, NetworkFailure } from "../../../modules/ports";
import { EAP_CODE, EAP_TYPE, TlsFragmenter, TlsPipe, decodeEap, encodeEap, exportMsk, settle, type EapPacket } from "./eap";

/** What the peer authenticates with (the enterprise variants of JoinRequest). */
export type EapPeerCredentials =
  | { method: "ttls-pap"; identity: string; anonymousIdentity?: string; password: string; server: EapServerCheck }
  | { method: "tls"; identity: string; certificate: string; privateKey: string; server: EapServerCheck };

export interface EapPeerOptions {
  /** most TLS bytes per EAP-Response (default 1020) */
  fragmentSize?: number;
}

/** What the peer does with one EAP packet from the authenticator. */
export type EapPeerStep =
  /** send this EAP-Response */
  | { kind: "send"; packet: Uint8Array }
  /** EAP-Success after a completed method: the MSK (64 bytes) */
  | { kind: "success"; msk: Uint8Array }
  /** EAP-Failure received */
  | { kind: "failure" }
  /** the peer gives up and sends nothing more (e.g. EAP-SERVER-UNTRUSTED) */
  | { kind: "abort"; failure: NetworkFailure }
  /** nothing to send (a malformed or unexpected packet, silently discarded per RFC 3748 §4) */
  | { kind: "ignore"; why: string };

/** Codes node:tls gives a server certificate that does not chain to the CA or does not carry the name. */
function isTrustError(error: Error & { code?: string }): boolean {
  const code = error.code ?? "";
  return !code.startsWith("ERR_SSL_") || code === "ERR_TLS_CERT_ALTNAME_INVALID";
}

const PAP_USER_NAME = 1;
const PAP_USER_PASSWORD = 2;
const AVP_FLAG_MANDATORY = 0x40;

/** One Diameter AVP (RFC 5281 §10.1) without vendor id, padded to 4 bytes. */
function avp(code: number, value: Uint8Array): Uint8Array {
  const length = 8 + value.length;
  const out = new Uint8Array((length + 3) & ~3);
  const view = new DataView(out.buffer);
  view.setUint32(0, code);
  view.setUint32(4, length);
  out[4] = AVP_FLAG_MANDATORY;
  out.set(value, 8);
  return out;
}

/** The inner PAP request: User-Name and User-Password (null-padded to 16n bytes). */
export function papAvps(identity: string, password: string): Uint8Array {
  const name = new TextEncoder().encode(identity);
  const secret = new TextEncoder().encode(password);
  const padded = new Uint8Array(Math.max(16, Math.ceil(secret.length / 16) * 16));
  padded.set(secret);
  return new Uint8Array(Buffer.concat([avp(PAP_USER_NAME, name), avp(PAP_USER_PASSWORD, padded)]));
}

/**
 * One EAP conversation of the station. Feed each EAP packet from the
 * authenticator to handle(); do what the returned step says. close() ends it.
 */
export class EapPeer {
  readonly #credentials: EapPeerCredentials;
  readonly #type: number;
  readonly #fragmentSize: number;
  #fragmenter: TlsFragmenter;
  #pipe: TlsPipe | undefined;
  #tls: tls.TLSSocket | undefined;
  #secure = false;
  #error: (Error & { code?: string }) | undefined;
  #innerSent = false;
  #msk: Uint8Array | undefined;
  #last: { identifier: number; response: Uint8Array } | undefined;
  #closed = false;

  constructor(credentials: EapPeerCredentials, options: EapPeerOptions = {}) {
    this.#credentials = credentials;
    this.#type = credentials.method === "tls" ? EAP_TYPE.tls : EAP_TYPE.ttls;
    this.#fragmentSize = options.fragmentSize ?? 1020;
    this.#fragmenter = new TlsFragmenter(this.#fragmentSize);
  }

  /** The identity sent in EAP-Response/Identity (anonymous for TTLS). */
  get outerIdentity(): string {
    const c = this.#credentials;
    return c.method === "ttls-pap" ? (c.anonymousIdentity ?? "anonymous") : c.identity;
  }

  /** The MSK once the TLS handshake finished. */
  get msk(): Uint8Array | undefined {
    return this.#msk;
  }

  /** Handles one EAP packet from the authenticator. */
  async handle(bytes: Uint8Array): Promise<EapPeerStep> {
    if (this.#closed) return { kind: "ignore", why: "peer closed" };
    let packet: EapPacket;
    try {
      packet = decodeEap(bytes);
    } catch (error) {
      return { kind: "ignore", why: (error as Error).message };
    }
    if (packet.code === EAP_CODE.success) {
      if (!this.#msk || !this.#secure || (this.#type === EAP_TYPE.ttls && !this.#innerSent)) {
        this.close();
        return { kind: "abort", failure: { reason: "EAP-SERVER-UNTRUSTED", detail: "EAP-Success before the server was authenticated" } };
      }
      const msk = this.#msk;
      this.close();
      return { kind: "success", msk };
    }
    if (packet.code === EAP_CODE.failure) {
      this.close();
      return { kind: "failure" };
    }
    if (packet.code !== EAP_CODE.request) return { kind: "ignore", why: "not a request" };
    // a retransmitted request gets the same response (RFC 3748 §4.1)
    if (this.#last && this.#last.identifier === packet.identifier && packet.type !== EAP_TYPE.identity) {
      return { kind: "send", packet: this.#last.response };
    }
    const respond = (type: number, data: Uint8Array): EapPeerStep => {
      const response = encodeEap({ code: EAP_CODE.response, identifier: packet.identifier, type, data });
      this.#last = { identifier: packet.identifier, response };
      return { kind: "send", packet: response };
    };
    switch (packet.type) {
      case EAP_TYPE.identity:
        return respond(EAP_TYPE.identity, new TextEncoder().encode(this.outerIdentity));
      case EAP_TYPE.notification:
        return respond(EAP_TYPE.notification, new Uint8Array(0));
      case this.#type:
        return this.#method(packet.data, respond);
      default:
        // Nak with the method we want (RFC 3748 §5.3.1)
        return respond(EAP_TYPE.nak, Uint8Array.of(this.#type));
    }
  }

  async #method(data: Uint8Array, respond: (type: number, data: Uint8Array) => EapPeerStep): Promise<EapPeerStep> {
    let input;
    try {
      input = this.#fragmenter.receive(data);
    } catch (error) {
      return { kind: "ignore", why: (error as Error).message };
    }
    if (input.kind === "start") {
      if (this.#tls) return { kind: "ignore", why: "second Start" };
      this.#startTls();
      await settle(this.#pipe!, () => this.#error !== undefined);
      return this.#answer(respond);
    }
    if (!this.#tls) return { kind: "ignore", why: "TLS data before Start" };
    if (input.kind === "fragment") return respond(this.#type, Uint8Array.of(0)); // ACK
    if (input.kind === "empty") {
      if (this.#fragmenter.pending > 0) return respond(this.#type, this.#fragmenter.nextFragment());
      return respond(this.#type, Uint8Array.of(0));
    }
    this.#pipe!.feed(input.tls);
    await settle(this.#pipe!, () => this.#secure || this.#error !== undefined);
    return this.#answer(respond);
  }

  /** Sends what TLS wrote (first fragment), the inner PAP request after the handshake, or an ACK. */
  async #answer(respond: (type: number, data: Uint8Array) => EapPeerStep): Promise<EapPeerStep> {
    if (this.#error && isTrustError(this.#error)) {
      const detail = `${this.#error.code ?? "TLS"}: ${this.#error.message}`.slice(0, 160);
      this.close();
      return { kind: "abort", failure: { reason: "EAP-SERVER-UNTRUSTED", detail } };
    }
    if (this.#secure && this.#type === EAP_TYPE.ttls && !this.#innerSent && this.#credentials.method === "ttls-pap") {
      this.#innerSent = true;
      this.#tls!.write(papAvps(this.#credentials.identity, this.#credentials.password));
      await settle(this.#pipe!, () => false, 10);
    }
    const output = this.#pipe!.takeOutput();
    if (output.length > 0) this.#fragmenter.queue(output);
    // with nothing to say (after the server's last flight, or after its alert) the peer ACKs
    return respond(this.#type, this.#fragmenter.nextFragment());
  }

  #startTls(): void {
    const c = this.#credentials;
    this.#pipe = new TlsPipe();
    const options: tls.ConnectionOptions = {
      socket: this.#pipe,
      ca: c.server.ca,
      servername: c.server.serverName,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(c.server.serverName, cert),
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      maxVersion: "TLSv1.2",
      ...(c.method === "tls" ? { cert: c.certificate, key: c.privateKey } : {}),
    };
    const socket = tls.connect(options);
    this.#tls = socket;
    socket.on("secureConnect", () => {
      this.#secure = true;
      this.#msk = exportMsk(socket as never, this.#type === EAP_TYPE.tls ? "client EAP encryption" : "ttls keying material");
    });
    socket.on("error", (error) => {
      this.#error ??= error;
    });
    socket.on("data", () => {}); // inner answers (TTLS) are not needed for PAP
  }

  /** Ends the conversation and releases the TLS socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tls?.destroy();
    this.#pipe?.destroy();
  }
}
