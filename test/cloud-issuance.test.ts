/*
 * IssuanceService over MQTT: issue -> commit, idempotent retries, the pending
 * secret committed by a login, malformed and oversized requests, status
 * reports, and secret rotation for a shared-secret device.
 */
import assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { deriveCommitProof, deriveWrapKey, unwrapSecret } from "../modules/derive";
import { CONNACK, deviceTopics, encodeStatus, MAX_MESSAGE_BYTES, type CloudResponse } from "../modules/protocol";
import { utf8Encode } from "../modules/bytes";
import { nodeSeal } from "../hosts/node/node-seal";
import { newSealSecretKey, openSealed, sealPublicKey } from "../modules/seal";
import { randomBytes } from "node:crypto";
import { connectDevice, digest, end, exchange, loginPassword, mustConnect, newSecret, sleep, startTestCloud, temporarySecret, type TestCloud } from "./cloud-helpers";
import { forEachBackend } from "./support/backends";

type IssueOk = Extract<CloudResponse, { op: "issue"; ok: true; nonce: Uint8Array }>;

function unwrap(response: CloudResponse, wrappingSecret: Uint8Array, id: string): { secret: Uint8Array; gen: number } {
  assert.equal(response.ok, true, `expected ok, got ${JSON.stringify(response)}`);
  const r = response as IssueOk;
  const secret = unwrapSecret(digest, deriveWrapKey(digest, wrappingSecret), id, r.nonce, { ciphertext: r.secret, tag: r.tag });
  assert.ok(secret, "wrapped secret must verify under the session's wrap key");
  return { secret, gen: r.gen };
}

