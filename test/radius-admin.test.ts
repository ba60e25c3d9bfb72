/*
 * NAS clients (RADIUS access points) through the admin layers: services
 * validation and typed errors, the HTTP routes, the CLI, sealed storage (the
 * secret is never returned), and the audit records.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { runCli } from "../cloud/cli";
import { isCloudError } from "../cloud/errors";
import { startTestCloud, testAdminApi, type TestCloud } from "./cloud-helpers";

const JSON_HEADERS = { "content-type": "application/json" };

describe("radius: NAS clients (services, HTTP, CLI)", function () {
  let t: TestCloud;

  before(async () => {
    t = await startTestCloud();
  });
  after(async () => t?.stop());

  it("addNasClient_ValidatesNameAddressSecret", async () => {
    const services = t.cloud.services;
    const bad: [Record<string, unknown>, string][] = [
      [{ name: "bad name", address: "10.0.0.1", secret: "a-good-long-secret" }, "name"],
      [{ name: "ap", address: "not-an-ip", secret: "a-good-long-secret" }, "address"],
      [{ name: "ap", address: "10.0.0.1", secret: "short" }, "secret"],
      [{ name: "ap", address: "10.0.0.1", secret: "has a space in it!" }, "secret"],
      [{ name: "ap", address: "10.0.0.1", secret: "x".repeat(129) }, "secret"],
    ];
    for (const [input, field] of bad) {
      await assert.rejects(services.addNasClient(input as never), (e: unknown) => isCloudError(e, "INVALID_INPUT") && e.field === field, field);
    }
    const ap = await services.addNasClient({ name: "ap-v6", address: "FE80::1", secret: "a-good-long-secret" });
    assert.deepEqual(Object.keys(ap).sort(), ["address", "createdAt", "name"]);
    assert.equal(ap.address, "fe80::1");
    await assert.rejects(services.addNasClient({ name: "ap-v6", address: "10.0.0.1", secret: "a-good-long-secret" }), (e: unknown) => isCloudError(e, "NAS_EXISTS"));
    await assert.rejects(services.removeNasClient({ name: "absent" }), (e: unknown) => isCloudError(e, "NAS_NOT_FOUND"));
    const row = (await t.cloud.registry.nasClient("ap-v6"))!;
    assert.ok(!row.secret_enc.includes(Buffer.from("a-good-long-secret")), "sealed at rest");
    assert.equal(Buffer.from(t.cloud.registry.nasSecret(row)).toString(), "a-good-long-secret");
    assert.ok((await t.cloud.registry.auditLog(5)).some((r) => r.action === "nas.add" && !r.detail?.includes("a-good-long-secret")));
  });

  it("http_NasClients_AddListRemove", async () => {
    const api = testAdminApi(t.cloud.services);
    const added = await api.inject({ method: "POST", url: "/v1/nas-clients", headers: JSON_HEADERS, body: JSON.stringify({ name: "ap-http", address: "10.1.2.3", secret: "http-shared-secret-1" }) });
    assert.equal(added.status, 201);
    const list = await api.inject({ method: "GET", url: "/v1/nas-clients" });
    assert.ok((list.body as { nasClients: { name: string }[] }).nasClients.some((n) => n.name === "ap-http"));
    assert.ok(!JSON.stringify(list.body).includes("http-shared-secret-1"));
    assert.equal((await api.inject({ method: "POST", url: "/v1/nas-clients", headers: JSON_HEADERS, body: JSON.stringify({ name: "ap-http", address: "10.1.2.3", secret: "http-shared-secret-1" }) })).status, 409);
    assert.equal((await api.inject({ method: "DELETE", url: "/v1/nas-clients/ap-http" })).status, 200);
    assert.equal((await api.inject({ method: "DELETE", url: "/v1/nas-clients/ap-http" })).status, 404);
  });

  it("runCli_NasAddListRemove", async () => {
    const env = { WCM_MASTER_KEY: randomBytes(32).toString("hex"), WCM_DATA: join(t.dataDir, "cli-nas") };
    const lines: string[] = [];
    const errors: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => errors.push(s) };
    assert.equal(await runCli(["init"], env, io), 0);
    assert.equal(await runCli(["nas", "add", "ap-cli", "*", "--secret", "cli-shared-secret-12"], env, io), 2, "a secret on the command line is refused");
    assert.match(errors.at(-1)!, /^error USAGE: Unknown option '--secret'/);
    assert.equal(errors.at(-1)!.includes("cli-shared-secret-12"), false);
    assert.equal(await runCli(["nas", "add", "ap-cli", "*", "--secret-file", "-"], env, { ...io, stdin: () => Buffer.from("cli-shared-secret-12\n") }), 0, errors.at(-1));
    assert.equal(await runCli(["nas", "list"], env, io), 0);
    assert.deepEqual((JSON.parse(lines.at(-1)!) as { name: string; address: string }[]).map((n) => [n.name, n.address]), [["ap-cli", "*"]]);
    assert.equal(await runCli(["nas", "add", "ap-cli2", "10.0.0.1"], env, io), 2, "a secret is required");
    assert.equal(await runCli(["nas", "remove", "ap-cli"], env, io), 0);
    assert.equal(await runCli(["nas", "remove", "ap-cli"], env, io), 1);
    assert.match(errors.at(-1)!, /^error NAS_NOT_FOUND/);
  });
});
