/*
 * Device certificates as an attacker would try them, over both front ends:
 * each forged or revoked certificate is refused by the MQTT login (mTLS) and
 * by EAP-TLS (the RADIUS server's in-process handle) with the same reason,
 * decided by the one check in cloud/auth/certificate.ts.
 * Attacks: a CA:TRUE certificate whose CN is the device id, a certificate with
 * extendedKeyUsage serverAuth only, an old certificate after a re-issue once
 * revoked by serial, one revoked by fingerprint, one listed in an imported CRL
 * (PEM and DER). Also: a CRL that does not verify changes nothing, revocation
 * closes the live session, CLI and HTTP API paths, audit rows.
 */
import { strict as assert } from "node:assert";
import { X509Certificate, webcrypto, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "../cloud/reflect-metadata";
import * as x509 from "@peculiar/x509";
import { authenticate } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { runCli } from "../cloud/cli";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { RadiusServer } from "../cloud/radius/server";
import { privateKeyPem } from "../cloud/pki";
import { closed, connectDevice, end, mustConnect, startTestCloud, testAdminApi, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "certificates-test-nas-secret";
const SIGNING = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
const RSA = { ...SIGNING, publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
const JSON_HEADERS = { "content-type": "application/json" };
x509.cryptoProvider.set(webcrypto as never);

interface Forged {
  certificatePem: string;
  privateKeyPem: string;
}

/** A certificate for `cn` signed by the CA's key, with the extensions the attacker chooses. */
async function forge(caPem: string, caKeyDer: Uint8Array, cn: string, extensions: x509.Extension[]): Promise<Forged> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"]) as webcrypto.CryptoKeyPair;
  const ca = new x509.X509Certificate(caPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8).toString("hex").replace(/^./, "5"),
    subject: [{ CN: [cn] }], issuer: ca.subject,
    notBefore: new Date(Date.now() - 3_600_000), notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: SIGNING, publicKey: keys.publicKey as never,
    signingKey: (await webcrypto.subtle.importKey("pkcs8", caKeyDer, SIGNING, false, ["sign"])) as never,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: cn }]), ...extensions],
  });
  return { certificatePem: cert.toString("pem"), privateKeyPem: privateKeyPem(new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey))) };
}

/** A CRL of the CA listing `serials`, signed by `keyDer` (the CA's key unless the test forges). */
async function crl(caPem: string, keyDer: Uint8Array, serials: string[], crlNumber = 1): Promise<x509.X509Crl> {
  const ca = new x509.X509Certificate(caPem);
  return x509.X509CrlGenerator.create({
    issuer: ca.subject, thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + 86_400_000),
    signingAlgorithm: SIGNING, signingKey: (await webcrypto.subtle.importKey("pkcs8", keyDer, SIGNING, false, ["sign"])) as never,
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(Date.now() - 1000) })),
    extensions: [new x509.Extension("2.5.29.20", false, new Uint8Array([0x02, 0x01, crlNumber]))],
  });
}

function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, "");
}