forEachBackend("cloud issuance (IssuanceService over MQTT)", function () {
  let t: TestCloud;
  let provisioningKeyHex: string;
  let counter = 0;
  const clients: MqttClient[] = [];

  async function tempSession(id: string): Promise<{ client: MqttClient; temp: Uint8Array }> {
    const temp = temporarySecret(provisioningKeyHex, id);
    const client = await mustConnect(t.cloud, { id, password: loginPassword(id, temp, "t", ++counter) });
    clients.push(client);
    return { client, temp };
  }

  async function row(id: string) {
    return await t.cloud.registry.device(id);
  }

  before(async function () {
    t = await startTestCloud();
    provisioningKeyHex = (await t.cloud.services.createProvisioningKey({ lot: "lot-i" })).provisioningKeyHex;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await end(c);
  });
  after(async () => t?.stop());

  it("issue_thenCommit_TemporaryRetiredAndNewSecretWorks", async function () {
    const id = "iss-1";
    const { client, temp } = await tempSession(id);
    const issued = unwrap(await exchange(client, id, { v: 1, rid: "r1", op: "issue" }), temp, id);
    assert.equal(issued.gen, 1);
    assert.equal((await row(id))!.kind, "temporary", "pending is not active");
    const commit = await exchange(client, id, { v: 1, rid: "r2", op: "commit", gen: 1, proof: deriveCommitProof(digest, issued.secret, id, 1) });
    assert.deepEqual(commit, { v: 1, rid: "r2", op: "commit", ok: true, gen: 1 });
    const after = (await row(id))!;
    assert.equal(after.kind, "secret");
    assert.equal(after.generation, 1);
    assert.equal(after.temp_retired, 1);
    assert.equal(after.pending_secret_enc, null);
    const retired = await connectDevice(t.cloud, { id, password: loginPassword(id, temp, "t", ++counter) });
    assert.equal(retired.code, CONNACK.notAuthorized);
    assert.equal((await row(id))!.last_failure, "TEMP_RETIRED");
    clients.push(await mustConnect(t.cloud, { id, password: loginPassword(id, issued.secret, "s", ++counter) }));
  });

  it("issue_Twice_SameSecretGenerationAndNonce", async function () {
    const id = "iss-2";
    const { client } = await tempSession(id);
    const first = await exchange(client, id, { v: 1, rid: "a", op: "issue" });
    const second = await exchange(client, id, { v: 1, rid: "b", op: "issue" });
    assert.deepEqual({ ...second, rid: "a" }, first);
    // also across a new session
    await end(client);
    const again = await tempSession(id);
    const third = await exchange(again.client, id, { v: 1, rid: "c", op: "issue" });
    assert.deepEqual({ ...third, rid: "a" }, first);
  });

  it("commit_Repeated_IdempotentOk", async function () {
    const id = "iss-3";
    const { client, temp } = await tempSession(id);
    const issued = unwrap(await exchange(client, id, { v: 1, rid: "i", op: "issue" }), temp, id);
    const proof = deriveCommitProof(digest, issued.secret, id, issued.gen);
    assert.equal((await exchange(client, id, { v: 1, rid: "c1", op: "commit", gen: issued.gen, proof })).ok, true);
    assert.equal((await exchange(client, id, { v: 1, rid: "c2", op: "commit", gen: issued.gen, proof })).ok, true);
    const reissue = await exchange(client, id, { v: 1, rid: "i2", op: "issue" });
    assert.deepEqual(reissue, { v: 1, rid: "i2", op: "issue", ok: false, reason: "NOTHING_TO_ISSUE" });
  });

  it("commit_WrongProofOrGeneration_RefusedAndNothingStored", async function () {
    const id = "iss-4";
    const { client, temp } = await tempSession(id);
    const issued = unwrap(await exchange(client, id, { v: 1, rid: "i", op: "issue" }), temp, id);
    const before = await row(id);
    const bad = await exchange(client, id, { v: 1, rid: "c", op: "commit", gen: issued.gen, proof: deriveCommitProof(digest, newSecret().bytes, id, issued.gen) });
    assert.deepEqual(bad, { v: 1, rid: "c", op: "commit", ok: false, reason: "BAD_PROOF" });
    const wrongGen = await exchange(client, id, { v: 1, rid: "g", op: "commit", gen: 7, proof: deriveCommitProof(digest, issued.secret, id, 7) });
    assert.equal(wrongGen.ok === false && wrongGen.reason, "GENERATION_MISMATCH");
    assert.deepEqual((await row(id)), before);
  });

  it("login_WithPendingSecret_CommitsIt", async function () {
    const id = "iss-5";
    const { client, temp } = await tempSession(id);
    const issued = unwrap(await exchange(client, id, { v: 1, rid: "i", op: "issue" }), temp, id);
    await end(client);
    // the commit was lost: the device logs in with the new secret
    clients.push(await mustConnect(t.cloud, { id, password: loginPassword(id, issued.secret, "s", ++counter) }));
    const after = (await row(id))!;
    assert.equal(after.kind, "secret");
    assert.equal(after.generation, issued.gen);
    assert.equal(after.pending_secret_enc, null);
    assert.equal((await connectDevice(t.cloud, { id, password: loginPassword(id, temp, "t", ++counter) })).code, CONNACK.notAuthorized);
  });

  it("issue_FromSecretSessionWithoutPending_NothingToIssue", async function () {
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: "iss-6", secretHex: s.hex });
    const client = await mustConnect(t.cloud, { id: "iss-6", password: loginPassword("iss-6", s.bytes, "s", 1) });
    clients.push(client);
    const response = await exchange(client, "iss-6", { v: 1, rid: "x", op: "issue" });
    assert.deepEqual(response, { v: 1, rid: "x", op: "issue", ok: false, reason: "NOTHING_TO_ISSUE" });
  });

  it("handleRequest_MalformedAndOversized_RefusedAndNothingStored", async function () {
    const id = "iss-7";
    const { client } = await tempSession(id);
    const before = await row(id);
    const cases: [string | Uint8Array, string, string][] = [
      ['{"v":1,"rid":"m1","op":"issue","extra":1}', "m1", "BAD_REQUEST"],
      ['{"v":1,"rid":"m2","op":"commit","gen":0,"proof":"AAAA"}', "m2", "BAD_REQUEST"],
      ['{"v":1,"rid":"m3","op":"explode"}', "m3", "UNKNOWN_OP"],
      ["not json at all", "-", "BAD_REQUEST"],
      [`{"v":1,"rid":"m5","op":"issue","pad":"${"x".repeat(MAX_MESSAGE_BYTES)}"}`, "-", "TOO_LARGE"],
    ];
    for (const [payload, rid, reason] of cases) {
      const response = await exchange(client, id, typeof payload === "string" ? utf8Encode(payload) : payload);
      assert.equal(response.ok, false);
      assert.equal(response.rid, rid);
      assert.equal(response.ok === false && response.reason, reason);
    }
    assert.deepEqual((await row(id)), before);
  });

  it("handleStatus_StoredAndBadOnesIgnored", async function () {
    const id = "iss-8";
    const { client } = await tempSession(id);
    const topic = deviceTopics(id).status;
    client.publish(topic, Buffer.from(encodeStatus({ v: 1, state: "ONLINE", credential: "temporary", lastFailure: { reason: "JOIN_FAILED", detail: "no AP" } })));
    const badBefore = t.cloud.issuance.stats.badStatus;
    client.publish(topic, Buffer.from('{"v":1,"state":"PARTYING","credential":"temporary"}'));
    await sleep(200);
    const device = await t.cloud.services.getDevice({ deviceId: id });
    assert.equal(device.state, "ONLINE");
    assert.equal(device.credential, "temporary");
    assert.equal(device.lastFailure, "JOIN_FAILED");
    assert.equal(t.cloud.issuance.stats.badStatus, badBefore + 1);
  });

  it("rotateSecret_LiveAndLaterSessions_GetRotateNotice", async function () {
    const id = "iss-10";
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: s.hex });
    const notices = async (client: MqttClient, action: () => Promise<unknown>) => {
      const seen: string[] = [];
      client.on("message", (_topic, message) => seen.push(message.toString()));
      await client.subscribeAsync(deviceTopics(id).response, { qos: 0 });
      await action();
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      return seen;
    };
    const live = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 1) });
    clients.push(live);
    assert.deepEqual(await notices(live, () => t.cloud.services.rotateSecret({ deviceId: id })), ['{"v":1,"notice":"rotate"}']);
    const later = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 2) });
    clients.push(later);
    assert.deepEqual(await notices(later, async () => undefined), ['{"v":1,"notice":"rotate"}'], "a session that subscribes hears of the pending rotation");
  });

  it("rotateSecret_IssueFromSecretSessionAndCommit_OldSecretDead", async function () {
    const id = "iss-9";
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: s.hex });
    await t.cloud.services.rotateSecret({ deviceId: id });
    const client = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 1) });
    clients.push(client);
    const issued = unwrap(await exchange(client, id, { v: 1, rid: "r", op: "issue" }), s.bytes, id);
    assert.equal(issued.gen, 1);
    const commit = await exchange(client, id, { v: 1, rid: "c", op: "commit", gen: 1, proof: deriveCommitProof(digest, issued.secret, id, 1) });
    assert.equal(commit.ok, true);
    assert.equal((await connectDevice(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 2) })).code, CONNACK.badCredentials);
    clients.push(await mustConnect(t.cloud, { id, password: loginPassword(id, issued.secret, "s", 3) }));
  });

  // ---------------------------------------------------------------- rotation after a leak (docs/protocol.md 9.5)

  const freshKey = () => newSealSecretKey((n) => new Uint8Array(randomBytes(n)));

  /**
   * What a holder of `secret` can get out of an `issue` response, trying every
   * way it has: the plain wrap under the secret, or a sealed one opened with
   * each key it knows. Returns the rotated secret, or undefined.
   */
  function attackerOpens(response: CloudResponse, secret: Uint8Array, id: string, keys: Uint8Array[]): Uint8Array | undefined {
    if (!response.ok || response.op !== "issue") return undefined;
    const wrapKey = deriveWrapKey(digest, secret);
    if ("nonce" in response) return unwrapSecret(digest, wrapKey, id, response.nonce, { ciphertext: response.secret, tag: response.tag });
    for (const key of keys) {
      const opened = openSealed(digest, nodeSeal, key, sealPublicKey(nodeSeal, key), id, response.sealed, "rotation");
      if (opened) return unwrapSecret(digest, wrapKey, id, opened.subarray(0, 16), { ciphertext: opened.subarray(16, 48), tag: opened.subarray(48, 80) });
    }
    return undefined;
  }

  it("rotateSecret_CloudSideLeak_CurrentSecretAloneCannotObtainTheNext_GenuineDeviceRotates", async function () {
    const id = "iss-leak-1";
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: s.hex });
    const deviceKey = freshKey();
    const genuine = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 1) });
    clients.push(genuine);
    assert.equal((await exchange(genuine, id, { v: 1, rid: "h1", op: "hello", rev: 0, seal: 3, key: sealPublicKey(nodeSeal, deviceKey) })).ok, true);
    genuine.end(true);
    // the secret leaks from the cloud side; the operator rotates
    await t.cloud.services.rotateSecret({ deviceId: id });
    const attackerKey = freshKey();
    const attacker = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 10) });
    clients.push(attacker);
    // it tries to register its own key first: refused, the device's stays pinned
    await exchange(attacker, id, { v: 1, rid: "h2", op: "hello", rev: 0, seal: 3, key: sealPublicKey(nodeSeal, attackerKey) });
    assert.ok((await t.cloud.registry.auditLog(20, id)).some((row) => row.action === "network.key-refused"), "key change refused and audited");
    const stolen = await exchange(attacker, id, { v: 1, rid: "i1", op: "issue" });
    assert.equal(stolen.ok, true);
    assert.equal(attackerOpens(stolen, s.bytes, id, [attackerKey]), undefined, "the current secret alone does not yield the next one");
    const guess = await exchange(attacker, id, { v: 1, rid: "c1", op: "commit", gen: 1, proof: deriveCommitProof(digest, new Uint8Array(32), id, 1) });
    assert.deepEqual([guess.ok, !guess.ok && guess.reason], [false, "BAD_PROOF"]);
    attacker.end(true);
    // the genuine device opens it with its key, commits, and the leaked secret is dead
    const device = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 11) });
    clients.push(device);
    const issued = await exchange(device, id, { v: 1, rid: "i2", op: "issue" });
    const next = attackerOpens(issued, s.bytes, id, [deviceKey]);
    assert.ok(next, "the device with its key opens the rotation");
    const commit = await exchange(device, id, { v: 1, rid: "c2", op: "commit", gen: 1, proof: deriveCommitProof(digest, next, id, 1) });
    assert.equal(commit.ok, true);
    assert.equal((await connectDevice(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 12) })).code, CONNACK.badCredentials, "leaked secret refused");
    clients.push(await mustConnect(t.cloud, { id, password: loginPassword(id, next, "s", 13) }));
  });

  it("rotateSecret_DeviceSideLeak_SecretAndKey_RotationDoesNotHelp_RevokeRefusesThem", async function () {
    const id = "iss-leak-2";
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: s.hex });
    const deviceKey = freshKey();
    const genuine = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 1) });
    clients.push(genuine);
    await exchange(genuine, id, { v: 1, rid: "h1", op: "hello", rev: 0, seal: 3, key: sealPublicKey(nodeSeal, deviceKey) });
    genuine.end(true);
    // a flash dump gives the attacker the secret and the device key: a rotation goes to it too
    await t.cloud.services.rotateSecret({ deviceId: id });
    const attacker = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 2) });
    clients.push(attacker);
    const issued = await exchange(attacker, id, { v: 1, rid: "i1", op: "issue" });
    assert.ok(attackerOpens(issued, s.bytes, id, [deviceKey]), "with the device key too, rotation is no remedy");
    attacker.end(true);
    // the remedy: revoke (and re-provision the board under a new identity)
    await t.cloud.services.revokeDevice({ deviceId: id });
    assert.equal((await connectDevice(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 3) })).code, CONNACK.notAuthorized, "revoked: the dumped secret logs in no more");
  });

  it("resetSealingKey_DeviceLostItsKey_NextHelloRegistersANewOne_Audited", async function () {
    const id = "iss-leak-3";
    const s = newSecret();
    await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: s.hex });
    const client = await mustConnect(t.cloud, { id, password: loginPassword(id, s.bytes, "s", 1) });
    clients.push(client);
    const first = sealPublicKey(nodeSeal, freshKey());
    const second = sealPublicKey(nodeSeal, freshKey());
    await exchange(client, id, { v: 1, rid: "h1", op: "hello", rev: 0, seal: 3, key: first });
    await exchange(client, id, { v: 1, rid: "h2", op: "hello", rev: 0, seal: 3, key: second });
    assert.deepEqual((await t.cloud.network.net.columns(id))?.seal_key, Buffer.from(first), "pinned");
    await t.cloud.network.resetSealingKey({ deviceId: id });
    await exchange(client, id, { v: 1, rid: "h3", op: "hello", rev: 0, seal: 3, key: second });
    assert.deepEqual((await t.cloud.network.net.columns(id))?.seal_key, Buffer.from(second), "registered after the reset");
    assert.ok((await t.cloud.registry.auditLog(20, id)).some((row) => row.action === "network.key-reset"));
  });
});
