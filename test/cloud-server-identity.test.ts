/*
 * Server identity (issue 9 item 1): the MQTT certificate names what the
 * operator configures (a device verifying `mqtt.example.test` connects; one
 * verifying `localhost` no longer does), is re-issued only when the names
 * change, `server-cert renew|show` from the CLI, and the operator's own PEM
 * chain and key, reloaded without dropping an open session; the offline CA
 * (export, remove-key, the cloud keeps serving, issuing needs the key).
 */
import assert from "node:assert/strict";
import { connect as tlsConnect } from "node:tls";
import { X509Certificate, randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../cloud/cli";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import { issuedServerTls, serverCaKeyOnline } from "../cloud/server-identity";
import { authenticate } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { deriveHotspotPassword } from "../modules/derive";
import { end, loginPassword, mustConnect, newSecret, sleep, startTestCloud, type TestCloud } from "./cloud-helpers";

/** The leaf a TLS client sees when it verifies `servername` against `ca`; rejects when verification fails. */
function handshake(port: number, servername: string, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, ca, rejectUnauthorized: true }, () => {
      const leaf = socket.getPeerX509Certificate();
      socket.destroy();
      resolve(leaf!);
    });
    socket.on("error", reject);
  });
}

describe("server identity: configured names, renewal, operator certificates (issue 9 item 1)", function () {
  this.timeout(60_000);
  let work: string;
  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), "wcm-identity-"));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  it("serverNames_DeviceVerifiesTheConfiguredName_NotLocalhost_ReissuedOnlyWhenNamesChange", async () => {
    const dataDir = join(work, "data");
    const masterKey = new Uint8Array(randomBytes(32));
    let t = await startTestCloud({ dataDir, masterKey, serverNames: ["mqtt.example.test", "10.1.2.3"] });
    assert.equal(t.cloud.serverName, "mqtt.example.test");
    assert.deepEqual(t.cloud.serverNames, ["mqtt.example.test", "10.1.2.3"]);
    const leaf = await handshake(t.cloud.mqttPort, "mqtt.example.test", t.cloud.serverCaPem);
    assert.match(leaf.subjectAltName ?? "", /DNS:mqtt\.example\.test, IP Address:10\.1\.2\.3/);
    await assert.rejects(handshake(t.cloud.mqttPort, "localhost", t.cloud.serverCaPem), /localhost/);
    const reissues = async () => (await t.cloud.services.auditLog({ action: "server-tls.reissue" })).length;
    assert.equal(await reissues(), 1);
    await t.cloud.close();
    t = await startTestCloud({ dataDir, masterKey, serverNames: ["10.1.2.3", "mqtt.example.test"] });
    assert.equal(await reissues(), 1, "same names (any order): no new certificate");
    await t.cloud.close();
    t = await startTestCloud({ dataDir, masterKey, serverNames: ["mqtt2.example.test"] });
    assert.equal(await reissues(), 2);
    await handshake(t.cloud.mqttPort, "mqtt2.example.test", t.cloud.serverCaPem);
    await t.cloud.close();

    const env = { WCM_DATA: dataDir, WCM_MASTER_KEY: Buffer.from(masterKey).toString("hex"), WCM__MQTT__NAMES: "mqtt3.example.test,192.0.2.7" };
    const out: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s) };
    assert.equal(await runCli(["server-cert", "renew"], env, io), 0, out.join("\n"));
    assert.deepEqual((JSON.parse(out.at(-1)!) as { names: string[] }).names, ["mqtt3.example.test", "192.0.2.7"]);
    assert.equal(await runCli(["server-cert", "show"], env, io), 0);
    const shown = JSON.parse(out.at(-1)!) as { names: string[]; notAfter: string };
    assert.ok(Date.parse(shown.notAfter) > Date.now() + 365 * 86_400_000, "about 825 days of validity");
  });

  it("operatorFiles_ServedAndReloaded_OpenSessionKept", async () => {
    const caA = await createCa("operator CA A");
    const caB = await createCa("operator CA B");
    const leafOf = async (ca: typeof caA) => issueCertificate({ caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: "mqtt.example.test", usage: "server", dnsNames: ["mqtt.example.test"] });
    const certFile = join(work, "chain.pem");
    const keyFile = join(work, "key.pem");
    const write = async (ca: typeof caA) => {
      const leaf = await leafOf(ca);
      writeFileSync(certFile, `${leaf.certPem.trim()}\n${ca.certPem.trim()}\n`);
      writeFileSync(keyFile, privateKeyPem(leaf.keyDer), { mode: 0o600 });
    };
    await write(caA);
    const t = await startTestCloud({ serverCertFile: certFile, serverKeyFile: keyFile });
    try {
      assert.equal(t.cloud.serverName, "mqtt.example.test");
      await handshake(t.cloud.mqttPort, "mqtt.example.test", caA.certPem);
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "reload-1", secretHex: s.hex });
      const client = await mustConnect(t.cloud, { id: "reload-1", password: loginPassword("reload-1", s.bytes, "s", 1) }, { ca: caA.certPem });
      await write(caB);
      const info = await t.cloud.reloadTls();
      assert.equal(info.certificate?.issuer, "operator CA B");
      await handshake(t.cloud.mqttPort, "mqtt.example.test", caB.certPem);
      await assert.rejects(handshake(t.cloud.mqttPort, "mqtt.example.test", caA.certPem), "new handshakes get the new chain");
      await sleep(200);
      assert.equal(client.connected, true, "the session opened before the reload is kept");
      writeFileSync(keyFile, privateKeyPem((await leafOf(caA)).keyDer), { mode: 0o600 });
      await assert.rejects(t.cloud.reloadTls(), /CERT_INVALID: .*is not the key of/, "a key that does not match is refused");
      await handshake(t.cloud.mqttPort, "mqtt.example.test", caB.certPem);
      await end(client);
    } finally {
      await t.stop();
    }
  });

  it("offlineCa_ExportedAndRemoved_CloudServesOn_IssuingNeedsTheKeyFile", async () => {
    const dataDir = join(work, "data");
    const masterKey = new Uint8Array(randomBytes(32));
    const env = { WCM_DATA: dataDir, WCM_MASTER_KEY: Buffer.from(masterKey).toString("hex") };
    const out: string[] = [];
    const io = { out: (s: string) => void out.push(s), err: (s: string) => void out.push(s) };
    const cli = (...args: string[]) => runCli([...args, "--json"], env, io);
    const lastError = () => (JSON.parse(out.at(-1)!) as { error: { code: string } }).error.code;
    const s = newSecret();
    let t = await startTestCloud({ dataDir, masterKey });
    await t.cloud.services.registerSecretDevice({ deviceId: "offline-ca-1", secretHex: s.hex });
    await end(await mustConnect(t.cloud, { id: "offline-ca-1", password: loginPassword("offline-ca-1", s.bytes, "s", 1) }));
    const caPem = t.cloud.serverCaPem;
    await t.cloud.close();

    // export: a new owner-only file with the CA's key; never over an existing file; the key is not printed
    const exported = join(work, "server-ca-offline.pem");
    assert.equal(await cli("server-ca", "export", `--out=${exported}`), 0, out.join("\n"));
    assert.equal(statSync(exported).mode & 0o777, 0o600);
    const exportedText = readFileSync(exported, "utf8");
    assert.match(exportedText, /-----BEGIN PRIVATE KEY-----/);
    assert.ok(!out.join("\n").includes("PRIVATE KEY"), "the key is not printed");
    assert.notEqual(await cli("server-ca", "export", `--out=${exported}`), 0);
    assert.equal(lastError(), "INVALID_INPUT");

    // remove-key wants proof that the operator holds the key: another CA's key, or a readable file, is refused
    const other = join(work, "other-ca.pem");
    const otherCa = await createCa("not the server CA");
    writeFileSync(other, `${otherCa.certPem}${privateKeyPem(otherCa.keyDer)}`, { mode: 0o600 });
    assert.notEqual(await cli("server-ca", "remove-key", `--exported=${other}`), 0);
    assert.equal(lastError(), "CERT_INVALID");
    chmodSync(exported, 0o644);
    assert.notEqual(await cli("server-ca", "remove-key", `--exported=${exported}`), 0);
    assert.equal(lastError(), "FILE_INSECURE");
    chmodSync(exported, 0o600);
    t = await startTestCloud({ dataDir, masterKey });
    assert.equal(await serverCaKeyOnline(t.cloud.services.registry), true, "refusals removed nothing");
    await t.cloud.close();
    assert.equal(await cli("server-ca", "remove-key", `--exported=${exported}`), 0, out.join("\n"));

    // the cloud starts and serves the certificates it has; the device logs in as before
    t = await startTestCloud({ dataDir, masterKey });
    try {
      const { registry } = t.cloud.services;
      assert.equal(await serverCaKeyOnline(registry), false);
      assert.equal(t.cloud.serverCaPem, caPem, "devices pin the same CA");
      await end(await mustConnect(t.cloud, { id: "offline-ca-1", password: loginPassword("offline-ca-1", s.bytes, "s", 2) }));
      // an expiring leaf is served on, with the renewal reported blocked, not a failed start
      const leaf = new X509Certificate((await registry.serverTls("server"))!.certPem);
      const nearExpiry = Date.parse(leaf.validTo) - 5 * 86_400_000;
      const blocked = await issuedServerTls(registry, undefined, false, nearExpiry);
      assert.equal(blocked.renewalBlocked, true);
      assert.equal(blocked.reissued, false);
      await assert.rejects(issuedServerTls(registry, ["mqtt.example.test"]), /CA_HAS_NO_KEY: .*mqtt.names changed/);
      const audit = (await t.cloud.services.auditLog({})).map((e) => e.action);
      assert.ok(audit.includes("server-tls.ca-export") && audit.includes("server-tls.ca-key-remove"), audit.join(","));
    } finally {
      await t.cloud.close();
    }
    await assert.rejects(startTestCloud({ dataDir, masterKey, serverNames: ["mqtt.example.test"] }), /CA_HAS_NO_KEY/, "new names need the key: a clear refusal to start");

    // renewing needs the key file; with it the leaf is re-issued and the key stays offline
    const renewEnv = { ...env, WCM__MQTT__NAMES: "mqtt.example.test" };
    assert.notEqual(await runCli(["server-cert", "renew", "--json"], renewEnv, io), 0);
    assert.equal(lastError(), "CA_HAS_NO_KEY");
    assert.equal(await runCli(["server-cert", "renew", `--ca-key=${exported}`, "--json"], renewEnv, io), 0, out.join("\n"));
    assert.deepEqual((JSON.parse(out.at(-1)!) as { names: string[] }).names, ["mqtt.example.test"]);
    assert.equal(await cli("server-cert", "show"), 0);
    assert.equal((JSON.parse(out.at(-1)!) as { caKey: string }).caKey, "offline");
    t = await startTestCloud({ dataDir, masterKey, serverNames: ["mqtt.example.test"] });
    try {
      assert.equal(await serverCaKeyOnline(t.cloud.services.registry), false);
      await handshake(t.cloud.mqttPort, "mqtt.example.test", caPem);
    } finally {
      await t.cloud.close();
    }
  });

  it("radiusNamesAndOperatorFiles_EapPeerVerifiesTheConfiguredName_FilesReloadedOnReloadTls", async () => {
    const nasSecret = "identity-test-nas-secret";
    const from = { address: "127.0.0.1", port: 41077 };
    const device = newSecret();
    const ttls = (t: TestCloud, caPem: string, serverName: string) => authenticate((r) => t.cloud.radius!.handle(r, from), {
      nasSecret, method: "ttls", identity: "radius-id-1", password: deriveHotspotPassword(nodeDigest, device.bytes, "radius-id-1"), caPem, serverName,
    });
    const dataDir = join(work, "data");
    const masterKey = new Uint8Array(randomBytes(32));
    let t = await startTestCloud({ dataDir, masterKey, radiusPort: 0, radiusNames: ["radius.example.test"] });
    try {
      await t.cloud.services.addNasClient({ name: "ap-identity", address: "127.0.0.1", secret: nasSecret });
      await t.cloud.services.registerSecretDevice({ deviceId: "radius-id-1", secretHex: device.hex });
      assert.equal(t.cloud.radiusServerName, "radius.example.test");
      assert.deepEqual(t.cloud.listeners.find((l) => l.name === "radius")?.certificate?.names, ["radius.example.test"]);
      const ok = await ttls(t, t.cloud.serverCaPem, "radius.example.test");
      assert.ok(ok.ok, ok.reason);
      const wrongName = await ttls(t, t.cloud.serverCaPem, RADIUS_SERVER_NAME);
      assert.equal(wrongName.ok, false, "the default name is no longer in the certificate");
    } finally {
      await t.cloud.close();
    }

    const caA = await createCa("operator RADIUS CA A");
    const caB = await createCa("operator RADIUS CA B");
    const certFile = join(work, "radius-chain.pem");
    const keyFile = join(work, "radius-key.pem");
    const write = async (ca: typeof caA) => {
      const leaf = await issueCertificate({ caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: "radius.operator.test", usage: "server", dnsNames: ["radius.operator.test"], keyType: "ec" });
      writeFileSync(certFile, `${leaf.certPem.trim()}\n${ca.certPem.trim()}\n`);
      writeFileSync(keyFile, privateKeyPem(leaf.keyDer), { mode: 0o600 });
    };
    await write(caA);
    t = await startTestCloud({ dataDir, masterKey, radiusPort: 0, radiusCertFile: certFile, radiusKeyFile: keyFile });
    try {
      assert.equal(t.cloud.radiusServerName, "radius.operator.test");
      const a = await ttls(t, caA.certPem, "radius.operator.test");
      assert.ok(a.ok, a.reason);
      await write(caB);
      await t.cloud.reloadTls();
      assert.equal(t.cloud.listeners.find((l) => l.name === "radius")?.certificate?.issuer, "operator RADIUS CA B");
      const b = await ttls(t, caB.certPem, "radius.operator.test");
      assert.ok(b.ok, b.reason);
      assert.equal((await ttls(t, caA.certPem, "radius.operator.test")).ok, false, "new conversations get the new chain");
    } finally {
      await t.cloud.close();
    }
  });
});
