/*
 * The admin API as an attacker tries it, over real sockets: no token, a wrong
 * token, DNS rebinding (a foreign Host with the right token), a foreign
 * Origin, a text/plain import and a browser's body-less cross-site revoke are
 * each refused with a JSON error and change nothing; a non-loopback bind
 * without TLS does not start; the token file is made owner-only; the admin
 * API is served over TLS with an issued or an operator's certificate.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { buildAdminApi } from "../cloud/http-api";
import { startCloud } from "../cloud/index";
import { createCa, issueCertificate, privateKeyPem } from "../cloud/pki";
import { newSecret, startTestCloud, TEST_ADMIN_TOKEN, type TestCloud } from "./cloud-helpers";
import type { StartCloudOptions } from "../cloud/index";

interface Raw {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One HTTP(S) request with exactly the headers given (Host included), as any client or browser could send. */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string, tls?: { ca: string; servername: string }): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port, method, path, headers: { ...headers, ...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }) }, setHost: false };
    const req = tls ? httpsRequest({ ...options, ca: tls.ca, servername: tls.servername }) : httpRequest(options);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        assert.match(String(res.headers["content-type"]), /^application\/json/);
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

function refused(response: Raw, status: number, code: string): void {
  // the status and code only: a body that got through may hold a secret (a lot key), never printed
  assert.equal(response.status, status, `got ${response.status} ${response.body.error?.code ?? "(not an error)"}`);
  assert.equal(response.body.error?.code, code);
  assert.equal(typeof response.body.error?.message, "string");
}

