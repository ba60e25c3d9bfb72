/*
 * Manufacturing: make-lot for each option (files valid, permissions, NVS CSV),
 * resumability after an interruption, and bulk registration of the bundle into
 * a running cloud (devices log in; idempotent; checksum and malformed rows refused).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../cloud/cli";
import { isCloudError } from "../cloud/errors";
import { privateKeyPem } from "../cloud/pki";
import { validateConfig } from "../modules/config";
import { makeLot, type MakeLotOptions } from "../tools/manufacturing/make-lot";
import { end, loginPassword, mustConnect, connectDevice, startTestCloud, temporarySecret, type TestCloud } from "./cloud-helpers";

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function checkNvs(text: string, id: string): Map<string, string> {
  const lines = text.trimEnd().split("\n");
  assert.equal(lines[0], "key,type,encoding,value");
  assert.equal(lines[1], "wcm,namespace,,");
  const values = new Map<string, string>();
  for (const line of lines.slice(2)) {
    const m = /^([A-Za-z0-9_]{1,15}),data,(string|hex2bin|base64),([^,\n"]+)$/.exec(line);
    assert.ok(m, `bad NVS row ${line.slice(0, 40)}`);
    if (m[2] === "hex2bin") assert.match(m[3], /^([0-9a-f]{2})+$/);
    if (m[2] === "base64") assert.match(m[3], /^[A-Za-z0-9+/]+=*$/);
    values.set(m[1], m[3]);
  }
  assert.equal(values.get("deviceId"), id);
  return values;
}

describe("manufacturing: make-lot and import-bundle", function () {
  let t: TestCloud;
  let work: string;
  const base = (): Pick<MakeLotOptions, "cloudCaPem" | "cloudPort" | "cloudHost" | "progress"> => ({
    cloudCaPem: t.cloud.serverCaPem, cloudPort: t.cloud.mqttPort, cloudHost: "localhost", progress: quiet,
  });
  const device = (out: string, id: string) => JSON.parse(readFileSync(join(out, "devices", `${id}.json`), "utf8")) as Record<string, string>;
  const cloudJson = (out: string) => JSON.parse(readFileSync(join(out, "cloud.json"), "utf8")) as unknown;
  const importOut = (out: string) => t.cloud.services.importBundle({ bundle: readFileSync(join(out, "bundle.jsonl")), checksum: readFileSync(join(out, "bundle.jsonl.sha256"), "utf8") });

  before(async function () {
    t = await startTestCloud();
    work = mkdtempSync(join(tmpdir(), "wcm-mfg-test-"));
  });
  after(async function () {
    await t.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("secretLot_ValidFilesPermissions_ImportsOnceAndDevicesLogIn", async function () {
    const out = join(work, "secret");
    const result = await makeLot({ ...base(), option: "secret", count: 20, prefix: "mfg-s-", start: 1, out });
    assert.equal(result.made, 20);
    assert.equal(mode(out), 0o700);
    const ids = Array.from({ length: 20 }, (_, i) => `mfg-s-${String(i + 1).padStart(4, "0")}`);
    const secrets = new Set<string>();
    for (const id of ids) {
      const file = device(out, id);
      const config = validateConfig({ ...file, cloud: cloudJson(out) });
      assert.equal(config.deviceId, id);
      assert.equal(file.secret.length, 64);
      secrets.add(file.secret);
      assert.equal(checkNvs(readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8"), id).get("secret"), file.secret);
      assert.equal(mode(join(out, "devices", `${id}.json`)), 0o600);
      assert.equal(mode(join(out, "devices", `${id}.nvs.csv`)), 0o600);
    }
    assert.equal(secrets.size, 20, "each device has its own secret");
    assert.equal(mode(join(out, "bundle.jsonl")), 0o600);

    const first = await importOut(out);
    assert.equal(first.imported, 20);
    assert.equal(first.alreadyImported, false);
    const count = await t.cloud.services.registry.countDevices();
    const second = await importOut(out);
    assert.deepEqual({ imported: second.imported, alreadyImported: second.alreadyImported }, { imported: 0, alreadyImported: true });
    assert.equal((await t.cloud.services.registry.countDevices()), count);

    const id = ids[6];
    const secret = Uint8Array.from(Buffer.from(device(out, id).secret, "hex"));
    await end(await mustConnect(t.cloud, { id, password: loginPassword(id, secret, "s", 1) }));
  });

  it("interruptedLot_RerunSkipsFinishedRedoesHalfWritten_IdenticalBundle", async function () {
    const out = join(work, "resume");
    const options: MakeLotOptions = { ...base(), option: "secret", count: 15, prefix: "mfg-r-", start: 100, pad: 5, out };
    const stopped = await makeLot({ ...options, stopAfter: 7 });
    assert.deepEqual({ made: stopped.made, interrupted: stopped.interrupted, bundle: stopped.bundle }, { made: 7, interrupted: true, bundle: undefined });
    const kept = device(out, "mfg-r-00101").secret;
    writeFileSync(join(out, "devices", "mfg-r-00103.json"), '{"deviceId":"mfg-r-0'); // half-written
    const resumed = await makeLot(options);
    assert.deepEqual({ made: resumed.made, skipped: resumed.skipped }, { made: 9, skipped: 6 });
    assert.equal(device(out, "mfg-r-00101").secret, kept, "finished devices are not remade");
    assert.ok(validateConfig({ ...device(out, "mfg-r-00103"), cloud: cloudJson(out) }));
    const bundle = readFileSync(resumed.bundle!, "utf8");
    const checksum = readFileSync(`${resumed.bundle!}.sha256`, "utf8");
    const again = await makeLot(options);
    assert.equal(again.made, 0);
    assert.equal(readFileSync(again.bundle!, "utf8"), bundle);
    assert.equal(readFileSync(`${again.bundle!}.sha256`, "utf8"), checksum);
    assert.equal(bundle.trimEnd().split("\n").length, 16);
    await assert.rejects(makeLot({ ...options, count: 16 }), /other arguments/);
  });

  it("temporaryLot_DerivedDefault_DeviceHoldsOnlyItsOwnSecretAndLogsIn", async function () {
    const out = join(work, "temporary");
    await makeLot({ ...base(), option: "temporary", count: 5, prefix: "mfg-t-", start: 1, macBase: "24:0a:c4:00:00:00", lot: "mfg-lot-t", out });
    const lotKey = JSON.parse(readFileSync(join(out, "lot-key.json"), "utf8")) as { provisioningKeyHex: string };
    assert.equal(mode(join(out, "lot-key.json")), 0o600);
    assert.equal((JSON.parse(readFileSync(join(out, "lot.json"), "utf8")) as Record<string, unknown>).temporaryMode, "derived");
    const id = "mfg-t-240ac4000003";
    const file = device(out, id);
    assert.deepEqual(Object.keys(file).sort(), ["deviceId", "labelCode", "option", "temporarySecret"]);
    assert.equal(file.temporarySecret, Buffer.from(temporarySecret(lotKey.provisioningKeyHex, id)).toString("hex"));
    const csv = readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8");
    const nvs = checkNvs(csv, id);
    assert.equal(nvs.get("tempSecret"), file.temporarySecret);
    assert.ok(!nvs.has("provKey") && !csv.includes(lotKey.provisioningKeyHex), "the lot key is not on the device");
    assert.ok(!existsSync(join(out, "lot-key.bin")));
    assert.equal(validateConfig({ ...file, cloud: cloudJson(out) }).option, "temporary");
    assert.equal((await importOut(out)).imported, 5);
    const lot = (await t.cloud.services.listProvisioningKeys()).find((l) => l.lot === "mfg-lot-t");
    assert.equal(lot?.allowlist, 5);
    await end(await mustConnect(t.cloud, { id, password: loginPassword(id, Buffer.from(file.temporarySecret, "hex"), "t", 1) }));
    const stranger = "mfg-t-240ac4000099";
    const refused = await connectDevice(t.cloud, { id: stranger, password: loginPassword(stranger, temporarySecret(lotKey.provisioningKeyHex, stranger), "t", 1) });
    assert.ok(refused.error, "an id outside the lot's allowlist is refused");
  });

  it("temporaryLot_HardwareMode_NothingSecretOnDeviceKeyFileToBurn", async function () {
    const out = join(work, "temporary-hw");
    await makeLot({ ...base(), option: "temporary", temporaryMode: "hardware", keyBlock: 4, count: 3, prefix: "mfg-h-", start: 1, out });
    const lotKey = JSON.parse(readFileSync(join(out, "lot-key.json"), "utf8")) as { provisioningKeyHex: string };
    const bin = readFileSync(join(out, "lot-key.bin"));
    assert.equal(bin.length, 32);
    assert.equal(bin.toString("hex"), lotKey.provisioningKeyHex);
    assert.equal(mode(join(out, "lot-key.bin")), 0o600);
    const file = device(out, "mfg-h-0002");
    // no credential on the device: only the label code, which the label shows anyway
    assert.deepEqual(file, { deviceId: "mfg-h-0002", option: "temporary", temporarySecretFrom: "hardware", hmacKeyBlock: "4", labelCode: file.labelCode });
    const nvs = checkNvs(readFileSync(join(out, "devices", "mfg-h-0002.nvs.csv"), "utf8"), "mfg-h-0002");
    assert.deepEqual([...nvs.keys()].sort(), ["deviceId", "hmacKeyBlock", "labelCode", "option", "tempFrom"]);
    const config = validateConfig({ ...file, cloud: cloudJson(out) });
    assert.ok(config.option === "temporary" && "temporarySecretFrom" in config);
    await assert.rejects(makeLot({ ...base(), option: "temporary", temporaryMode: "hardware", keyBlock: 6, count: 1, prefix: "x-", start: 1, out: join(work, "bad-block") }), /--key-block must be 0..5/);
  });

  it("labelCodes_EachDeviceItsOwn_WithQrAndSoftAp_NeverInTheBundle", async function () {
    const out = join(work, "labels");
    const result = await makeLot({ ...base(), option: "secret", count: 20, prefix: "mfg-l-", start: 1, out });
    const bundle = readFileSync(result.bundle!, "utf8");
    const csv = readFileSync(join(out, "labels.csv"), "utf8").trimEnd().split("\n");
    assert.equal(csv[0], "deviceId,code,softAp,qr");
    assert.equal(csv.length, 21);
    const codes = new Set<string>();
    for (let n = 1; n <= 20; n++) {
      const id = `mfg-l-${String(n).padStart(4, "0")}`;
      const file = device(out, id);
      const label = JSON.parse(readFileSync(join(out, "devices", `${id}.label.json`), "utf8")) as Record<string, string>;
      assert.equal(mode(join(out, "devices", `${id}.label.json`)), 0o600);
      assert.equal(label.code, file.labelCode);
      assert.equal(label.softAp, `wcm-${id}`);
      assert.equal(label.qr, `WCM1:${id}:${file.labelCode}:wcm-${id}`);
      assert.ok(csv.includes(`${id},${label.code},${label.softAp},${label.qr}`));
      assert.equal(validateConfig({ ...file, cloud: cloudJson(out) }).labelCode, file.labelCode.replace(/-/g, "").slice(0, 13));
      assert.equal(checkNvs(readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8"), id).get("labelCode"), file.labelCode);
      for (const form of [file.labelCode, file.labelCode.replace(/-/g, ""), file.labelCode.toLowerCase()]) assert.ok(!bundle.includes(form), "a label code in the bundle");
      codes.add(file.labelCode);
    }
    assert.equal(codes.size, 20);
  });

  it("temporaryLot_LotKeyModeOnlyWhenAsked_OldFiles", async function () {
    const out = join(work, "temporary-lotkey");
    await makeLot({ ...base(), option: "temporary", temporaryMode: "lot-key", count: 2, prefix: "mfg-k-", start: 1, out });
    const lotKey = JSON.parse(readFileSync(join(out, "lot-key.json"), "utf8")) as { provisioningKeyHex: string };
    assert.equal(device(out, "mfg-k-0001").provisioningKey, lotKey.provisioningKeyHex);
    assert.ok(checkNvs(readFileSync(join(out, "devices", "mfg-k-0001.nvs.csv"), "utf8"), "mfg-k-0001").has("provKey"));
    await assert.rejects(makeLot({ ...base(), option: "temporary", temporaryMode: "derived", count: 2, prefix: "mfg-k-", start: 1, out }), /other arguments/);
    await assert.rejects(makeLot({ ...base(), option: "secret", temporaryMode: "derived", count: 1, prefix: "mfg-x-", start: 1, out: join(work, "bad-mode") }), /for temporary lots/);
  });

  it("certificateLot_SignedByProductCa_PinnedAndLogsIn", async function () {
    await t.cloud.services.createProductCa({ name: "mfg-ca" });
    const out = join(work, "certificate");
    await makeLot({ ...base(), option: "certificate", count: 2, prefix: "mfg-c-", start: 1, caName: "mfg-ca", services: t.cloud.services, out });
    const id = "mfg-c-0002";
    const file = device(out, id);
    assert.equal(validateConfig({ ...file, cloud: cloudJson(out) }).option, "certificate");
    const nvs = checkNvs(readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8"), id);
    assert.ok(nvs.has("cert") && nvs.has("key"));
    assert.equal((await importOut(out)).imported, 2);
    assert.match((await t.cloud.services.getDevice({ deviceId: id })).certFingerprint ?? "", /^[0-9a-f]{64}$/);
    await end(await mustConnect(t.cloud, { id, cert: file.certificate, key: file.privateKey }));
  });

  it("csrLot_SignsRequestsMadeElsewhere_DeviceKeepsItsKeyAndLogsIn", async function () {
    const x509 = await import("@peculiar/x509");
    const { webcrypto } = await import("node:crypto");
    const csrDir = join(work, "csrs");
    mkdirSync(csrDir);
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    const id = "mfg-x-0001";
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${id}`, keys: keys as never, signingAlgorithm: alg });
    writeFileSync(join(csrDir, `${id}.csr.pem`), csr.toString("pem"));
    const out = join(work, "csr");
    await makeLot({ ...base(), option: "certificate", count: 1, prefix: "mfg-x-", start: 1, caName: "mfg-ca", services: t.cloud.services, csrDir, out });
    const file = device(out, id);
    assert.equal(file.privateKey, undefined, "the key stays where the request was made");
    assert.equal((await importOut(out)).imported, 1);
    const keyPem = privateKeyPem(new Uint8Array(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)));
    await end(await mustConnect(t.cloud, { id, cert: file.certificate, key: keyPem }));
  });

  it("importBundle_BadChecksumOrMalformedRow_RefusedWithLineNothingImported", async function () {
    const out = join(work, "bad");
    await makeLot({ ...base(), option: "secret", count: 5, prefix: "mfg-b-", start: 1, out });
    const bundle = readFileSync(join(out, "bundle.jsonl"));
    const before = await t.cloud.services.registry.countDevices();
    await assert.rejects(t.cloud.services.importBundle({ bundle, checksum: `${"0".repeat(64)}  bundle.jsonl\n` }), (e) => isCloudError(e, "BUNDLE_INVALID") && e.field === "checksum");
    const lines = bundle.toString("utf8").split("\n");
    lines[3] = lines[3].replace(/"secretHex":"[0-9a-f]{4}/, '"secretHex":"zz');
    const broken = Buffer.from(lines.join("\n"));
    const { bundleSha256 } = await import("../cloud/bundle");
    await assert.rejects(t.cloud.services.importBundle({ bundle: broken, checksum: bundleSha256(broken) }), (e) => isCloudError(e, "BUNDLE_INVALID") && e.line === 4);
    assert.equal((await t.cloud.services.registry.countDevices()), before);

    // the CLI, on the running cloud's registry
    const errors: string[] = [];
    const outLines: string[] = [];
    const env = { WCM_DATA: t.dataDir, WCM_MASTER_KEY: Buffer.from(t.masterKey).toString("hex") };
    const io = { out: (s: string) => outLines.push(s), err: (s: string) => errors.push(s) };
    writeFileSync(join(out, "broken.jsonl"), broken);
    writeFileSync(join(out, "broken.jsonl.sha256"), `${bundleSha256(broken)}  broken.jsonl\n`);
    assert.equal(await runCli(["import-bundle", join(out, "broken.jsonl")], env, io), 1);
    assert.match(errors.at(-1) ?? "", /BUNDLE_INVALID: line 4/);
    assert.equal(await runCli(["import-bundle", join(out, "bundle.jsonl")], env, io), 0);
    assert.equal((JSON.parse(outLines.at(-1)!) as { imported: number }).imported, 5);
    assert.equal(await runCli(["import-bundle", join(out, "bundle.jsonl")], env, io), 0);
    assert.equal((JSON.parse(outLines.at(-1)!) as { alreadyImported: boolean }).alreadyImported, true);
    assert.equal((await t.cloud.services.registry.countDevices()), before + 5);

    // another lot that reuses registered ids: refused at the first one's line, nothing imported
    const clash = join(work, "clash");
    await makeLot({ ...base(), option: "secret", count: 6, prefix: "mfg-b-", start: 0, out: clash });
    await assert.rejects(importOut(clash), (e) => isCloudError(e, "BUNDLE_INVALID") && e.line === 3);
    assert.equal((await t.cloud.services.registry.countDevices()), before + 5);
  });
});
