/*
 * validateConfig / validateCloudConfig: each provisioning option validates into
 * its typed form, each broken rule gives CONFIG_INVALID naming the field, and no
 * error ever repeats a secret value.
 */
import assert from "node:assert/strict";
import { fromHex } from "../modules/bytes";
import { validateCloudConfig, validateConfig } from "../modules/config";
import { isWcmError, WcmError } from "../modules/errors";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBtrustanchor\n-----END CERTIFICATE-----";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBdevicecert\n-----END CERTIFICATE-----";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQsecretkeymaterial\n-----END PRIVATE KEY-----";
const SECRET = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PROVISIONING_KEY = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff";
const cloud = { host: "cloud.example.com", port: 8883, ca: CA };

function configError(input: unknown): WcmError {
  try {
    validateConfig(input);
  } catch (error) {
    assert.ok(isWcmError(error, "CONFIG_INVALID"), `expected CONFIG_INVALID, got ${String(error)}`);
    return error;
  }
  assert.fail("validateConfig accepted invalid input");
}

describe("validateConfig", () => {
  describe("valid", () => {
    it("Secret_TypedWithBytesAndDefaults", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "secret", secret: SECRET, cloud });
      assert.equal(config.option, "secret");
      assert.equal(config.deviceId, "lamp-0001");
      assert.ok(config.option === "secret");
      assert.deepEqual(config.secret, fromHex(SECRET));
      assert.deepEqual(config.cloud, { host: "cloud.example.com", port: 8883, ca: CA, serverName: "cloud.example.com", keepAliveSeconds: 60 });
    });

    it("Secret_UpperCaseHexAnd16Bytes", () => {
      const config = validateConfig({ deviceId: "d", option: "secret", secret: "00112233445566778899AABBCCDDEEFF", cloud });
      assert.ok(config.option === "secret");
      assert.equal(config.secret.length, 16);
      assert.equal(config.secret[15], 0xff);
    });

    it("Secret_64Bytes", () => {
      const config = validateConfig({ deviceId: "d", option: "secret", secret: "ab".repeat(64), cloud });
      assert.ok(config.option === "secret");
      assert.equal(config.secret.length, 64);
    });

    it("Temporary_TypedWithProvisioningKey", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "temporary", provisioningKey: PROVISIONING_KEY, cloud });
      assert.ok(config.option === "temporary");
      assert.ok("provisioningKey" in config);
      assert.deepEqual(config.provisioningKey, fromHex(PROVISIONING_KEY));
    });

    it("Certificate_TypedWithPem", () => {
      const config = validateConfig({ deviceId: "lamp-0001", option: "certificate", certificate: CERT, privateKey: KEY, cloud });
      assert.ok(config.option === "certificate");
      assert.equal(config.certificate, CERT);
      assert.equal(config.privateKey, KEY);
    });

    it("Certificate_RsaAndEcKeyHeaders", () => {
      for (const kind of ["RSA ", "EC "]) {
        const key = `-----BEGIN ${kind}PRIVATE KEY-----\nMIIB\n-----END ${kind}PRIVATE KEY-----`;
        const config = validateConfig({ deviceId: "d", option: "certificate", certificate: CERT, privateKey: key, cloud });
        assert.ok(config.option === "certificate");
      }
    });

    it("Cloud_ExplicitServerNameAndKeepAlive", () => {
      const config = validateConfig({
        deviceId: "d", option: "secret", secret: SECRET,
        cloud: { host: "10.0.0.5", port: 1, ca: CA, serverName: "mqtt.example.com", keepAliveSeconds: 3600 },
      });
      assert.equal(config.cloud.serverName, "mqtt.example.com");
      assert.equal(config.cloud.keepAliveSeconds, 3600);
      assert.equal(config.cloud.port, 1);
    });

    it("Cloud_TwoTrustAnchorsDuringACaRoll", () => {
      const rolled = `${CA}\n${CA.replace("trustanchor", "newanchor")}\n`;
      assert.equal(validateCloudConfig({ ...cloud, ca: rolled }).ca, rolled);
    });

    it("Cloud_Ipv6Literal", () => {
      assert.equal(validateCloudConfig({ host: "[::1]", port: 65535, ca: CA, keepAliveSeconds: 5 }).host, "[::1]");
    });
  });

  describe("errors", () => {
    const base = { deviceId: "lamp-0001", option: "secret", secret: SECRET, cloud };
    const errors: [string, unknown, string][] = [
      ["Config_Null", null, "config"],
      ["Config_String", "lamp", "config"],
      ["Config_Array", [base], "config"],
      ["DeviceId_Missing", { ...base, deviceId: undefined }, "deviceId"],
      ["DeviceId_Empty", { ...base, deviceId: "" }, "deviceId"],
      ["DeviceId_Slash", { ...base, deviceId: "a/b" }, "deviceId"],
      ["DeviceId_65Chars", { ...base, deviceId: "a".repeat(65) }, "deviceId"],
      ["DeviceId_Number", { ...base, deviceId: 1 }, "deviceId"],
      ["Option_Missing", { ...base, option: undefined }, "option"],
      ["Option_Unknown", { ...base, option: "password" }, "option"],
      ["Option_Uppercase", { ...base, option: "SECRET" }, "option"],
      ["Secret_Missing", { ...base, secret: undefined }, "secret"],
      ["Secret_TooShort", { ...base, secret: "00".repeat(15) }, "secret"],
      ["Secret_TooLong", { ...base, secret: "00".repeat(65) }, "secret"],
      ["Secret_OddLength", { ...base, secret: `${SECRET}0` }, "secret"],
      ["Secret_NotHex", { ...base, secret: `${SECRET.slice(0, 62)}zz` }, "secret"],
      ["Secret_Bytes", { ...base, secret: fromHex(SECRET) }, "secret"],
      ["ProvisioningKey_Missing", { ...base, option: "temporary", secret: undefined }, "temporarySecret"],
      ["ProvisioningKey_TooShort", { ...base, option: "temporary", provisioningKey: "f0f1" }, "provisioningKey"],
      ["Certificate_Missing", { ...base, option: "certificate", privateKey: KEY }, "certificate"],
      ["Certificate_NotPem", { ...base, option: "certificate", certificate: "MIIB", privateKey: KEY }, "certificate"],
      ["Certificate_TooLarge", { ...base, option: "certificate", certificate: CERT.replace("MIIB", "A".repeat(8200)), privateKey: KEY }, "certificate"],
      ["PrivateKey_Missing", { ...base, option: "certificate", certificate: CERT }, "privateKey"],
      ["PrivateKey_IsCertificate", { ...base, option: "certificate", certificate: CERT, privateKey: CERT }, "privateKey"],
      ["PrivateKey_Encrypted", { ...base, option: "certificate", certificate: CERT, privateKey: KEY.replace(/PRIVATE KEY/g, "ENCRYPTED PRIVATE KEY") }, "privateKey"],
      ["Cloud_Missing", { ...base, cloud: undefined }, "cloud"],
      ["Cloud_Null", { ...base, cloud: null }, "cloud"],
      ["Cloud_HostMissing", { ...base, cloud: { ...cloud, host: undefined } }, "cloud.host"],
      ["Cloud_HostWithScheme", { ...base, cloud: { ...cloud, host: "mqtts://cloud" } }, "cloud.host"],
      ["Cloud_HostWithPort", { ...base, cloud: { ...cloud, host: "cloud:8883" } }, "cloud.host"],
      ["Cloud_PortZero", { ...base, cloud: { ...cloud, port: 0 } }, "cloud.port"],
      ["Cloud_Port65536", { ...base, cloud: { ...cloud, port: 65536 } }, "cloud.port"],
      ["Cloud_PortString", { ...base, cloud: { ...cloud, port: "8883" } }, "cloud.port"],
      ["Cloud_PortFraction", { ...base, cloud: { ...cloud, port: 8883.5 } }, "cloud.port"],
      ["Cloud_CaMissing", { ...base, cloud: { ...cloud, ca: undefined } }, "cloud.ca"],
      ["Cloud_CaNotPem", { ...base, cloud: { ...cloud, ca: "trust me" } }, "cloud.ca"],
      ["Cloud_CaThreeCertificates", { ...base, cloud: { ...cloud, ca: `${CA}\n${CA}\n${CA}` } }, "cloud.ca"],
      ["Cloud_CaWithTextAround", { ...base, cloud: { ...cloud, ca: `trust me\n${CA}` } }, "cloud.ca"],
      ["Cloud_CaWithAKey", { ...base, cloud: { ...cloud, ca: `${CA}\n${KEY}` } }, "cloud.ca"],
      ["Cloud_ServerNameBad", { ...base, cloud: { ...cloud, serverName: "a b" } }, "cloud.serverName"],
      ["Cloud_ServerNameNumber", { ...base, cloud: { ...cloud, serverName: 5 } }, "cloud.serverName"],
      ["Cloud_KeepAlive4", { ...base, cloud: { ...cloud, keepAliveSeconds: 4 } }, "cloud.keepAliveSeconds"],
      ["Cloud_KeepAlive3601", { ...base, cloud: { ...cloud, keepAliveSeconds: 3601 } }, "cloud.keepAliveSeconds"],
      ["Cloud_KeepAliveFraction", { ...base, cloud: { ...cloud, keepAliveSeconds: 60.5 } }, "cloud.keepAliveSeconds"],
    ];
    for (const [name, input, field] of errors) {
      it(name, () => {
        const error = configError(input);
        assert.equal(error.field, field, error.message);
        assert.ok(error.message.startsWith(`CONFIG_INVALID: ${field}: `), error.message);
      });
    }
  });

  describe("no secret in errors", () => {
    // Each input carries secret material and breaks some rule; no error text may contain the material.
    const secretish = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e7";
    const leaks: [string, unknown, string[]][] = [
      ["SecretTooShort", { deviceId: "d", option: "secret", secret: secretish.slice(0, 30), cloud }, [secretish.slice(0, 30)]],
      ["SecretTooLong", { deviceId: "d", option: "secret", secret: secretish.repeat(3), cloud }, [secretish]],
      ["SecretNotHex", { deviceId: "d", option: "secret", secret: `${secretish.slice(0, 60)}XYZW`, cloud }, [secretish.slice(0, 60)]],
      ["SecretOddLength", { deviceId: "d", option: "secret", secret: `${secretish}a`, cloud }, [secretish]],
      ["ProvisioningKeyNotHex", { deviceId: "d", option: "temporary", provisioningKey: `g${secretish}`, cloud }, [secretish]],
      ["ValidSecret_BadCloud", { deviceId: "d", option: "secret", secret: secretish, cloud: { ...cloud, port: -1 } }, [secretish]],
      ["ValidSecret_BadDeviceId", { deviceId: "../x", option: "secret", secret: secretish, cloud }, [secretish]],
      ["ValidKey_BadOption", { deviceId: "d", option: "tmp", provisioningKey: secretish, secret: secretish, cloud }, [secretish]],
      ["PrivateKeyNotPem", { deviceId: "d", option: "certificate", certificate: CERT, privateKey: "MIIEsecretkeymaterial", cloud }, ["MIIEsecretkeymaterial"]],
      ["ValidPrivateKey_BadCertificate", { deviceId: "d", option: "certificate", certificate: "nope", privateKey: KEY, cloud }, ["secretkeymaterial", "MIIE"]],
    ];
    for (const [name, input, material] of leaks) {
      it(`NoLeak_${name}`, () => {
        const error = configError(input);
        const texts = [error.message, String(error), error.stack ?? "", JSON.stringify(error), error.field ?? ""];
        for (const text of texts) {
          for (const secret of material) {
            assert.ok(!text.toLowerCase().includes(secret.toLowerCase()), `error text contains secret material: ${text}`);
          }
        }
      });
    }
  });
});
