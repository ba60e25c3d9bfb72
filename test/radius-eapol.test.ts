/*
 * The RADIUS server against a stock supplicant: wpa_supplicant's eapol_test
 * (Debian package eapoltest, installed by .ci/run) acting as access point and
 * device at once. EAP-TTLS/PAP for secret, temporary and pending-secret
 * devices, EAP-TLS with RSA and EC keys, the MPPE keys checked by eapol_test
 * against its own MSK, fragmentation both ways (300-byte fragments), and the
 * refusals: wrong password, revoked, unknown, temporary after commit, wrong NAS
 * secret (no answer), unregistered CA, wrong server name on the device side.
 * Skipped with a message when eapol_test is not installed.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { RadiusServer } from "../cloud/radius/server";
import { nodeDigest } from "../cloud/node-digest";
import { deriveHotspotPassword } from "../modules/derive";
import { newSecret, startTestCloud, temporarySecret, type TestCloud } from "./cloud-helpers";
import { hasEapolTest } from "../bench/radius-bench";

const NAS_SECRET = "eapol-test-shared-secret";

interface EapolResult {
  code: number;
  output: string;
}

/** Runs eapol_test without blocking the event loop (the server runs in this process). */
function eapolTest(conf: string, port: number, options: { secret?: string; timeoutS?: number; args?: string[]; reauths?: number } = {}): Promise<EapolResult> {
  const args = ["-c", conf, "-a", "127.0.0.1", "-p", String(port), "-s", options.secret ?? NAS_SECRET, `-r${options.reauths ?? 0}`, "-t", String(options.timeoutS ?? 10), ...(options.args ?? [])];
  return new Promise((resolve) => {
    execFile("eapol_test", args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0;
      if (process.env.EAPOL_DUMP) writeFileSync(`/tmp/eapol-${Date.now()}-${Math.random().toString(36).slice(2, 6)}.log`, stdout);
      resolve({ code, output: stdout });
    });
  });
}

function assertSuccess(result: EapolResult, rounds = 1): void {
  const tail = result.output.split("\n").slice(-15).join("\n");
  assert.equal(result.code, 0, `eapol_test failed:\n${tail}`);
  assert.match(result.output, /^SUCCESS$/m);
  assert.match(result.output, new RegExp(`MPPE keys OK: ${rounds} {2}mismatch: 0`), "the MS-MPPE keys match the MSK eapol_test derived, every round");
}

function assertFailure(result: EapolResult): void {
  assert.notEqual(result.code, 0);
  assert.match(result.output, /^FAILURE$/m);
}

