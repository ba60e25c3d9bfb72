/*
 * End to end: the portable ConnectionManager in the Node simulator host
 * (MQTT.js over node:tls, simulated flash) against the real reference cloud
 * (aedes over TLS, SQLite registry). Covers every provisioning option, the
 * temporary-to-permanent issuance, a restart, refusals, and a power cut at every
 * flash write of a temporary device's first boot.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Cloud } from "../cloud/index";
import type { DeviceView } from "../cloud/registry";
import { SimulatedFlash } from "../hosts/node/file-preferences";
import { createNodeDevice } from "../hosts/node/device";
import { CredentialStore } from "../modules/credential-store";
import type { ConnectionManager, ManagerStatus } from "../modules/manager";
import { nobleDigest } from "../modules/noble-digest";
import { createCa } from "../cloud/pki";
import { startTestCloud, type TestCloud } from "./cloud-helpers";

/** Secrets that could be active for a device at once: its secret, and its temporary credential while not retired. */
function activeSecrets(view: DeviceView): number {
  const secret = view.kind === "secret" ? 1 : 0;
  const temporary = view.lot !== null && !view.tempRetired ? 1 : 0;
  return secret + temporary;
}

function cloudConfig(cloud: Cloud) {
  return { host: "127.0.0.1", port: cloud.mqttPort, ca: cloud.serverCaPem, serverName: cloud.serverName };
}

