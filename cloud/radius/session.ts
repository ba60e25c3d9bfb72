/*
 * One EAP conversation (RFC 3748) after the peer's Identity: EAP-TTLS with
 * PAP inside (RFC 5281) or EAP-TLS (RFC 5216), chosen from the identity and
 * switched on a Nak. Each step takes the peer's EAP-Response and returns the
 * next EAP-Request (a challenge), or the final Success (with the MSK) or Failure.
 *
 * TLS runs in a TlsTunnel (TLS 1.2); outgoing flights are fragmented and
 * incoming ones reassembled (fragments.ts). The credential decisions are
 * callbacks (cloud/auth through server.ts), so this module writes nothing.
 */
import type { X509Certificate } from "node:crypto";
import type { EventEmitter } from "node:events";
import type { SecureContext } from "node:tls";
import { InnerMethodUnsupported, readPap } from "./avp";
import type { HotspotDecision } from "../auth/authenticator";
import type { AuthFailure } from "../auth/failures";
import { EAP_CODE, EAP_TYPE, EapCodecError, TLS_FLAG, decodeTlsFrame, encodeEap, encodeTlsFrame, type EapPacket, type TlsFrame } from "./eap";
import { FragmentReceiver, FragmentSender, ReassemblyTooLarge } from "./fragments";
import { TlsTunnel } from "./tls-tunnel";

/**
 * Reasons an authentication is refused, sent as the Reply-Message of the
 * Access-Reject: the credential refusals of cloud/auth (the same as over
 * MQTT) and the EAP conversation's own. Catalogue: docs/radius.md.
 */
export type RadiusReason = AuthFailure | "TOO_LARGE" | "BAD_EAP" | "TLS_FAILED" | "METHOD_UNSUPPORTED" | "TIMEOUT";

/** An accepted credential decision. */
export type Accepted = HotspotDecision & { ok: true };

/** The EAP methods the server offers. */
export type EapMethod = "ttls" | "tls";

/** Exporter labels of the MSK (RFC 5281 section 8, RFC 5216 section 2.3). */
export const MSK_LABEL: Record<EapMethod, string> = { ttls: "ttls keying material", tls: "client EAP encryption" };

/** Most EAP round trips one session may take (a full handshake with 300-byte fragments takes about 20). */
export const MAX_ROUNDS = 100;

/** What a session needs from the server. */
export interface SessionContext {
  secureContext: SecureContext;
  /** passed to TLSSocket as `server`: its resumeSession listener loads sessions by id (none: no resumption by id) */
  resumption?: EventEmitter;
  /** true while a session-id lookup of `resumption` is running (the TLS engine waits for it) */
  lookupsPending?: () => boolean;
  fragmentSize: number;
  maxReassembly: number;
  /** the credential decision of an inner PAP login (cloud/auth: rates, lockouts and audit included) */
  checkPassword(userName: string, password: Uint8Array): Promise<HotspotDecision>;
  /**
   * the credential decision of a resumed EAP-TTLS session whose peer skipped the
   * inner login, from the binding of its full handshake; undefined: no binding (ask for the inner login)
   */
  checkResumed(session: Buffer | undefined): Promise<HotspotDecision | undefined>;
  /** the credential decision of an EAP-TLS client certificate */
  checkCertificate(identity: string, leaf: X509Certificate | undefined): Promise<HotspotDecision>;
}

/** TLS alert descriptions (RFC 5246 section 7.2) sent for a refused client certificate. */
export const TLS_ALERT = {
  handshakeFailure: 40, badCertificate: 42, certificateRevoked: 44, certificateExpired: 45,
  unknownCa: 48, accessDenied: 49,
} as const;

/** The alert that tells a peer why its certificate was refused (RFC 5216 section 2.1.3: "the appropriate TLS alert"). */
export function alertFor(reason: RadiusReason): number {
  switch (reason) {
    case "CERT_REVOKED": return TLS_ALERT.certificateRevoked;
    case "CERT_EXPIRED": return TLS_ALERT.certificateExpired;
    case "UNKNOWN_CA": case "CA_REVOKED": return TLS_ALERT.unknownCa;
    case "CERT_USAGE": case "CERT_MISMATCH": return TLS_ALERT.badCertificate;
    case "CERT_REQUIRED": return TLS_ALERT.handshakeFailure;
    default: return TLS_ALERT.accessDenied;
  }
}

