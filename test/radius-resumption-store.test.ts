/*
 * The RADIUS server's TLS resumption store in the registry's storage (issue
 * 14 item 1: "shared by the nodes when the cloud runs on several"), on SQLite
 * and PostgreSQL: a session stored before a restart of the cloud is resumed
 * after it, by session id and by ticket (ticket keys derived from the master
 * key, the same on every node); the decision runs again on the resumed
 * session (a device revoked meanwhile is refused) and the MSK is fresh; on
 * PostgreSQL a second node on the same database resumes a session the first
 * stored. Rows are sealed: the database does not hold the SSL_SESSION in clear.
 */
import { strict as assert } from "node:assert";
import { authenticate, type PeerOptions, type PeerResult } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { deriveHotspotPassword } from "../modules/derive";
import { newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";
import { backendDatabase, currentBackend, forEachBackend } from "./support/backends";

const NAS_SECRET = "resume-store-shared-secret";
const FROM = { address: "127.0.0.1", port: 41012 };

forEachBackend("radius: TLS sessions in the registry's storage (restart, several nodes)", function () {
  this.timeout(180_000);
  const device = newSecret();

  const ttls = (t: TestCloud, id: string, over: Partial<PeerOptions> = {}): PeerOptions => ({
    nasSecret: NAS_SECRET, method: "ttls", identity: id, password: deriveHotspotPassword(nodeDigest, device.bytes, id),
    caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, ...over,
  });
  const run = (t: TestCloud, options: PeerOptions): Promise<PeerResult> => authenticate((r) => t.cloud.radius!.handle(r, FROM), options);

  it("restart_SessionIdAndTicketResumedAfterIt_RevokedStillRefused_FreshMsk_RowsSealed", async () => {
    let t: TestCloud | undefined = await startTestCloud({ radiusPort: 0 });
    const { dataDir, masterKey } = t;
    try {
      await t.cloud.services.addNasClient({ name: "ap-store", address: "127.0.0.1", secret: NAS_SECRET });
      for (const id of ["lamp-k1", "lamp-k2"]) await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: device.hex });
      const byId = await run(t, ttls(t, "lamp-k1"));
      const byTicket = await run(t, ttls(t, "lamp-k1", { tickets: true }));
      const doomed = await run(t, ttls(t, "lamp-k2"));
      for (const r of [byId, byTicket, doomed]) assert.ok(r.ok && !r.resumed, r.reason);
      const rows = await t.cloud.registry.storage.all<{ sealed: Buffer }>("SELECT sealed FROM radius_tls_sessions");
      assert.ok(rows.length >= 4, `sessions and bindings stored: ${rows.length}`);
      for (const row of rows) assert.equal(Buffer.from(row.sealed).includes(byId.session!.subarray(0, 32)), false, "sealed, not in clear");
      await t.cloud.close();
      t = undefined;
      t = await startTestCloud({ dataDir, masterKey, radiusPort: 0 });
      const again = await run(t, ttls(t, "lamp-k1", { session: byId.session }));
      assert.ok(again.ok, again.reason);
      assert.equal(again.resumed, true, "resumed by session id after the restart");
      assert.ok(again.roundTrips < byId.roundTrips);
      assert.notDeepEqual(again.msk, byId.msk, "a fresh MSK");
      const ticket = await run(t, ttls(t, "lamp-k1", { tickets: true, session: byTicket.session }));
      assert.ok(ticket.ok, ticket.reason);
      assert.equal(ticket.resumed, true, "resumed by ticket after the restart (ticket keys derived from the master key)");
      await t.cloud.services.revokeDevice({ deviceId: "lamp-k2" });
      const refused = await run(t, ttls(t, "lamp-k2", { session: doomed.session }));
      assert.equal(refused.ok, false);
      assert.equal(refused.reason, "REVOKED", "a revoked device is refused on its resumed session");
      assert.equal(t.cloud.radius!.stats.tlsResumed, 2);
    } finally {
      await t?.stop();
    }
  });

  it("twoNodes_OneDatabase_ASessionStoredByOneIsResumedByTheOther (PostgreSQL)", async function () {
    if (currentBackend() !== "postgres") {
      this.skip(); // several nodes share a PostgreSQL registry; an SQLite registry belongs to one node
    }
    const a = await startTestCloud({ radiusPort: 0 });
    let b: TestCloud | undefined;
    try {
      await a.cloud.services.addNasClient({ name: "ap-store", address: "127.0.0.1", secret: NAS_SECRET });
      await a.cloud.services.registerSecretDevice({ deviceId: "lamp-n1", secretHex: device.hex });
      b = await startTestCloud({ database: await backendDatabase(a.dataDir), masterKey: a.masterKey, radiusPort: 0 });
      const full = await run(a, ttls(a, "lamp-n1"));
      assert.ok(full.ok && !full.resumed, full.reason);
      const onB = await run(b, ttls(b, "lamp-n1", { session: full.session }));
      assert.ok(onB.ok, onB.reason);
      assert.equal(onB.resumed, true, "node b resumed node a's session by id");
      const ticketOnA = await run(a, ttls(a, "lamp-n1", { tickets: true }));
      const ticketOnB = await run(b, ttls(b, "lamp-n1", { tickets: true, session: ticketOnA.session }));
      assert.equal(ticketOnB.resumed, true, "and its ticket");
    } finally {
      await b?.stop();
      await a.stop();
    }
  });
});