/** Resolves with the first status that satisfies `done`, or rejects after `ms`. */
function waitFor(manager: ConnectionManager, done: (status: ManagerStatus) => boolean, ms = 10_000): Promise<ManagerStatus> {
  return new Promise((resolve, reject) => {
    if (done(manager.status)) return resolve(manager.status);
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out in ${manager.status.state} (${manager.status.lastFailure?.reason ?? "no failure"})`));
    }, ms);
    const stop = manager.onStatus((status) => {
      if (!done(status)) return;
      clearTimeout(timer);
      stop();
      resolve(status);
    });
  });
}

/** Polls `done` every 10 ms for up to `ms`; resolves either way (the caller asserts). */
async function until(done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !(await done()) && Date.now() < end;) await new Promise((r) => setTimeout(r, 10));
}

/** Whether the flash holds a confirmed issued secret for the device. */
function storedConfirmed(flash: SimulatedFlash, deviceId: string): boolean {
  return new CredentialStore(flash, nobleDigest, deviceId).loadSecret()?.confirmed === true;
}

const online = (status: ManagerStatus) => status.state === "ONLINE";
const fastRetry = { retry: { networkBaseMs: 20, networkMaxMs: 200, authBaseMs: 50, authMaxMs: 500 }, requestTimeoutMs: 1000 };

describe("e2e: ConnectionManager against the reference cloud", function () {
  this.timeout(60_000);
  let test: TestCloud;

  before(async () => {
    test = await startTestCloud();
  });
  after(async () => {
    await test.stop();
  });

  it("CertificateDevice_MutualTls_Online", async () => {
    const { services } = test.cloud;
    await services.createProductCa({ name: "e2e-ca" });
    const issued = await services.issueDeviceCertificate({ caName: "e2e-ca", deviceId: "e2e-cert-1", keyType: "rsa" });
    await services.registerCertificateDevice({ deviceId: "e2e-cert-1", certificatePem: issued.certificatePem });
    const { manager } = createNodeDevice({
      deviceId: "e2e-cert-1", option: "certificate", certificate: issued.certificatePem, privateKey: issued.privateKeyPem, cloud: cloudConfig(test.cloud),
    });
    manager.start();
    try {
      const status = await waitFor(manager, online);
      assert.equal(status.credential, "certificate");
    } finally {
      manager.stop();
    }
  });

  it("SecretDevice_Online_AndAppMessagesFlowOnItsOwnTopics", async () => {
    const secret = randomBytes(32).toString("hex");
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-secret-1", secretHex: secret });
    const { manager } = createNodeDevice({ deviceId: "e2e-secret-1", option: "secret", secret, cloud: cloudConfig(test.cloud) });
    const received: string[] = [];
    manager.subscribe("echo", (payload) => received.push(Buffer.from(payload).toString()));
    manager.start();
    try {
      const status = await waitFor(manager, online);
      assert.equal(status.credential, "secret");
      // the device's own app topic reaches its own subscription through the broker
      assert.equal(manager.publish("echo", Buffer.from("hello")), true);
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(received, ["hello"]);
      const view = await test.cloud.services.getDevice({ deviceId: "e2e-secret-1" });
      assert.equal(view.state, "ONLINE");
    } finally {
      manager.stop();
    }
  });

  it("SecretDevice_TwoTrustAnchorsDuringACaRoll_OnlineWithEither_RefusedByTheOtherAlone", async () => {
    // docs/deploy.md 4: during a roll the firmware trusts the old and the new CA (cloud.ca holds both)
    const other = await createCa("another wcm cloud server CA");
    const secret = randomBytes(32).toString("hex");
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-roll-1", secretHex: secret });
    const kv = new SimulatedFlash(); // one device: its login counter lives on in its flash
    for (const ca of [`${other.certPem.trim()}\n${test.cloud.serverCaPem.trim()}\n`, `${test.cloud.serverCaPem.trim()}\n${other.certPem.trim()}\n`]) {
      const { manager } = createNodeDevice({ deviceId: "e2e-roll-1", option: "secret", secret, cloud: { ...cloudConfig(test.cloud), ca } }, { kv });
      manager.start();
      try {
        assert.equal((await waitFor(manager, online)).credential, "secret");
      } finally {
        manager.stop();
      }
    }
    // the other CA alone does not verify this cloud's server: the TLS handshake fails, no login is tried
    const { manager } = createNodeDevice({ deviceId: "e2e-roll-1", option: "secret", secret, cloud: { ...cloudConfig(test.cloud), ca: other.certPem } }, { kv, manager: fastRetry });
    manager.start();
    try {
      const status = await waitFor(manager, (s) => s.state === "RETRY_WAIT");
      assert.equal(status.lastFailure?.reason, "NETWORK");
      assert.match(status.lastFailure?.detail ?? "", /certificate/i);
    } finally {
      manager.stop();
    }
  });

  it("TemporaryDevice_BecomesPermanent_KeepsSecretAcrossRestart_TemporaryRetired", async () => {
    const lot = await test.cloud.services.createProvisioningKey({ lot: "e2e-lot-1", allowlist: ["e2e-temp-1"] });
    const config = { deviceId: "e2e-temp-1", option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudConfig(test.cloud) };
    const flash = new SimulatedFlash();
    const first = createNodeDevice(config, { kv: flash });
    first.manager.start();
    const seen: string[] = [];
    first.manager.onStatus((s) => seen.push(s.state));
    const status = await waitFor(first.manager, (s) => online(s) && s.credential === "permanent");
    first.manager.stop();
    assert.ok(seen.includes("ISSUING"), `states: ${seen.join(",")}`);
    let view = await test.cloud.services.getDevice({ deviceId: "e2e-temp-1" });
    assert.equal(view.kind, "secret");
    assert.equal(view.generation, 1);
    assert.equal(view.tempRetired, true);
    assert.equal(activeSecrets(view), 1);
    assert.equal(status.credential, "permanent");

    const second = createNodeDevice(config, { kv: flash });
    second.manager.start();
    try {
      const again = await waitFor(second.manager, online);
      assert.equal(again.credential, "permanent");
    } finally {
      second.manager.stop();
    }
    view = await test.cloud.services.getDevice({ deviceId: "e2e-temp-1" });
    assert.equal(view.generation, 1, "a restart does not issue again");

    // the temporary credential, reused after the commit, is refused
    const reused = createNodeDevice(config, { kv: new SimulatedFlash(), manager: fastRetry });
    reused.manager.start();
    try {
      const refused = await waitFor(reused.manager, (s) => s.state === "AUTH_FAILED");
      assert.equal(refused.lastFailure?.reason, "NOT_AUTHORIZED");
    } finally {
      reused.manager.stop();
    }
  });

  it("WrongSecret_AuthFailed_BacksOffLikeAnAuthFailure", async () => {
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-secret-2", secretHex: randomBytes(32).toString("hex") });
    const { manager } = createNodeDevice({ deviceId: "e2e-secret-2", option: "secret", secret: randomBytes(32).toString("hex"), cloud: cloudConfig(test.cloud) });
    manager.start();
    try {
      const status = await waitFor(manager, (s) => s.state === "AUTH_FAILED");
      assert.equal(status.lastFailure?.reason, "BAD_CREDENTIALS");
      assert.ok((status.retryInMs ?? 0) >= 30_000, `auth retry in ${status.retryInMs} ms`);
    } finally {
      manager.stop();
    }
  });

  it("RevokedDevice_NotAuthorized", async () => {
    const secret = randomBytes(32).toString("hex");
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-secret-3", secretHex: secret });
    const { manager } = createNodeDevice({ deviceId: "e2e-secret-3", option: "secret", secret, cloud: cloudConfig(test.cloud), }, { manager: fastRetry });
    manager.start();
    try {
      await waitFor(manager, online);
      await test.cloud.services.revokeDevice({ deviceId: "e2e-secret-3" });
      const status = await waitFor(manager, (s) => s.state === "AUTH_FAILED");
      assert.equal(status.lastFailure?.reason, "NOT_AUTHORIZED");
    } finally {
      manager.stop();
    }
  });

  it("ErasedFlash_CounterReplayRefused_UntilOperatorResetsCounter", async () => {
    const secret = randomBytes(32).toString("hex");
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-secret-4", secretHex: secret });
    const config = { deviceId: "e2e-secret-4", option: "secret", secret, cloud: cloudConfig(test.cloud) };
    for (let boot = 0; boot < 2; boot++) {
      const { manager } = createNodeDevice(config, { kv: new SimulatedFlash() }); // a fresh (erased) flash each boot
      manager.start();
      try {
        const status = await waitFor(manager, (s) => s.state === "ONLINE" || s.state === "AUTH_FAILED");
        assert.equal(status.state, boot === 0 ? "ONLINE" : "AUTH_FAILED", `boot ${boot}`);
      } finally {
        manager.stop();
      }
    }
    await test.cloud.services.resetLoginCounter({ deviceId: "e2e-secret-4" });
    const { manager } = createNodeDevice(config, { kv: new SimulatedFlash() });
    manager.start();
    try {
      await waitFor(manager, online);
    } finally {
      manager.stop();
    }
  });

  it("Rotation_OnlineDevice_FetchesCommitsAndKeepsNewSecret_OldSecretRefused", async () => {
    const secret = randomBytes(32).toString("hex");
    await test.cloud.services.registerSecretDevice({ deviceId: "e2e-rotate-1", secretHex: secret });
    const config = { deviceId: "e2e-rotate-1", option: "secret", secret, cloud: cloudConfig(test.cloud) };
    const flash = new SimulatedFlash();
    const first = createNodeDevice(config, { kv: flash, manager: fastRetry });
    first.manager.start();
    try {
      await waitFor(first.manager, online);
      await test.cloud.services.rotateSecret({ deviceId: "e2e-rotate-1" });
      const rotated = await waitFor(first.manager, (s) => s.credential === "permanent");
      assert.equal(rotated.state, "ONLINE");
    } finally {
      first.manager.stop();
    }
    const view = await test.cloud.services.getDevice({ deviceId: "e2e-rotate-1" });
    assert.equal(view.generation, 1);
    assert.equal(view.pendingGeneration, null);
    assert.equal(activeSecrets(view), 1);
    // the manufactured secret no longer works; the flash's rotated one does
    const old = createNodeDevice(config, { kv: new SimulatedFlash(), manager: fastRetry });
    old.manager.start();
    try {
      assert.equal((await waitFor(old.manager, (s) => s.state === "AUTH_FAILED")).lastFailure?.reason, "BAD_CREDENTIALS");
    } finally {
      old.manager.stop();
    }
    const again = createNodeDevice(config, { kv: flash });
    again.manager.start();
    try {
      assert.equal((await waitFor(again.manager, online)).credential, "permanent");
    } finally {
      again.manager.stop();
    }
  });

  it("Rotation_DeviceKeyRegistered_SealedToIt_CoreOpensCommitsAndKeepsNewSecret", async () => {
    // the real core with sync on: its first hello registers its P-256 key, so the rotation is sealed to it (docs/protocol.md 9.5)
    const secret = randomBytes(32).toString("hex");
    const deviceId = "e2e-rotate-sealed";
    await test.cloud.services.registerSecretDevice({ deviceId, secretHex: secret });
    const config = { deviceId, option: "secret", secret, cloud: cloudConfig(test.cloud) };
    const flash = new SimulatedFlash();
    const first = createNodeDevice(config, { kv: flash, manager: { ...fastRetry, sync: true } });
    first.manager.start();
    try {
      await waitFor(first.manager, online);
      await until(async () => (await test.cloud.network.net.columns(deviceId))?.seal_key?.length === 65);
      await test.cloud.services.rotateSecret({ deviceId });
      assert.equal((await waitFor(first.manager, (s) => s.credential === "permanent")).state, "ONLINE");
    } finally {
      first.manager.stop();
    }
    assert.equal((await test.cloud.services.getDevice({ deviceId })).generation, 1);
    const again = createNodeDevice(config, { kv: flash, manager: { ...fastRetry, sync: true } });
    again.manager.start();
    try {
      assert.equal((await waitFor(again.manager, online)).credential, "permanent");
    } finally {
      again.manager.stop();
    }
  });

  it("Rotation_PowerCutAtEveryWrite_OfflineDeviceHearsOnConnect_EndsOnNewGeneration", async () => {
    const lot = await test.cloud.services.createProvisioningKey({ lot: "e2e-rotate-lot" });
    let cuts = 0;
    for (let cut = 1; cut <= 20; cut++) {
      const deviceId = `e2e-rotcut-${cut}`;
      const config = { deviceId, option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudConfig(test.cloud) };
      const flash = new SimulatedFlash();
      const boot = createNodeDevice(config, { kv: flash, manager: fastRetry });
      boot.manager.start();
      await waitFor(boot.manager, (s) => online(s) && s.credential === "permanent");
      boot.manager.stop();
      // rotate the (now permanent, generation 1) device while it is offline
      await test.cloud.services.rotateSecret({ deviceId });
      flash.cutPowerAtWrite(cut, cut % 2 ? "erased" : "torn");
      const rotating = createNodeDevice(config, { kv: flash, manager: fastRetry });
      const committed = async () => (await test.cloud.registry.device(deviceId))?.pending_generation === null;
      rotating.manager.start();
      await until(async () => flash.powerLost || ((await committed()) && rotating.manager.status.credential === "permanent" && storedConfirmed(flash, deviceId)));
      rotating.manager.stop();
      const lost = flash.powerLost;
      flash.cutPowerAtWrite(0);
      flash.restorePower();
      const after = createNodeDevice(config, { kv: flash, manager: fastRetry });
      after.manager.start();
      try {
        await waitFor(after.manager, online);
        await until(committed);
      } finally {
        after.manager.stop();
      }
      const view = await test.cloud.services.getDevice({ deviceId });
      assert.equal(view.generation, 2, `cut ${cut}: rotation completed`);
      assert.equal(view.pendingGeneration, null, `cut ${cut}: nothing pending`);
      assert.equal(activeSecrets(view), 1, `cut ${cut}: one active secret`);
      if (!lost) break;
      cuts++;
    }
    assert.ok(cuts >= 2, `only ${cuts} cut points`);
  });

  it("CloudUnreachable_RetriesAsNetworkFailure", async () => {
    const secret = randomBytes(32).toString("hex");
    const { manager } = createNodeDevice({
      deviceId: "e2e-nowhere", option: "secret", secret, cloud: { ...cloudConfig(test.cloud), port: 1 },
    }, { manager: fastRetry });
    manager.start();
    try {
      const status = await waitFor(manager, (s) => s.state === "RETRY_WAIT");
      assert.equal(status.lastFailure?.reason, "NETWORK");
      assert.ok((status.retryInMs ?? 1e9) <= 200);
    } finally {
      manager.stop();
    }
  });

  it("PowerCutSweep_EveryFlashWriteOfFirstBoot_EndsOnlinePermanent_NeverTwoActiveSecrets", async () => {
    const lot = await test.cloud.services.createProvisioningKey({ lot: "e2e-sweep" });
    let cuts = 0;
    for (let cut = 1; cut <= 20; cut++) {
      const deviceId = `e2e-sweep-${cut}`;
      const config = { deviceId, option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudConfig(test.cloud) };
      const flash = new SimulatedFlash();
      flash.cutPowerAtWrite(cut, cut % 2 ? "erased" : "torn");
      const first = createNodeDevice(config, { kv: flash, manager: fastRetry });
      first.manager.start();
      await waitFor(first.manager, (s) => flash.powerLost || (online(s) && s.credential === "permanent"));
      first.manager.stop();
      if (!flash.powerLost) break; // this boot had fewer writes than `cut`: the sweep is complete
      cuts++;
      const during = await test.cloud.services.listDevices({ limit: 10_000 });
      const row = during.find((d) => d.deviceId === deviceId);
      if (row) assert.ok(activeSecrets(row) <= 1, `cut ${cut}: two active secrets`);

      flash.restorePower();
      const second = createNodeDevice(config, { kv: flash, manager: fastRetry });
      second.manager.start();
      try {
        const status = await waitFor(second.manager, (s) => online(s) && s.credential === "permanent");
        assert.equal(status.state, "ONLINE");
      } finally {
        second.manager.stop();
      }
      const view = await test.cloud.services.getDevice({ deviceId });
      assert.equal(activeSecrets(view), 1, `cut ${cut}: one active secret at the end`);
      assert.equal(view.tempRetired, true, `cut ${cut}: temporary credential retired`);
    }
    // counter reservation, the issued secret, its confirmation: each was cut
    assert.ok(cuts >= 3, `only ${cuts} cut points`);
  });
});
