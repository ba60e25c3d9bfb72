/*
 * Admin surfaces: the HTTP API (buildAdminApi via inject, and once over a
 * socket), CSV bulk registration, the error catalogue against the README, and
 * the CLI.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { CLOUD_ERROR_CODES } from "../cloud/errors";
import type { AdminApi } from "../cloud/http-api";
import { runCli } from "../cloud/cli";
import { end, loginPassword, mustConnect, newSecret, startTestCloud, temporarySecret, testAdminApi, type TestCloud } from "./cloud-helpers";

const JSON_HEADERS = { "content-type": "application/json" };

describe("cloud admin (buildAdminApi, importDevicesCsv, runCli)", function () {
  let t: TestCloud;
  let api: AdminApi;

  before(async function () {
    t = await startTestCloud({ httpPort: 0 });
    api = testAdminApi(t.cloud.services);
  });
  after(async () => t?.stop());

  it("http_RegisterListShowRevoke_RoundTrip", async function () {
    const secret = newSecret();
    const created = await api.inject({ method: "POST", url: "/v1/devices", headers: JSON_HEADERS, body: JSON.stringify({ deviceId: "http-1", secretHex: secret.hex }) });
    assert.equal(created.status, 201);
    assert.equal((created.body as { kind: string }).kind, "secret");
    assert.equal(JSON.stringify(created.body).includes(secret.hex), false);
    const list = await api.inject({ method: "GET", url: "/v1/devices?limit=10" });
    assert.deepEqual((list.body as { devices: { deviceId: string }[] }).devices.map((d) => d.deviceId), ["http-1"]);
    const revoked = await api.inject({ method: "POST", url: "/v1/devices/http-1/revoke" });
    assert.equal((revoked.body as { revoked: boolean }).revoked, true);
    const audit = await api.inject({ method: "GET", url: "/v1/audit?deviceId=http-1" });
    assert.deepEqual((audit.body as { audit: { action: string; actor: string }[] }).audit.map((a) => a.action), ["device.revoke", "device.register"]);
  });

  it("http_Errors_JsonCodeAndStatus", async function () {
    const cases: [Parameters<AdminApi["inject"]>[0], number, string][] = [
      [{ method: "GET", url: "/v1/devices/absent-1" }, 404, "DEVICE_NOT_FOUND"],
      [{ method: "GET", url: "/v1/nothing" }, 404, "NOT_FOUND"],
      [{ method: "DELETE", url: "/v1/devices" }, 405, "METHOD_NOT_ALLOWED"],
      [{ method: "POST", url: "/v1/devices", headers: JSON_HEADERS, body: "{not json" }, 400, "INVALID_INPUT"],
      [{ method: "POST", url: "/v1/devices", body: "{}" }, 415, "UNSUPPORTED_MEDIA_TYPE"],
      [{ method: "POST", url: "/v1/devices", headers: JSON_HEADERS, body: JSON.stringify({ deviceId: "x", secretHex: "00" }) }, 400, "INVALID_INPUT"],
      [{ method: "POST", url: "/v1/devices", headers: JSON_HEADERS, body: `{"pad":"${"x".repeat(1024 * 1024)}"}` }, 413, "TOO_LARGE"],
      [{ method: "GET", url: "/v1/devices?limit=abc" }, 400, "INVALID_INPUT"],
    ];
    for (const [request, status, code] of cases) {
      const response = await api.inject(request);
      assert.equal(response.status, status, `${request.method} ${request.url}`);
      assert.equal((response.body as { error: { code: string } }).error.code, code);
      assert.equal(typeof (response.body as { error: { message: string } }).error.message, "string");
    }
  });

  it("http_OverSocket_BoundsBodyAndAnswersJson", async function () {
    const admin = t.cloud.admin!;
    const auth = { authorization: `Bearer ${admin.token}` };
    const ok = await fetch(`${admin.url}/v1/health`, { headers: auth });
    assert.deepEqual(await ok.json(), { ok: true });
    const big = await fetch(`${admin.url}/v1/lots`, { method: "POST", headers: { ...JSON_HEADERS, ...auth }, body: "x".repeat(1024 * 1024 + 1) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, "TOO_LARGE");
  });

  it("importDevicesCsv_JsonBody_SameAsTextCsv", async function () {
    const csv = `device_id,option,secret_hex\ncsv-json-1,secret,${newSecret().hex}\n`;
    const response = await api.inject({ method: "POST", url: "/v1/devices/import", headers: JSON_HEADERS, body: JSON.stringify({ csv }) });
    assert.equal(response.status, 201);
    assert.equal((response.body as { imported: number }).imported, 1);
    assert.equal((await t.cloud.services.getDevice({ deviceId: "csv-json-1" })).kind, "secret");
  });

  it("http_CreateLotAndIssueCertificate_UsableByDevices", async function () {
    const lot = await api.inject({ method: "POST", url: "/v1/lots", headers: JSON_HEADERS, body: JSON.stringify({ lot: "http-lot", allowlist: ["http-t1"] }) });
    assert.equal(lot.status, 201);
    const key = (lot.body as { provisioningKeyHex: string }).provisioningKeyHex;
    assert.match(key, /^[0-9a-f]{64}$/);
    const lots = await api.inject({ method: "GET", url: "/v1/lots" });
    assert.equal(JSON.stringify(lots.body).includes(key), false, "the key is shown once");
    const client = await mustConnect(t.cloud, { id: "http-t1", password: loginPassword("http-t1", temporarySecret(key, "http-t1"), "t", 1) });
    await end(client);
    assert.equal((await api.inject({ method: "POST", url: "/v1/cas", headers: JSON_HEADERS, body: JSON.stringify({ name: "http-ca" }) })).status, 201);
    const cert = await api.inject({ method: "POST", url: "/v1/cas/http-ca/certificates", headers: JSON_HEADERS, body: JSON.stringify({ deviceId: "http-c1", keyType: "ec" }) });
    assert.equal(cert.status, 201);
    const issued = cert.body as { certificatePem: string; privateKeyPem: string };
    assert.equal((await api.inject({ method: "POST", url: "/v1/devices", headers: JSON_HEADERS, body: JSON.stringify({ deviceId: "http-c1", certificatePem: issued.certificatePem }) })).status, 201);
    await end(await mustConnect(t.cloud, { id: "http-c1", cert: issued.certificatePem, key: issued.privateKeyPem }));
  });

  it("importDevicesCsv_BadRow_NothingImportedAndLineNamed", async function () {
    const good = "00112233445566778899aabbccddeeff";
    const csv = ["device_id,option,secret_hex", `csv-1,secret,${good}`, `csv-2,secret,${good}${good}`, "", "csv-3,secret,xyz", `csv-4,secret,${good}`].join("\n");
    const before = await t.cloud.registry.countDevices();
    const response = await api.inject({ method: "POST", url: "/v1/devices/import", headers: { "content-type": "text/csv" }, body: csv });
    assert.equal(response.status, 400);
    assert.deepEqual((response.body as { error: { code: string; line: number } }).error.code, "CSV_INVALID");
    assert.equal((response.body as { error: { line: number } }).error.line, 5);
    assert.equal((await t.cloud.registry.countDevices()), before);
    await assert.rejects(t.cloud.services.getDevice({ deviceId: "csv-1" }), { code: "DEVICE_NOT_FOUND" });
  });

  it("importDevicesCsv_ExistingDeviceOrMissingCa_NothingImported", async function () {
    await t.cloud.services.registerSecretDevice({ deviceId: "csv-existing", secretHex: newSecret().hex });
    const before = await t.cloud.registry.countDevices();
    const dup = `device_id,option,secret_hex\ncsv-5,secret,${newSecret().hex}\ncsv-existing,secret,${newSecret().hex}\n`;
    await assert.rejects(t.cloud.services.importDevicesCsv({ csv: dup }), { code: "CSV_INVALID", line: 3 });
    await assert.rejects(t.cloud.services.importDevicesCsv({ csv: "device_id,option,secret_hex\ncsv-6,certificate,\n" }), { code: "CSV_INVALID", line: 2 });
    await assert.rejects(t.cloud.services.importDevicesCsv({ csv: "id,secret\n" }), { code: "CSV_INVALID", line: 1 });
    assert.equal((await t.cloud.registry.countDevices()), before);
  });

  it("importDevicesCsv_AllOptions_ImportedAndUsable", async function () {
    await t.cloud.services.createProductCa({ name: "csv-ca" });
    const lot = await t.cloud.services.createProvisioningKey({ lot: "csv-lot", allowlist: [] });
    const s = newSecret();
    const csv = `\uFEFFdevice_id,option,secret_hex\r\ncsv-s1,secret,${s.hex}\r\ncsv-c1,certificate,\r\ncsv-t1,temporary,\r\n`;
    const result = await t.cloud.services.importDevicesCsv({ csv, caName: "csv-ca", lot: "csv-lot" });
    assert.deepEqual(result, { imported: 3, secret: 1, certificate: 1, temporary: 1 });
    await end(await mustConnect(t.cloud, { id: "csv-s1", password: loginPassword("csv-s1", s.bytes, "s", 1) }));
    await end(await mustConnect(t.cloud, { id: "csv-t1", password: loginPassword("csv-t1", temporarySecret(lot.provisioningKeyHex, "csv-t1"), "t", 1) }));
    const cert = await t.cloud.services.issueDeviceCertificate({ caName: "csv-ca", deviceId: "csv-c1" });
    await end(await mustConnect(t.cloud, { id: "csv-c1", cert: cert.certificatePem, key: cert.privateKeyPem }));
  });

  it("errorCatalogue_EveryCodeDocumentedInReadme", function () {
    const readme = readFileSync(new URL("../cloud/README.md", import.meta.url), "utf8");
    for (const [code, status] of Object.entries(CLOUD_ERROR_CODES)) {
      assert.match(readme, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} missing from cloud/README.md`);
    }
  });

  it("runCli_Commands_JsonOutAndTypedErrors", async function () {
    const dir = join(t.dataDir, "cli");
    const env = { WCM_MASTER_KEY: randomBytes(32).toString("hex"), WCM_DATA: dir };
    const lines: string[] = [];
    const errors: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => errors.push(s) };
    const secretFile = join(t.dataDir, "cli.secret");
    writeFileSync(secretFile, newSecret().hex);
    assert.equal(await runCli(["device", "list"], env, io), 2, "no registry yet");
    assert.match(errors.at(-1)!, /^error REGISTRY_MISSING/);
    assert.equal(await runCli(["init"], env, io), 0);
    assert.equal(await runCli(["device", "add-secret", "cli-1", "--secret-file", secretFile], env, io), 0);
    assert.equal(await runCli(["device", "list"], env, io), 0);
    assert.deepEqual((JSON.parse(lines.at(-1)!) as { deviceId: string }[]).map((d) => d.deviceId), ["cli-1"]);
    assert.equal(await runCli(["device", "show", "absent"], env, io), 1);
    assert.match(errors.at(-1)!, /^error DEVICE_NOT_FOUND/);
    assert.equal(await runCli(["device", "frobnicate"], env, io), 2);
    assert.equal(await runCli(["device", "list"], { WCM_DATA: dir }, io), 1);
    assert.match(errors.at(-1)!, /^error MASTER_KEY_MISSING/);
    assert.equal(await runCli(["device", "list"], { ...env, WCM_MASTER_KEY: randomBytes(32).toString("hex") }, io), 1);
    assert.match(errors.at(-1)!, /^error MASTER_KEY_WRONG/);
    assert.equal(lines.concat(errors).some((l) => l.includes(readFileSync(secretFile, "utf8"))), false);
  });
});
