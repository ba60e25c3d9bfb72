/*
 * Two cloud nodes on one PostgreSQL registry (issue 10 items 2 and 3): two
 * in-process clouds, each with its own MQTT/TLS listener, data folder and
 * connection pool, on one throwaway PostgreSQL database (test/support/postgres.ts).
 *
 * - the same login proof sent to both nodes at once is accepted at most once;
 * - issue and commit of one temporary device raced across both nodes end with
 *   exactly one active secret (the one both nodes handed out);
 * - a lockout earned on node A is enforced on node B, the per-device login rate
 *   is one budget across nodes, and a lockout survives a restart of the cloud.
 *
 * Skipped with the reason when PostgreSQL is not installed. Behaviour only: no
 * assertion depends on timing (client connect deadlines are 30 s).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { MqttClient } from "mqtt";
import { deriveCommitProof, deriveWrapKey, unwrapSecret } from "../modules/derive";
import { CONNACK, type CloudResponse } from "../modules/protocol";
import type { AbuseLimits } from "../cloud/mqtt-server";
import { connectDevice, digest, end, exchange, loginPassword, mustConnect, newSecret, startTestCloud, temporarySecret, type ConnectOutcome, type DeviceLogin, type TestCloud } from "./cloud-helpers";
import { createDatabase, postgresUnavailable } from "./support/postgres";

/** Client options: a generous CONNACK deadline (a loaded machine), never a reconnect. */
const SLOW_OK = { connectTimeout: 30_000 };

type IssueOk = Extract<CloudResponse, { op: "issue"; ok: true; nonce: Uint8Array }>;

/** Two nodes on one new PostgreSQL database, sharing the master key. */
async function startNodes(limits?: AbuseLimits): Promise<{ a: TestCloud; b: TestCloud; database: string; masterKey: Uint8Array; stop(): Promise<void> }> {
  const database = await createDatabase();
  const masterKey = new Uint8Array(randomBytes(32));
  const a = await startTestCloud({ database, masterKey, limits });
  const b = await startTestCloud({ database, masterKey, limits });
  return { a, b, database, masterKey, async stop() { await Promise.all([a.stop(), b.stop()]); } };
}

function connect(t: TestCloud, login: DeviceLogin): Promise<ConnectOutcome> {
  return connectDevice(t.cloud, login, SLOW_OK);
}

/** Login limits loose enough that only what a test exercises can refuse. */
const LOOSE = { login: { perDevice: { burst: 10_000, perSecond: 10_000 }, perLot: { burst: 10_000, perSecond: 10_000 }, lockoutThreshold: 10_000 } };