describe("cloud admin access (token, Host, Origin, JSON-only bodies, TLS)", function () {
  let t: TestCloud;
  let port: number;
  let host: string;
  let token: string;

  before(async function () {
    t = await startTestCloud({ httpPort: 0 });
    port = t.cloud.admin!.port;
    host = `127.0.0.1:${port}`;
    token = t.cloud.admin!.token;
  });
  after(async () => t?.stop());

  const lotBody = (lot: string) => JSON.stringify({ lot });
  /** Another cloud over the same registry (its server identity exists: no key generation). */
  const sibling = (options: Partial<StartCloudOptions>) =>
    startCloud({ dataDir: t.dataDir, masterKey: Uint8Array.from(t.masterKey), mqttPort: 0, httpPort: 0, ...options });

  it("admin_NoToken_Unauthorized_NothingCreated", async function () {
    refused(await raw(port, "GET", "/v1/devices", { host }), 401, "UNAUTHORIZED");
    refused(await raw(port, "POST", "/v1/lots", { host, "content-type": "application/json" }, lotBody("no-token-lot")), 401, "UNAUTHORIZED");
    // refused on the headers: the body (here 2 MiB of CSV) is never buffered or parsed
    refused(await raw(port, "POST", "/v1/devices/import", { host, "content-type": "text/csv" }, "x".repeat(2 * 1024 * 1024)), 401, "UNAUTHORIZED");
    assert.equal((await t.cloud.registry.lot("no-token-lot")), undefined);
  });

  it("admin_WrongToken_Unauthorized_NothingCreated", async function () {
    const wrong = [`${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`, "x", "", token.toUpperCase() === token ? `${token}x` : token.toUpperCase()];
    for (const guess of wrong) {
      refused(await raw(port, "POST", "/v1/lots", { host, authorization: `Bearer ${guess}`, "content-type": "application/json" }, lotBody("wrong-token-lot")), 401, "UNAUTHORIZED");
    }
    refused(await raw(port, "POST", "/v1/lots", { host, authorization: token, "content-type": "application/json" }, lotBody("wrong-token-lot")), 401, "UNAUTHORIZED");
    assert.equal((await t.cloud.registry.lot("wrong-token-lot")), undefined);
  });

  it("admin_DnsRebinding_ForeignHostWithValidToken_Refused_NothingChanged", async function () {
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const secret = newSecret();
    for (const evil of ["evil.example", `evil.example:${port}`, `127.0.0.1:${port + 1}`, "", `127.0.0.1:${port}.evil.example`]) {
      refused(await raw(port, "POST", "/v1/devices", { ...auth, host: evil }, JSON.stringify({ deviceId: "rebind-1", secretHex: secret.hex })), 403, "HOST_REFUSED");
      refused(await raw(port, "GET", "/v1/lots", { ...auth, host: evil }), 403, "HOST_REFUSED");
    }
    await assert.rejects(t.cloud.services.getDevice({ deviceId: "rebind-1" }), { code: "DEVICE_NOT_FOUND" });
    // the loopback names with the bound port are the admin's own
    for (const own of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) assert.equal((await raw(port, "GET", "/v1/health", { ...auth, host: own })).status, 200);
  });

  it("admin_ForeignOrigin_Refused_DeviceNotRevoked", async function () {
    await t.cloud.services.registerSecretDevice({ deviceId: "origin-1", secretHex: newSecret().hex });
    const auth = { host, authorization: `Bearer ${token}` };
    for (const origin of ["http://evil.example", "null", `https://127.0.0.1:${port}`, `http://localhost:${port}`, `http://127.0.0.1:${port + 1}`]) {
      refused(await raw(port, "POST", "/v1/devices/origin-1/revoke", { ...auth, origin }), 403, "ORIGIN_REFUSED");
    }
    assert.equal((await t.cloud.services.getDevice({ deviceId: "origin-1" })).revoked, false);
    // the admin's own origin is fine
    assert.equal((await raw(port, "GET", "/v1/devices/origin-1", { ...auth, origin: `http://${host}` })).status, 200);
  });

  it("admin_TextPlainImport_Refused_NothingImported", async function () {
    const csv = `device_id,option,secret_hex\nplain-1,secret,${newSecret().hex}\n`;
    const before = await t.cloud.registry.countDevices();
    // what a page elsewhere can send without a preflight: text/plain (with or without a token it cannot know)
    refused(await raw(port, "POST", "/v1/devices/import", { host, authorization: `Bearer ${token}`, "content-type": "text/plain" }, csv), 415, "UNSUPPORTED_MEDIA_TYPE");
    refused(await raw(port, "POST", "/v1/devices/import", { host, "content-type": "text/plain" }, csv), 401, "UNAUTHORIZED");
    refused(await raw(port, "POST", "/v1/devices/import", { host, authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" }, `csv=${encodeURIComponent(csv)}`), 415, "UNSUPPORTED_MEDIA_TYPE");
    refused(await raw(port, "POST", "/v1/devices/import", { host, authorization: `Bearer ${token}` }, csv), 415, "UNSUPPORTED_MEDIA_TYPE");
    assert.equal((await t.cloud.registry.countDevices()), before);
    await assert.rejects(t.cloud.services.getDevice({ deviceId: "plain-1" }), { code: "DEVICE_NOT_FOUND" });
  });

  it("admin_NonJsonBodyOnJsonRoute_Refused", async function () {
    refused(await raw(port, "POST", "/v1/lots", { host, authorization: `Bearer ${token}`, "content-type": "text/plain" }, lotBody("plain-lot")), 415, "UNSUPPORTED_MEDIA_TYPE");
    refused(await raw(port, "POST", "/v1/devices/x/revoke", { host, authorization: `Bearer ${token}`, "content-type": "text/plain" }, "{}"), 415, "UNSUPPORTED_MEDIA_TYPE");
    assert.equal((await t.cloud.registry.lot("plain-lot")), undefined);
  });

  it("admin_CrossSiteBodylessPost_Refused_DeviceNotRevokedOrUnlocked", async function () {
    await t.cloud.services.registerSecretDevice({ deviceId: "csrf-1", secretHex: newSecret().hex });
    // a browser's simple POST from a page elsewhere: the admin's Host (the browser reached it), a foreign Origin or none, no credential
    for (const path of ["/v1/devices/csrf-1/revoke", "/v1/devices/csrf-1/rotate", "/v1/devices/csrf-1/reset-counter", "/v1/devices/csrf-1/unlock"]) {
      refused(await raw(port, "POST", path, { host, origin: "http://evil.example" }), 403, "ORIGIN_REFUSED");
      refused(await raw(port, "POST", path, { host, "content-type": "text/plain" }), 401, "UNAUTHORIZED");
      refused(await raw(port, "POST", path, { host }), 401, "UNAUTHORIZED");
    }
    const device = await t.cloud.services.getDevice({ deviceId: "csrf-1" });
    assert.equal(device.revoked, false);
    assert.equal(device.pendingGeneration, null);
    // a CORS preflight is never granted
    const preflight = await raw(port, "OPTIONS", "/v1/devices/csrf-1/revoke", { host, origin: "http://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization" });
    assert.ok(preflight.status >= 400);
  });

  it("admin_TokenFile_OwnerOnlyFromCreation_SameAcrossRestarts", async function () {
    const file = t.cloud.admin!.tokenFile;
    assert.equal(file, join(t.dataDir, "admin-token"));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, "utf8").trim(), token);
    assert.match(token, /^[0-9a-f]{64}$/);
    const again = await sibling({});
    try {
      assert.equal(again.admin!.token, token);
    } finally {
      await again.close();
    }
  });

  it("admin_OperatorTokenFile_UsedAndCheckedForModeAndLength", async function () {
    const dir = mkdtempSync(join(tmpdir(), "wcm-admin-token-"));
    try {
      const given = randomBytes(24).toString("base64url");
      writeFileSync(join(dir, "good"), `${given}\n`, { mode: 0o600 });
      writeFileSync(join(dir, "open"), `${given}\n`);
      chmodSync(join(dir, "open"), 0o644);
      writeFileSync(join(dir, "short"), "abc\n", { mode: 0o600 });
      const c = await sibling({ adminTokenFile: join(dir, "good") });
      try {
        assert.equal(c.admin!.token, given);
        assert.equal((await raw(c.admin!.port, "GET", "/v1/devices", { host: `127.0.0.1:${c.admin!.port}`, authorization: `Bearer ${given}` })).status, 200);
        refused(await raw(c.admin!.port, "GET", "/v1/devices", { host: `127.0.0.1:${c.admin!.port}`, authorization: `Bearer ${token}` }), 401, "UNAUTHORIZED");
      } finally {
        await c.close();
      }
      await assert.rejects(sibling({ adminTokenFile: join(dir, "open") }), (e: Error & { code?: string }) => e.code === "FILE_INSECURE" && e.message.includes(`chmod 600 ${join(dir, "open")}`) && !e.message.includes(given));
      await assert.rejects(sibling({ adminTokenFile: join(dir, "short") }), { code: "ADMIN_TOKEN_INVALID" });
      await assert.rejects(sibling({ adminTokenFile: join(dir, "absent") }), { code: "ADMIN_TOKEN_INVALID" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("buildAdminApi_NoToken_Refused", function () {
    assert.throws(() => buildAdminApi(t.cloud.services, {} as never), { code: "ADMIN_TOKEN_INVALID" });
    assert.throws(() => buildAdminApi(t.cloud.services, { token: "short" }), { code: "ADMIN_TOKEN_INVALID" });
    const api = buildAdminApi(t.cloud.services, { token: TEST_ADMIN_TOKEN });
    return api.inject({ method: "GET", url: "/v1/devices", headers: { host: "127.0.0.1" } }).then((r) => assert.equal(r.status, 401));
  });

  it("startCloud_NonLoopbackAdminWithoutTlsOrName_RefusesToStart", async function () {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const mqttPort = (busy.address() as { port: number }).port;
    busy.close();
    await assert.rejects(sibling({ adminHost: "0.0.0.0", adminName: "admin.test", adminTls: false, mqttPort }), { code: "ADMIN_TLS_REQUIRED" });
    await assert.rejects(sibling({ adminHost: "192.0.2.1", adminName: "admin.test", adminTls: false, mqttPort }), { code: "ADMIN_TLS_REQUIRED" });
    await assert.rejects(sibling({ adminHost: "0.0.0.0", mqttPort }), { code: "INVALID_INPUT", field: "adminName" });
    await assert.rejects(sibling({ adminHost: "::", adminName: "bad name!", mqttPort }), { code: "INVALID_INPUT", field: "adminName" });
    // nothing listened: the MQTT port is still free
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(mqttPort, "127.0.0.1", resolve);
    });
    probe.close();
  });

  it("startCloud_NonLoopbackAdmin_HttpsWithIssuedCertificate_OnlyItsName", async function () {
    const c = await sibling({ adminHost: "0.0.0.0", adminName: "admin.test" });
    try {
      const admin = c.admin!;
      assert.equal(admin.tls, true);
      assert.equal(admin.url, `https://admin.test:${admin.port}`);
      const tls = { ca: admin.caPem!, servername: "admin.test" };
      const auth = { authorization: `Bearer ${admin.token}` };
      assert.equal((await raw(admin.port, "GET", "/v1/health", { ...auth, host: `admin.test:${admin.port}` }, undefined, tls)).status, 200);
      // off loopback, the loopback names are not the admin's
      refused(await raw(admin.port, "GET", "/v1/health", { ...auth, host: `127.0.0.1:${admin.port}` }, undefined, tls), 403, "HOST_REFUSED");
      refused(await raw(admin.port, "GET", "/v1/health", { host: `admin.test:${admin.port}` }, undefined, tls), 401, "UNAUTHORIZED");
      // plain HTTP gets no answer from a TLS listener
      await assert.rejects(raw(admin.port, "GET", "/v1/health", { ...auth, host: `admin.test:${admin.port}` }));
    } finally {
      await c.close();
    }
  });

  it("startCloud_OperatorCertificate_ServedAndKeyFileChecked", async function () {
    const dir = mkdtempSync(join(tmpdir(), "wcm-admin-tls-"));
    try {
      const ca = await createCa("operator CA");
      const leaf = await issueCertificate({ caCertPem: ca.certPem, caKeyDer: ca.keyDer, commonName: "admin.test", usage: "server", dnsNames: ["admin.test"], keyType: "ec" });
      const certFile = join(dir, "chain.pem");
      const keyFile = join(dir, "key.pem");
      writeFileSync(certFile, `${leaf.certPem.trim()}\n${ca.certPem.trim()}\n`);
      writeFileSync(keyFile, privateKeyPem(leaf.keyDer), { mode: 0o600 });
      const c = await sibling({ adminName: "admin.test", adminTls: { certFile, keyFile } });
      try {
        const admin = c.admin!;
        const response = await raw(admin.port, "GET", "/v1/health", { authorization: `Bearer ${admin.token}`, host: `admin.test:${admin.port}` }, undefined, { ca: ca.certPem, servername: "admin.test" });
        assert.equal(response.status, 200);
      } finally {
        await c.close();
      }
      await assert.rejects(sibling({ adminName: "other.test", adminTls: { certFile, keyFile } }), { code: "CERT_INVALID" });
      writeFileSync(join(dir, "open-key.pem"), privateKeyPem(leaf.keyDer));
      chmodSync(join(dir, "open-key.pem"), 0o644);
      await assert.rejects(sibling({ adminName: "admin.test", adminTls: { certFile, keyFile: join(dir, "open-key.pem") } }), { code: "FILE_INSECURE" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
