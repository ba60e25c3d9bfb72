/*
 * Admission that does not turn into back-off (issue 15 item 2, docs/protocol.md
 * section 10): over capacity, a connection of a fleet is answered CONNACK 3
 * (server unavailable) after TLS instead of being reset, within bounds (busyTotal,
 * busyRate); floods from few sources are still evicted oldest-first, and beyond
 * the busy bounds the old rule (reset, evict) applies.
 */
import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ConnectionLimiter, type ConnectionTicket } from "../cloud/limits";
import { CONNACK } from "../modules/protocol";
import { connectDevice, end, loginPassword, mustConnect, newSecret, startTestCloud } from "./cloud-helpers";

const kind = (t: ConnectionTicket | string) => (typeof t === "string" ? t : t.busy ? "BUSY" : "ADMITTED");

describe("cloud admission: busy answers instead of resets", function () {
  this.timeout(30_000);

  it("ConnectionLimiter_BalancedSourcesAtCapWithYoungConnections_NewcomerBusy_NothingEvicted", function () {
    const limiter = new ConnectionLimiter({ unauthenticatedPerSource: 2, unauthenticatedTotal: 4, newPerSource: { burst: 100, perSecond: 1 }, staleMs: 1000, busyTotal: 2 });
    const closed: string[] = [];
    const admit = (source: string, now: number) => limiter.admit(source, now, () => closed.push(`${source}@${now}`));
    // [source, now, expected]: two balanced sources (a fleet behind two NATs)
    const table: [string, number, string][] = [
      ["a", 0, "ADMITTED"], ["a", 10, "ADMITTED"], ["b", 20, "ADMITTED"], ["b", 30, "ADMITTED"],
      ["a", 100, "BUSY"], // a at its per-source cap, its oldest 100 ms old: busy, not evicted
      ["c", 110, "ADMITTED"], // c holds none, a and b hold 2: the flood rule, the largest's oldest is evicted
      ["b", 120, "BUSY"], // b holds 2 and is at its cap, young: busy
      ["b", 130, "ADMITTED"], // busyTotal 2 reached: the old rule, b's oldest evicted
    ];
    for (const [source, now, expected] of table) assert.equal(kind(admit(source, now)), expected, `${source} at ${now}`);
    assert.deepEqual(closed, ["a@0", "b@20"]);
    assert.equal(limiter.busy, 2);
    assert.equal(limiter.unauthenticated, 4, "busy tickets are not counted as unauthenticated slots");
  });

  it("ConnectionLimiter_StaleConnectionsAreEvicted_IdleFloodStillLosesItsSlots", function () {
    const limiter = new ConnectionLimiter({ unauthenticatedPerSource: 64, unauthenticatedTotal: 4, staleMs: 1000 });
    const closed: number[] = [];
    for (let i = 0; i < 4; i++) limiter.admit("flood", i, () => closed.push(i));
    // another source: evicted at once whatever the age (the flood holds more)
    assert.equal(kind(limiter.admit("device-1", 5, () => {})), "ADMITTED");
    assert.deepEqual(closed, [0]);
    // balanced sources of one connection each (one device per address)
    const balanced = new ConnectionLimiter({ unauthenticatedTotal: 3, staleMs: 1000 });
    balanced.admit("x", 0, () => closed.push(100));
    balanced.admit("y", 0, () => closed.push(101));
    balanced.admit("z", 0, () => closed.push(102));
    assert.equal(kind(balanced.admit("z", 500, () => {})), "BUSY", "z already holds one, the others are young: busy");
    assert.equal(kind(balanced.admit("w", 600, () => {})), "ADMITTED", "w holds none: it always gets a slot (the oldest is evicted)");
    assert.equal(kind(balanced.admit("z", 1500, () => {})), "ADMITTED", "stale: the oldest is evicted");
    assert.deepEqual(closed, [0, 100, 101]);
  });

  it("ConnectionLimiter_TotalRate_BusyWithinBusyRate_ThenReset_ReleaseIdempotent", function () {
    const limiter = new ConnectionLimiter({ newTotal: { burst: 1, perSecond: 0.001 }, busyRate: { burst: 2, perSecond: 0.001 }, busyTotal: 10 });
    const kinds = ["a", "b", "c", "d"].map((s) => limiter.admit(s, 0, () => {}));
    assert.deepEqual(kinds.map(kind), ["ADMITTED", "BUSY", "BUSY", "TOTAL_RATE"]);
    limiter.release(kinds[1] as ConnectionTicket);
    limiter.release(kinds[1] as ConnectionTicket);
    assert.equal(limiter.busy, 1);
    assert.equal(limiter.busyAnswers, 2);
  });

  it("mqtt_OverTheTotalRate_DeviceGetsConnack3NotAReset_ThenConnects", async function () {
    const t = await startTestCloud({ limits: { connections: { newTotal: { burst: 1, perSecond: 0.5 } } } });
    try {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "busy-1", secretHex: s.hex });
      await end(await mustConnect(t.cloud, { id: "busy-1", password: loginPassword("busy-1", s.bytes, "s", 1) }));
      const second = await connectDevice(t.cloud, { id: "busy-1", password: loginPassword("busy-1", s.bytes, "s", 2) });
      assert.equal(second.code, CONNACK.serverUnavailable, `over the rate: ${second.code ?? second.error?.message}`);
      assert.equal(t.cloud.mqtt.stats.busyAnswered, 1);
      assert.equal(t.cloud.mqtt.stats.connectionsRefused, 0, "no reset at accept");
      assert.equal(t.cloud.mqtt.stats.loginsRefused, 0, "the busy CONNECT was not authenticated");
      assert.equal((await t.cloud.services.getDevice({ deviceId: "busy-1" })).lastFailure ?? null, null, "nothing stored");
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await end(await mustConnect(t.cloud, { id: "busy-1", password: loginPassword("busy-1", s.bytes, "s", 3) }));
    } finally {
      await t.stop();
    }
  });

  it("mqtt_PerSourceCapFullOfYoungHandshakes_NewcomerConnack3_TheOldestIsNotReset", async function () {
    const t = await startTestCloud({ limits: { connections: { unauthenticatedPerSource: 2 } } });
    const held: TLSSocket[] = [];
    try {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "busy-2", secretHex: s.hex });
      const resets: number[] = [];
      for (let i = 0; i < 2; i++) {
        const socket = tlsConnect({ host: "127.0.0.1", port: t.cloud.mqttPort, ca: t.cloud.serverCaPem, servername: t.cloud.serverName });
        await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
        socket.on("close", () => resets.push(i));
        held.push(socket);
      }
      const third = await connectDevice(t.cloud, { id: "busy-2", password: loginPassword("busy-2", s.bytes, "s", 1) });
      assert.equal(third.code, CONNACK.serverUnavailable, `${third.code ?? third.error?.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(resets, [], "the held handshakes (a fleet's devices) were not evicted");
      assert.equal(t.cloud.mqtt.connections.evictions, 0);
    } finally {
      for (const socket of held) socket.destroy();
      await t.stop();
    }
  });
});
