/*
 * Where a temporary device's temporary secret comes from (issue 8 item 4,
 * issue 11 item 4): the derived secret stored instead of the lot key, the lot
 * key in a (simulated) ESP32 eFuse key block with the HMAC peripheral, and the
 * older lot-key mode; the configuration rules, the TemporarySecretPort, the
 * simulated eFuse's faults, and devices of each mode reaching ONLINE over the
 * fake cloud.
 */
import assert from "node:assert/strict";
import { fromHex, toHex } from "../modules/bytes";
import { validateConfig } from "../modules/config";
import { deriveTemporarySecret } from "../modules/derive";
import { isWcmError, WcmError } from "../modules/errors";
import { ConnectionManager, type ManagerStatus } from "../modules/manager";
import { nobleDigest } from "../modules/noble-digest";
import { jsSeal } from "../modules/js-seal";
import type { TemporarySecretPort } from "../modules/ports";
import { temporarySecretPort } from "../modules/temporary-secret";
import { EfuseError, efuseTemporarySecret, SimulatedEfuse } from "../hosts/node/efuse";
import { MemoryFlash, TestBed, testRandom } from "./support/scenarios";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----";
const cloud = { host: "localhost", port: 8883, ca: CA };
/** docs/protocol.md, test inputs and 5.1 */
const LOT_KEY = fromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff");
const TEMPORARY_SECRET_HEX = "4a3263d17f02b1416b7a4da091a2c09a4b9b62c1935b3cf198e8627d96ea2de2";

function configError(input: unknown): WcmError {
  try {
    validateConfig(input);
  } catch (error) {
    assert.ok(isWcmError(error, "CONFIG_INVALID"), String(error));
    return error;
  }
  assert.fail("accepted");
}

function keyUnavailable(port: TemporarySecretPort, id: string): WcmError {
  try {
    port.temporarySecret(id);
  } catch (error) {
    assert.ok(isWcmError(error, "KEY_UNAVAILABLE"), String(error));
    return error;
  }
  assert.fail("computed a secret");
}

