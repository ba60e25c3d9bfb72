/*
 * Issue 8 item 4, tried as an attacker would: one extracted lot key claims the
 * whole lot. Against a real cloud with lots made by make-lot:
 * - lot-key mode (the old files): the key dumped from one device claims another
 *   id of the lot and owns it; the genuine device is refused (the documented risk);
 * - derived mode (make-lot's default) and hardware mode: nothing in a dumped
 *   device (its provisioning file, its NVS CSV, its eFuse as software reads it)
 *   logs in as any other id;
 * - after a squat, `device reprovision` lets the genuine device (a simulated
 *   device running the core) back in by itself, and the squatter is refused;
 * - every first claim is audited with its source address and TLS details, and a
 *   lot whose claims come faster than its line rate is flagged.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { runCli } from "../cloud/cli";
import { deriveCommitProof, deriveTemporarySecret, deriveWrapKey, unwrapSecret } from "../modules/derive";
import type { ManagerStatus } from "../modules/manager";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedEfuse } from "../hosts/node/efuse";
import { makeLot, type MakeLotOptions, type TemporaryMode } from "../tools/manufacturing/make-lot";
import { closed, connectDevice, digest, end, exchange, loginPassword, mustConnect, startTestCloud, testAdminApi, type TestCloud } from "./cloud-helpers";

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
const FAST_RETRY = { networkBaseMs: 50, networkMaxMs: 200, authBaseMs: 200, authMaxMs: 400 };

/** Every run of at least 32 hex digits in a text: what an attacker tries as keys. */
function hexCandidates(text: string): Uint8Array[] {
  return [...new Set(text.match(/[0-9a-fA-F]{32,}/g) ?? [])].filter((hex) => hex.length % 2 === 0).map((hex) => Uint8Array.from(Buffer.from(hex, "hex")));
}

/** Logs in as `id` with a temporary secret, runs issue + commit, and returns the secret the cloud issued (the squat). */
async function claim(t: TestCloud, id: string, temporary: Uint8Array, counter: number): Promise<{ client: MqttClient; secret: Uint8Array }> {
  const client = await mustConnect(t.cloud, { id, password: loginPassword(id, temporary, "t", counter) });
  const issued = await exchange(client, id, { v: 1, rid: `squat-${counter}`, op: "issue" });
  assert.ok(issued.ok && issued.op === "issue" && "nonce" in issued, `issue refused: ${JSON.stringify(issued)}`);
  const secret = unwrapSecret(digest, deriveWrapKey(digest, temporary), id, issued.nonce, { ciphertext: issued.secret, tag: issued.tag });
  assert.ok(secret);
  const committed = await exchange(client, id, { v: 1, rid: `commit-${counter}`, op: "commit", gen: issued.gen, proof: deriveCommitProof(digest, secret, id, issued.gen) });
  assert.ok(committed.ok, "commit refused");
  return { client, secret };
}

async function refusedWith(t: TestCloud, id: string, password: string): Promise<number | undefined> {
  const outcome = await connectDevice(t.cloud, { id, password });
  if (outcome.client) {
    await end(outcome.client);
    assert.fail(`${id} logged in`);
  }
  return outcome.code;
}

/** Waits until `predicate` holds for the manager's status. */
function waitFor(statuses: ManagerStatus[], predicate: (s: ManagerStatus) => boolean, timeoutMs = 8000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (statuses.some(predicate)) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(poll);
        reject(new Error(`timed out; last state ${JSON.stringify(statuses.at(-1))}`));
      }
    }, 20);
  });
}