/**
 * A fatal TLS alert record in the clear (content type 21, TLS 1.2). It is
 * valid on the wire only before the server's ChangeCipherSpec, which is where
 * the server refuses a client certificate (after the peer's Finished, before its own).
 */
export function plaintextAlert(description: number): Buffer {
  return Buffer.from([21, 3, 3, 0, 2, 2, description]);
}

/** The 32-byte random of a ClientHello (1) or ServerHello (2) at the start of a TLS flight, if it is there. */
export function helloRandom(flight: Buffer, handshakeType: 1 | 2): Buffer | undefined {
  if (flight.length < 43 || flight[0] !== 22 || flight[5] !== handshakeType) return undefined;
  return Buffer.from(flight.subarray(11, 43));
}

/** The server's next move. */
export type EapStep =
  | { kind: "challenge"; eap: Buffer }
  /**
   * `sessionId`: the EAP Session-Id (RFC 5247 section 1.4, RFC 5216 section 2.3:
   * Type || client.random || server.random); `resumed`: the TLS session was resumed
   */
  | { kind: "accept"; eap: Buffer; msk: Buffer; deviceId: string; decision: Accepted; method: EapMethod; sessionId?: Buffer; resumed: boolean; tlsSession?: Buffer; leaf?: X509Certificate }
  /** `decided`: the refusal came from cloud/auth, which has recorded it; `delayMs`: hold it that long */
  | { kind: "reject"; eap: Buffer; reason: RadiusReason; detail: string; deviceId?: string; decided?: boolean; delayMs?: number; resumed?: boolean; tlsSession?: Buffer }
  | { kind: "drop"; detail: string };

function methodType(method: EapMethod): number {
  return method === "tls" ? EAP_TYPE.tls : EAP_TYPE.ttls;
}

/** One EAP session, keyed by the RADIUS State the server gave it. */
export class EapSession {
  readonly nasName: string;
  readonly identity: string;
  method: EapMethod;
  #lastRequestId = 0;
  #rounds = 0;
  #tunnel: TlsTunnel | undefined;
  #sender: FragmentSender;
  #receiver: FragmentReceiver;
  #accepted: Accepted | undefined;
  #finishedSent = false;
  #busy = false;
  #switched = false;
  /** a refusal whose TLS alert went out in an EAP-Request: the peer's next response gets the EAP-Failure */
  #failing: Extract<EapStep, { kind: "reject" }> | undefined;
  #clientRandom: Buffer | undefined;
  #askedInner = false;
  #serverRandom: Buffer | undefined;

  constructor(readonly context: SessionContext, nasName: string, identity: string, method: EapMethod) {
    this.nasName = nasName;
    this.identity = identity;
    this.method = method;
    this.#sender = new FragmentSender(context.fragmentSize, 0);
    this.#receiver = new FragmentReceiver(context.maxReassembly);
  }

  /** The EAP-Request that starts the method (TLS Start), answering the Identity response `identityId`. */
  start(identityId: number): EapStep {
    return this.#request({ flags: TLS_FLAG.start, version: 0, fragment: Buffer.alloc(0) }, identityId);
  }

  /** Frees the TLS state. */
  close(): void {
    this.#tunnel?.destroy();
    this.#tunnel = undefined;
  }

  #request(frame: TlsFrame, previousId: number): EapStep {
    this.#lastRequestId = (previousId + 1) & 0xff;
    const eap = encodeEap({ code: EAP_CODE.request, identifier: this.#lastRequestId, type: methodType(this.method), data: encodeTlsFrame(frame) });
    return { kind: "challenge", eap };
  }

  #reject(id: number, reason: RadiusReason, detail: string, deviceId?: string): EapStep {
    const socket = this.#tunnel?.socket;
    const resumed = socket?.isSessionReused() ?? false;
    const tlsSession = resumed ? socket?.getSession() : undefined;
    this.close();
    return {
      kind: "reject", eap: encodeEap({ code: EAP_CODE.failure, identifier: id, data: Buffer.alloc(0) }), reason, detail, deviceId,
      ...(resumed ? { resumed, ...(tlsSession ? { tlsSession } : {}) } : {}),
    };
  }

