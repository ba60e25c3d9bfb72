/*
 * Bundle imports off the event loop that serves devices (issue 9 item 6), on
 * SQLite and on PostgreSQL (test/support/backends.ts):
 *
 * - POST /v1/bundles/import runs the import in the admin worker thread
 *   (cloud/admin-worker.ts): a device logs in over MQTT/TLS, again and again,
 *   while a bundle big enough to take seconds is imported, and logins complete
 *   before the import answers (an import on the event loop answers first);
 * - a bad bundle (a bad last line, an id already registered on the last line,
 *   a wrong checksum, an unknown CA) changes nothing stored;
 * - an import cut short after some batches is finished by importing the same
 *   bundle again: every device once, every device.register audited once;
 * - the CLI's import-bundle with --admin-url goes through the running server;
 * - the same for a registration CSV (POST /v1/devices/import): logins during a
 *   large one, a bad one changes nothing, one cut short finishes on the same CSV.
 * Behaviour only: no timing is asserted (bench/admin-load.ts measures it).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_FORMAT, bundleSha256, checksumLine, importBundle } from "../cloud/bundle";
import { importCsv } from "../cloud/csv-import";
import { runCli } from "../cloud/cli";
import { isCloudError } from "../cloud/errors";
import { end, loginPassword, mustConnect, newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";
import { forEachBackend, storedBytes } from "./support/backends";

/** A secret-option bundle of `count` devices `<prefix><n>`; `last` replaces the last line. */
function secretBundle(lot: string, prefix: string, count: number, last?: string): Buffer {
  const lines = [JSON.stringify({ format: BUNDLE_FORMAT, version: 1, lot, option: "secret", count })];
  const secrets = randomBytes(32 * count);
  for (let i = 0; i < count; i++) lines.push(`{"deviceId":"${prefix}${i}","secretHex":"${secrets.subarray(32 * i, 32 * i + 32).toString("hex")}"}`);
  if (last !== undefined) lines[lines.length - 1] = last;
  return Buffer.from(`${lines.join("\n")}\n`);
}

/** A registration CSV of `count` secret devices `<prefix><n>`; `last` replaces the last line. */
function secretCsv(prefix: string, count: number, last?: string): string {
  const lines = ["device_id,option,secret_hex"];
  const secrets = randomBytes(32 * count);
  for (let i = 0; i < count; i++) lines.push(`${prefix}${i},secret,${secrets.subarray(32 * i, 32 * i + 32).toString("hex")}`);
  if (last !== undefined) lines[lines.length - 1] = last;
  return `${lines.join("\n")}\n`;
}

