/*
 * The station's EAP peer against an in-test EAP-TLS / EAP-TTLS responder on
 * node:tls (no RADIUS in between): TTLS/PAP, EAP-TLS with RSA and EC client
 * keys, fragmentation both ways, server validation (wrong CA, wrong name),
 * rejection, Nak, retransmitted requests, malformed input.
 */
import assert from "node:assert/strict";
import { EAP_CODE, EAP_TYPE, decodeEap, encodeEap } from "../hosts/node/radio/eap";
import { EapPeer, papAvps, type EapPeerCredentials } from "../hosts/node/radio/eap-peer";
import { EapResponder, radioPki, type RadioPki, type ResponderOptions } from "./radio-helpers";

type Outcome =
  | { kind: "success"; peerMsk: Uint8Array; serverMsk: Uint8Array; rounds: number }
  | { kind: "failure"; message: string; rounds: number }
  | { kind: "abort"; reason: string; detail?: string; rounds: number };

/** Runs a whole conversation as an authenticator would relay it. */
async function converse(peer: EapPeer, responder: EapResponder): Promise<Outcome> {
  let step = await peer.handle(encodeEap({ code: EAP_CODE.request, identifier: 1, type: EAP_TYPE.identity, data: new Uint8Array(0) }));
  for (let rounds = 1; rounds < 200; rounds++) {
    if (step.kind === "abort") return { kind: "abort", reason: step.failure.reason, detail: step.failure.detail, rounds };
    assert.equal(step.kind, "send");
    if (step.kind !== "send") throw new Error("unreachable");
    const answer = await responder.handle(step.packet);
    if (answer.kind === "success") {
      const end = await peer.handle(answer.packet);
      assert.equal(end.kind, "success");
      if (end.kind !== "success") throw new Error("unreachable");
      return { kind: "success", peerMsk: end.msk, serverMsk: answer.msk, rounds };
    }
    if (answer.kind === "failure") {
      const end = await peer.handle(answer.packet);
      assert.equal(end.kind, "failure");
      return { kind: "failure", message: answer.message, rounds };
    }
    step = await peer.handle(answer.packet);
  }
  throw new Error("conversation did not end");
}

