/*
 * Accounting state in the registry's storage (issue 14 items 2 and 3), on
 * SQLite and PostgreSQL: the StorageHotspotStore keeps the HotspotStore
 * contract (Start / Interim / Stop idempotent, stale interims ignored, an
 * Acct-Session-Id of another device refused, Accounting-On ends a NAS's
 * sessions, bounds, stale live sessions gone), and a cloud restarted on the
 * same registry still knows which device is on which NAS (start, last
 * interim, stop and cause), shows it in the device's status and the
 * wcm_radius_hotspot_sessions metric, and sends a Disconnect-Request for it.
 */
import { strict as assert } from "node:assert";
import { createSocket } from "node:dgram";
import { signAccountingRequest } from "../cloud/radius/accounting";
import { ATTR } from "../cloud/radius/packet";
import { StorageHotspotStore } from "../cloud/radius/storage-hotspot-store";
import type { AccountingUpdate } from "../cloud/radius/session-store";
import { newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";
import { forEachBackend } from "./support/backends";

const NAS_SECRET = "accounting-store-nas-secret";
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const update = (over: Partial<AccountingUpdate>): AccountingUpdate => ({
  kind: "start", deviceId: "lamp-s1", acctSessionId: "A-1", nas: "ap-1", nasAddress: "10.0.0.2", at: 1_000_000, ssid: "ZipKey", ...over,
});

forEachBackend("radius: accounting state in the registry's storage", function () {
  this.timeout(180_000);

  it("storageHotspotStore_Contract_IdempotentStaleBoundsAndNasRestart", async () => {
    const t = await startTestCloud();
    try {
      let now = 2_000_000;
      const store = new StorageHotspotStore(t.cloud.registry.storage, { now: () => now, maxLive: 3, staleMs: 60_000 });
      assert.equal(await store.account(update({})), "started");
      assert.equal(await store.account(update({})), "duplicate", "a repeated Start");
      assert.equal(await store.account(update({ kind: "interim", at: 1_060_000, sessionTimeS: 60 })), "updated");
      assert.equal(await store.account(update({ kind: "interim", at: 1_030_000 })), "stale", "an older interim");
      assert.equal(await store.account(update({ deviceId: "lamp-other", kind: "interim", at: 1_090_000 })), "stale", "the session id of another device");
      assert.deepEqual(await store.livePerNas(), { "ap-1": 1 });
      assert.equal((await store.liveSessions("lamp-s1"))[0].lastInterimAt, 1_060_000);
      assert.equal(await store.account(update({ kind: "stop", at: 1_120_000, terminateCause: "Lost-Carrier" })), "stopped");
      assert.equal(await store.account(update({ kind: "stop", at: 1_120_000, terminateCause: "Lost-Carrier" })), "duplicate", "a repeated Stop");
      assert.equal(await store.account(update({ kind: "interim", at: 1_150_000 })), "duplicate", "nothing after the Stop");
      const status = (await store.status("lamp-s1"))!;
      assert.deepEqual(
        { start: status.session?.startedAt, interim: status.session?.lastInterimAt, stop: status.session?.stoppedAt, cause: status.session?.terminateCause },
        { start: 1_000_000, interim: 1_060_000, stop: 1_120_000, cause: "Lost-Carrier" },
      );
      assert.deepEqual(await store.livePerNas(), {});
      // an Interim for a session the store never saw creates it (the NAS's view wins)
      assert.equal(await store.account(update({ acctSessionId: "A-2", kind: "interim", at: 1_200_000, sessionTimeS: 100 })), "started");
      assert.equal((await store.status("lamp-s1"))!.session?.startedAt, 1_100_000);
      // bounded: a fourth live session pushes out the least recently updated
      for (const [i, id] of ["lamp-b1", "lamp-b2", "lamp-b3"].entries()) {
        now += 1000;
        await store.account(update({ deviceId: id, acctSessionId: `B-${i}`, nas: "ap-2" }));
      }
      assert.equal((await store.liveSessions()).length, 3);
      assert.deepEqual((await store.liveSessions("lamp-s1")), [], "the oldest went");
      // Accounting-On from ap-2 ends its sessions with NAS-Reboot
      assert.equal(await store.nasRestarted("ap-2", 1_300_000), 3);
      assert.equal((await store.status("lamp-b2"))!.session?.terminateCause, "NAS-Reboot");
      assert.deepEqual(await store.livePerNas(), {});
      // a live session with no update for staleMs is gone
      await store.account(update({ deviceId: "lamp-c1", acctSessionId: "C-1" }));
      now += 61_000;
      assert.deepEqual(await store.liveSessions("lamp-c1"), []);
      // the last authentication and Disconnect outcome next to the session
      await store.recordAuth("lamp-c1", { nas: "ap-1", at: 5, outcome: "accept", method: "ttls", resumed: false });
      await store.recordDisconnect("lamp-c1", { at: 6, nas: "ap-1", acctSessionId: "C-1", reason: "operator", outcome: "ack", attempts: 1 });
      const c1 = (await store.status("lamp-c1"))!;
      assert.equal(c1.lastAuth?.method, "ttls");
      assert.equal(c1.lastDisconnect?.outcome, "ack");
      assert.equal(c1.session?.acctSessionId, "C-1");
      assert.equal(await store.status("lamp-nobody"), undefined);
    } finally {
      await t.stop();
    }
  });

  it("cloudRestart_LiveSessionSurvives_StatusMetricAndDisconnectAfterTheRestart", async () => {
    // a stand-in NAS Dynamic Authorization port: records what reaches it, answers nothing
    const das = createSocket("udp4");
    const received: Buffer[] = [];
    das.on("message", (m) => received.push(m));
    await new Promise<void>((resolve) => das.bind(0, "127.0.0.1", () => resolve()));
    const radius = { accountingPort: 0, dynamicAuthorization: { port: das.address().port, timeoutMs: 200, retries: 0 } };
    let t: TestCloud | undefined = await startTestCloud({ radiusPort: 0, radius });
    const { dataDir, masterKey } = t;
    try {
      await t.cloud.services.addNasClient({ name: "ap-r", address: "127.0.0.1", secret: NAS_SECRET });
      await t.cloud.services.registerSecretDevice({ deviceId: "lamp-r1", secretHex: newSecret().hex });
      const send = async (cloud: TestCloud, id: number, status: number, extra: { type: number; value: Buffer }[] = []) => {
        const packet = signAccountingRequest(id, Buffer.from(NAS_SECRET), [
          { type: ATTR.acctStatusType, value: u32(status) }, { type: ATTR.userName, value: Buffer.from("lamp-r1") },
          { type: ATTR.acctSessionId, value: Buffer.from("R-1") }, { type: ATTR.nasIpAddress, value: Buffer.from([127, 0, 0, 1]) },
          { type: ATTR.calledStationId, value: Buffer.from("02-00-00-00-00-AA:ZipKey") }, ...extra,
        ]);
        assert.ok(await cloud.cloud.radius!.handle(packet, { address: "127.0.0.1", port: 40000 + id }, "accounting"), "answered");
      };
      await send(t, 1, 1);
      await send(t, 2, 3, [{ type: ATTR.acctSessionTime, value: u32(30) }]);
      await t.cloud.close();
      t = undefined;
      // the same registry (SQLite file or PostgreSQL database), a new process state
      t = await startTestCloud({ dataDir, masterKey, radiusPort: 0, radius });
      const view = await t.cloud.services.getDevice({ deviceId: "lamp-r1" });
      assert.equal(view.hotspot?.session?.nas, "ap-r");
      assert.equal(view.hotspot?.session?.live, true);
      assert.equal(view.hotspot?.session?.ssid, "ZipKey");
      assert.ok(view.hotspot?.session?.lastInterimAt, "the last interim survived");
      assert.deepEqual(await t.cloud.radius!.liveSessionsPerNas(), { "ap-r": 1 });
      assert.match((await t.cloud.metrics.render()).body, /wcm_radius_hotspot_sessions\{nas="ap-r"\} 1/);
      // revoking after the restart still finds the NAS holding the session
      await t.cloud.services.revokeDevice({ deviceId: "lamp-r1" });
      const until = Date.now() + 15_000;
      while (received.length === 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(received.length >= 1 && received[0][0], 40, "a Disconnect-Request reached the NAS");
      await send(t, 3, 2, [{ type: ATTR.acctTerminateCause, value: u32(6) }]);
      const after = await t.cloud.services.getDevice({ deviceId: "lamp-r1" });
      assert.equal(after.hotspot?.session?.terminateCause, "Admin-Reset");
      assert.equal(after.hotspot?.session?.live, false);
      assert.deepEqual(await t.cloud.radius!.liveSessionsPerNas(), {});
    } finally {
      das.close();
      await t?.stop();
    }
  });
});
