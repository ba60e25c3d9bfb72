/*
 * Protocol polish of the RADIUS server, in process with the bench peer
 * (issue 14 item 5): the TLS alert goes out in an EAP-Request before the
 * EAP-Failure (RFC 5216 section 2.1.3), for a TLS failure (a TLS 1.3-only
 * peer gets protocol_version) and for a refused client certificate
 * (certificate_revoked); Framed-MTU sizes the fragments within bounds;
 * EAP-Key-Name carries the EAP Session-Id (RFC 5247) when the NAS asks;
 * other inner methods get METHOD_UNSUPPORTED; accepts and rejects update
 * the device's status (last seen, hotspot place).
 */
import { strict as assert } from "node:assert";
import { authenticate, type PeerOptions, type Transport } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { encodeAvps } from "../cloud/radius/avp";
import { decodeEap } from "../cloud/radius/eap";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { ATTR, RADIUS_CODE, decodePacket, joinEapMessage } from "../cloud/radius/packet";
import { RadiusServer, fragmentSizeFor, type RadiusServerOptions } from "../cloud/radius/server";
import { deriveHotspotPassword } from "../modules/derive";
import { newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "polish-test-shared-secret";
const FROM = { address: "127.0.0.1", port: 41001 };

describe("radius: protocol polish (alerts, Framed-MTU, EAP-Key-Name, inner methods, device status)", function () {
  this.timeout(30_000);
  let t: TestCloud;
  let tls: { certPem: string; keyPem: string };
  const device = newSecret();
  let cert: { certificatePem: string; privateKeyPem: string; serial: string };

  before(async () => {
    t = await startTestCloud();
    tls = await radiusIdentity(t.cloud.registry);
    await t.cloud.services.addNasClient({ name: "ap-polish", address: "127.0.0.1", secret: NAS_SECRET });
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-p1", secretHex: device.hex });
    await t.cloud.services.createProductCa({ name: "lamps" });
    cert = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "lamp-pc", keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "lamp-pc", caName: "lamps" });
  });
  after(async () => t?.stop());

  function server(options: Partial<RadiusServerOptions> = {}): RadiusServer {
    return new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, deviceRate: { burst: 1000, perSecond: 1000 }, ...options });
  }
  /** A transport that keeps every answer. */
  function recording(s: RadiusServer): { transport: Transport; answers: Buffer[] } {
    const answers: Buffer[] = [];
    return {
      answers,
      transport: async (request) => {
        const answer = await s.handle(request, FROM);
        if (answer) answers.push(answer);
        return answer;
      },
    };
  }
  const ttls = (over: Partial<PeerOptions> = {}): PeerOptions => ({
    nasSecret: NAS_SECRET, method: "ttls", identity: "lamp-p1", password: deriveHotspotPassword(nodeDigest, device.bytes, "lamp-p1"),
    caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, ...over,
  });
  const eapTls = (over: Partial<PeerOptions> = {}): PeerOptions => ({
    nasSecret: NAS_SECRET, method: "tls", identity: "lamp-pc", certPem: cert.certificatePem, keyPem: cert.privateKeyPem,
    caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, ...over,
  });
  const mtu = (value: number) => ({ type: ATTR.framedMtu, value: Buffer.from([value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255]) });

  it("tlsFailure_Tls13OnlyPeer_ProtocolVersionAlertInAnEapRequest_ThenEapFailure", async () => {
    const s = server();
    const { transport, answers } = recording(s);
    const result = await authenticate(transport, ttls({ tlsVersions: { min: "TLSv1.3", max: "TLSv1.3" } }));
    assert.equal(result.code, RADIUS_CODE.accessReject);
    assert.equal(result.reason, "TLS_FAILED");
    assert.match(result.alert ?? "", /protocol version/i, "the peer read the server's protocol_version alert");
    const last = decodePacket(answers[answers.length - 2]);
    assert.equal(last.code, RADIUS_CODE.accessChallenge, "the alert came in an Access-Challenge");
    const alertEap = joinEapMessage(last)!;
    assert.equal(alertEap[6], 21, "a TLS alert record");
    assert.equal(decodeEap(joinEapMessage(decodePacket(answers[answers.length - 1]))!).code, 4, "then EAP-Failure");
  });

  it("refusedCertificate_Revoked_CertificateRevokedAlertBeforeTheFailure", async () => {
    const s = server();
    const extra = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "lamp-pc", keyType: "ec" });
    await t.cloud.services.revokeCertificate({ caName: "lamps", serial: extra.serial });
    const result = await authenticate((r) => s.handle(r, FROM), eapTls({ certPem: extra.certificatePem, keyPem: extra.privateKeyPem }));
    assert.equal(result.reason, "CERT_REVOKED");
    assert.match(result.alert ?? "", /certificate revoked/i);
    const ok = await authenticate((r) => s.handle(r, FROM), eapTls());
    assert.ok(ok.ok, ok.reason);
  });

  it("framedMtu_300_EveryEapPacketFits_BelowTheBoundIgnored", async () => {
    assert.equal(fragmentSizeFor(1000, 300), 286);
    assert.equal(fragmentSizeFor(1000, 99), 1000);
    assert.equal(fragmentSizeFor(1000, 70000), 1000);
    assert.equal(fragmentSizeFor(1000, 1500), 1000);
    const s = server();
    const small = recording(s);
    const result = await authenticate(small.transport, ttls({ attributes: [mtu(300)] }));
    assert.ok(result.ok, result.reason);
    const sizes = small.answers.map((a) => joinEapMessage(decodePacket(a))?.length ?? 0);
    assert.ok(Math.max(...sizes) <= 300 - 4, `largest EAP packet ${Math.max(...sizes)} bytes for Framed-MTU 300 (EAPOL header 4)`);
    const big = recording(s);
    assert.ok((await authenticate(big.transport, ttls({ attributes: [mtu(50)] }))).ok);
    const bigSizes = big.answers.map((a) => joinEapMessage(decodePacket(a))?.length ?? 0);
    assert.ok(Math.max(...bigSizes) > 296, "Framed-MTU 50 is out of bounds: the server's own 1000-byte fragments");
    assert.ok(small.answers.length > big.answers.length);
  });

  it("eapKeyName_AskedWithAnEmptyAttribute_SessionIdOfRfc5247; not asked, not sent", async () => {
    const s = server();
    const asked = await authenticate((r) => s.handle(r, FROM), ttls({ attributes: [{ type: ATTR.eapKeyName, value: Buffer.alloc(0) }] }));
    assert.ok(asked.ok, asked.reason);
    assert.equal(asked.keyName?.length, 65);
    assert.equal(asked.keyName![0], 21, "Type = EAP-TTLS");
    assert.deepEqual(asked.keyName, asked.sessionId, "Type || client.random || server.random as the peer computed it");
    const tlsAsked = await authenticate((r) => s.handle(r, FROM), eapTls({ attributes: [{ type: ATTR.eapKeyName, value: Buffer.alloc(0) }] }));
    assert.deepEqual(tlsAsked.keyName, tlsAsked.sessionId);
    assert.equal(tlsAsked.keyName![0], 13);
    const plain = await authenticate((r) => s.handle(r, FROM), ttls());
    assert.ok(plain.ok);
    assert.equal(plain.keyName, undefined);
  });

  it("innerMethod_MsChapV2OrEap_MethodUnsupported", async () => {
    const s = server();
    const msChapV2 = Buffer.concat([
      encodeAvps([{ code: 1, data: Buffer.from("lamp-p1") }]),
      // MS-CHAP2-Response: vendor 311, code 25, V and M set
      Buffer.from([0, 0, 0, 25, 0xc0, 0, 0, 12 + 50, 0, 0, 1, 55]), Buffer.alloc(50), Buffer.alloc(2),
    ]);
    const chap = await authenticate((r) => s.handle(r, FROM), ttls({ innerAvps: msChapV2 }));
    assert.equal(chap.reason, "METHOD_UNSUPPORTED");
    const eapInside = encodeAvps([{ code: 79, data: Buffer.from([2, 0, 0, 12, 1, ...Buffer.from("lamp-p1")]) }]);
    const inner = await authenticate((r) => s.handle(r, FROM), ttls({ innerAvps: eapInside }));
    assert.equal(inner.reason, "METHOD_UNSUPPORTED");
    assert.equal(s.stats.reasons.METHOD_UNSUPPORTED, 2);
    assert.equal(s.stats.reasons.BAD_EAP, undefined);
  });

  it("deviceStatus_AcceptSetsLastSeenAndHotspot_RejectRecorded", async () => {
    const s = server();
    const before = (await t.cloud.registry.device("lamp-p1"))!.last_seen;
    const station = { type: ATTR.calledStationId, value: Buffer.from("02-00-00-00-00-AA:ZipKey") };
    const ok = await authenticate((r) => s.handle(r, FROM), ttls({ attributes: [station], callingStationId: "02-00-00-00-00-01" }));
    assert.ok(ok.ok, ok.reason);
    const status = await s.hotspots.status("lamp-p1");
    assert.equal(status?.lastAuth?.outcome, "accept");
    assert.equal(status?.lastAuth?.nas, "ap-polish");
    assert.equal(status?.lastAuth?.ssid, "ZipKey");
    assert.equal(status?.lastAuth?.callingStationId, "02-00-00-00-00-01");
    assert.notEqual((await t.cloud.registry.device("lamp-p1"))!.last_seen, before);
    const bad = await authenticate((r) => s.handle(r, FROM), ttls({ password: "wrong", attributes: [station] }));
    assert.equal(bad.reason, "BAD_PROOF");
    const after = await s.hotspots.status("lamp-p1");
    assert.equal(after?.lastAuth?.outcome, "reject");
    assert.equal(after?.lastAuth?.reason, "BAD_PROOF");
    assert.equal((await t.cloud.registry.device("lamp-p1"))!.last_failure, "BAD_PROOF");
  });
});