describe("attack: one extracted lot key claims the whole lot", function () {
  let t: TestCloud;
  let work: string;

  before(async function () {
    t = await startTestCloud();
    work = mkdtempSync(join(tmpdir(), "wcm-lotkey-attack-"));
  });
  after(async function () {
    await t.stop();
    rmSync(work, { recursive: true, force: true });
  });

  async function lot(name: string, temporaryMode: TemporaryMode, prefix: string, extra: Partial<MakeLotOptions> = {}): Promise<string> {
    const out = join(work, name);
    await makeLot({
      option: "temporary", temporaryMode, count: 4, prefix, start: 1, lot: name, out, progress: quiet,
      cloudCaPem: t.cloud.serverCaPem, cloudPort: t.cloud.mqttPort, cloudHost: "127.0.0.1", serverName: t.cloud.serverName, ...extra,
    });
    await t.cloud.services.importBundle({ bundle: readFileSync(join(out, "bundle.jsonl")), checksum: readFileSync(join(out, "bundle.jsonl.sha256"), "utf8") });
    return out;
  }
  /** What a dump of one device gives the attacker: its provisioning file and its NVS partition. */
  const dump = (out: string, id: string) => readFileSync(join(out, "devices", `${id}.json`), "utf8") + readFileSync(join(out, "devices", `${id}.nvs.csv`), "utf8");
  const deviceConfig = (out: string, id: string) => ({
    ...(JSON.parse(readFileSync(join(out, "devices", `${id}.json`), "utf8")) as object),
    cloud: JSON.parse(readFileSync(join(out, "cloud.json"), "utf8")) as object,
  });

  it("lotKeyMode_KeyFromOneDeviceClaimsAnotherId_GenuineRefused (the documented risk)", async function () {
    const out = await lot("atk-old", "lot-key", "atk-o-");
    const [lotKey] = hexCandidates(dump(out, "atk-o-0001"));
    assert.ok(lotKey, "the dump holds the lot key");
    const squat = await claim(t, "atk-o-0002", deriveTemporarySecret(digest, lotKey, "atk-o-0002"), 1);
    await end(squat.client);
    const row = (await t.cloud.registry.device("atk-o-0002"))!;
    assert.equal(row.kind, "secret", "the registry shows an ordinary permanent device");
    // the genuine device, with the files the line gave it, is refused for good
    const genuine = deriveTemporarySecret(digest, lotKey, "atk-o-0002");
    assert.equal(await refusedWith(t, "atk-o-0002", loginPassword("atk-o-0002", genuine, "t", 1)), 5);
    assert.equal((await t.cloud.registry.device("atk-o-0002"))!.last_failure, "TEMP_RETIRED");
  });

  it("derivedMode_DumpedDeviceLogsInAsNoOtherId", async function () {
    const out = await lot("atk-derived", "derived", "atk-d-");
    const candidates = hexCandidates(dump(out, "atk-d-0001"));
    assert.ok(candidates.length >= 1);
    let counter = 1;
    for (const victim of ["atk-d-0002", "atk-d-0003"]) {
      for (const candidate of candidates) {
        // as the lot key, and as the victim's temporary secret
        for (const temporary of [deriveTemporarySecret(digest, candidate, victim), candidate]) {
          assert.equal(await refusedWith(t, victim, loginPassword(victim, temporary, "t", counter++)), 4, `${victim} refused`);
        }
      }
      assert.equal((await t.cloud.registry.device(victim)), undefined, `${victim} was not claimed`);
    }
    // what the dump does give: the dumped device's own identity, nothing more
    await end(await mustConnect(t.cloud, { id: "atk-d-0001", password: loginPassword("atk-d-0001", candidates[0], "t", 1) }));
  });

  it("hardwareMode_DumpedFlashAndEfuseReadHoldNothingThatLogsIn", async function () {
    const out = await lot("atk-hw", "hardware", "atk-h-");
    const efuse = new SimulatedEfuse();
    efuse.burnKey(5, readFileSync(join(out, "lot-key.bin")), "HMAC_UP");
    const dumped = dump(out, "atk-h-0001");
    assert.deepEqual(hexCandidates(dumped), [], "no key material in flash");
    const readBack = efuse.readKeyBlock(5);
    assert.deepEqual(readBack, new Uint8Array(32), "the key block reads as zeros");
    let counter = 1;
    for (const victim of ["atk-h-0001", "atk-h-0002"]) {
      for (const temporary of [deriveTemporarySecret(digest, readBack, victim), readBack]) {
        assert.equal(await refusedWith(t, victim, loginPassword(victim, temporary, "t", counter++)), 4);
      }
    }
  });

  it("reprovision_AfterSquat_GenuineDeviceBackInSquatterRefused", async function () {
    const out = await lot("atk-repro", "lot-key", "atk-r-");
    const id = "atk-r-0002";
    const [lotKey] = hexCandidates(dump(out, "atk-r-0001"));
    const squat = await claim(t, id, deriveTemporarySecret(digest, lotKey, id), 1000);

    // the genuine device boots with its own files and is refused (TEMP_RETIRED)
    const { manager } = createNodeDevice(deviceConfig(out, id), { manager: { retry: FAST_RETRY } });
    const statuses: ManagerStatus[] = [];
    manager.onStatus((status) => statuses.push(status));
    manager.start();
    try {
      await waitFor(statuses, (s) => s.state === "AUTH_FAILED" && s.lastFailure?.reason === "NOT_AUTHORIZED");

      const result = await t.cloud.services.reprovisionDevice({ deviceId: id });
      assert.equal(result.kind, "temporary");
      assert.equal(result.previousGeneration, 1);
      await closed(squat.client);

      // the genuine device gets back in by itself and is issued a new secret
      await waitFor(statuses, (s) => s.state === "ONLINE" && s.credential === "permanent");
      const row = (await t.cloud.registry.device(id))!;
      assert.equal(row.kind, "secret");
      assert.equal(row.generation, 2);

      // the squatter's secret is refused, and so is its temporary credential now
      assert.equal(await refusedWith(t, id, loginPassword(id, squat.secret, "s", 5000)), 4);
      assert.equal(await refusedWith(t, id, loginPassword(id, deriveTemporarySecret(digest, lotKey, id), "t", 5001)), 5);
    } finally {
      manager.stop();
    }
    const actions = (await t.cloud.services.auditLog({ deviceId: id, limit: 50 })).map((r) => `${r.action} ${r.detail ?? ""}`);
    assert.ok(actions.some((a) => /^device\.reprovision lot=atk-repro previous-generation=1/.test(a)), actions.join("\n"));
    assert.ok(actions.some((a) => /^device\.claim .* reprovisioned$/.test(a)), actions.join("\n"));
  });

  it("reprovision_RefusedWhereItCannotHelp", async function () {
    await assert.rejects(t.cloud.services.reprovisionDevice({ deviceId: "atk-none-1" }), /DEVICE_NOT_FOUND|no device/);
    await t.cloud.services.registerSecretDevice({ deviceId: "atk-secret-1", secretHex: randomBytes(32).toString("hex") });
    await assert.rejects(t.cloud.services.reprovisionDevice({ deviceId: "atk-secret-1" }), (e: Error & { code?: string }) => e.code === "INVALID_INPUT");
    await t.cloud.services.revokeProvisioningKey({ lot: "atk-old" });
    await assert.rejects(t.cloud.services.reprovisionDevice({ deviceId: "atk-o-0002" }), (e: Error & { code?: string }) => e.code === "LOT_RETIRED");
    assert.equal((await t.cloud.registry.device("atk-o-0002"))!.kind, "secret", "nothing changed");
  });

  it("firstClaim_AuditedWithSourceAndTls", async function () {
    const records = await t.cloud.services.auditLog({ deviceId: "atk-d-0001", action: "device.claim" });
    assert.equal(records.length, 1);
    assert.match(records[0].detail ?? "", /^lot=atk-derived source=(::ffff:)?127\.0\.0\.1 tls=TLSv1\.[23] cipher=[A-Z0-9_-]+ client-cert=no$/);
  });

  it("lineRate_ClaimsFasterThanTheLine_FlaggedAndAuditedOnce", async function () {
    const created = await t.cloud.services.createProvisioningKey({ lot: "atk-rate", allowlist: ["atk-q-1", "atk-q-2", "atk-q-3", "atk-q-4"], lineRate: 2 });
    const key = Uint8Array.from(Buffer.from(created.provisioningKeyHex, "hex"));
    for (const id of ["atk-q-1", "atk-q-2"]) await end(await mustConnect(t.cloud, { id, password: loginPassword(id, deriveTemporarySecret(digest, key, id), "t", 1) }));
    let info = await t.cloud.services.getLot({ lot: "atk-rate" });
    assert.deepEqual([info.lineRate, info.claimed, info.claimsLastHour, info.claimRateExceeded], [2, 2, 2, false]);
    assert.equal((await t.cloud.services.auditLog({ action: "lot.claim-rate-exceeded" })).length, 0);
    for (const id of ["atk-q-3", "atk-q-4"]) await end(await mustConnect(t.cloud, { id, password: loginPassword(id, deriveTemporarySecret(digest, key, id), "t", 1) }));
    info = await t.cloud.services.getLot({ lot: "atk-rate" });
    assert.deepEqual([info.claimed, info.claimsLastHour, info.claimRateExceeded], [4, 4, true]);
    const alerts = await t.cloud.services.auditLog({ action: "lot.claim-rate-exceeded" });
    assert.equal(alerts.length, 1, "once an hour, not once a claim");
    assert.equal(alerts[0].detail, "lot=atk-rate claims=3 in 1h lineRate=2/h");
    assert.ok((await t.cloud.services.listProvisioningKeys()).find((l) => l.lot === "atk-rate")?.claimRateExceeded);
  });

  it("adminSurfaces_ReprovisionAndLineRateOverHttpAndCli", async function () {
    const api = testAdminApi(t.cloud.services);
    const json = { "content-type": "application/json" };
    const rate = await api.inject({ method: "POST", url: "/v1/lots/atk-rate/line-rate", headers: json, body: JSON.stringify({ lineRate: 100 }) });
    assert.equal(rate.status, 200);
    assert.equal((rate.body as { lineRate: number }).lineRate, 100);
    const bad = await api.inject({ method: "POST", url: "/v1/lots/atk-rate/line-rate", headers: json, body: JSON.stringify({ lineRate: -1 }) });
    assert.equal(bad.status, 400);
    assert.equal((await api.inject({ method: "GET", url: "/v1/lots/atk-rate" })).status, 200);
    const repro = await api.inject({ method: "POST", url: "/v1/devices/atk-q-1/reprovision" });
    assert.equal(repro.status, 200);
    assert.equal((repro.body as { kind: string }).kind, "temporary");

    const dir = join(work, "cli");
    const env = { WCM_MASTER_KEY: randomBytes(32).toString("hex"), WCM_DATA: dir };
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: () => undefined };
    assert.equal(await runCli(["init"], env, io), 0);
    assert.equal(await runCli(["lot", "create", "cli-lot", "--allow", "cli-t-1", "--line-rate", "50"], env, io), 0);
    assert.equal(await runCli(["lot", "line-rate", "cli-lot", "none"], env, io), 0);
    assert.equal((JSON.parse(lines.at(-1)!) as { lineRate: number | null }).lineRate, null);
    assert.equal(await runCli(["lot", "show", "cli-lot"], env, io), 0);
    assert.equal(await runCli(["device", "reprovision", "cli-t-1"], env, io), 1, "no such device yet");
  });
});