/** POSTs a CSV to the cloud's admin API. */
async function postCsv(t: TestCloud, csv: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const admin = t.cloud.admin!;
  const response = await fetch(`http://127.0.0.1:${admin.port}/v1/devices/import`, {
    method: "POST", headers: { authorization: `Bearer ${admin.token}`, "content-type": "text/csv" }, body: csv,
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

/** POSTs a bundle to the cloud's admin API. */
async function postBundle(t: TestCloud, bundle: Buffer, sha256: string, type = "application/x-ndjson"): Promise<{ status: number; body: Record<string, unknown> }> {
  const admin = t.cloud.admin!;
  const response = await fetch(`http://127.0.0.1:${admin.port}/v1/bundles/import?sha256=${sha256}`, {
    method: "POST", headers: { authorization: `Bearer ${admin.token}`, "content-type": type }, body: bundle,
  });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}

async function count(t: TestCloud, sql: string, args: string[] = []): Promise<number> {
  return Number((await t.cloud.registry.storage.get<{ n: number }>(sql, args))!.n);
}

forEachBackend("bulk bundle import off the device event loop", function () {
  let t: TestCloud;
  beforeEach(async () => {
    // one device logging in back to back: loose login and connection rates (the defaults would refuse it with 3, server unavailable)
    const loose = { burst: 1e6, perSecond: 1e6 };
    t = await startTestCloud({ httpPort: 0, limits: { login: { perDevice: loose }, connections: { newPerSource: loose, newTotal: loose } } });
  });
  afterEach(async () => {
    await t.stop();
  });

  it("bundlesImport_LargeBundle_RunsInTheWorkerAndLoginsCompleteMeanwhile", async function () {
    this.timeout(300_000);
    const secret = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "live-1", secretHex: secret.hex });
    const devices = 30_000;
    const bundle = secretBundle("bulk-a", "bulk-", devices);
    let answered = false;
    const importing = postBundle(t, bundle, bundleSha256(bundle)).finally(() => {
      answered = true;
    });
    // a device logging in again and again while the import runs: each one a full TLS + MQTT login
    let loginsBeforeTheAnswer = 0;
    for (let counter = 1; !answered; counter++) {
      const client = await mustConnect(t.cloud, { id: "live-1", password: loginPassword("live-1", secret.bytes, "s", counter) });
      await end(client);
      if (!answered) loginsBeforeTheAnswer++;
    }
    const result = await importing;
    assert.equal(result.status, 201, JSON.stringify(result.body));
    assert.equal(result.body.imported, devices);
    assert.equal(result.body.alreadyImported, false);
    // not the main thread (threadId 0): the admin worker
    assert.ok(typeof result.body.threadId === "number" && result.body.threadId > 0, `threadId ${String(result.body.threadId)}`);
    assert.ok(loginsBeforeTheAnswer >= 1, "a device login completed while the import ran");
    assert.equal(await t.cloud.registry.countDevices(), devices + 1);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM audit WHERE action = 'device.register' AND device_id LIKE 'bulk-%'"), devices);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM imported_bundles WHERE complete = 1"), 1);
    // the same bundle again changes nothing
    const again = await postBundle(t, bundle, bundleSha256(bundle));
    assert.equal(again.body.alreadyImported, true);
  });

  it("bundlesImport_BadBundle_ChangesNothingStored", async function () {
    this.timeout(120_000);
    await t.cloud.services.registerSecretDevice({ deviceId: "taken-1", secretHex: newSecret().hex });
    const before = await storedBytes(t.cloud.registry);
    const devices = 3000;
    // the last line is bad: every row before it is valid and would have been written by a row-by-row import
    const badLine = secretBundle("bad-a", "bad-a-", devices, `{"deviceId":"bad-a-x","secretHex":"zz"}`);
    let r = await postBundle(t, badLine, bundleSha256(badLine));
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.error, { code: "BUNDLE_INVALID", message: `BUNDLE_INVALID: line ${devices + 1}: secretHex must be 16 to 64 bytes as hex`, line: devices + 1 });
    const taken = secretBundle("bad-b", "bad-b-", devices, `{"deviceId":"taken-1","secretHex":"${"ab".repeat(32)}"}`);
    r = await postBundle(t, taken, bundleSha256(taken));
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.error, { code: "BUNDLE_INVALID", message: `BUNDLE_INVALID: line ${devices + 1}: device taken-1 is already registered`, line: devices + 1 });
    const good = secretBundle("bad-c", "bad-c-", 10);
    r = await postBundle(t, good, "0".repeat(64));
    assert.deepEqual(r.body.error, { code: "BUNDLE_INVALID", message: "BUNDLE_INVALID: checksum: SHA-256 of the bundle does not match its checksum file", field: "checksum" });
    r = await postBundle(t, good, bundleSha256(good), "text/plain");
    assert.equal(r.status, 415);
    const certificate = Buffer.from(`${JSON.stringify({ format: BUNDLE_FORMAT, version: 1, lot: "bad-d", option: "certificate", count: 1, caName: "nope" })}\n{"deviceId":"bad-d-1"}\n`);
    await assert.rejects(t.cloud.services.importBundle({ bundle: certificate, checksum: bundleSha256(certificate) }), (e) => isCloudError(e, "CA_NOT_FOUND"));
    assert.ok((await storedBytes(t.cloud.registry)).equals(before), "nothing stored changed");
  });

  it("importBundle_CutShortAfterTwoBatches_SameBundleAgainFinishesIt", async function () {
    this.timeout(120_000);
    const devices = 450;
    const bundle = secretBundle("cut-a", "cut-", devices);
    let batches = 0;
    // a kill between two batches: each batch is one transaction, so a kill inside one leaves the same state
    await assert.rejects(importBundle(t.cloud.registry, "admin:test", bundle, bundleSha256(bundle), {
      batchRows: 100,
      betweenBatches: async () => {
        if (++batches === 2) throw new Error("cut");
      },
    }), /cut/);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM devices WHERE id LIKE 'cut-%'"), 200);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM imported_bundles WHERE complete = 0"), 1);
    const finished = await t.cloud.services.importBundle({ bundle, checksum: bundleSha256(bundle) });
    assert.equal(finished.alreadyImported, false);
    assert.equal(finished.imported, devices - 200);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM devices WHERE id LIKE 'cut-%'"), devices);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM audit WHERE action = 'device.register' AND device_id LIKE 'cut-%'"), devices);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM audit WHERE action = 'bundle.import'"), 1);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM imported_bundles WHERE complete = 1"), 1);
    assert.equal((await t.cloud.services.importBundle({ bundle, checksum: bundleSha256(bundle) })).alreadyImported, true);
    // the secrets written before the cut and after it both open: a device from each half logs in
    const lines = bundle.toString().split("\n");
    for (const n of [0, devices - 1]) {
      const row = JSON.parse(lines[n + 1]) as { deviceId: string; secretHex: string };
      const client = await mustConnect(t.cloud, { id: row.deviceId, password: loginPassword(row.deviceId, Buffer.from(row.secretHex, "hex"), "s", 1) });
      await end(client);
    }
  });

  it("cliImportBundle_AdminUrl_GoesThroughTheRunningServer", async function () {
    this.timeout(120_000);
    const work = mkdtempSync(join(tmpdir(), "wcm-bulk-cli-"));
    try {
      const bundle = secretBundle("cli-a", "cli-", 50);
      const file = join(work, "bundle.jsonl");
      writeFileSync(file, bundle);
      writeFileSync(`${file}.sha256`, checksumLine(bundleSha256(bundle), "bundle.jsonl"));
      const out: string[] = [];
      const err: string[] = [];
      const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s) };
      const code = await runCli(["import-bundle", file, "--data", t.dataDir, "--admin-url", `http://127.0.0.1:${t.cloud.admin!.port}`], {}, io);
      assert.equal(code, 0, err.join("\n"));
      assert.equal((JSON.parse(out.join("\n")) as { imported: number }).imported, 50);
      const [record] = await t.cloud.services.auditLog({ action: "bundle.import", limit: 1 });
      assert.equal(record.actor, "admin:http");
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it("devicesImportCsv_LargeCsv_LoginsCompleteMeanwhile_BadCsvChangesNothing", async function () {
    this.timeout(300_000);
    const secret = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "live-2", secretHex: secret.hex });
    const before = await storedBytes(t.cloud.registry);
    // a bad last line, then an id already registered on the last line: nothing stored changes
    let r = await postCsv(t, secretCsv("csv-bad-", 3000, "csv-bad-x,secret,zz"));
    assert.equal(r.status, 400);
    assert.equal((r.body.error as { line: number }).line, 3001);
    r = await postCsv(t, secretCsv("csv-bad-", 3000, `live-2,secret,${"ab".repeat(32)}`));
    assert.deepEqual(r.body.error, { code: "CSV_INVALID", message: "CSV_INVALID: line 3001: device live-2 is already registered", line: 3001 });
    assert.ok((await storedBytes(t.cloud.registry)).equals(before), "nothing stored changed");
    const devices = 20_000;
    let answered = false;
    const importing = postCsv(t, secretCsv("csv-", devices)).finally(() => {
      answered = true;
    });
    let loginsBeforeTheAnswer = 0;
    for (let counter = 1; !answered; counter++) {
      await end(await mustConnect(t.cloud, { id: "live-2", password: loginPassword("live-2", secret.bytes, "s", counter) }));
      if (!answered) loginsBeforeTheAnswer++;
    }
    const result = await importing;
    assert.equal(result.status, 201, JSON.stringify(result.body));
    assert.deepEqual(result.body, { imported: devices, secret: devices, certificate: 0, temporary: 0 });
    assert.ok(loginsBeforeTheAnswer >= 1, "a device login completed while the CSV was imported");
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM audit WHERE action = 'device.register' AND device_id LIKE 'csv-%'"), devices);
    // imported whole, the same CSV again is refused (its ids are registered), as before
    r = await postCsv(t, secretCsv("csv-", 1));
    assert.equal((r.body.error as { code: string }).code, "CSV_INVALID");
  });

  it("importCsv_CutShortAfterTwoBatches_SameCsvAgainFinishesIt", async function () {
    this.timeout(120_000);
    const csv = secretCsv("cutcsv-", 350);
    let batches = 0;
    await assert.rejects(importCsv(t.cloud.registry, "admin:test", csv, undefined, undefined, {
      batchRows: 100,
      betweenBatches: async () => {
        if (++batches === 2) throw new Error("cut");
      },
    }), /cut/);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM devices WHERE id LIKE 'cutcsv-%'"), 200);
    assert.deepEqual(await t.cloud.services.importDevicesCsv({ csv }), { imported: 350, secret: 350, certificate: 0, temporary: 0 });
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM devices WHERE id LIKE 'cutcsv-%'"), 350);
    assert.equal(await count(t, "SELECT COUNT(*) AS n FROM audit WHERE action = 'device.register' AND device_id LIKE 'cutcsv-%'"), 350);
    await assert.rejects(t.cloud.services.importDevicesCsv({ csv }), { code: "CSV_INVALID", line: 2 });
  });
});
