/*
 * cloud/auth, the one credential decision: every refusal case runs through
 * both front ends, an MQTT CONNECT over TLS and a RADIUS EAP conversation
 * (TTLS/PAP or EAP-TLS, through the cloud's RadiusServer), and must read the
 * same reason (MQTT: the cloud's refusal log line and the CONNACK code that
 * reason maps to; RADIUS: the Reply-Message). Then the shared limiter state:
 * lockouts per (id, source) on both, and one per-device rate that only a
 * proven credential spends, whichever front end proved it.
 */
import { strict as assert } from "node:assert";
import { type PeerOptions, authenticate } from "../bench/radius-peer";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import { RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { deriveHotspotPassword } from "../modules/derive";
import { connectDevice, digest, end, loginPassword, newSecret, startTestCloud, temporarySecret, type DeviceLogin, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "auth-decision-nas-secret";
/** The CONNACK code each reason must get (docs/protocol.md 10.1). */
const CONNACK: Record<string, number> = {
  BAD_LOGIN: 4, UNKNOWN_DEVICE: 4, BAD_PROOF: 4, CERT_REQUIRED: 4, UNKNOWN_CA: 4, CERT_MISMATCH: 4,
  REVOKED: 5, TEMP_RETIRED: 5, LOT_RETIRED: 5, LOT_REVOKED: 5, NOT_ALLOWED: 5, CA_REVOKED: 5, LOCKED_OUT: 5, RATE_LIMITED: 3,
};

interface Case {
  name: string;
  mqtt: DeviceLogin;
  radius: Partial<PeerOptions>;
  reason: string;
}

describe("cloud/auth: one credential decision, the same reason over MQTT and RADIUS", function () {
  this.timeout(120_000);
  let t: TestCloud;
  const mqttReasons = new Map<string, string>();
  const cases: Case[] = [];

  const hotspot = (secret: Uint8Array, id: string): string => deriveHotspotPassword(digest, secret, id);

  async function viaMqtt(login: DeviceLogin): Promise<{ code: number | undefined; reason: string | undefined }> {
    mqttReasons.delete(login.id);
    const outcome = await connectDevice(t.cloud, login);
    if (outcome.client) {
      await end(outcome.client);
      return { code: 0, reason: undefined };
    }
    return { code: outcome.code, reason: mqttReasons.get(login.id) };
  }

  async function viaRadius(options: Partial<PeerOptions>): Promise<{ ok: boolean; reason: string | undefined }> {
    const result = await authenticate((request) => t.cloud.radius!.handle(request, { address: "127.0.0.1", port: 41_000 }), {
      nasSecret: NAS_SECRET, method: "ttls", identity: "", caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME,
      callingStationId: "02-00-00-00-00-01", ...options,
    } as PeerOptions);
    return { ok: result.ok, reason: result.reason };
  }

  before(async function () {
    t = await startTestCloud({
      radiusPort: 0,
      limits: { login: { lockoutThreshold: 3, rejectDelayMs: 50, perDevice: { burst: 1000, perSecond: 1000 } } },
      log: (_level, _message, fields) => {
        if (fields?.event === "mqtt.refused") mqttReasons.set(String(fields.deviceId), String(fields.reason));
      },
    });
    const s = t.cloud.services;
    const registry = t.cloud.registry;
    await s.addNasClient({ name: "ap-table", address: "127.0.0.1", secret: NAS_SECRET });
    const secret = newSecret();
    const wrong = newSecret().bytes;
    await s.registerSecretDevice({ deviceId: "tb-s1", secretHex: secret.hex });
    await s.registerSecretDevice({ deviceId: "tb-rev", secretHex: secret.hex });
    await s.revokeDevice({ deviceId: "tb-rev" });
    const lotA = await s.createProvisioningKey({ lot: "tb-a", allowlist: ["tb-t1", "tb-perm", "tb-new"] });
    const lotR = await s.createProvisioningKey({ lot: "tb-r", allowlist: ["tb-t2"] });
    const lotT = await s.createProvisioningKey({ lot: "tb-t", allowlist: ["tb-t3"] });
    assert.ok((await registry.insertTemporaryDevice("tb-t2", "tb-r", 1)));
    assert.ok((await registry.insertTemporaryDevice("tb-t3", "tb-t", 1)));
    assert.ok((await registry.insertTemporaryDevice("tb-t4", "tb-a", 1)), "a temporary row its lot's allowlist does not list");
    assert.ok((await registry.insertTemporaryDevice("tb-perm", "tb-a", 1)));
    assert.ok((await registry.storePending("tb-perm", secret.bytes, 1, new Uint8Array(16), "test")));
    assert.ok((await registry.commitPending("tb-perm", 1, "test")));
    await s.revokeProvisioningKey({ lot: "tb-r" });
    await s.retireProvisioningKey({ lot: "tb-t" });
    await s.createProductCa({ name: "tb-ca" });
    await s.createProductCa({ name: "tb-ca2" });
    const c1 = await s.issueDeviceCertificate({ caName: "tb-ca", deviceId: "tb-c1", keyType: "ec" });
    await s.registerCertificateDevice({ deviceId: "tb-c1", caName: "tb-ca" });
    const c3 = await s.issueDeviceCertificate({ caName: "tb-ca2", deviceId: "tb-c3", keyType: "ec" });
    await s.registerCertificateDevice({ deviceId: "tb-c3", caName: "tb-ca2" });
    await s.revokeProductCa({ name: "tb-ca2" });
    const c4 = await s.issueDeviceCertificate({ caName: "tb-ca", deviceId: "tb-c4", keyType: "ec" });
    const c5a = await s.issueDeviceCertificate({ caName: "tb-ca", deviceId: "tb-c5", keyType: "ec" });
    const c5b = await s.issueDeviceCertificate({ caName: "tb-ca", deviceId: "tb-c5", keyType: "ec" });
    await s.registerCertificateDevice({ deviceId: "tb-c5", certificatePem: c5a.certificatePem });
    const rogueCa = await createCa("rogue CA");
    const rogue = await issueCertificate({ caCertPem: rogueCa.certPem, caKeyDer: rogueCa.keyDer, commonName: "tb-c1", usage: "client", dnsNames: ["tb-c1"], keyType: "ec" });
    const temp = (lot: { provisioningKeyHex: string }, id: string) => temporarySecret(lot.provisioningKeyHex, id);
    const tls = (id: string, cert: { certificatePem: string; privateKeyPem: string }): Case["radius"] =>
      ({ method: "tls", identity: id, certPem: cert.certificatePem, keyPem: cert.privateKeyPem });
    const mtls = (id: string, cert: { certificatePem: string; privateKeyPem: string }): DeviceLogin =>
      ({ id, cert: cert.certificatePem, key: cert.privateKeyPem });
    cases.push(
      { name: "not a device id", reason: "BAD_LOGIN", mqtt: { id: "-bad-id", password: loginPassword("-bad-id", secret.bytes, "s", 1) }, radius: { identity: "-bad-id", password: hotspot(secret.bytes, "-bad-id") } },
      { name: "unknown device", reason: "UNKNOWN_DEVICE", mqtt: { id: "tb-nobody", password: loginPassword("tb-nobody", secret.bytes, "s", 1) }, radius: { identity: "tb-nobody", password: hotspot(secret.bytes, "tb-nobody") } },
      { name: "wrong secret", reason: "BAD_PROOF", mqtt: { id: "tb-s1", password: loginPassword("tb-s1", wrong, "s", 1) }, radius: { identity: "tb-s1", password: hotspot(wrong, "tb-s1") } },
      { name: "wrong temporary secret of an allowed id", reason: "BAD_PROOF", mqtt: { id: "tb-new", password: loginPassword("tb-new", wrong, "t", 1) }, radius: { identity: "tb-new", password: hotspot(wrong, "tb-new") } },
      { name: "revoked device", reason: "REVOKED", mqtt: { id: "tb-rev", password: loginPassword("tb-rev", secret.bytes, "s", 1) }, radius: { identity: "tb-rev", password: hotspot(secret.bytes, "tb-rev") } },
      { name: "temporary device of a revoked lot key", reason: "LOT_REVOKED", mqtt: { id: "tb-t2", password: loginPassword("tb-t2", temp(lotR, "tb-t2"), "t", 2) }, radius: { identity: "tb-t2", password: hotspot(temp(lotR, "tb-t2"), "tb-t2") } },
      { name: "temporary device of a retired lot", reason: "LOT_RETIRED", mqtt: { id: "tb-t3", password: loginPassword("tb-t3", temp(lotT, "tb-t3"), "t", 2) }, radius: { identity: "tb-t3", password: hotspot(temp(lotT, "tb-t3"), "tb-t3") } },
      { name: "temporary device its lot does not list", reason: "NOT_ALLOWED", mqtt: { id: "tb-t4", password: loginPassword("tb-t4", temp(lotA, "tb-t4"), "t", 2) }, radius: { identity: "tb-t4", password: hotspot(temp(lotA, "tb-t4"), "tb-t4") } },
      { name: "temporary credential after commit", reason: "TEMP_RETIRED", mqtt: { id: "tb-perm", password: loginPassword("tb-perm", temp(lotA, "tb-perm"), "t", 2) }, radius: { identity: "tb-perm", password: hotspot(temp(lotA, "tb-perm"), "tb-perm") } },
      { name: "password for a certificate device", reason: "CERT_REQUIRED", mqtt: { id: "tb-c1", password: loginPassword("tb-c1", secret.bytes, "s", 1) }, radius: { identity: "tb-c1", password: hotspot(secret.bytes, "tb-c1") } },
      { name: "certificate of an unregistered CA", reason: "UNKNOWN_CA", mqtt: { id: "tb-c1", cert: rogue.certPem, key: privateKeyPem(rogue.keyDer) }, radius: { method: "tls", identity: "tb-c1", certPem: rogue.certPem, keyPem: privateKeyPem(rogue.keyDer) } },
      { name: "device of a revoked CA", reason: "CA_REVOKED", mqtt: mtls("tb-c3", c3), radius: tls("tb-c3", c3) },
      { name: "certificate naming another device", reason: "CERT_MISMATCH", mqtt: mtls("tb-c1", c4), radius: tls("tb-c1", c4) },
      { name: "not the pinned certificate", reason: "CERT_MISMATCH", mqtt: mtls("tb-c5", c5b), radius: tls("tb-c5", c5b) },
    );
    void c1;
  });

  after(async () => t?.stop());

  it("everyRefusalCase_MqttAndRadius_SameReason_ConnackOfThatReason", async function () {
    const rows: string[] = [];
    for (const c of cases) {
      const mqtt = await viaMqtt(c.mqtt);
      const radius = await viaRadius(c.radius);
      rows.push(`${c.name}: mqtt ${mqtt.reason}/${mqtt.code} radius ${radius.reason}`);
      assert.equal(mqtt.reason, c.reason, `${c.name} over MQTT\n${rows.join("\n")}`);
      assert.equal(mqtt.code, CONNACK[c.reason], `${c.name}: CONNACK of ${c.reason}`);
      assert.equal(radius.ok, false, c.name);
      assert.equal(radius.reason, c.reason, `${c.name} over RADIUS\n${rows.join("\n")}`);
    }
  });

  it("lockout_ThresholdRefusalsFromOneSource_LockedOutOnBoth_RightCredentialStillAccepted", async function () {
    const s = newSecret();
    const wrong = newSecret().bytes;
    await t.cloud.services.registerSecretDevice({ deviceId: "tb-lk", secretHex: s.hex });
    for (let i = 1; i <= 3; i++) {
      assert.equal((await viaMqtt({ id: "tb-lk", password: loginPassword("tb-lk", wrong, "s", i) })).reason, "BAD_PROOF");
      assert.equal((await viaRadius({ identity: "tb-lk", password: hotspot(wrong, "tb-lk") })).reason, "BAD_PROOF");
    }
    const mqtt = await viaMqtt({ id: "tb-lk", password: loginPassword("tb-lk", wrong, "s", 4) });
    assert.deepEqual([mqtt.reason, mqtt.code], ["LOCKED_OUT", 5]);
    assert.equal((await viaRadius({ identity: "tb-lk", password: hotspot(wrong, "tb-lk") })).reason, "LOCKED_OUT");
    // another station at the same NAS is another source: not locked
    assert.equal((await viaRadius({ identity: "tb-lk", password: hotspot(wrong, "tb-lk"), callingStationId: "02-00-00-00-00-02" })).reason, "BAD_PROOF");
    // the device holding the secret gets in over both, from the locked sources
    assert.equal((await viaMqtt({ id: "tb-lk", password: loginPassword("tb-lk", s.bytes, "s", 5) })).code, 0);
    assert.ok((await viaRadius({ identity: "tb-lk", password: hotspot(s.bytes, "tb-lk") })).ok);
    const lockouts = await t.cloud.registry.auditLog(10, "tb-lk", { action: "login.lockout" });
    assert.deepEqual(lockouts.map((r) => r.actor).sort(), ["mqtt", "radius"], "a RADIUS lockout is audited like an MQTT one");
  });

  it("lotRate_BogusTemporaryLogins_DoNotStarveARealFirstBoot", async function () {
    const limited = await startTestCloud({ limits: { login: { perLot: { burst: 2, perSecond: 0.001 } } } });
    try {
      const lot = await limited.cloud.services.createProvisioningKey({ lot: "tb-starve" });
      for (let i = 0; i < 6; i++) {
        const id = `tb-fb-${i % 2}`;
        assert.equal((await connectDevice(limited.cloud, { id, password: loginPassword(id, newSecret().bytes, "t", i + 1) })).code, 4);
      }
      const first = await connectDevice(limited.cloud, { id: "tb-fb-0", password: loginPassword("tb-fb-0", temporarySecret(lot.provisioningKeyHex, "tb-fb-0"), "t", 1) });
      assert.ok(first.client, "six bogus temporary logins spent none of the lot's budget of 2");
      await end(first.client);
    } finally {
      await limited.stop();
    }
  });

  it("rate_OneLimiterForBothFrontEnds_SpentOnlyByProvenCredentials", async function () {
    const limited = await startTestCloud({ radiusPort: 0, limits: { login: { perDevice: { burst: 2, perSecond: 0.001 } } } });
    try {
      await limited.cloud.services.addNasClient({ name: "ap-rate", address: "127.0.0.1", secret: NAS_SECRET });
      const s = newSecret();
      await limited.cloud.services.registerSecretDevice({ deviceId: "tb-rate", secretHex: s.hex });
      const radius = (password: string) => authenticate((request) => limited.cloud.radius!.handle(request, { address: "127.0.0.1", port: 41_001 }), {
        nasSecret: NAS_SECRET, method: "ttls", identity: "tb-rate", password, caPem: limited.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME,
      });
      for (let i = 0; i < 5; i++) assert.equal((await radius(hotspot(newSecret().bytes, "tb-rate"))).reason, "BAD_PROOF");
      assert.ok((await radius(hotspot(s.bytes, "tb-rate"))).ok, "wrong passwords spent nothing");
      const first = await connectDevice(limited.cloud, { id: "tb-rate", password: loginPassword("tb-rate", s.bytes, "s", 1) });
      assert.ok(first.client, "second verified login of the burst");
      await end(first.client);
      const third = await connectDevice(limited.cloud, { id: "tb-rate", password: loginPassword("tb-rate", s.bytes, "s", 2) });
      assert.equal(third.code, 3, "the RADIUS login and the MQTT login spent one budget");
      assert.equal((await radius(hotspot(s.bytes, "tb-rate"))).reason, "RATE_LIMITED");
    } finally {
      await limited.stop();
    }
  });
});
