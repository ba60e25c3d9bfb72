/*
 * Admission that does not turn into back-off (issue 15 item 2, docs/protocol.md
 * section 10): over capacity, a connection of a fleet is answered CONNACK 3
 * (server unavailable) after TLS instead of being reset, within bounds (busyTotal,
 * busyRate); floods from few sources are still evicted oldest-first, and beyond
 * the busy bounds the old rule (reset, evict) applies.
 */
import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ConnectionLimiter, type ConnectionTicket, type QueuedConnection } from "../cloud/limits";
import { CONNACK } from "../modules/protocol";
import { connectDevice, end, loginPassword, mustConnect, newSecret, startTestCloud } from "./cloud-helpers";

const kind = (t: ConnectionTicket | string) => (typeof t === "string" ? t : t.busy ? "BUSY" : "ADMITTED");

const started = (t: ConnectionTicket | QueuedConnection | string) => typeof t !== "string" && !("queued" in t) && !t.busy;

describe("cloud admission: the accept queue (held, unread, until a slot frees)", function () {
  this.timeout(60_000);

  it("ConnectionLimiter_Progressed_AHandshakeThatMovedIsKept_TheIdleOneIsEvicted_ThenItAgesAgain", function () {
    // a loaded cloud is slow to finish handshakes: one that progressed (TLS ended, CONNECT came) is not
    // evicted as stale for a newcomer while an idle one is; once idle for staleMs itself, it is evicted first
    const limiter = new ConnectionLimiter({ unauthenticatedTotal: 2, staleMs: 1000, queueTotal: 0 });
    const closed: string[] = [];
    const admit = (source: string, now: number) => limiter.admit(source, now, () => closed.push(source)) as ConnectionTicket;
    const a = admit("a", 0);
    admit("b", 0);
    limiter.progressed(a, 2000);
    admit("c", 2500);
    assert.deepEqual(closed, ["b"], "the idle connection made room, not the one that progressed");
    admit("d", 6000);
    assert.deepEqual(closed, ["b", "a"], "idle since its progress: evicted before the younger newcomer");
    assert.equal(limiter.unauthenticated, 2);
    limiter.progressed(a, 7000);
    assert.equal(limiter.unauthenticated, 2, "a released ticket is not counted again");
  });

  it("ConnectionLimiter_TotalCapOfBalancedYoungConnections_NewcomersWait_StartInTurnAsSlotsFree_NothingEvicted", function () {
    const limiter = new ConnectionLimiter({ unauthenticatedTotal: 3, staleMs: 10_000 });
    const closed: string[] = [];
    const begun: string[] = [];
    const tickets = new Map<string, ConnectionTicket>();
    const admit = (source: string, now: number) => limiter.admit(source, now, () => closed.push(source), (ticket) => {
      begun.push(source);
      tickets.set(source, ticket);
    });
    for (const s of ["x", "y", "z"]) {
      const t = admit(s, 0);
      assert.ok(started(t), s);
      tickets.set(s, t as ConnectionTicket);
    }
    const w = admit("w", 10);
    const v = admit("v", 20);
    assert.ok(typeof w !== "string" && "queued" in w && typeof v !== "string" && "queued" in v, "one device per address, all young: the newcomers wait");
    assert.equal(limiter.queued, 2);
    assert.equal(limiter.drain(30), 0, "no slot free: nobody starts");
    limiter.release(tickets.get("x")!);
    assert.equal(limiter.drain(40), 1);
    assert.deepEqual(begun, ["w"], "first come, first served across sources");
    limiter.release(tickets.get("y")!);
    limiter.drain(50);
    assert.deepEqual(begun, ["w", "v"]);
    assert.deepEqual(closed, [], "no young connection was evicted, no waiting one closed");
    assert.equal(limiter.evictions, 0);
    assert.equal(limiter.decisions.dequeued, 2);
  });

  it("ConnectionLimiter_Queue_FairAcrossSources_BoundedPerSourceAndInTotal_DeadlineCloses_CancelForgets", function () {
    const limiter = new ConnectionLimiter({ unauthenticatedTotal: 1, queuePerSource: 3, queueTotal: 5, queueDeadlineMs: 1000, staleMs: 10_000, newPerSource: { burst: 100, perSecond: 100 } });
    const begun: string[] = [];
    const closed: string[] = [];
    const holder = limiter.admit("h", 0, () => closed.push("h"), () => {}) as ConnectionTicket;
    const kinds: string[] = [];
    const cancels: (() => void)[] = [];
    const now: ConnectionTicket[] = [];
    // a flood source queues 3 (its share) then meets the old rule; a device source queues behind it
    for (const [i, s] of ["f", "f", "f", "f", "d", "e", "g"].entries()) {
      const t = limiter.admit(s, 10 + i, () => closed.push(`${s}${i}`), (ticket) => {
        begun.push(s);
        limiter.release(ticket);
      });
      kinds.push(typeof t === "string" ? t : "queued" in t ? "Q" : t.busy ? "BUSY" : "ADMITTED");
      if (typeof t !== "string" && "queued" in t) cancels.push(() => t.cancel());
      else if (typeof t !== "string") now.push(t);
    }
    // f's 4th: its share is full, so the old rule: f holds none, it gets the slot (the holder is evicted);
    // g: the queue holds 5 (3 f, d, e): full, the old rule again (f's admitted one is evicted)
    assert.deepEqual(kinds, ["Q", "Q", "Q", "ADMITTED", "Q", "Q", "ADMITTED"]);
    assert.deepEqual(closed, ["h", "f3"]);
    assert.equal(limiter.decisions.queueFull, 2);
    cancels[4](); // e went away while waiting
    cancels[4]();
    assert.equal(limiter.queued, 4);
    for (const t of [holder, ...now]) limiter.release(t);
    limiter.drain(100);
    // one slot, each started one releases at once: round robin f, d, f, f
    assert.deepEqual(begun, ["f", "d", "f", "f"]);
    // the deadline: new waiters closed after queueDeadlineMs
    const again = limiter.admit("k", 200, () => {}, () => {}) as ConnectionTicket;
    limiter.admit("late", 300, () => closed.push("late"), () => begun.push("late"));
    limiter.drain(1299);
    assert.ok(!closed.includes("late"));
    limiter.drain(1300);
    assert.ok(closed.includes("late"), "waited queueDeadlineMs: closed");
    assert.equal(limiter.decisions.queueExpired, 1);
    assert.equal(limiter.queued, 0);
    limiter.release(again);
  });

  it("ConnectionLimiter_FloodHoldingTheSlots_NewSourceStartsAtOnce_FloodEvicted_Issue8", function () {
    const limiter = new ConnectionLimiter({ unauthenticatedTotal: 4, staleMs: 10_000 });
    const closed: number[] = [];
    for (let i = 0; i < 4; i++) limiter.admit("flood", i, () => closed.push(i), () => {});
    const device = limiter.admit("device", 5, () => {}, () => {});
    assert.ok(started(device), "a source holding none, the flood holding more: the device starts now, not queued");
    assert.deepEqual(closed, [0], "the flood's oldest was evicted");
    // the flood's own newcomers wait (they cost no TLS while waiting) instead of evicting their own
    const more = limiter.admit("flood", 6, () => closed.push(6), () => {});
    assert.ok(typeof more !== "string" && "queued" in more);
  });

  it("mqtt_OverTheTotalRate_DeviceHeldAtAccept_ThenLogsIn_NoResetNoBusy", async function () {
    const t = await startTestCloud({ limits: { connections: { newTotal: { burst: 1, perSecond: 1 } } } });
    try {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "queue-1", secretHex: s.hex });
      await end(await mustConnect(t.cloud, { id: "queue-1", password: loginPassword("queue-1", s.bytes, "s", 1) }));
      // over the rate: held (unread) until a token comes, then TLS and the login as usual
      await end(await mustConnect(t.cloud, { id: "queue-1", password: loginPassword("queue-1", s.bytes, "s", 2) }, { connectTimeout: 30_000 }));
      assert.equal(t.cloud.mqtt.connections.decisions.queued, 1);
      assert.equal(t.cloud.mqtt.connections.decisions.dequeued, 1);
      assert.equal(t.cloud.mqtt.stats.connectionsRefused, 0, "no reset at accept");
      assert.equal(t.cloud.mqtt.stats.busyAnswered, 0, "no busy answer");
      assert.equal(t.cloud.mqtt.stats.loginsAccepted, 2);
    } finally {
      await t.stop();
    }
  });

  it("mqtt_PerSourceCapFullOfYoungHandshakes_NewcomerWaits_StartsWhenOneCloses_NoneEvicted", async function () {
    const t = await startTestCloud({ limits: { connections: { unauthenticatedPerSource: 2 } } });
    const held: TLSSocket[] = [];
    try {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "queue-2", secretHex: s.hex });
      const closes: number[] = [];
      for (let i = 0; i < 2; i++) {
        const socket = tlsConnect({ host: "127.0.0.1", port: t.cloud.mqttPort, ca: t.cloud.serverCaPem, servername: t.cloud.serverName });
        await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
        socket.on("close", () => closes.push(i));
        held.push(socket);
      }
      const third = connectDevice(t.cloud, { id: "queue-2", password: loginPassword("queue-2", s.bytes, "s", 1) }, { connectTimeout: 30_000 });
      for (let i = 0; i < 200 && t.cloud.mqtt.connections.queued === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(t.cloud.mqtt.connections.queued, 1, "the newcomer waits at accept");
      held[0].destroy(); // a slot frees
      const outcome = await third;
      assert.ok(outcome.client, `the newcomer logs in: ${outcome.code ?? outcome.error?.message}`);
      await end(outcome.client);
      assert.deepEqual(closes, [0], "only the one closed by its client: the held handshakes were not evicted");
      assert.equal(t.cloud.mqtt.connections.evictions, 0);
      assert.equal(t.cloud.mqtt.stats.busyAnswered, 0);
    } finally {
      for (const socket of held) socket.destroy();
      await t.stop();
    }
  });
});

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
    // the accept queue off: busy answers are what comes beyond it
    const t = await startTestCloud({ limits: { connections: { newTotal: { burst: 1, perSecond: 0.5 }, queueTotal: 0 } } });
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
    const t = await startTestCloud({ limits: { connections: { unauthenticatedPerSource: 2, queueTotal: 0 } } });
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
