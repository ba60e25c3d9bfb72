/*
 * Test doubles for the radio tests: a small EAP-TLS / EAP-TTLS(PAP) responder
 * on node:tls (server side, over the same in-memory framing as the peer) and a
 * UDP RADIUS server around it. They exist to test the supplicant and the
 * access point's NAS role on their own; the real server is cloud/radius.
 */
import { createSocket, type Socket } from "node:dgram";
import { X509Certificate, randomBytes } from "node:crypto";
import * as tls from "node:tls";
import type { JoinRequest, NetworkFailure } from "../modules/ports";
import type { SimulatedRadio } from "../hosts/node/radio/radio";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import { EAP_CODE, EAP_TYPE, TlsFragmenter, TlsPipe, decodeEap, encodeEap, exportMsk, settle, tlsStart } from "../hosts/node/radio/eap";
import {
  RADIUS_ATTR, RADIUS_CODE, attribute, decodeRadius, eapMessageAttributes, encodeResponse, encryptMppeKey,
  firstAttribute, joinEapMessage, mppeKeyAttribute, verifyRequest, type RadiusAttribute,
} from "../hosts/node/radio/radius-codec";

export interface ResponderOptions {
  method: "tls" | "ttls";
  certPem: string;
  keyPem: string;
  /** CA that client certificates must chain to (EAP-TLS) */
  clientCa?: string;
  fragmentSize?: number;
  /** accept (undefined) or reject with a Reply-Message */
  checkPassword?: (user: string, password: string) => string | undefined;
  checkCertificate?: (cert: tls.PeerCertificate, identity: string) => string | undefined;
}

export type ResponderStep =
  | { kind: "request"; packet: Uint8Array }
  | { kind: "success"; packet: Uint8Array; msk: Uint8Array }
  | { kind: "failure"; packet: Uint8Array; message: string };

function parseAvps(bytes: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 8 <= bytes.length;) {
    const code = view.getUint32(at);
    const length = view.getUint32(at + 4) & 0xffffff;
    if (length < 8) break;
    out.set(code, bytes.slice(at + 8, at + length));
    at += (length + 3) & ~3;
  }
  return out;
}

