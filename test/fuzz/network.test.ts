/*
 * The short network fuzz of `npm test` (support/network.ts): a cloud on
 * loopback gets mutated MQTT packets in every connection state (plain TCP,
 * before CONNECT, a mutated CONNECT, mid-packet, after a genuine login, half a
 * packet after login) and mutated RADIUS datagrams (unsigned, re-signed with
 * the NAS secret, EAP-level, and inside EAP-TTLS conversations); afterwards a
 * genuine device logs in and gets a response, and a genuine EAP-TTLS
 * authentication succeeds. Any finding fails the build. The long form is
 * `npm run fuzz -- --network` (docs/fuzzing.md).
 */
import { strict as assert } from "node:assert";
import { loadCorpus } from "./support/corpus";
import { fuzzRunningCloud } from "./support/network";

describe("fuzz: a running cloud over the network, short run (fixed seed)", function () {
  this.timeout(120_000);

  it("mutatedMqttInEveryStateAndMutatedRadius_NoFinding_GenuineDeviceAndRadiusStillServed", async () => {
    const report = await fuzzRunningCloud({ corpus: loadCorpus(), seed: 0x5eed, connections: 60, datagrams: 300, conversations: 4 });
    assert.deepEqual(report.findings, []);
    for (const state of ["tcp", "preConnect", "connect", "midPacket", "postLogin", "postLoginMid"]) {
      assert.ok((report.mqtt.byState[state] ?? 0) > 0, `no connection in state ${state}`);
    }
    assert.equal(report.mqtt.connacks["0"], (report.mqtt.byState.postLogin ?? 0) + (report.mqtt.byState.postLoginMid ?? 0), "every genuine fuzz login accepted");
    assert.ok(report.radius.resigned > 0 && report.radius.answered > 0, "re-signed datagrams reached the EAP layer and were answered");
    assert.equal(report.radius.conversations, 4);
    assert.ok(report.genuine.mqttMs >= 0 && report.genuine.radiusMs >= 0, "genuine device and genuine RADIUS authentication served");
  });
});
