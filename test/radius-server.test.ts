/*
 * The RADIUS server through its in-process handle(): full EAP-TTLS/PAP and
 * EAP-TLS conversations with the bench peer (MSK = MS-MPPE keys), fragments
 * both ways, and everything bad: tampered or missing Message-Authenticator,
 * unknown clients, malformed packets and EAP (the next good request is still
 * served), duplicates, rate limits, the half-open session cap and idle
 * timeout, the reassembly bound.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { authenticate, type PeerOptions, type Transport } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { EAP_CODE, EAP_TYPE, TLS_FLAG, encodeEap, encodeTlsFrame } from "../cloud/radius/eap";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { ATTR, RADIUS_CODE, attribute, decodePacket, encodePacket, joinEapMessage, signRequest, splitEapMessage, type RadiusAttribute } from "../cloud/radius/packet";
import { RadiusServer, type RadiusServerOptions } from "../cloud/radius/server";
import { deriveHotspotPassword } from "../modules/derive";
import { newSecret, startTestCloud, suiteLog, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "server-test-shared-secret";
const SECRET = Buffer.from(NAS_SECRET);
const FROM = { address: "127.0.0.1", port: 41000 };

describe("radius: server (in-process handle)", function () {
  this.timeout(30_000);
  let t: TestCloud;
  let tls: { certPem: string; keyPem: string };
  const device = newSecret();
  let certDevice: { certificatePem: string; privateKeyPem: string };
  let clock = 1_000_000;

  before(async () => {
    t = await startTestCloud();
    tls = await radiusIdentity(t.cloud.registry);
    await t.cloud.services.addNasClient({ name: "ap-local", address: "127.0.0.1", secret: NAS_SECRET });
    await t.cloud.services.addNasClient({ name: "ap-roaming", address: "*", secret: "roaming-ap-shared-secret" });
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-1", secretHex: device.hex });
    await t.cloud.services.createProductCa({ name: "lamps" });
    certDevice = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "lamp-c1", keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "lamp-c1", caName: "lamps" });
  });

  after(async () => t?.stop());

  function server(options: Partial<RadiusServerOptions> = {}): RadiusServer {
    return new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, now: () => clock, deviceRate: { burst: 1000, perSecond: 1000 }, log: suiteLog(), ...options });
  }

  const via = (s: RadiusServer, from = FROM): Transport => (request) => s.handle(request, from);

  function ttls(overrides: Partial<PeerOptions> = {}): PeerOptions {
    return {
      nasSecret: NAS_SECRET, method: "ttls", identity: "lamp-1", password: deriveHotspotPassword(nodeDigest, device.bytes, "lamp-1"),
      caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, ...overrides,
    };
  }

  function identityRequest(id = 1, identity = "anonymous@wcm", extra: RadiusAttribute[] = []): Buffer {
    const eap = encodeEap({ code: EAP_CODE.response, identifier: 0, type: EAP_TYPE.identity, data: Buffer.from(identity) });
    return signRequest(id, randomBytes(16), SECRET, [...splitEapMessage(eap), ...extra]);
  }

  function eapRequest(id: number, eap: Buffer, state?: Buffer): Buffer {
    return signRequest(id, randomBytes(16), SECRET, [...splitEapMessage(eap), ...(state ? [{ type: ATTR.state, value: state }] : [])]);
  }

  async function startSession(s: RadiusServer, id = 1): Promise<{ state: Buffer; eapId: number }> {
    const response = decodePacket((await s.handle(identityRequest(id), FROM))!);
    assert.equal(response.code, RADIUS_CODE.accessChallenge);
    return { state: attribute(response, ATTR.state)!, eapId: joinEapMessage(response)![1] };
  }

  it("handle_TtlsPap_AcceptCarriesMppeKeysEqualToThePeersMsk", async () => {
    const s = server();
    const result = await authenticate(via(s), ttls());
    assert.ok(result.ok, result.reason);
    assert.deepEqual(result.mppe!.recv, result.msk!.subarray(0, 32));
    assert.deepEqual(result.mppe!.send, result.msk!.subarray(32, 64));
    assert.equal(s.sessions.size, 0);
  });

  it("handle_EapTls_EcKey_Accept", async () => {
    const s = server();
    const result = await authenticate(via(s), {
      nasSecret: NAS_SECRET, method: "tls", identity: "lamp-c1", certPem: certDevice.certificatePem, keyPem: certDevice.privateKeyPem,
      caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME,
    });
    assert.ok(result.ok, result.reason);
    assert.deepEqual(result.mppe!.recv, result.msk!.subarray(0, 32));
  });

  it("handle_FragmentsBothWays: 200-byte server fragments, 150-byte peer fragments", async () => {
    const whole = await authenticate(via(server()), ttls());
    const small = await authenticate(via(server({ fragmentSize: 200 })), ttls({ fragmentSize: 150 }));
    assert.ok(small.ok, small.reason);
    assert.ok(small.roundTrips > whole.roundTrips + 4, `${small.roundTrips} vs ${whole.roundTrips}`);
  });

  it("handle_WrongPassword_RejectWithReplyMessage", async () => {
    const result = await authenticate(via(server()), ttls({ password: "wrong" }));
    assert.equal(result.code, RADIUS_CODE.accessReject);
    assert.equal(result.reason, "BAD_PROOF");
  });

  it("handle_WrongServerName_PeerRefusesTheTunnel", async () => {
    const result = await authenticate(via(server()), ttls({ serverName: "radius.example.com" }));
    assert.ok(!result.ok);
    assert.match(result.reason ?? "", /^tls:/);
  });

  it("handle_MessageAuthenticator_TamperedOrMissing_Dropped", async () => {
    const s = server();
    const good = identityRequest();
    const tampered = Buffer.from(good);
    tampered[tampered.length - 20] ^= 0x01; // inside the EAP-Message
    assert.equal(await s.handle(tampered, FROM), undefined);
    const eap = encodeEap({ code: EAP_CODE.response, identifier: 0, type: EAP_TYPE.identity, data: Buffer.from("x") });
    assert.equal(await s.handle(encodePacket(1, 2, randomBytes(16), splitEapMessage(eap)), FROM), undefined, "no Message-Authenticator");
    assert.equal(s.stats.badAuthenticator, 2);
    assert.ok(await s.handle(good, FROM), "the untampered packet is answered");
  });

  it("handle_UnknownClient_Dropped; a '*' client is found by NAS-Identifier", async () => {
    const s = server();
    assert.equal(await s.handle(identityRequest(), { address: "10.9.9.9", port: 1 }), undefined);
    assert.equal(s.stats.unknownClient, 1);
    const roaming = signRequest(4, randomBytes(16), Buffer.from("roaming-ap-shared-secret"), [
      { type: ATTR.nasIdentifier, value: Buffer.from("ap-roaming") },
      ...splitEapMessage(encodeEap({ code: EAP_CODE.response, identifier: 0, type: EAP_TYPE.identity, data: Buffer.from("anonymous@wcm") })),
    ]);
    const answer = await s.handle(roaming, { address: "10.9.9.9", port: 1 });
    assert.equal(decodePacket(answer!).code, RADIUS_CODE.accessChallenge);
  });

  it("handle_RemovedNasClient_DroppedWithinASecond", async () => {
    await t.cloud.services.addNasClient({ name: "ap-gone", address: "127.0.0.9", secret: "soon-removed-secret" });
    const s = server();
    const request = () => signRequest(5, randomBytes(16), Buffer.from("soon-removed-secret"), splitEapMessage(encodeEap({ code: 2, identifier: 0, type: 1, data: Buffer.from("a") })));
    assert.ok(await s.handle(request(), { address: "127.0.0.9", port: 5 }));
    await t.cloud.services.removeNasClient({ name: "ap-gone" });
    clock += 1000; // lookups are cached for a second
    assert.equal(await s.handle(request(), { address: "127.0.0.9", port: 5 }), undefined);
  });

  it("handle_MalformedPackets_CountedAndDropped_NextGoodRequestServed", async () => {
    const s = server();
    const good = identityRequest();
    const bad = [Buffer.alloc(0), Buffer.alloc(19), Buffer.alloc(5000), Buffer.from(good).fill(0xff, 2, 4), Buffer.concat([good.subarray(0, 20), Buffer.from([79, 1])])];
    for (const b of bad) assert.equal(await s.handle(b, FROM), undefined);
    assert.equal(s.stats.malformed, 5);
    // random mutations of a good packet: never a throw, never an unsigned answer
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(good);
      for (let k = 0; k < 1 + (i % 4); k++) m[Math.floor(Math.random() * m.length)] = Math.floor(Math.random() * 256);
      const answer = await s.handle(m, { address: "127.0.0.1", port: 42000 + (i % 100) });
      if (answer) assert.ok(([RADIUS_CODE.accessChallenge, RADIUS_CODE.accessReject, RADIUS_CODE.accessAccept] as number[]).includes(decodePacket(answer).code));
    }
    assert.equal(s.stats.errors, 0);
    const result = await authenticate(via(s), ttls());
    assert.ok(result.ok, result.reason);
  });

  it("handle_MalformedEap_Rejected: bad EAP length, no Identity first, L without length, garbage TLS", async () => {
    const s = server();
    const reject = async (request: Buffer, reason: string, eapFailure = true) => {
      const answer = decodePacket((await s.handle(request, FROM))!);
      assert.equal(answer.code, RADIUS_CODE.accessReject);
      assert.equal(attribute(answer, ATTR.replyMessage)!.toString(), reason);
      assert.equal(joinEapMessage(answer)?.[0], eapFailure ? EAP_CODE.failure : undefined);
    };
    await reject(eapRequest(10, Buffer.from([2, 0, 0, 99, 1, 0x61])), "BAD_EAP");
    await reject(eapRequest(11, encodeEap({ code: EAP_CODE.response, identifier: 0, type: EAP_TYPE.ttls, data: Buffer.from([0]) })), "BAD_EAP");
    let session = await startSession(s, 12);
    await reject(eapRequest(13, encodeEap({ code: EAP_CODE.response, identifier: session.eapId, type: EAP_TYPE.ttls, data: Buffer.from([0x80, 0]) }), session.state), "BAD_EAP");
    session = await startSession(s, 14);
    await reject(eapRequest(15, encodeEap({ code: EAP_CODE.response, identifier: session.eapId, type: EAP_TYPE.ttls, data: encodeTlsFrame({ flags: 0, version: 0, fragment: randomBytes(200) }) }), session.state), "TLS_FAILED");
    session = await startSession(s, 16);
    await reject(eapRequest(17, encodeEap({ code: EAP_CODE.response, identifier: session.eapId, type: EAP_TYPE.nak, data: Buffer.from([4]) }), session.state), "METHOD_UNSUPPORTED");
    await reject(signRequest(18, randomBytes(16), SECRET, [{ type: ATTR.userName, value: Buffer.from("lamp-1") }]), "METHOD_UNSUPPORTED", false);
    const result = await authenticate(via(s), ttls());
    assert.ok(result.ok, result.reason);
  });

  it("handle_StaleEapIdentifier_Dropped", async () => {
    const s = server();
    const session = await startSession(s, 20);
    const stale = eapRequest(21, encodeEap({ code: EAP_CODE.response, identifier: (session.eapId + 5) & 0xff, type: EAP_TYPE.ttls, data: Buffer.from([0]) }), session.state);
    assert.equal(await s.handle(stale, FROM), undefined);
    assert.equal(s.stats.staleEap, 1);
  });

  it("handle_ReassemblyBound_TooLarge", async () => {
    const s = server({ maxReassembly: 4096 });
    const session = await startSession(s, 30);
    const frame = encodeTlsFrame({ flags: TLS_FLAG.more, version: 0, totalLength: 70_000, fragment: randomBytes(100) });
    const answer = decodePacket((await s.handle(eapRequest(31, encodeEap({ code: EAP_CODE.response, identifier: session.eapId, type: EAP_TYPE.ttls, data: frame }), session.state), FROM))!);
    assert.equal(answer.code, RADIUS_CODE.accessReject);
    assert.equal(attribute(answer, ATTR.replyMessage)!.toString(), "TOO_LARGE");
  });

  it("handle_Duplicate_ResendsTheCachedAnswer", async () => {
    const s = server();
    const request = identityRequest(40);
    const first = await s.handle(request, FROM);
    const second = await s.handle(request, FROM);
    assert.deepEqual(second, first);
    assert.equal(s.stats.duplicates, 1);
    assert.equal(s.sessions.size, 1, "no second session");
  });

  it("handle_StatusServer_Answered", async () => {
    const s = server();
    const status = encodePacket(RADIUS_CODE.statusServer, 50, randomBytes(16), [{ type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }]);
    const { createHmac } = await import("node:crypto");
    createHmac("md5", SECRET).update(status).digest().copy(status, 22);
    assert.equal(decodePacket((await s.handle(status, FROM))!).code, RADIUS_CODE.accessAccept);
  });

  it("handle_RateLimit_PerNas: RATE_LIMITED once the NAS bucket is empty", async () => {
    const s = server({ nasRate: { burst: 3, perSecond: 1 } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push(decodePacket((await s.handle(identityRequest(60 + i), FROM))!).code);
    assert.deepEqual(codes, [11, 11, 11, 3, 3]);
    assert.equal(s.stats.reasons.RATE_LIMITED, 2);
    clock += 1000;
    assert.equal(decodePacket((await s.handle(identityRequest(70), FROM))!).code, RADIUS_CODE.accessChallenge);
  });

  it("handle_RateLimit_PerDevice: only verified logins spend the burst; RATE_LIMITED after it, other devices unaffected", async () => {
    const s = server({ deviceRate: { burst: 2, perSecond: 0.01 } });
    assert.ok((await authenticate(via(s), ttls())).ok);
    for (let i = 0; i < 3; i++) assert.equal((await authenticate(via(s), ttls({ password: "wrong" }))).reason, "BAD_PROOF");
    assert.ok((await authenticate(via(s), ttls())).ok, "wrong passwords did not spend the device's budget");
    assert.equal((await authenticate(via(s), ttls())).reason, "RATE_LIMITED");
    const cert = await authenticate(via(s), {
      nasSecret: NAS_SECRET, method: "tls", identity: "lamp-c1", certPem: certDevice.certificatePem, keyPem: certDevice.privateKeyPem,
      caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME,
    });
    assert.ok(cert.ok, cert.reason);
  });

  it("handle_HalfOpenSessions_CapEvictsOldest_IdleTimesOut", async () => {
    const s = server({ maxSessions: 4, sessionIdleMs: 10_000 });
    const sessions = [];
    for (let i = 0; i < 10; i++) sessions.push(await startSession(s, 80 + i));
    assert.equal(s.sessions.size, 4);
    assert.equal(s.sessions.evicted, 6);
    const ack = (x: { state: Buffer; eapId: number }, id: number) =>
      eapRequest(id, encodeEap({ code: EAP_CODE.response, identifier: x.eapId, type: EAP_TYPE.ttls, data: Buffer.from([0]) }), x.state);
    const evicted = decodePacket((await s.handle(ack(sessions[0], 100), FROM))!);
    assert.equal(attribute(evicted, ATTR.replyMessage)!.toString(), "TIMEOUT");
    clock += 20_000;
    const idle = decodePacket((await s.handle(ack(sessions[9], 101), FROM))!);
    assert.equal(attribute(idle, ATTR.replyMessage)!.toString(), "TIMEOUT");
    assert.ok(s.sessions.expired >= 1);
  });

  it("start_Udp_ServesOverTheSocket", async () => {
    const s = server({ port: 0 });
    const port = await s.start();
    try {
      const { UdpTransport } = await import("../bench/radius-peer");
      const udp = new UdpTransport("127.0.0.1", port, 1000, 1);
      try {
        const result = await authenticate(udp.send, ttls());
        assert.ok(result.ok, result.reason);
      } finally {
        udp.close();
      }
    } finally {
      await s.close();
    }
  });
});