/** Whether a (bare TLSSocket's) peer certificate is issued by the CA; node sets `authorized` only under tls.Server. */
function clientCertificateChains(cert: tls.PeerCertificate, caPem: string | undefined): boolean {
  if (!caPem || !cert.raw) return false;
  const ca = new X509Certificate(caPem);
  const leaf = new X509Certificate(cert.raw);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

/** The server half of one EAP conversation, starting from the peer's Identity response. */
export class EapResponder {
  #id = 1;
  #fragmenter: TlsFragmenter;
  #pipe = new TlsPipe();
  #tls: tls.TLSSocket | undefined;
  #secure = false;
  #inner: Uint8Array | undefined;
  #error: Error | undefined;
  #identity = "";
  #finished = false;
  readonly type: number;
  /** what the responder saw, for assertions */
  readonly seen: string[] = [];

  constructor(readonly options: ResponderOptions) {
    this.type = options.method === "tls" ? EAP_TYPE.tls : EAP_TYPE.ttls;
    this.#fragmenter = new TlsFragmenter(options.fragmentSize ?? 1000);
  }

  #request(data: Uint8Array): ResponderStep {
    return { kind: "request", packet: encodeEap({ code: EAP_CODE.request, identifier: ++this.#id & 0xff, type: this.type, data }) };
  }

  #fail(message: string): ResponderStep {
    this.#tls?.destroy();
    return { kind: "failure", packet: encodeEap({ code: EAP_CODE.failure, identifier: this.#id & 0xff, data: new Uint8Array(0) }), message };
  }

  async handle(bytes: Uint8Array): Promise<ResponderStep> {
    const packet = decodeEap(bytes);
    if (packet.code !== EAP_CODE.response) return this.#fail("not a response");
    if (packet.type === EAP_TYPE.identity) {
      this.#identity = new TextDecoder().decode(packet.data);
      this.seen.push(`identity ${this.#identity}`);
      this.#start();
      return this.#request(tlsStart());
    }
    if (packet.type === EAP_TYPE.nak) return this.#fail("peer refused the method");
    if (packet.type !== this.type) return this.#fail("wrong method");
    const input = this.#fragmenter.receive(packet.data);
    if (input.kind === "fragment") {
      this.seen.push("fragment from peer");
      return this.#request(Uint8Array.of(0));
    }
    if (input.kind === "empty") {
      if (this.#fragmenter.pending > 0) return this.#request(this.#fragmenter.nextFragment());
      if (this.#secure && this.type === EAP_TYPE.tls) return this.#finish();
      if (this.#error) return this.#fail(this.#error.message);
      return this.#fail("unexpected ACK");
    }
    if (input.kind === "start") return this.#fail("start from peer");
    this.#pipe.feed(input.tls);
    await settle(this.#pipe, () => this.#inner !== undefined || this.#error !== undefined);
    const output = this.#pipe.takeOutput();
    if (this.#inner) return this.#finish();
    if (output.length > 0) {
      this.#fragmenter.queue(output);
      return this.#request(this.#fragmenter.nextFragment());
    }
    return this.#fail(this.#error?.message ?? "TLS stalled");
  }

  #finish(): ResponderStep {
    if (this.#finished) return this.#fail("finished twice");
    this.#finished = true;
    const socket = this.#tls!;
    let refusal: string | undefined;
    if (this.type === EAP_TYPE.ttls) {
      const avps = parseAvps(this.#inner!);
      const user = new TextDecoder().decode(avps.get(1) ?? new Uint8Array(0));
      const password = new TextDecoder().decode(avps.get(2) ?? new Uint8Array(0)).replace(/\0+$/, "");
      this.seen.push(`pap ${user}`);
      refusal = this.options.checkPassword?.(user, password);
    } else {
      const cert = socket.getPeerCertificate();
      if (!clientCertificateChains(cert, this.options.clientCa)) refusal = "client certificate refused";
      else refusal = this.options.checkCertificate?.(cert, this.#identity);
      this.seen.push(`cert ${cert.subject?.CN}`);
    }
    if (refusal) return this.#fail(refusal);
    const msk = exportMsk(socket as never, this.type === EAP_TYPE.tls ? "client EAP encryption" : "ttls keying material");
    socket.destroy();
    return { kind: "success", packet: encodeEap({ code: EAP_CODE.success, identifier: this.#id & 0xff, data: new Uint8Array(0) }), msk };
  }

  #start(): void {
    const o = this.options;
    const socket = new tls.TLSSocket(this.#pipe, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: o.certPem, key: o.keyPem, minVersion: "TLSv1.2", maxVersion: "TLSv1.2", ...(o.clientCa ? { ca: o.clientCa } : {}) }),
      requestCert: o.method === "tls",
      rejectUnauthorized: false,
    });
    this.#tls = socket;
    socket.on("secure", () => { this.#secure = true; });
    socket.on("data", (data: Buffer) => { this.#inner = new Uint8Array(data); });
    socket.on("error", (error) => { this.#error ??= error; });
  }
}

export interface TestRadiusOptions extends ResponderOptions {
  secret: string;
  /** fault: answer nothing */
  silent?: boolean;
  /** fault: sign answers with this secret instead (the AP must discard them) */
  answerSecret?: string;
  /** fault: send MPPE keys that are not the MSK's halves */
  wrongKeys?: boolean;
}

/** A UDP RADIUS server around EapResponder (one session per State). */
export class TestRadiusServer {
  #socket: Socket;
  #sessions = new Map<string, EapResponder>();
  #answered = new Map<string, Uint8Array>();
  port = 0;
  requests = 0;
  /** Access-Request attributes seen, for assertions */
  readonly requestsSeen: RadiusAttribute[][] = [];

  private constructor(readonly options: TestRadiusOptions) {
    this.#socket = createSocket("udp4");
  }

  static async start(options: TestRadiusOptions): Promise<TestRadiusServer> {
    const server = new TestRadiusServer(options);
    await new Promise<void>((resolve) => server.#socket.bind(0, "127.0.0.1", resolve));
    server.port = server.#socket.address().port;
    server.#socket.on("message", (msg, rinfo) => { void server.#onMessage(new Uint8Array(msg), rinfo.address, rinfo.port); });
    return server;
  }

  async #onMessage(bytes: Uint8Array, address: string, port: number): Promise<void> {
    this.requests++;
    if (this.options.silent) return;
    let secret = new TextEncoder().encode(this.options.secret);
    if (!verifyRequest(bytes, secret)) return;
    const packet = decodeRadius(bytes);
    const key = `${address}:${port}:${packet.identifier}:${Buffer.from(packet.authenticator).toString("hex")}`;
    const cached = this.#answered.get(key);
    if (cached) {
      this.#socket.send(cached, port, address);
      return;
    }
    this.requestsSeen.push(packet.attributes);
    const eap = joinEapMessage(packet);
    if (!eap) return;
    const state = firstAttribute(packet, RADIUS_ATTR.state);
    let stateKey = state ? Buffer.from(state).toString("hex") : "";
    let session = this.#sessions.get(stateKey);
    if (!session) {
      stateKey = randomBytes(8).toString("hex");
      session = new EapResponder(this.options);
      this.#sessions.set(stateKey, session);
    }
    const step = await session.handle(eap);
    if (this.options.answerSecret) secret = new TextEncoder().encode(this.options.answerSecret);
    if (step.kind === "success" && this.options.wrongKeys) step.msk = step.msk.map((b) => b ^ 1);
    let answer: Uint8Array;
    if (step.kind === "request") {
      answer = encodeResponse(RADIUS_CODE.accessChallenge, packet.identifier, packet.authenticator,
        [...eapMessageAttributes(step.packet), attribute(RADIUS_ATTR.state, Buffer.from(stateKey, "hex"))], secret);
    } else if (step.kind === "success") {
      this.#sessions.delete(stateKey);
      const salt = (n: number) => Uint8Array.of(0x80 | n, n);
      answer = encodeResponse(RADIUS_CODE.accessAccept, packet.identifier, packet.authenticator, [
        ...eapMessageAttributes(step.packet),
        mppeKeyAttribute("recv", encryptMppeKey(step.msk.subarray(0, 32), secret, packet.authenticator, salt(1))),
        mppeKeyAttribute("send", encryptMppeKey(step.msk.subarray(32, 64), secret, packet.authenticator, salt(2))),
        attribute(RADIUS_ATTR.userName, session.seen[0]?.slice(9) ?? ""),
      ], secret);
    } else {
      this.#sessions.delete(stateKey);
      answer = encodeResponse(RADIUS_CODE.accessReject, packet.identifier, packet.authenticator,
        [...eapMessageAttributes(step.packet), attribute(RADIUS_ATTR.replyMessage, step.message.slice(0, 200))], secret);
    }
    this.#answered.set(key, answer);
    this.#socket.send(answer, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

export interface RadioPki {
  caPem: string;
  server: { certPem: string; keyPem: string };
  otherCaPem: string;
  productCaPem: string;
  rsaDevice: { certPem: string; keyPem: string };
  ecDevice: { certPem: string; keyPem: string };
}

let pkiPromise: Promise<RadioPki> | undefined;
/** A server CA with a radius.localhost certificate, an unrelated CA, and a product CA with two devices. */
export function radioPki(): Promise<RadioPki> {
  pkiPromise ??= (async () => {
    const ca = await createCa("radio test server CA");
    const server = await issueCertificate({ caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: "radius.localhost", usage: "server", dnsNames: ["radius.localhost"] });
    const other = await createCa("some other CA");
    const product = await createCa("radio test product CA");
    const rsa = await issueCertificate({ caCertPem: product.certPem, caKeyDer: product.keyDer, commonName: "dev-rsa", usage: "client", dnsNames: ["dev-rsa"] });
    const ec = await issueCertificate({ caCertPem: product.certPem, caKeyDer: product.keyDer, commonName: "dev-ec", usage: "client", dnsNames: ["dev-ec"], keyType: "ec" });
    return {
      caPem: ca.certPem,
      server: { certPem: server.certPem, keyPem: privateKeyPem(server.keyDer) },
      otherCaPem: other.certPem,
      productCaPem: product.certPem,
      rsaDevice: { certPem: rsa.certPem, keyPem: privateKeyPem(rsa.keyDer) },
      ecDevice: { certPem: ec.certPem, keyPem: privateKeyPem(ec.keyDer) },
    };
  })();
  return pkiPromise;
}

export type JoinOutcome =
  | { kind: "joined"; ip: string; ssid: string; bssid: string; lost: Promise<NetworkFailure> }
  | { kind: "failed"; failure: NetworkFailure };

/** Joins and resolves with the outcome; `lost` resolves if the network is lost later. */
export function joinOnce(radio: SimulatedRadio, request: JoinRequest): Promise<JoinOutcome> {
  return new Promise((resolve) => {
    let onLost: (failure: NetworkFailure) => void = () => {};
    const lost = new Promise<NetworkFailure>((r) => { onLost = r; });
    radio.join(request, {
      onJoined: (info) => resolve({ kind: "joined", ...info, lost }),
      onFailed: (failure) => resolve({ kind: "failed", failure }),
      onLost: (failure) => onLost(failure),
    });
  });
}