describe("cloud certificates: end-entity rule and revocation, same on MQTT and EAP-TLS", function () {
  this.timeout(60_000);
  let t: TestCloud;
  let radius: RadiusServer;
  let caPem: string;
  let caKeyDer: Uint8Array;
  let clock = 1_000_000;

  before(async () => {
    t = await startTestCloud();
    const tls = await radiusIdentity(t.cloud.registry);
    await t.cloud.services.addNasClient({ name: "ap-local", address: "127.0.0.1", secret: NAS_SECRET });
    radius = new RadiusServer({
      registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, now: () => (clock += 1000),
      deviceRate: { burst: 1000, perSecond: 1000 },
    });
    const ca = await t.cloud.services.createProductCa({ name: "lamps" });
    caPem = ca.certificatePem;
    caKeyDer = t.cloud.registry.caKey((await t.cloud.registry.ca("lamps"))!)!;
  });

  after(async () => t?.stop());

  /** Registers `id` under the CA (any certificate of the CA naming the id). */
  async function register(id: string): Promise<void> {
    await t.cloud.services.registerCertificateDevice({ deviceId: id, caName: "lamps" });
  }

  /** The MQTT refusal of `id` with `cert` (CONNACK code and the recorded failure). */
  async function overMqtt(id: string, cert: Forged): Promise<{ code: number | undefined; failure: string | null }> {
    const outcome = await connectDevice(t.cloud, { id, cert: cert.certificatePem, key: cert.privateKeyPem });
    await end(outcome.client);
    return { code: outcome.client ? 0 : outcome.code, failure: (await t.cloud.registry.device(id))!.last_failure };
  }

  /** The EAP-TLS outcome of `id` with `cert` (the Access-Reject's Reply-Message). */
  async function overRadius(id: string, cert: Forged): Promise<{ ok: boolean; reason: string | undefined }> {
    const result = await authenticate((request) => radius.handle(request, { address: "127.0.0.1", port: 41000 }), {
      nasSecret: NAS_SECRET, method: "tls", identity: id, certPem: cert.certificatePem, keyPem: cert.privateKeyPem,
      caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME,
    });
    return { ok: result.ok, reason: result.reason };
  }

  async function refusedBoth(id: string, cert: Forged, reason: string, connack: number): Promise<void> {
    const mqtt = await overMqtt(id, cert);
    assert.equal(mqtt.code, connack, `MQTT CONNACK for ${id}`);
    assert.equal(mqtt.failure, reason, `MQTT failure for ${id}`);
    const eap = await overRadius(id, cert);
    assert.equal(eap.ok, false, `EAP-TLS accepted ${id}`);
    assert.equal(eap.reason, reason, `EAP-TLS reason for ${id}`);
  }

  async function acceptedBoth(id: string, cert: Forged): Promise<void> {
    await end(await mustConnect(t.cloud, { id, cert: cert.certificatePem, key: cert.privateKeyPem }));
    const eap = await overRadius(id, cert);
    assert.ok(eap.ok, eap.reason);
  }

  it("checkDeviceCertificate_GenuineCertificate_AcceptedOnBoth (the control)", async () => {
    await register("cert-ok");
    await acceptedBoth("cert-ok", await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-ok" }));
  });

  it("checkDeviceCertificate_CaTrueWithCnDeviceId_RefusedOnBoth_CERT_USAGE", async () => {
    await register("cert-ca");
    const forged = await forge(caPem, caKeyDer, "cert-ca", [new x509.BasicConstraintsExtension(true, undefined, true)]);
    await refusedBoth("cert-ca", forged, "CERT_USAGE", 4);
  });

  it("checkDeviceCertificate_EkuServerAuthOnly_RefusedOnBoth_CERT_USAGE; clientAuth among others or no EKU accepted", async () => {
    await register("cert-eku");
    await refusedBoth("cert-eku", await forge(caPem, caKeyDer, "cert-eku", [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])]), "CERT_USAGE", 4);
    await acceptedBoth("cert-eku", await forge(caPem, caKeyDer, "cert-eku", [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])]));
    await acceptedBoth("cert-eku", await forge(caPem, caKeyDer, "cert-eku", [new x509.BasicConstraintsExtension(false, undefined, true)]));
  });

  it("registerCertificateDevice_PinnedCaTrueCertificate_RefusedCERT_INVALID", async () => {
    const forged = await forge(caPem, caKeyDer, "cert-pin-ca", [new x509.BasicConstraintsExtension(true, undefined, true)]);
    await assert.rejects(t.cloud.services.registerCertificateDevice({ deviceId: "cert-pin-ca", certificatePem: forged.certificatePem }), /CERT_INVALID/);
    assert.equal((await t.cloud.registry.device("cert-pin-ca")), undefined);
  });

  it("revokeCertificate_OldCertificateAfterReissue_BySerial_RefusedOnBoth_CERT_REVOKED_NewOneAccepted_LiveSessionClosed", async () => {
    await register("cert-old");
    const old = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-old" });
    const live = await mustConnect(t.cloud, { id: "cert-old", cert: old.certificatePem, key: old.privateKeyPem });
    const renewed = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-old" });
    assert.equal(old.serial, serialOf(old.certificatePem));
    const result = await t.cloud.services.revokeCertificate({ caName: "lamps", serial: old.serial.toUpperCase().replace(/(..)(?!$)/g, "$1:"), reason: "re-issued" });
    assert.equal(result.alreadyRevoked, false);
    assert.equal(result.revoked.serial, old.serial);
    await closed(live);
    await refusedBoth("cert-old", old, "CERT_REVOKED", 5);
    await acceptedBoth("cert-old", renewed);
    const audit = await t.cloud.registry.auditLog(10, undefined, { action: "certificate.revoke" });
    assert.ok(audit.some((r) => r.detail === `ca=lamps serial=${old.serial} reason=re-issued`), JSON.stringify(audit));
    assert.equal((await t.cloud.services.revokeCertificate({ caName: "lamps", serial: old.serial })).alreadyRevoked, true);
  });

  it("revokeCertificate_ByFingerprint_RefusedOnBoth_CERT_REVOKED", async () => {
    await register("cert-fp");
    const cert = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-fp" });
    await t.cloud.services.revokeCertificate({ fingerprint: cert.fingerprint });
    await refusedBoth("cert-fp", cert, "CERT_REVOKED", 5);
  });

  it("revokeCertificate_BadInput_InvalidInputAndNothingStored", async () => {
    const before = (await t.cloud.services.registry.revokedCertificates()).length;
    await assert.rejects(t.cloud.services.revokeCertificate({ caName: "lamps", serial: "xyz" }), /INVALID_INPUT/);
    await assert.rejects(t.cloud.services.revokeCertificate({ caName: "lamps", serial: "ab".repeat(21) }), /INVALID_INPUT/);
    await assert.rejects(t.cloud.services.revokeCertificate({ fingerprint: "00" }), /INVALID_INPUT/);
    await assert.rejects(t.cloud.services.revokeCertificate({ caName: "nope", serial: "01" }), /CA_NOT_FOUND/);
    assert.equal((await t.cloud.services.registry.revokedCertificates()).length, before);
  });

  it("importCrl_PemAndDer_ListedCertificatesRefusedOnBoth_CERT_REVOKED_Audited", async () => {
    await register("cert-crl1");
    await register("cert-crl2");
    const one = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-crl1" });
    const two = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-crl2" });
    await acceptedBoth("cert-crl1", one);
    const pem = await crl(caPem, caKeyDer, [one.serial], 1);
    const imported = await t.cloud.services.importCrl({ caName: "lamps", crlPem: pem.toString("pem") });
    assert.deepEqual([imported.entries, imported.added, imported.crlNumber], [1, 1, "1"]);
    await refusedBoth("cert-crl1", one, "CERT_REVOKED", 5);
    await acceptedBoth("cert-crl2", two);
    const der = await crl(caPem, caKeyDer, [one.serial, two.serial], 2);
    const again = await t.cloud.services.importCrl({ caName: "lamps", crlDerBase64: Buffer.from(der.rawData).toString("base64") });
    assert.deepEqual([again.entries, again.added], [2, 1]);
    await refusedBoth("cert-crl2", two, "CERT_REVOKED", 5);
    const audit = await t.cloud.registry.auditLog(10, undefined, { action: "ca.crl-import" });
    assert.deepEqual(audit.map((r) => r.detail), ["ca=lamps crlNumber=2 entries=2 new=1", "ca=lamps crlNumber=1 entries=1 new=1"]);
  });

  it("importCrl_NotSignedByTheCaKey_OrOtherIssuer_OrGarbage_CERT_INVALID_NothingRevoked", async () => {
    await register("cert-crl3");
    const cert = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-crl3" });
    const other = await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"]) as webcrypto.CryptoKeyPair;
    const otherKey = new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", other.privateKey));
    const forgedCrl = await crl(caPem, otherKey, [cert.serial], 9);
    await assert.rejects(t.cloud.services.importCrl({ caName: "lamps", crlPem: forgedCrl.toString("pem") }), /CERT_INVALID.*does not verify/);
    await t.cloud.services.createProductCa({ name: "other" });
    const otherCa = (await t.cloud.registry.ca("other"))!;
    const foreign = await crl(otherCa.cert_pem, t.cloud.registry.caKey(otherCa)!, [cert.serial]);
    await assert.rejects(t.cloud.services.importCrl({ caName: "lamps", crlPem: foreign.toString("pem") }), /CERT_INVALID.*issuer/);
    await assert.rejects(t.cloud.services.importCrl({ caName: "lamps", crlDerBase64: Buffer.from("not a crl").toString("base64") }), /CERT_INVALID/);
    await assert.rejects(t.cloud.services.importCrl({ caName: "lamps", crlPem: "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n" }), /CERT_INVALID/);
    await acceptedBoth("cert-crl3", cert);
  });

  it("httpApi_RevokeListAndImportCrl", async () => {
    await register("cert-http");
    const cert = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "cert-http" });
    const api = testAdminApi(t.cloud.services);
    const revoked = await api.inject({ method: "POST", url: "/v1/certificates/revoke", headers: JSON_HEADERS, body: JSON.stringify({ caName: "lamps", serial: cert.serial }) });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await refusedBoth("cert-http", cert, "CERT_REVOKED", 5);
    const list = await api.inject({ method: "GET", url: "/v1/certificates/revoked?caName=lamps" });
    assert.ok((list.body as { revoked: { serial: string }[] }).revoked.some((r) => r.serial === cert.serial));
    const der = await crl(caPem, caKeyDer, ["0abc"], 3);
    const imported = await api.inject({ method: "POST", url: "/v1/cas/lamps/crl", headers: JSON_HEADERS, body: JSON.stringify({ crlDerBase64: Buffer.from(der.rawData).toString("base64") }) });
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    assert.equal((imported.body as { added: number }).added, 1);
    const bad = await api.inject({ method: "POST", url: "/v1/certificates/revoke", headers: JSON_HEADERS, body: JSON.stringify({ fingerprint: "zz" }) });
    assert.equal(bad.status, 400);
  });

  it("runCli_CertRevokeAndCaImportCrl", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wcm-cert-cli-"));
    const env = { WCM_MASTER_KEY: randomBytes(32).toString("hex"), WCM_DATA: join(dir, "data") };
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
    assert.equal(await runCli(["init"], env, io), 0);
    assert.equal(await runCli(["ca", "create", "cli-ca"], env, io), 0);
    const ca = JSON.parse(lines.at(-1)!) as { certificatePem: string };
    assert.equal(await runCli(["cert", "issue", "cli-ca", "cli-dev"], env, io), 0);
    const issued = JSON.parse(lines.at(-1)!) as { serial: string; fingerprint: string };
    assert.equal(await runCli(["cert", "revoke", "--ca", "cli-ca", "--serial", issued.serial], env, io), 0);
    assert.equal(await runCli(["cert", "revoke", "--sha256", issued.fingerprint, "--reason", "leaked"], env, io), 0);
    assert.equal(await runCli(["cert", "revoke", "--serial", "01"], env, io), 2);
    // the CLI's registry is its own: sign a CRL with its CA key read back through the service layer's registry
    const { Registry } = await import("../cloud/registry");
    const registry = await Registry.open(env.WCM_DATA, Buffer.from(env.WCM_MASTER_KEY, "hex"));
    const key = registry.caKey((await registry.ca("cli-ca"))!)!;
    await registry.close();
    const list = await crl(ca.certificatePem, key, ["77"], 4);
    writeFileSync(join(dir, "ca.crl"), Buffer.from(list.rawData));
    assert.equal(await runCli(["ca", "import-crl", "cli-ca", join(dir, "ca.crl")], env, io), 0);
    assert.equal((JSON.parse(lines.at(-1)!) as { added: number }).added, 1);
    assert.equal(await runCli(["cert", "revoked", "--ca", "cli-ca"], env, io), 0);
    assert.deepEqual((JSON.parse(lines.at(-1)!) as { serial: string }[]).map((r) => r.serial).sort(), ["77", issued.serial].sort());
  });
});
