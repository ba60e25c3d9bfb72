/*
 * Registry and master key: secrets sealed at rest, start-up errors for a
 * missing, malformed or wrong master key, AAD binding, the append-only audit
 * log, and typed refusals that change nothing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startCloud } from "../cloud/index";
import { loadMasterKey } from "../cloud/master-key";
import { CloudServices } from "../cloud/services";
import { SecretBox } from "../cloud/sealing";
import { end, loginPassword, mustConnect, newSecret, startTestCloud } from "./cloud-helpers";
import { forEachBackend, openTestRegistry, storedBytes } from "./support/backends";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "wcm-reg-test-"));
}

function fileBytes(dir: string): Buffer {
  return Buffer.concat(["registry.sqlite", "registry.sqlite-wal"].map((f) => join(dir, f)).filter(existsSync).map((f) => readFileSync(f)));
}

forEachBackend("cloud registry (Registry, SecretBox, loadMasterKey)", function () {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("registry_SecretsAndKeys_NotInTheDatabaseInClear", async function () {
    const t = await startTestCloud();
    try {
      const secret = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "rest-1", secretHex: secret.hex });
      const lot = await t.cloud.services.createProvisioningKey({ lot: "rest-lot" });
      const client = await mustConnect(t.cloud, { id: "rest-1", password: loginPassword("rest-1", secret.bytes, "s", 1) });
      await end(client);
      // the SQLite files when there are any, and every stored value on either backend
      const bytes = Buffer.concat([fileBytes(t.dataDir), await storedBytes(t.cloud.registry)]);
      assert.ok(bytes.includes(Buffer.from("rest-1")), "the dump holds the rows");
      assert.equal(bytes.includes(Buffer.from(secret.bytes)), false, "raw secret found");
      assert.equal(bytes.includes(Buffer.from(secret.hex)), false, "hex secret found");
      assert.equal(bytes.includes(Buffer.from(lot.provisioningKeyHex, "hex")), false, "raw provisioning key found");
      assert.equal(bytes.includes(Buffer.from("PRIVATE KEY")), false, "a PEM private key found");
    } finally {
      await t.stop();
    }
  });

  it("startCloud_NoMasterKey_MasterKeyMissingBeforeListening", async function () {
    const dir = tempDir();
    dirs.push(dir);
    const saved = process.env.WCM_MASTER_KEY;
    delete process.env.WCM_MASTER_KEY;
    try {
      await assert.rejects(startCloud({ dataDir: dir, mqttPort: 0 }), { name: "CloudError", code: "MASTER_KEY_MISSING" });
      assert.equal(existsSync(join(dir, "registry.sqlite")), false);
    } finally {
      if (saved !== undefined) process.env.WCM_MASTER_KEY = saved;
    }
  });

  it("loadMasterKey_Sources_EnvFileAndMalformed", function () {
    const dir = tempDir();
    dirs.push(dir);
    const hex = randomBytes(32).toString("hex");
    assert.deepEqual(Buffer.from(loadMasterKey({ env: { WCM_MASTER_KEY: hex } })).toString("hex"), hex);
    writeFileSync(join(dir, "key"), `${hex}\n`, { mode: 0o600 });
    assert.deepEqual(Buffer.from(loadMasterKey({ masterKeyFile: join(dir, "key"), env: {} })).toString("hex"), hex);
    assert.throws(() => loadMasterKey({ env: { WCM_MASTER_KEY: "abc" } }), { code: "MASTER_KEY_INVALID" });
    assert.throws(() => loadMasterKey({ env: { WCM_MASTER_KEY: `${hex.slice(2)}zz` } }), { code: "MASTER_KEY_INVALID" });
    assert.throws(() => loadMasterKey({ masterKeyFile: join(dir, "absent"), env: {} }), { code: "MASTER_KEY_MISSING" });
    assert.throws(() => loadMasterKey({ masterKey: new Uint8Array(16) }), { code: "MASTER_KEY_INVALID" });
  });

  it("Registry_open_WrongMasterKey_MasterKeyWrong", async function () {
    const dir = tempDir();
    dirs.push(dir);
    await (await openTestRegistry(dir, new Uint8Array(randomBytes(32)))).close();
    await assert.rejects(() => openTestRegistry(dir, new Uint8Array(randomBytes(32))), { code: "MASTER_KEY_WRONG" });
  });

  it("SecretBox_CiphertextMovedToAnotherRow_DoesNotOpen", function () {
    const box = new SecretBox(new Uint8Array(randomBytes(32)));
    const sealed = box.seal(Uint8Array.of(1, 2, 3), "device:a:secret:0");
    assert.deepEqual(box.open(sealed, "device:a:secret:0"), Uint8Array.of(1, 2, 3));
    assert.throws(() => box.open(sealed, "device:b:secret:0"), { code: "MASTER_KEY_WRONG" });
    assert.throws(() => box.open(sealed, "device:a:secret:1"), { code: "MASTER_KEY_WRONG" });
    sealed[sealed.length - 1] ^= 1;
    assert.throws(() => box.open(sealed, "device:a:secret:0"), { code: "MASTER_KEY_WRONG" });
  });

  it("Registry_SecretCopiedToAnotherRow_DoesNotOpen", async function () {
    const t = await startTestCloud();
    try {
      const a = newSecret();
      const b = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "swap-a", secretHex: a.hex });
      await t.cloud.services.registerSecretDevice({ deviceId: "swap-b", secretHex: b.hex });
      // an attacker with write access to the file copies a's sealed secret into b's row
      await t.cloud.registry.storage.run("UPDATE devices SET secret_enc = (SELECT secret_enc FROM devices WHERE id = 'swap-a') WHERE id = 'swap-b'");
      const swapped = (await t.cloud.registry.device("swap-b"))!;
      assert.throws(() => t.cloud.registry.activeSecret(swapped), { code: "MASTER_KEY_WRONG" });
    } finally {
      await t.stop();
    }
  });

  it("audit_UpdateOrDelete_Refused", async function () {
    const dir = tempDir();
    dirs.push(dir);
    const registry = await openTestRegistry(dir, new Uint8Array(randomBytes(32)));
    try {
      await registry.tx(() => registry.audit("test", "something", "dev-1"));
      await assert.rejects(() => registry.storage.run("UPDATE audit SET action = 'x'"), /append-only/);
      await assert.rejects(() => registry.storage.run("DELETE FROM audit"), /append-only/);
      assert.equal((await registry.auditLog(10))[0].action, "something");
    } finally {
      await registry.close();
    }
  });

  it("services_InvalidInput_TypedErrorAndNothingStored", async function () {
    const dir = tempDir();
    dirs.push(dir);
    const registry = await openTestRegistry(dir, new Uint8Array(randomBytes(32)));
    const services = new CloudServices(registry, "test");
    try {
      const before = (await registry.auditLog(100)).length;
      const cases: [Promise<unknown>, string][] = [
        [services.registerSecretDevice({ deviceId: "bad id!", secretHex: "00".repeat(32) }), "INVALID_INPUT"],
        [services.registerSecretDevice({ deviceId: "x".repeat(65), secretHex: "00".repeat(32) }), "INVALID_INPUT"],
        [services.registerSecretDevice({ deviceId: "ok-1", secretHex: "00".repeat(15) }), "INVALID_INPUT"],
        [services.registerSecretDevice({ deviceId: "ok-1", secretHex: "00".repeat(65) }), "INVALID_INPUT"],
        [services.registerSecretDevice({ deviceId: "ok-1", secretHex: "zz".repeat(32) }), "INVALID_INPUT"],
        [services.registerSecretDevice(null as never), "INVALID_INPUT"],
        [services.registerCertificateDevice({ deviceId: "ok-1", certificatePem: "not a cert" }), "CERT_INVALID"],
        [services.registerCertificateDevice({ deviceId: "ok-1", caName: "absent" }), "CA_NOT_FOUND"],
        [services.createProvisioningKey({ lot: "lot-1", allowlist: ["good", "bad id"] }), "INVALID_INPUT"],
        [services.issueDeviceCertificate({ caName: "absent", deviceId: "ok-1" }), "CA_NOT_FOUND"],
        [services.revokeDevice({ deviceId: "absent" }), "DEVICE_NOT_FOUND"],
        [services.retireProvisioningKey({ lot: "absent" }), "LOT_NOT_FOUND"],
      ];
      for (const [promise, code] of cases) await assert.rejects(promise, { name: "CloudError", code });
      assert.equal((await registry.countDevices()), 0);
      assert.equal((await registry.lots()).length, 0);
      assert.equal((await registry.auditLog(100)).length, before);
      await services.registerSecretDevice({ deviceId: "ok-1", secretHex: "11".repeat(16) });
      await assert.rejects(services.registerSecretDevice({ deviceId: "ok-1", secretHex: "22".repeat(16) }), { code: "DEVICE_EXISTS" });
      assert.deepEqual(registry.activeSecret((await registry.device("ok-1"))!), new Uint8Array(16).fill(0x11));
    } finally {
      await registry.close();
    }
  });
});
