/*
 * startCloud / MQTT login: each login kind, every refusal with its CONNACK code
 * and recorded failure, replay protection and revocation of a live session.
 */
import assert from "node:assert/strict";
import { CONNACK } from "../modules/protocol";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import {
  closed, connectDevice, end, loginPassword, mustConnect, newSecret, startTestCloud, temporarySecret, type TestCloud,
} from "./cloud-helpers";
import { forEachBackend } from "./support/backends";

forEachBackend("cloud login (startCloud, verifyLogin over MQTT/TLS)", function () {
  let t: TestCloud;
  let certs: { certificatePem: string; privateKeyPem: string };
  const secret = newSecret();

  before(async function () {
    t = await startTestCloud();
    await t.cloud.services.registerSecretDevice({ deviceId: "sec-1", secretHex: secret.hex });
    await t.cloud.services.createProductCa({ name: "prod-ca" });
    certs = await t.cloud.services.issueDeviceCertificate({ caName: "prod-ca", deviceId: "cert-1" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "cert-1", certificatePem: certs.certificatePem });
  });
  after(async () => t?.stop());

  it("verifyLogin_SecretDevice_Accepted", async function () {
    const client = await mustConnect(t.cloud, { id: "sec-1", password: loginPassword("sec-1", secret.bytes, "s", 1) });
    await end(client);
    const device = await t.cloud.services.getDevice({ deviceId: "sec-1" });
    assert.ok(device.lastSeen);
  });

  it("verifyLogin_TemporaryDevice_AcceptedAndRowCreated", async function () {
    const lot = await t.cloud.services.createProvisioningKey({ lot: "lot-a", allowlist: ["tmp-1"] });
    const temp = temporarySecret(lot.provisioningKeyHex, "tmp-1");
    const client = await mustConnect(t.cloud, { id: "tmp-1", password: loginPassword("tmp-1", temp, "t", 0) });
    await end(client);
    const device = await t.cloud.services.getDevice({ deviceId: "tmp-1" });
    assert.equal(device.kind, "temporary");
    assert.equal(device.lot, "lot-a");
    assert.equal(device.generation, 0);
  });

  it("verifyLogin_CertificateDevice_RsaAccepted", async function () {
    const client = await mustConnect(t.cloud, { id: "cert-1", cert: certs.certificatePem, key: certs.privateKeyPem });
    await end(client);
  });

  it("verifyLogin_CertificateDevice_EcRegisteredByCaAccepted", async function () {
    const ec = await t.cloud.services.issueDeviceCertificate({ caName: "prod-ca", deviceId: "cert-ec", keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "cert-ec", caName: "prod-ca" });
    const client = await mustConnect(t.cloud, { id: "cert-ec", cert: ec.certificatePem, key: ec.privateKeyPem });
    await end(client);
  });

  it("verifyLogin_WrongSecret_Connack4AndBadProofRecorded", async function () {
    const outcome = await connectDevice(t.cloud, { id: "sec-1", password: loginPassword("sec-1", newSecret().bytes, "s", 50) });
    assert.equal(outcome.code, CONNACK.badCredentials);
    const device = await t.cloud.services.getDevice({ deviceId: "sec-1" });
    assert.equal(device.lastFailure, "BAD_PROOF");
    const audit = await t.cloud.services.auditLog({ deviceId: "sec-1", limit: 1 });
    assert.equal(audit[0].action, "login.refused");
  });

  it("verifyLogin_UnknownDevice_Connack4", async function () {
    const outcome = await connectDevice(t.cloud, { id: "nobody-1", password: loginPassword("nobody-1", secret.bytes, "s", 1) });
    assert.equal(outcome.code, CONNACK.badCredentials);
  });

  it("verifyLogin_ClientIdNotUsername_Connack4", async function () {
    const outcome = await connectDevice(t.cloud, { id: "sec-1", username: "other", password: loginPassword("sec-1", secret.bytes, "s", 60) });
    assert.equal(outcome.code, CONNACK.badCredentials);
  });

  it("verifyLogin_MalformedPassword_Connack4", async function () {
    const outcome = await connectDevice(t.cloud, { id: "sec-1", password: "v1:s:x:notaproof" });
    assert.equal(outcome.code, CONNACK.badCredentials);
  });

  it("verifyLogin_ReplayedCounter_Connack4", async function () {
    const password = loginPassword("sec-1", secret.bytes, "s", 100);
    await end(await mustConnect(t.cloud, { id: "sec-1", password }));
    const replay = await connectDevice(t.cloud, { id: "sec-1", password });
    assert.equal(replay.code, CONNACK.badCredentials);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "sec-1" })).lastFailure, "REPLAY");
    const older = await connectDevice(t.cloud, { id: "sec-1", password: loginPassword("sec-1", secret.bytes, "s", 99) });
    assert.equal(older.code, CONNACK.badCredentials);
    await end(await mustConnect(t.cloud, { id: "sec-1", password: loginPassword("sec-1", secret.bytes, "s", 101) }));
  });

  it("verifyLogin_TemporaryIdNotInAllowlist_Connack5", async function () {
    const lot = await t.cloud.services.createProvisioningKey({ lot: "lot-b", allowlist: ["tmp-b1"] });
    const outcome = await connectDevice(t.cloud, { id: "tmp-b2", password: loginPassword("tmp-b2", temporarySecret(lot.provisioningKeyHex, "tmp-b2"), "t", 0) });
    assert.equal(outcome.code, CONNACK.notAuthorized);
    await assert.rejects(t.cloud.services.getDevice({ deviceId: "tmp-b2" }), { code: "DEVICE_NOT_FOUND" });
  });

  it("verifyLogin_TemporaryWrongKey_Connack4", async function () {
    await t.cloud.services.createProvisioningKey({ lot: "lot-c" });
    const outcome = await connectDevice(t.cloud, { id: "tmp-c1", password: loginPassword("tmp-c1", newSecret().bytes, "t", 0) });
    assert.equal(outcome.code, CONNACK.badCredentials);
  });

  it("verifyLogin_RetiredLot_Connack5", async function () {
    const lot = await t.cloud.services.createProvisioningKey({ lot: "lot-d" });
    const temp = temporarySecret(lot.provisioningKeyHex, "tmp-d1");
    await end(await mustConnect(t.cloud, { id: "tmp-d1", password: loginPassword("tmp-d1", temp, "t", 0) }));
    await t.cloud.services.retireProvisioningKey({ lot: "lot-d" });
    const outcome = await connectDevice(t.cloud, { id: "tmp-d1", password: loginPassword("tmp-d1", temp, "t", 1) });
    assert.equal(outcome.code, CONNACK.notAuthorized);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "tmp-d1" })).lastFailure, "LOT_RETIRED");
  });

  it("verifyLogin_CertificateFromUnregisteredCa_Refused", async function () {
    const rogueCa = await createCa("rogue CA");
    const rogue = await issueCertificate({ caCertPem: rogueCa.certPem, caKeyDer: rogueCa.keyDer, commonName: "cert-1", usage: "client", dnsNames: ["cert-1"] });
    const asRegistered = await connectDevice(t.cloud, { id: "cert-1", cert: rogue.certPem, key: privateKeyPem(rogue.keyDer) });
    assert.equal(asRegistered.code, CONNACK.badCredentials);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "cert-1" })).lastFailure, "UNKNOWN_CA");
    const rogueNew = await issueCertificate({ caCertPem: rogueCa.certPem, caKeyDer: rogueCa.keyDer, commonName: "cert-new", usage: "client" });
    const unregistered = await connectDevice(t.cloud, { id: "cert-new", cert: rogueNew.certPem, key: privateKeyPem(rogueNew.keyDer) });
    assert.equal(unregistered.code, CONNACK.badCredentials);
  });

  it("verifyLogin_CertificateOfAnotherDevice_Refused", async function () {
    const outcome = await connectDevice(t.cloud, { id: "cert-ec", cert: certs.certificatePem, key: certs.privateKeyPem });
    assert.equal(outcome.code, CONNACK.badCredentials);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "cert-ec" })).lastFailure, "CERT_MISMATCH");
  });

  it("verifyLogin_CertificateDeviceWithoutCertificate_Refused", async function () {
    const outcome = await connectDevice(t.cloud, { id: "cert-1", password: loginPassword("cert-1", secret.bytes, "s", 1) });
    assert.equal(outcome.code, CONNACK.badCredentials);
  });

  it("revokeDevice_LiveSessionClosedAndNextLoginConnack5", async function () {
    const other = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "sec-rev", secretHex: other.hex });
    const client = await mustConnect(t.cloud, { id: "sec-rev", password: loginPassword("sec-rev", other.bytes, "s", 1) });
    const gone = closed(client);
    await t.cloud.services.revokeDevice({ deviceId: "sec-rev" });
    await gone;
    const outcome = await connectDevice(t.cloud, { id: "sec-rev", password: loginPassword("sec-rev", other.bytes, "s", 2) });
    assert.equal(outcome.code, CONNACK.notAuthorized);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "sec-rev" })).lastFailure, "REVOKED");
  });

  it("revokeProductCa_CertificateDeviceConnack5", async function () {
    await t.cloud.services.createProductCa({ name: "ca-rev" });
    const c = await t.cloud.services.issueDeviceCertificate({ caName: "ca-rev", deviceId: "cert-rev" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "cert-rev", certificatePem: c.certificatePem });
    const client = await mustConnect(t.cloud, { id: "cert-rev", cert: c.certificatePem, key: c.privateKeyPem });
    const gone = closed(client);
    await t.cloud.services.revokeProductCa({ name: "ca-rev" });
    await gone;
    const outcome = await connectDevice(t.cloud, { id: "cert-rev", cert: c.certificatePem, key: c.privateKeyPem });
    assert.equal(outcome.code, CONNACK.notAuthorized);
  });

  it("revokeProductCa_WhileTheLoginIsDecided_NoSessionStaysOpen", async function () {
    await t.cloud.services.createProductCa({ name: "ca-race" });
    const c = await t.cloud.services.issueDeviceCertificate({ caName: "ca-race", deviceId: "cert-race" });
    await t.cloud.services.registerCertificateDevice({ deviceId: "cert-race", certificatePem: c.certificatePem });
    // hold the decision after its certificate check passed (the login's last write), revoke the CA meanwhile
    const registry = t.cloud.registry;
    const touch = registry.touch.bind(registry);
    let held!: () => void;
    const reached = new Promise<void>((resolve) => (held = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    registry.touch = async (id: string) => {
      if (id === "cert-race") {
        held();
        await released;
      }
      return touch(id);
    };
    try {
      const outcome = connectDevice(t.cloud, { id: "cert-race", cert: c.certificatePem, key: c.privateKeyPem });
      await reached;
      await t.cloud.services.revokeProductCa({ name: "ca-race" });
      release();
      const result = await outcome;
      // refused, or closed at once: a session that stays open fails here ("still connected")
      if (result.client) await closed(result.client);
    } finally {
      registry.touch = touch;
    }
  });
});