describe("temporary credential modes", () => {
  describe("validateConfig", () => {
    it("Derived_TypedWithTheSecretOnly", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", temporarySecret: TEMPORARY_SECRET_HEX, cloud });
      assert.ok(config.option === "temporary" && "temporarySecret" in config);
      assert.equal(toHex(config.temporarySecret), TEMPORARY_SECRET_HEX);
      assert.ok(!("provisioningKey" in config));
    });

    it("Hardware_Typed", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", temporarySecretFrom: "hardware", cloud });
      assert.ok(config.option === "temporary" && "temporarySecretFrom" in config);
      assert.equal(config.temporarySecretFrom, "hardware");
    });

    it("NoneOrTwoSources_Refused", () => {
      assert.equal(configError({ deviceId: "d", option: "temporary", cloud }).field, "temporarySecret");
      const two = configError({ deviceId: "d", option: "temporary", temporarySecret: TEMPORARY_SECRET_HEX, provisioningKey: toHex(LOT_KEY), cloud });
      assert.equal(two.field, "provisioningKey");
      assert.ok(!two.message.includes(TEMPORARY_SECRET_HEX) && !two.message.includes(toHex(LOT_KEY)));
    });

    it("DerivedSecretNot32Bytes_RefusedWithoutEcho", () => {
      for (const bad of ["ab".repeat(16), "ab".repeat(33), `${"ab".repeat(31)}zz`, 7]) {
        const error = configError({ deviceId: "d", option: "temporary", temporarySecret: bad, cloud });
        assert.equal(error.field, "temporarySecret");
        if (typeof bad === "string") assert.ok(!error.message.includes(bad));
      }
    });

    it("HardwareSourceOtherThanHardware_Refused", () => {
      assert.equal(configError({ deviceId: "d", option: "temporary", temporarySecretFrom: "nvs", cloud }).field, "temporarySecretFrom");
    });
  });

  describe("temporarySecretPort", () => {
    it("LotKey_DerivesTheProtocolVector", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", provisioningKey: toHex(LOT_KEY), cloud });
      assert.ok(config.option === "temporary");
      const port = temporarySecretPort(config, nobleDigest);
      assert.equal(toHex(port.temporarySecret("lamp-0001")), TEMPORARY_SECRET_HEX);
      // whoever holds the lot key computes any other device's secret too: the weakness of this mode
      assert.deepEqual(port.temporarySecret("lamp-0002"), deriveTemporarySecret(nobleDigest, LOT_KEY, "lamp-0002"));
    });

    it("Derived_OnlyForItsOwnId", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", temporarySecret: TEMPORARY_SECRET_HEX, cloud });
      assert.ok(config.option === "temporary");
      const port = temporarySecretPort(config, nobleDigest);
      assert.equal(toHex(port.temporarySecret("lamp-0001")), TEMPORARY_SECRET_HEX);
      assert.equal(keyUnavailable(port, "lamp-0002").field, "deviceId");
    });

    it("Hardware_NoPortOnThisHost_KeyUnavailable", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", temporarySecretFrom: "hardware", cloud });
      assert.ok(config.option === "temporary");
      assert.match(keyUnavailable(temporarySecretPort(config, nobleDigest), "lamp-0001").message, /no hardware key port/);
    });
  });

  describe("SimulatedEfuse", () => {
    it("HmacUp_MatchesEspIdfTestVector", () => {
      // ESP-IDF components/esp_security/test_apps/crypto_drivers: key 1..32 burnt as HMAC_UP, HMAC of 64 zero bytes
      const efuse = new SimulatedEfuse();
      efuse.burnKey(5, Uint8Array.from({ length: 32 }, (_, i) => i + 1), "HMAC_UP");
      assert.equal(toHex(efuse.hmacCalculate(5, new Uint8Array(64))), "4f34318a45744d7153b718f4781cbb101960ba9c8ce23bc11d79b63cae0f30c8");
    });

    it("BurnKey_OnceOnly", () => {
      const efuse = new SimulatedEfuse();
      efuse.burnKey(3, LOT_KEY, "HMAC_UP");
      assert.throws(() => efuse.burnKey(3, new Uint8Array(32), "HMAC_UP"), (e: unknown) => e instanceof EfuseError && e.code === "ESP_ERR_EFUSE_REPEATED_PROG");
      assert.throws(() => efuse.burnKey(6, LOT_KEY, "HMAC_UP"), (e: unknown) => e instanceof EfuseError && e.code === "ESP_ERR_INVALID_ARG");
      assert.throws(() => efuse.burnKey(2, LOT_KEY.subarray(0, 16), "HMAC_UP"), (e: unknown) => e instanceof EfuseError && e.code === "ESP_ERR_INVALID_ARG");
      // the key in the block is still the first one
      assert.equal(toHex(efuseTemporarySecret(efuse, 3).temporarySecret("lamp-0001")), TEMPORARY_SECRET_HEX);
    });

    it("HmacKey_NeverReadBack", () => {
      const efuse = new SimulatedEfuse();
      efuse.burnKey(0, LOT_KEY, "HMAC_UP");
      assert.deepEqual(efuse.readKeyBlock(0), new Uint8Array(32));
      efuse.burnKey(1, LOT_KEY, "USER");
      assert.deepEqual(efuse.readKeyBlock(1), LOT_KEY, "a USER block is readable (so it is the wrong place for the lot key)");
      const json = JSON.stringify(efuse) + Object.keys(efuse).join();
      assert.ok(!json.includes(toHex(LOT_KEY)));
    });

    it("UnburntOrWrongPurpose_Faults", () => {
      const efuse = new SimulatedEfuse();
      assert.throws(() => efuse.hmacCalculate(2, new Uint8Array(1)), (e: unknown) => e instanceof EfuseError && e.code === "ESP_FAIL");
      assert.match(keyUnavailable(efuseTemporarySecret(efuse, 2), "lamp-0001").message, /key block 2 is not burnt/);
      efuse.burnKey(2, LOT_KEY, "HMAC_DOWN_DIGITAL_SIGNATURE");
      assert.throws(() => efuse.hmacCalculate(2, new Uint8Array(1)), (e: unknown) => e instanceof EfuseError && e.code === "ESP_FAIL");
      assert.match(keyUnavailable(efuseTemporarySecret(efuse, 2), "lamp-0001").message, /purpose HMAC_DOWN_DIGITAL_SIGNATURE, not HMAC_UP/);
      efuse.burnKey(4, LOT_KEY, "HMAC_UP");
      efuse.failNextHmac();
      assert.match(keyUnavailable(efuseTemporarySecret(efuse, 4), "lamp-0001").message, /HMAC peripheral: ESP_FAIL/);
      assert.equal(toHex(efuseTemporarySecret(efuse, 4).temporarySecret("lamp-0001")), TEMPORARY_SECRET_HEX);
    });
  });

  describe("ConnectionManager", () => {
    function device(bed: TestBed, config: unknown, temporarySecret?: TemporarySecretPort) {
      const validated = validateConfig(config);
      const manager = new ConnectionManager(validated, {
        digest: nobleDigest, seal: jsSeal, random: testRandom(nobleDigest, validated.deviceId), clock: { now: () => bed.time.now },
        scheduler: bed.time, kv: new MemoryFlash(), link: bed.cloud.linkFactory(),
        ...(temporarySecret ? { temporarySecret } : {}),
      }, { requestTimeoutMs: 2000 });
      const states: ManagerStatus[] = [];
      manager.onStatus((status) => states.push(status));
      return { manager, states };
    }

    it("DerivedMode_OnlinePermanentWithoutTheLotKey", () => {
      const bed = new TestBed(nobleDigest);
      bed.cloud.addProvisioningKey(LOT_KEY);
      const secret = toHex(deriveTemporarySecret(nobleDigest, LOT_KEY, "lamp-0001"));
      const { manager, states } = device(bed, { deviceId: "lamp-0001", option: "temporary", temporarySecret: secret, cloud });
      manager.start();
      bed.time.advance(1000);
      assert.equal(manager.status.state, "ONLINE");
      assert.equal(manager.status.credential, "permanent");
      assert.ok(states.some((s) => s.state === "ISSUING"));
    });

    it("HardwareMode_OnlinePermanentOverTheEfuse", () => {
      const bed = new TestBed(nobleDigest);
      bed.cloud.addProvisioningKey(LOT_KEY);
      const efuse = new SimulatedEfuse();
      efuse.burnKey(4, LOT_KEY, "HMAC_UP");
      const { manager } = device(bed, { deviceId: "lamp-0001", option: "temporary", temporarySecretFrom: "hardware", cloud }, efuseTemporarySecret(efuse, 4));
      manager.start();
      bed.time.advance(1000);
      assert.equal(manager.status.state, "ONLINE");
      assert.equal(manager.status.credential, "permanent");
      assert.ok(efuse.hmacCalls >= 1);
    });

    it("HardwareMode_UnburntBlock_AuthFailedKeyUnavailableNoConnect", () => {
      const bed = new TestBed(nobleDigest);
      bed.cloud.addProvisioningKey(LOT_KEY);
      const efuse = new SimulatedEfuse();
      const { manager } = device(bed, { deviceId: "lamp-0001", option: "temporary", temporarySecretFrom: "hardware", cloud }, efuseTemporarySecret(efuse, 4));
      manager.start();
      bed.time.advance(1000);
      assert.equal(manager.status.state, "AUTH_FAILED");
      assert.equal(manager.status.lastFailure?.reason, "KEY_UNAVAILABLE");
      assert.match(manager.status.lastFailure?.detail ?? "", /key block 4 is not burnt/);
      assert.equal(bed.cloud.sessions.length, 0, "no login was attempted without a key");
      assert.ok((manager.status.retryInMs ?? 0) >= 30_000, "retried on the authentication schedule");
      // the line burns the key late: the next attempt gets in
      efuse.burnKey(4, LOT_KEY, "HMAC_UP");
      bed.time.advance(61_000);
      assert.equal(manager.status.state, "ONLINE");
      manager.stop();
    });
  });
});
