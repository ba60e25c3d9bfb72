/*
 * A real multi-node deployment (demo/cluster.ts, `npm run demo:cluster`):
 * PostgreSQL, Redis, three `serve` nodes and HAProxy in TCP mode in front of
 * their MQTT listeners; 300 simulated devices first-boot with temporary
 * credentials through HAProxy and node 2 is SIGKILLed when half are
 * permanent. Asserts outcomes only (no timing): every device PERMANENT and
 * ONLINE on the two remaining nodes, no row temporary, none with two active
 * secrets, none locked out; the restarted node takes connections again.
 * Skipped with the reason when postgres, redis-server or haproxy is missing.
 */
import assert from "node:assert/strict";
import { clusterDemoUnavailable, runClusterDemo, type ClusterDemoResult } from "../demo/cluster";

describe("a deployment: PostgreSQL + Redis + 3 nodes behind HAProxy, one SIGKILLed", function () {
  // generous: a loaded 2-core CI machine; the figures are the demo's, not asserted
  this.timeout(900_000);
  let result: ClusterDemoResult;

  before(async function () {
    const why = clusterDemoUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`);
      this.skip();
    }
    result = await runClusterDemo({ devices: 300, rate: 100, budgetMs: 600_000, log: (line) => console.log(`      ${line}`) });
  });

  it("firstBoot_300DevicesThroughHAProxy_NodeKilledMidway_EveryDevicePermanentAndOnline", function () {
    assert.equal(result.permanentOnline, 300);
    assert.ok(Number.isFinite(result.killedAtS), "the node was killed during the storm");
  });

  it("registry_AfterTheStorm_NoTemporaryNoTwoActiveSecretsNoneLockedOut", function () {
    assert.equal(result.check.devices, 300);
    assert.equal(result.check.temporary, 0);
    assert.equal(result.check.twoActive, 0);
    assert.equal(result.check.pending, 0);
    assert.equal(result.check.lockedOut, 0);
  });

  it("sessions_WithTheNodeDown_AllOnTheRemainingNodes", function () {
    assert.equal(result.sessionsAfterStorm[result.killed], 0);
    assert.equal(result.sessionsAfterStorm.reduce((a, b) => a + b, 0), 300);
  });

  it("killedNode_Restarted_TakesConnectionsAgain", function () {
    assert.equal(result.reconnectedOnline, result.reconnected);
    assert.ok(result.sessionsAfterRestart[result.killed] > 0, `the restarted node holds ${result.sessionsAfterRestart[result.killed]} sessions`);
  });
});