describe("radio: EAP peer against an in-test node:tls responder", function () {
  this.timeout(30_000);
  let pki: RadioPki;
  before(async () => { pki = await radioPki(); });

  const ttls = (over: Partial<ResponderOptions> = {}): ResponderOptions => ({
    method: "ttls", certPem: pki.server.certPem, keyPem: pki.server.keyPem,
    checkPassword: (user, password) => (user === "dev-1" && password === "right-password" ? undefined : "bad password"),
    ...over,
  });
  const tlsResponder = (over: Partial<ResponderOptions> = {}): ResponderOptions => ({
    method: "tls", certPem: pki.server.certPem, keyPem: pki.server.keyPem, clientCa: pki.productCaPem, ...over,
  });
  const papPeer = (over: Partial<Extract<EapPeerCredentials, { method: "ttls-pap" }>> = {}): EapPeerCredentials => ({
    method: "ttls-pap", identity: "dev-1", anonymousIdentity: "anonymous@wcm", password: "right-password",
    server: { ca: pki.caPem, serverName: "radius.localhost" }, ...over,
  });

  it("EapPeer_TtlsPap_Succeeds: same MSK both sides, anonymous outer identity, inner user", async () => {
    const responder = new EapResponder(ttls());
    const outcome = await converse(new EapPeer(papPeer()), responder);
    assert.equal(outcome.kind, "success");
    if (outcome.kind !== "success") return;
    assert.equal(outcome.peerMsk.length, 64);
    assert.deepEqual(outcome.peerMsk, outcome.serverMsk);
    assert.deepEqual(responder.seen.slice(0, 2), ["identity anonymous@wcm", "pap dev-1"]);
  });

  it("EapPeer_TtlsPap_WrongPassword: EAP-Failure", async () => {
    const outcome = await converse(new EapPeer(papPeer({ password: "wrong" })), new EapResponder(ttls()));
    assert.equal(outcome.kind, "failure");
  });

  it("EapPeer_Tls_Rsa and _Ec: client certificate accepted, MSKs agree", async () => {
    for (const device of [pki.rsaDevice, pki.ecDevice]) {
      const responder = new EapResponder(tlsResponder());
      const peer = new EapPeer({ method: "tls", identity: "dev", certificate: device.certPem, privateKey: device.keyPem, server: { ca: pki.caPem, serverName: "radius.localhost" } });
      const outcome = await converse(peer, responder);
      assert.equal(outcome.kind, "success", JSON.stringify(outcome));
      if (outcome.kind === "success") assert.deepEqual(outcome.peerMsk, outcome.serverMsk);
    }
  });

  it("EapPeer_Tls_UnknownClientCa: the server refuses the certificate", async () => {
    const responder = new EapResponder(tlsResponder({ clientCa: pki.otherCaPem }));
    const peer = new EapPeer({ method: "tls", identity: "dev", certificate: pki.rsaDevice.certPem, privateKey: pki.rsaDevice.keyPem, server: { ca: pki.caPem, serverName: "radius.localhost" } });
    assert.equal((await converse(peer, responder)).kind, "failure");
  });

  it("EapPeer_WrongServerName: EAP-SERVER-UNTRUSTED, the password never sent", async () => {
    const responder = new EapResponder(ttls());
    const outcome = await converse(new EapPeer(papPeer({ server: { ca: pki.caPem, serverName: "radius.example" } })), responder);
    assert.equal(outcome.kind, "abort");
    if (outcome.kind === "abort") assert.equal(outcome.reason, "EAP-SERVER-UNTRUSTED");
    assert.ok(!responder.seen.some((line) => line.startsWith("pap")));
  });

  it("EapPeer_WrongCa: EAP-SERVER-UNTRUSTED", async () => {
    const outcome = await converse(new EapPeer(papPeer({ server: { ca: pki.otherCaPem, serverName: "radius.localhost" } })), new EapResponder(ttls()));
    assert.equal(outcome.kind, "abort");
    if (outcome.kind === "abort") assert.equal(outcome.reason, "EAP-SERVER-UNTRUSTED");
  });

  it("EapPeer_Fragments: 64-byte fragments both ways (L/M flags, ACKs)", async () => {
    const responder = new EapResponder(tlsResponder({ fragmentSize: 64 }));
    const peer = new EapPeer({ method: "tls", identity: "dev", certificate: pki.rsaDevice.certPem, privateKey: pki.rsaDevice.keyPem, server: { ca: pki.caPem, serverName: "radius.localhost" } }, { fragmentSize: 64 });
    const outcome = await converse(peer, responder);
    assert.equal(outcome.kind, "success");
    assert.ok(outcome.rounds > 40, `only ${outcome.rounds} rounds`);
    assert.ok(responder.seen.includes("fragment from peer"));
  });

  it("EapPeer_Nak: a request for another method gets a Nak naming ours", async () => {
    const peer = new EapPeer(papPeer());
    const step = await peer.handle(encodeEap({ code: EAP_CODE.request, identifier: 7, type: 25 /* PEAP */, data: Uint8Array.of(0x20) }));
    assert.equal(step.kind, "send");
    if (step.kind !== "send") return;
    const nak = decodeEap(step.packet);
    assert.deepEqual([nak.code, nak.identifier, nak.type, [...nak.data]], [EAP_CODE.response, 7, EAP_TYPE.nak, [EAP_TYPE.ttls]]);
  });

  it("EapPeer_Retransmission: the same request id gets the same response", async () => {
    const peer = new EapPeer(papPeer());
    const start = encodeEap({ code: EAP_CODE.request, identifier: 9, type: EAP_TYPE.ttls, data: Uint8Array.of(0x20) });
    const first = await peer.handle(start);
    const again = await peer.handle(start);
    assert.deepEqual(again, first);
    peer.close();
  });

  it("EapPeer_Malformed: short, bad length, early Success", async () => {
    const peer = new EapPeer(papPeer());
    assert.equal((await peer.handle(Uint8Array.of(1, 2))).kind, "ignore");
    assert.equal((await peer.handle(Uint8Array.of(1, 2, 0, 99, 1))).kind, "ignore");
    const early = await peer.handle(encodeEap({ code: EAP_CODE.success, identifier: 1, data: new Uint8Array(0) }));
    assert.equal(early.kind, "abort");
    if (early.kind === "abort") assert.equal(early.failure.reason, "EAP-SERVER-UNTRUSTED");
  });

  it("papAvps: User-Name and User-Password null-padded to 16", () => {
    const avps = papAvps("dev-1", "pw");
    // User-Name AVP: 8 + 5 -> 16 padded; User-Password: 8 + 16
    assert.equal(avps.length, 16 + 24);
    assert.deepEqual([...avps.subarray(0, 8)], [0, 0, 0, 1, 0x40, 0, 0, 13]);
    assert.deepEqual([...avps.subarray(16, 24)], [0, 0, 0, 2, 0x40, 0, 0, 24]);
  });
});