describe("two cloud nodes on one PostgreSQL registry", function () {
  this.timeout(180_000);

  before(function () {
    const why = postgresUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
  });

  it("sameLoginProof_SentToBothNodesAtOnce_AcceptedAtMostOnce", async function () {
    const nodes = await startNodes(LOOSE);
    try {
      const s = newSecret();
      await nodes.a.cloud.services.registerSecretDevice({ deviceId: "race-1", secretHex: s.hex });
      const rounds = 30;
      const accepted: number[] = [];
      for (let counter = 1; counter <= rounds; counter++) {
        const login = { id: "race-1", password: loginPassword("race-1", s.bytes, "s", counter) };
        const outcomes = await Promise.all([connect(nodes.a, login), connect(nodes.b, login)]);
        accepted.push(outcomes.filter((o) => o.client).length);
        for (const outcome of outcomes) {
          // the loser is refused as a replay (bad credentials), never anything else
          if (!outcome.client) assert.equal(outcome.code, CONNACK.badCredentials, `round ${counter}: ${outcome.error.message}`);
        }
        await Promise.all(outcomes.map((o) => end(o.client)));
      }
      assert.deepEqual(accepted.filter((n) => n > 1), [], `rounds accepting one proof twice: ${accepted.join(",")}`);
      // every round was decided by the database: exactly one node accepted (a replayed proof was never accepted twice, nor lost)
      assert.deepEqual(accepted, Array(rounds).fill(1));
      assert.equal((await nodes.b.cloud.registry.device("race-1"))!.last_counter, rounds);
    } finally {
      await nodes.stop();
    }
  });

  it("issueAndCommit_OneTemporaryDeviceRacedAcrossNodes_ExactlyOneActiveSecret", async function () {
    const nodes = await startNodes(LOOSE);
    const clients: MqttClient[] = [];
    try {
      const lot = await nodes.a.cloud.services.createProvisioningKey({ lot: "race-lot" });
      for (let d = 0; d < 8; d++) {
        const id = `race-t${d}`;
        const temp = temporarySecret(lot.provisioningKeyHex, id);
        // one device holding a temporary session on each node (as after a reconnect that lands elsewhere)
        const onA = await mustConnect(nodes.a.cloud, { id, password: loginPassword(id, temp, "t", 1) }, SLOW_OK);
        const onB = await mustConnect(nodes.b.cloud, { id, password: loginPassword(id, temp, "t", 2) }, SLOW_OK);
        clients.push(onA, onB);
        const issued = await Promise.all([onA, onB].map((c) => exchange(c, id, { v: 1, rid: "i", op: "issue" }, 30_000)));
        const secrets = issued.map((response) => {
          assert.equal(response.ok, true, `issue: ${JSON.stringify(response)}`);
          const r = response as IssueOk;
          assert.equal(r.gen, 1);
          const secret = unwrapSecret(digest, deriveWrapKey(digest, temp), id, r.nonce, { ciphertext: r.secret, tag: r.tag });
          assert.ok(secret, "the wrapped secret verifies under the temporary secret");
          return Buffer.from(secret);
        });
        // compared as booleans: a failure must not print a secret
        assert.ok(secrets[0].equals(secrets[1]), `${id}: both nodes hand out the one pending secret`);
        const proof = deriveCommitProof(digest, secrets[0], id, 1);
        const commits = await Promise.all([onA, onB].map((c) => exchange(c, id, { v: 1, rid: "c", op: "commit", gen: 1, proof }, 30_000)));
        assert.deepEqual(commits.map((c) => c.ok), [true, true], JSON.stringify(commits));
        const row = (await nodes.a.cloud.registry.device(id))!;
        assert.equal(row.kind, "secret");
        assert.equal(row.generation, 1);
        assert.equal(row.pending_secret_enc, null, "nothing left pending");
        assert.ok(Buffer.from(nodes.b.cloud.registry.activeSecret(row)!).equals(secrets[0]), "the active secret is the one handed out");
        const audit = await nodes.a.cloud.registry.auditLog(20, id);
        assert.deepEqual(audit.filter((r) => r.action === "secret.issue" || r.action === "secret.commit").map((r) => r.action).sort(), ["secret.commit", "secret.issue"], `${id}: one issue, one commit`);
        await Promise.all([end(onA), end(onB)]);
        // the secret logs in on either node; the temporary credential is retired on both
        await end(await mustConnect(nodes.b.cloud, { id, password: loginPassword(id, secrets[0], "s", 3) }, SLOW_OK));
        await end(await mustConnect(nodes.a.cloud, { id, password: loginPassword(id, secrets[0], "s", 4) }, SLOW_OK));
        assert.equal((await connect(nodes.a, { id, password: loginPassword(id, temp, "t", 5) })).code, CONNACK.notAuthorized);
      }
    } finally {
      await Promise.all(clients.map((c) => end(c)));
      await nodes.stop();
    }
  });

  it("lockout_EarnedOnNodeA_EnforcedOnNodeB_RightProofStillGetsIn_UnlockOnBClearsA", async function () {
    const nodes = await startNodes({ login: { perDevice: { burst: 1000, perSecond: 1000 }, lockoutThreshold: 3, rejectDelayMs: 100 } });
    try {
      const s = newSecret();
      await nodes.a.cloud.services.registerSecretDevice({ deviceId: "lock-1", secretHex: s.hex });
      const wrong = newSecret().bytes;
      for (let i = 1; i <= 3; i++) {
        assert.equal((await connect(nodes.a, { id: "lock-1", password: loginPassword("lock-1", wrong, "s", i) })).code, CONNACK.badCredentials, `wrong proof ${i} on A`);
      }
      assert.equal(nodes.a.cloud.auth.stats.lockouts, 1);
      // node B has seen no failure of this pair: it enforces A's lockout from the shared rows
      assert.equal((await connect(nodes.b, { id: "lock-1", password: loginPassword("lock-1", wrong, "s", 4) })).code, CONNACK.notAuthorized);
      assert.equal((await nodes.b.cloud.services.getDevice({ deviceId: "lock-1" })).lastFailure, "LOCKED_OUT");
      assert.equal(nodes.b.cloud.auth.stats.lockedRefusals, 1);
      // a lockout never keeps out the right proof, on either node
      await end(await mustConnect(nodes.b.cloud, { id: "lock-1", password: loginPassword("lock-1", s.bytes, "s", 5) }, SLOW_OK));
      // that success reset the pair everywhere: earn it again on A, unlock through B, A verifies again
      for (let i = 6; i <= 8; i++) await connect(nodes.a, { id: "lock-1", password: loginPassword("lock-1", wrong, "s", i) });
      assert.equal((await connect(nodes.a, { id: "lock-1", password: loginPassword("lock-1", wrong, "s", 9) })).code, CONNACK.notAuthorized);
      await nodes.b.cloud.services.unlockDevice({ deviceId: "lock-1" });
      assert.equal((await connect(nodes.a, { id: "lock-1", password: loginPassword("lock-1", wrong, "s", 10) })).code, CONNACK.badCredentials);
    } finally {
      await nodes.stop();
    }
  });

  it("loginRates_OneBudgetAcrossNodes_PerDeviceAndPerLot", async function () {
    const nodes = await startNodes({ login: { perDevice: { burst: 2, perSecond: 0.001 }, perLot: { burst: 2, perSecond: 0.001 } } });
    try {
      const s = newSecret();
      await nodes.a.cloud.services.registerSecretDevice({ deviceId: "rate-1", secretHex: s.hex });
      await end(await mustConnect(nodes.a.cloud, { id: "rate-1", password: loginPassword("rate-1", s.bytes, "s", 1) }, SLOW_OK));
      await end(await mustConnect(nodes.b.cloud, { id: "rate-1", password: loginPassword("rate-1", s.bytes, "s", 2) }, SLOW_OK));
      // each node has taken one token: in memory each would still hold one, shared the device's burst of 2 is spent
      assert.equal((await connect(nodes.a, { id: "rate-1", password: loginPassword("rate-1", s.bytes, "s", 3) })).code, CONNACK.serverUnavailable);
      assert.equal((await connect(nodes.b, { id: "rate-1", password: loginPassword("rate-1", s.bytes, "s", 4) })).code, CONNACK.serverUnavailable);
      const lot = await nodes.a.cloud.services.createProvisioningKey({ lot: "rate-lot" });
      const codes: (number | undefined)[] = [];
      for (const [i, node] of [nodes.a, nodes.b, nodes.a].entries()) {
        const id = `rate-t${i}`;
        const outcome = await connect(node, { id, password: loginPassword(id, temporarySecret(lot.provisioningKeyHex, id), "t", 1) });
        codes.push(outcome.client ? 0 : outcome.code);
        await end(outcome.client);
      }
      assert.deepEqual(codes, [0, 0, CONNACK.serverUnavailable], "the lot's burst of 2 is one budget across nodes");
    } finally {
      await nodes.stop();
    }
  });

  it("lockout_SurvivesARestartOfTheCloud", async function () {
    const limits = { login: { perDevice: { burst: 1000, perSecond: 1000 }, lockoutThreshold: 3, rejectDelayMs: 100 } };
    const database = await createDatabase();
    const masterKey = new Uint8Array(randomBytes(32));
    let node = await startTestCloud({ database, masterKey, limits });
    try {
      const s = newSecret();
      await node.cloud.services.registerSecretDevice({ deviceId: "lock-2", secretHex: s.hex });
      const wrong = newSecret().bytes;
      for (let i = 1; i <= 3; i++) await connectDevice(node.cloud, { id: "lock-2", password: loginPassword("lock-2", wrong, "s", i) }, SLOW_OK);
      assert.equal(node.cloud.auth.stats.lockouts, 1);
      await node.stop();
      node = await startTestCloud({ database, masterKey, limits });
      assert.equal((await connectDevice(node.cloud, { id: "lock-2", password: loginPassword("lock-2", wrong, "s", 4) }, SLOW_OK)).code, CONNACK.notAuthorized, "locked out after the restart");
      await end(await mustConnect(node.cloud, { id: "lock-2", password: loginPassword("lock-2", s.bytes, "s", 5) }, SLOW_OK));
    } finally {
      await node.stop();
    }
  });
});