describe("radius: eapol_test (stock wpa_supplicant)", function () {
  this.timeout(60_000);
  let t: TestCloud;
  let dir: string;
  let caFile: string;
  let port: number;
  const secretDevice = newSecret();
  let lotKeyHex: string;
  let productCa: string;

  before(async function () {
    if (!hasEapolTest()) {
      // CI installs it (.ci/run); a developer machine may not have it.
      console.log("      eapol_test not installed (apt-get install eapoltest): skipping the stock supplicant tests");
      this.skip();
    }
    t = await startTestCloud({ radiusPort: 0 });
    port = t.cloud.radiusPort!;
    dir = mkdtempSync(join(tmpdir(), "wcm-eapol-"));
    caFile = join(dir, "server-ca.pem");
    writeFileSync(caFile, t.cloud.serverCaPem);
    const services = t.cloud.services;
    await services.addNasClient({ name: "ap-test", address: "127.0.0.1", secret: NAS_SECRET });
    await services.registerSecretDevice({ deviceId: "lamp-s1", secretHex: secretDevice.hex });
    await services.registerSecretDevice({ deviceId: "lamp-revoked", secretHex: secretDevice.hex });
    await services.revokeDevice({ deviceId: "lamp-revoked" });
    const lot = await services.createProvisioningKey({ lot: "lot-1", allowlist: ["lamp-t1", "lamp-t2"] });
    lotKeyHex = lot.provisioningKeyHex;
    productCa = (await services.createProductCa({ name: "lamps" })).name;
  });

  after(async () => {
    await t?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function ttlsConf(name: string, identity: string, password: string, extra = ""): string {
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, `network={
  key_mgmt=WPA-EAP
  eap=TTLS
  identity="${identity}"
  anonymous_identity="anonymous@wcm"
  password="${password}"
  phase2="auth=PAP"
  ca_cert="${caFile}"
  domain_match="${RADIUS_SERVER_NAME}"
${extra}}
`);
    return file;
  }

  function tlsConf(name: string, identity: string, certPem: string, keyPem: string, extra = ""): string {
    const cert = join(dir, `${name}.cert.pem`);
    const key = join(dir, `${name}.key.pem`);
    writeFileSync(cert, certPem);
    writeFileSync(key, keyPem, { mode: 0o600 });
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, `network={
  key_mgmt=WPA-EAP
  eap=TLS
  identity="${identity}"
  ca_cert="${caFile}"
  client_cert="${cert}"
  private_key="${key}"
  domain_match="${RADIUS_SERVER_NAME}"
${extra}}
`);
    return file;
  }

  const password = (secret: Uint8Array, id: string) => deriveHotspotPassword(nodeDigest, secret, id);

  it("TTLS/PAP: a shared-secret device is accepted, with the MSK as MS-MPPE keys", async () => {
    const accepts = t.cloud.radius!.stats.accepts;
    assertSuccess(await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port));
    assert.equal(t.cloud.radius!.stats.accepts, accepts + 1);
  });

  it("TTLS/PAP: a temporary device (lot allowlist, no row yet) is accepted; nothing is written", async () => {
    assertSuccess(await eapolTest(ttlsConf("t1", "lamp-t1", password(temporarySecret(lotKeyHex, "lamp-t1"), "lamp-t1")), port));
    assert.equal((await t.cloud.registry.device("lamp-t1")), undefined);
  });

  it("TTLS/PAP: the pending issued secret is accepted without committing it", async () => {
    await t.cloud.services.rotateSecret({ deviceId: "lamp-s1" });
    const row = (await t.cloud.registry.device("lamp-s1"))!;
    const pending = t.cloud.registry.pendingSecret(row)!;
    assertSuccess(await eapolTest(ttlsConf("s1p", "lamp-s1", password(pending, "lamp-s1")), port));
    const after = (await t.cloud.registry.device("lamp-s1"))!;
    assert.equal(after.generation, 0);
    assert.equal(after.pending_generation, 1);
    assertSuccess(await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port));
  });

  it("TTLS/PAP: wrong password -> Access-Reject BAD_PROOF, recorded on the device and audited", async () => {
    assertFailure(await eapolTest(ttlsConf("bad", "lamp-s1", "not-the-password"), port));
    const view = await t.cloud.services.getDevice({ deviceId: "lamp-s1" });
    assert.equal(view.lastFailure, "BAD_PROOF");
    const audit = await t.cloud.registry.auditLog(5, "lamp-s1");
    assert.ok(audit.some((r) => r.actor === "radius" && r.action === "radius.refused" && r.detail?.startsWith("BAD_PROOF")));
  });

  it("TTLS/PAP: revoked device -> REVOKED; unknown device -> UNKNOWN_DEVICE", async () => {
    const before = { ...t.cloud.radius!.stats.reasons };
    assertFailure(await eapolTest(ttlsConf("rev", "lamp-revoked", password(secretDevice.bytes, "lamp-revoked")), port));
    assertFailure(await eapolTest(ttlsConf("unk", "lamp-nobody", password(secretDevice.bytes, "lamp-nobody")), port));
    assert.equal(t.cloud.radius!.stats.reasons.REVOKED, (before.REVOKED ?? 0) + 1);
    assert.equal(t.cloud.radius!.stats.reasons.UNKNOWN_DEVICE, (before.UNKNOWN_DEVICE ?? 0) + 1);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "lamp-revoked" })).lastFailure, "REVOKED");
  });

  it("TTLS/PAP: the temporary credential after commit -> TEMP_RETIRED; the permanent secret works", async () => {
    const registry = t.cloud.registry;
    assert.ok((await registry.insertTemporaryDevice("lamp-t2", "lot-1", 1)));
    const permanent = new Uint8Array(randomBytes(32));
    assert.ok((await registry.storePending("lamp-t2", permanent, 1, new Uint8Array(16), "test")));
    assert.ok((await registry.commitPending("lamp-t2", 1, "test")));
    assertFailure(await eapolTest(ttlsConf("t2", "lamp-t2", password(temporarySecret(lotKeyHex, "lamp-t2"), "lamp-t2")), port));
    assert.equal((await registry.device("lamp-t2"))!.last_failure, "TEMP_RETIRED");
    assertSuccess(await eapolTest(ttlsConf("t2p", "lamp-t2", password(permanent, "lamp-t2")), port));
  });

  it("EAP-TLS: certificate devices with RSA and EC keys are accepted", async () => {
    for (const keyType of ["rsa", "ec"] as const) {
      const id = `lamp-c-${keyType}`;
      const issued = await t.cloud.services.issueDeviceCertificate({ caName: productCa, deviceId: id, keyType });
      await t.cloud.services.registerCertificateDevice({ deviceId: id, certificatePem: issued.certificatePem });
      assertSuccess(await eapolTest(tlsConf(id, id, issued.certificatePem, issued.privateKeyPem), port));
    }
  });

  it("EAP-TLS: a certificate from an unregistered CA -> UNKNOWN_CA (after a Nak from TTLS to TLS)", async () => {
    const rogue = await createCa("rogue CA");
    const leaf = await issueCertificate({ caCertPem: rogue.certPem, caKeyDer: rogue.keyDer, commonName: "lamp-rogue", usage: "client", dnsNames: ["lamp-rogue"] });
    const before = t.cloud.radius!.stats.reasons.UNKNOWN_CA ?? 0;
    assertFailure(await eapolTest(tlsConf("rogue", "lamp-rogue", leaf.certPem, privateKeyPem(leaf.keyDer)), port));
    assert.equal(t.cloud.radius!.stats.reasons.UNKNOWN_CA, before + 1);
  });

  it("EAP-TLS: the old certificate after a re-issue, revoked by serial -> CERT_REVOKED; the new one is accepted", async () => {
    const id = "lamp-c-old";
    await t.cloud.services.registerCertificateDevice({ deviceId: id, caName: productCa });
    const old = await t.cloud.services.issueDeviceCertificate({ caName: productCa, deviceId: id });
    const renewed = await t.cloud.services.issueDeviceCertificate({ caName: productCa, deviceId: id });
    assertSuccess(await eapolTest(tlsConf("old-before", id, old.certificatePem, old.privateKeyPem), port));
    await t.cloud.services.revokeCertificate({ caName: productCa, serial: old.serial });
    const before = t.cloud.radius!.stats.reasons.CERT_REVOKED ?? 0;
    const refused = await eapolTest(tlsConf("old-after", id, old.certificatePem, old.privateKeyPem), port);
    assertFailure(refused);
    // RFC 5216 section 2.1.3: the alert came in an EAP-Request before the EAP-Failure
    assert.match(refused.output, /SSL3 alert: read \(remote end reported an error\):fatal:certificate revoked/);
    assert.equal(t.cloud.radius!.stats.reasons.CERT_REVOKED, before + 1);
    assert.equal((await t.cloud.registry.device(id))!.last_failure, "CERT_REVOKED");
    assertSuccess(await eapolTest(tlsConf("renewed", id, renewed.certificatePem, renewed.privateKeyPem), port));
  });

  it("a wrong NAS secret gets no answer (Message-Authenticator fails): eapol_test times out", async () => {
    const dropped = t.cloud.radius!.stats.badAuthenticator;
    const result = await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port, { secret: "some-other-shared-secret", timeoutS: 2 });
    assert.notEqual(result.code, 0);
    assert.doesNotMatch(result.output, /Access-Challenge/);
    assert.ok(t.cloud.radius!.stats.badAuthenticator > dropped);
  });

  it("the device refuses a server certificate without its expected name (domain_match)", async () => {
    const file = join(dir, "wrong-name.conf");
    writeFileSync(file, `network={
  key_mgmt=WPA-EAP
  eap=TTLS
  identity="lamp-s1"
  anonymous_identity="anonymous@wcm"
  password="${password(secretDevice.bytes, "lamp-s1")}"
  phase2="auth=PAP"
  ca_cert="${caFile}"
  domain_match="radius.example.com"
}
`);
    const result = await eapolTest(file, port, { timeoutS: 5 });
    assertFailure(result);
    assert.match(result.output, /Domain mismatch|domain_match|CTRL-EVENT-EAP-TLS-CERT-ERROR/);
  });

  it("EAP-Key-Name (-e): the Accept carries the EAP Session-Id eapol_test derived (RFC 5247)", async () => {
    const result = await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port, { args: ["-e"] });
    assertSuccess(result);
    assert.match(result.output, /Attribute 102 \(EAP-Key-Name\) length=67/);
    assert.match(result.output, /Locally derived EAP Session-Id matches EAP-Key-Name from server/);
  });

  it("policy in the Access-Accept: a profile's Filter-Id, WISPr bandwidth and Session-Timeout for its SSID, the server default elsewhere", async () => {
    await t.cloud.network.setHotspotProfiles({ profiles: [{
      name: "zipkey", ssid: "ZipKey", radius: { serverName: RADIUS_SERVER_NAME, ca: t.cloud.serverCaPem },
      policy: { domains: ["cloud.example.com"], bandwidth: { upKbps: 256, downKbps: 2048 }, sessionTimeoutS: 900 },
    }] });
    const conf = ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1"));
    // eapol_test -N adds the AP's Called-Station-Id "MAC:SSID"; it prints each attribute of the Accept (radius_msg_dump)
    const onProfile = await eapolTest(conf, port, { args: ["-N", "30:s:02-00-00-00-00-01:ZipKey"] });
    assertSuccess(onProfile);
    const accept = onProfile.output.slice(onProfile.output.lastIndexOf("Access-Accept"));
    // eapol_test's dictionary has no name for Filter-Id and prints no value: 12 = 2 + "wcm-zipkey" (the value is checked by the simulated AP's test)
    assert.match(accept, /Attribute 11 \([^)]*\) length=12\n/);
    assert.match(accept, /Attribute 27 \(Session-Timeout\) length=6\s+Value: 900\b/);
    // Vendor-Specific 14122 (0x372a): type 7 Max-Up 256,000 bit/s (0x0003e800), type 8 Max-Down 2,048,000 (0x001f4000)
    const vsas = [...accept.matchAll(/Attribute 26 \(Vendor-Specific\) length=12\s+Value: ([0-9a-f ]+)/g)].map((m) => m[1].trim().replace(/ /g, ""));
    assert.ok(vsas.includes("0000372a07060003e800"), `WISPr-Bandwidth-Max-Up in ${vsas.join(", ")}`);
    assert.ok(vsas.includes("0000372a0806001f4000"), `WISPr-Bandwidth-Max-Down in ${vsas.join(", ")}`);
    const elsewhere = await eapolTest(conf, port, { args: ["-N", "30:s:02-00-00-00-00-01:OtherNet"] });
    assertSuccess(elsewhere);
    const plain = elsewhere.output.slice(elsewhere.output.lastIndexOf("Access-Accept"));
    assert.doesNotMatch(plain, /Attribute 11 |Attribute 26 \(Vendor-Specific\) length=12/);
    assert.match(plain, /Attribute 27 \(Session-Timeout\) length=6\s+Value: 3600\b/);
    await t.cloud.network.setHotspotProfiles({ profiles: [] });
  });

  it("Framed-MTU 300 from the NAS (-N 12:d:300): every EAP-TLS packet from the server fits in it", async () => {
    const result = await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port, { args: ["-N", "12:d:300"] });
    assertSuccess(result);
    // wpa_supplicant logs each received EAP-TTLS packet's length (EAP header included)
    const sizes = [...result.output.matchAll(/SSL: Received packet\(len=(\d+)\)/g)].map((m) => Number(m[1]));
    assert.ok(sizes.length >= 3, `the server's flight came in fragments: ${sizes.join(", ")}`);
    for (const n of sizes) assert.ok(n <= 300 - 4, `an EAP packet of ${n} bytes (Framed-MTU 300, EAPOL header 4)`);
  });

  it("inner MSCHAPv2 and inner EAP-MD5 inside TTLS -> METHOD_UNSUPPORTED", async () => {
    const before = t.cloud.radius!.stats.reasons.METHOD_UNSUPPORTED ?? 0;
    const mschap = join(dir, "mschap.conf");
    writeFileSync(mschap, readFileSync(ttlsConf("s1", "lamp-s1", "x"), "utf8").replace('phase2="auth=PAP"', 'phase2="auth=MSCHAPV2"'));
    assertFailure(await eapolTest(mschap, port));
    const md5 = join(dir, "md5.conf");
    writeFileSync(md5, readFileSync(ttlsConf("s1", "lamp-s1", "x"), "utf8").replace('phase2="auth=PAP"', 'phase2="autheap=MD5"'));
    assertFailure(await eapolTest(md5, port));
    assert.equal(t.cloud.radius!.stats.reasons.METHOD_UNSUPPORTED, before + 2);
  });

  it("a TLS 1.3-only supplicant (phase1 tls_disable_tlsv1_2=1) reads the server's protocol_version alert and gives up", async () => {
    const accepts = t.cloud.radius!.stats.accepts;
    const result = await eapolTest(ttlsConf("tls13", "lamp-s1", password(secretDevice.bytes, "lamp-s1"), '  phase1="tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0"\n'), port);
    assertFailure(result);
    // the alert arrived inside an EAP-Request (RFC 5216 section 2.1.3); wpa_supplicant 2.10 then ends the method without a response
    assert.match(result.output, /SSL3 alert: read \(remote end reported an error\):fatal:protocol version/);
    assert.equal(t.cloud.radius!.stats.accepts, accepts);
  });

  it("re-authentication (-r 2) resumes the TLS session by session id: TTLS and EAP-TLS, fresh MPPE keys each round", async () => {
    const radius = t.cloud.radius!;
    const resumed = radius.stats.tlsResumed;
    const ttls = await eapolTest(ttlsConf("s1", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), port, { reauths: 2, timeoutS: 30 });
    assertSuccess(ttls, 3);
    assert.deepEqual([...ttls.output.matchAll(/Handshake finished - resumed=(\d)/g)].map((m) => m[1]), ["0", "1", "1"]);
    assert.match(ttls.output, /EAP-TTLS: Session resumption - skip phase 2|fast reauth - may skip Phase 2/);
    assert.equal(radius.stats.tlsResumed, resumed + 2);
    const msks = [...ttls.output.matchAll(/EAP-TTLS: Derived key - hexdump\(len=64\): ([0-9a-f ]+)/g)].map((m) => m[1]);
    assert.equal(msks.length, 3);
    assert.equal(new Set(msks).size, 3, "a fresh MSK (so fresh MPPE keys) each round");
    const id = "lamp-c-resume";
    const issued = await t.cloud.services.issueDeviceCertificate({ caName: productCa, deviceId: id, keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: id, certificatePem: issued.certificatePem });
    const tls = await eapolTest(tlsConf(id, id, issued.certificatePem, issued.privateKeyPem), port, { reauths: 2, timeoutS: 30 });
    assertSuccess(tls, 3);
    assert.deepEqual([...tls.output.matchAll(/Handshake finished - resumed=(\d)/g)].map((m) => m[1]), ["0", "1", "1"]);
    assert.equal(radius.stats.tlsResumed, resumed + 4);
  });

  it("re-authentication with session tickets (phase1 tls_disable_session_ticket=0) resumes too", async () => {
    // a device of its own: lamp-s1's per-device login budget is spent by the tests before this one
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-s1t", secretHex: secretDevice.hex });
    const resumed = t.cloud.radius!.stats.tlsResumed;
    const result = await eapolTest(ttlsConf("s1t", "lamp-s1t", password(secretDevice.bytes, "lamp-s1t"), '  phase1="tls_disable_session_ticket=0"\n'), port, { reauths: 1, timeoutS: 30 });
    assertSuccess(result, 2);
    assert.match(result.output, /SSL_connect:SSLv3\/TLS read server session ticket|session ticket/i);
    assert.deepEqual([...result.output.matchAll(/Handshake finished - resumed=(\d)/g)].map((m) => m[1]), ["0", "1"]);
    assert.equal(t.cloud.radius!.stats.tlsResumed, resumed + 1);
  });

  it("a device revoked between two rounds of -r is refused on the resumed session", async () => {
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-s-rev2", secretHex: secretDevice.hex });
    const conf = ttlsConf("s-rev2", "lamp-s-rev2", password(secretDevice.bytes, "lamp-s-rev2"));
    const radius = t.cloud.radius!;
    const before = radius.stats.reasons.REVOKED ?? 0;
    // revoke while the first accept is recorded (before its Access-Accept leaves): the re-authentication comes after
    const store = radius.hotspots;
    const recordAuth = store.recordAuth.bind(store);
    store.recordAuth = async (deviceId, auth) => {
      if (deviceId === "lamp-s-rev2" && auth.outcome === "accept") void t.cloud.services.revokeDevice({ deviceId }); // its registry write is synchronous
      return recordAuth(deviceId, auth);
    };
    let result: EapolResult;
    try {
      result = await eapolTest(conf, port, { reauths: 1, timeoutS: 30 });
    } finally {
      store.recordAuth = recordAuth;
    }
    assert.notEqual(result.code, 0);
    assert.deepEqual([...result.output.matchAll(/Handshake finished - resumed=(\d)/g)].map((m) => m[1]), ["0", "1"], "the refused round was a resumed one");
    assert.equal(radius.stats.reasons.REVOKED, before + 1);
  });

  it("fragmentation both ways: 300-byte fragments from the server and from eapol_test (fragment_size=300)", async () => {
    const tls = await radiusIdentity(t.cloud.registry);
    // the same authentication at the default fragment size, for comparison
    const whole = new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, port: 0 });
    const wholePort = await whole.start();
    try {
      assertSuccess(await eapolTest(ttlsConf("whole", "lamp-s1", password(secretDevice.bytes, "lamp-s1")), wholePort));
    } finally {
      await whole.close();
    }
    const server = new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, port: 0, fragmentSize: 300 });
    const smallPort = await server.start();
    try {
      assertSuccess(await eapolTest(ttlsConf("frag", "lamp-s1", password(secretDevice.bytes, "lamp-s1"), "  fragment_size=300\n"), smallPort));
      const ttlsChallenges = server.stats.challenges;
      const id = "lamp-c-rsa";
      const issued = await t.cloud.services.issueDeviceCertificate({ caName: productCa, deviceId: "lamp-c-frag", keyType: "rsa" });
      await t.cloud.services.registerCertificateDevice({ deviceId: "lamp-c-frag", certificatePem: issued.certificatePem });
      const result = await eapolTest(tlsConf("frag-tls", "lamp-c-frag", issued.certificatePem, issued.privateKeyPem, "  fragment_size=300\n"), smallPort);
      assertSuccess(result);
      // The peer's certificate flight (over 1 KiB) arrived in several fragments that we ACKed.
      assert.ok(server.stats.challenges - ttlsChallenges >= 8, `EAP-TLS took ${server.stats.challenges - ttlsChallenges} challenges`);
      // the server's certificate flight went out in more fragments, each ACKed
      assert.ok(ttlsChallenges >= whole.stats.challenges + 2, `TTLS took ${ttlsChallenges} challenges, ${whole.stats.challenges} unfragmented`);
      void id;
    } finally {
      await server.close();
    }
  });
});