  #refuse(id: number, decision: HotspotDecision & { ok: false }): EapStep {
    return { ...this.#reject(id, decision.failure, decision.detail, decision.deviceId), decided: true, delayMs: decision.delayMs } as EapStep;
  }

  /**
   * RFC 5216 section 2.1.3: the alert goes to the peer in an EAP-Request, and
   * the EAP-Failure answers the peer's response to it.
   */
  #alert(id: number, alert: Buffer, failure: EapStep): EapStep {
    this.close();
    this.#failing = failure as Extract<EapStep, { kind: "reject" }>;
    this.#sender.load(alert);
    return this.#request(this.#sender.next(), id);
  }

  #accept(id: number, decision: Accepted): EapStep {
    const tunnel = this.#tunnel!;
    const msk = tunnel.exportKey(MSK_LABEL[this.method], 64);
    const resumed = tunnel.socket.isSessionReused();
    const tlsSession = tunnel.socket.getProtocol() === "TLSv1.2" ? tunnel.socket.getSession() : undefined;
    const leaf = this.method === "tls" ? tunnel.socket.getPeerX509Certificate() : undefined;
    const sessionId = this.#clientRandom && this.#serverRandom
      ? Buffer.concat([Buffer.from([methodType(this.method)]), this.#clientRandom, this.#serverRandom]) : undefined;
    this.close();
    return {
      kind: "accept", eap: encodeEap({ code: EAP_CODE.success, identifier: id, data: Buffer.alloc(0) }), msk,
      deviceId: decision.deviceId, decision, method: this.method, resumed, ...(tlsSession ? { tlsSession } : {}), ...(leaf ? { leaf } : {}), ...(sessionId ? { sessionId } : {}),
    };
  }

  /**
   * Handles the peer's next EAP-Response.
   * @returns the next request, the final accept/reject, or drop (a response to an old request, or one arriving while busy)
   */
  async step(eap: EapPacket): Promise<EapStep> {
    if (eap.code !== EAP_CODE.response) return this.#reject(eap.identifier, "BAD_EAP", "not an EAP-Response");
    if (eap.identifier !== this.#lastRequestId) return { kind: "drop", detail: `EAP id ${eap.identifier}, expected ${this.#lastRequestId}` };
    if (this.#busy) return { kind: "drop", detail: "previous response still in progress" };
    if (++this.#rounds > MAX_ROUNDS) return this.#reject(eap.identifier, "BAD_EAP", `more than ${MAX_ROUNDS} EAP rounds`);
    this.#busy = true;
    try {
      return await this.#step(eap);
    } catch (error) {
      if (error instanceof ReassemblyTooLarge) return this.#reject(eap.identifier, "TOO_LARGE", error.message);
      if (error instanceof InnerMethodUnsupported) return this.#reject(eap.identifier, "METHOD_UNSUPPORTED", error.message);
      if (error instanceof EapCodecError || (error instanceof Error && error.message.startsWith("BAD_EAP"))) {
        return this.#reject(eap.identifier, "BAD_EAP", error.message);
      }
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  async #step(eap: EapPacket): Promise<EapStep> {
    const id = eap.identifier;
    if (this.#failing) {
      const failing = this.#failing;
      return { ...failing, eap: encodeEap({ code: EAP_CODE.failure, identifier: id, data: Buffer.alloc(0) }) };
    }
    if (eap.type === EAP_TYPE.nak) return this.#nak(eap);
    if (eap.type !== methodType(this.method)) return this.#reject(id, "BAD_EAP", `EAP type ${eap.type} in a ${this.method} session`);
    const frame = decodeTlsFrame(eap.data);
    if (this.#sender.pending) {
      if (frame.fragment.length !== 0 || frame.flags & TLS_FLAG.more) return this.#reject(id, "BAD_EAP", "expected an ACK of our fragment");
      return this.#request(this.#sender.next(), id);
    }
    const message = this.#receiver.add(frame);
    if (message === undefined) return this.#request({ flags: 0, version: 0, fragment: Buffer.alloc(0) }, id); // ACK a fragment
    if (message.length === 0) {
      // The ACK of our last flight: in EAP-TLS, of the server Finished.
      if (this.method === "tls" && this.#finishedSent && this.#accepted) return this.#accept(id, this.#accepted);
      return this.#reject(id, "BAD_EAP", "empty TLS message");
    }
    this.#tunnel ??= new TlsTunnel({
      isServer: true, secureContext: this.context.secureContext, requestCert: this.method === "tls", rejectUnauthorized: false,
      ...(this.context.resumption ? { server: this.context.resumption as never } : {}),
    }, this.context.lookupsPending);
    const tunnel = this.#tunnel;
    this.#clientRandom ??= helloRandom(message, 1);
    await tunnel.feed(message);
    const out = tunnel.drain();
    this.#serverRandom ??= helloRandom(out, 2);
    if (tunnel.error) {
      const failure = this.#reject(id, "TLS_FAILED", tunnel.error.message.slice(0, 120));
      // the engine's own alert (protocol_version, handshake_failure, ...), when it wrote one
      return out.length > 0 && out.length <= 64 * 1024 ? this.#alert(id, out, failure) : failure;
    }
    if (tunnel.secure) {
      if (this.method === "tls" && !this.#accepted) {
        const leaf = tunnel.socket.getPeerX509Certificate();
        const decision = await this.context.checkCertificate(this.identity, leaf);
        if (!decision.ok) {
          // a resumed session: the server's ChangeCipherSpec and Finished already went out, so an alert now
          // would have to be encrypted, which node:tls cannot be asked for: EAP-Failure at once
          if (tunnel.socket.isSessionReused()) return this.#refuse(id, decision);
          return this.#alert(id, plaintextAlert(alertFor(decision.failure)), this.#refuse(id, decision));
        }
        this.#accepted = decision;
        this.#finishedSent = true;
        // a resumed session: the server's Finished went first, this was the peer's; nothing left to send
        if (out.length === 0 && tunnel.socket.isSessionReused()) return this.#accept(id, decision);
      }
      if (this.method === "ttls") {
        const clear = tunnel.takeCleartext();
        if (clear.length > 0) {
          const pap = readPap(clear);
          const decision = await this.context.checkPassword(pap.userName, pap.password);
          if (!decision.ok) return this.#refuse(id, decision);
          return this.#accept(id, decision);
        }
      }
    }
    if (out.length === 0) {
      if (this.method === "ttls" && tunnel.secure && tunnel.socket.isSessionReused()) {
        if (!this.#askedInner) {
          // the peer's Finished of a resumed handshake: decide from the full handshake's binding (RFC 5281 section 7.5)
          const decision = await this.context.checkResumed(tunnel.socket.getSession());
          if (decision && !decision.ok) return this.#refuse(id, decision);
          if (decision) return this.#accept(id, decision);
        }
        // no binding: an empty request starts phase 2 (a peer that has an inner login sends it; one that skips it is refused below)
        if (this.#askedInner) return this.#reject(id, "TIMEOUT", "resumed TTLS session without its binding, and no inner login");
        this.#askedInner = true;
        return this.#request({ flags: 0, version: 0, fragment: Buffer.alloc(0) }, id);
      }
      return this.#reject(id, "TLS_FAILED", "TLS produced no answer");
    }
    this.#sender.load(out);
    return this.#request(this.#sender.next(), id);
  }

  #nak(eap: EapPacket): EapStep {
    const wanted = [...eap.data];
    if (this.#tunnel || this.#receiver.active || this.#switched) return this.#reject(eap.identifier, "BAD_EAP", "Nak after the method started");
    const other: EapMethod = this.method === "ttls" ? "tls" : "ttls";
    if (!wanted.includes(methodType(other))) return this.#reject(eap.identifier, "METHOD_UNSUPPORTED", `peer wants EAP types ${wanted.join(",") || "none"}`);
    this.method = other;
    this.#switched = true;
    return this.start(eap.identifier);
  }
}
