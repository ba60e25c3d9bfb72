/*
 * TLS session resumption for EAP-TTLS and EAP-TLS (issue 14 item 1), in
 * process with the bench peer: by session id (what wpa_supplicant does by
 * default) and by ticket; fewer round trips; fresh MSK on every resumption;
 * the credential decision runs again on a resumed session (a revoked device
 * or certificate is refused, and its session forgotten); the store's bound
 * and lifetime; resumption off.
 */
import { strict as assert } from "node:assert";
import { authenticate, type PeerOptions, type PeerResult } from "../bench/radius-peer";
import { nodeDigest } from "../cloud/node-digest";
import { radiusIdentity, RADIUS_SERVER_NAME } from "../cloud/radius/identity";
import { RadiusServer, type RadiusServerOptions } from "../cloud/radius/server";
import { MemorySessionStore } from "../cloud/tls-sessions";
import { deriveHotspotPassword } from "../modules/derive";
import { newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "resume-test-shared-secret";
const FROM = { address: "127.0.0.1", port: 41002 };

describe("radius: TLS session resumption (EAP-TTLS and EAP-TLS)", function () {
  this.timeout(30_000);
  let t: TestCloud;
  let tls: { certPem: string; keyPem: string };
  const device = newSecret();

  before(async () => {
    t = await startTestCloud();
    tls = await radiusIdentity(t.cloud.registry);
    await t.cloud.services.addNasClient({ name: "ap-resume", address: "127.0.0.1", secret: NAS_SECRET });
    for (const id of ["lamp-r1", "lamp-r2", "lamp-r3", "lamp-r4", "lamp-rx"]) await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: device.hex });
    await t.cloud.services.createProductCa({ name: "lamps" });
  });
  after(async () => t?.stop());

  function server(options: Partial<RadiusServerOptions> = {}): RadiusServer {
    return new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, deviceRate: { burst: 1000, perSecond: 1000 }, ...options });
  }
  const ttls = (id: string, over: Partial<PeerOptions> = {}): PeerOptions => ({
    nasSecret: NAS_SECRET, method: "ttls", identity: id, password: deriveHotspotPassword(nodeDigest, device.bytes, id),
    caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, ...over,
  });
  async function certDevice(id: string): Promise<PeerOptions & { serial: string }> {
    const issued = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: id, keyType: "ec" });
    await t.cloud.services.registerCertificateDevice({ deviceId: id, caName: "lamps" });
    return {
      nasSecret: NAS_SECRET, method: "tls", identity: id, certPem: issued.certificatePem, keyPem: issued.privateKeyPem,
      caPem: t.cloud.serverCaPem, serverName: RADIUS_SERVER_NAME, serial: issued.serial,
    };
  }
  const run = (s: RadiusServer, options: PeerOptions): Promise<PeerResult> => authenticate((r) => s.handle(r, FROM), options);

  for (const tickets of [false, true]) {
    const how = tickets ? "ticket" : "session id";
    it(`ttls_ResumedBy${tickets ? "Ticket" : "SessionId"}_InnerLoginSkipped_FewerRoundTrips_FreshMskEachTime`, async () => {
      const s = server();
      const full = await run(s, ttls("lamp-r1", { tickets }));
      assert.ok(full.ok && !full.resumed, full.reason);
      const again = await run(s, ttls("lamp-r1", { tickets, session: full.session }));
      assert.ok(again.ok, again.reason);
      assert.equal(again.resumed, true, `resumed by ${how}`);
      assert.ok(again.roundTrips < full.roundTrips, `${again.roundTrips} round trips resumed, ${full.roundTrips} full`);
      const third = await run(s, ttls("lamp-r1", { tickets, session: again.session }));
      assert.equal(third.resumed, true);
      assert.notDeepEqual(again.msk, full.msk, "a fresh MSK on resumption");
      assert.notDeepEqual(third.msk, again.msk, "and on the next one");
      assert.deepEqual(third.mppe!.recv, third.msk!.subarray(0, 32));
      assert.equal(s.stats.tlsResumed, 2);
      assert.equal(s.stats.tlsFull, 1);
      // a peer that sends its inner login on a resumed session too gets it checked: a wrong password is refused
      const wrong = await run(s, ttls("lamp-r1", { tickets, session: full.session, password: "not-the-password", innerOnResume: true }));
      assert.equal(wrong.reason, "BAD_PROOF");
    });
  }

  it("ttls_RevokedDeviceOrReplacedSecretOnAResumedSession_Refused (no inner login on resumption)", async () => {
    const s = server();
    const full = await run(s, ttls("lamp-rx"));
    assert.ok(full.ok, full.reason);
    await t.cloud.services.revokeDevice({ deviceId: "lamp-rx" });
    const resumed = await run(s, ttls("lamp-rx", { session: full.session }));
    assert.equal(resumed.reason, "REVOKED");
    assert.equal(s.stats.accepts, 1);
    // a secret rotated and committed since the full handshake: the resumed session proved the old one
    const first = await run(s, ttls("lamp-r3"));
    assert.ok(first.ok);
    await t.cloud.services.rotateSecret({ deviceId: "lamp-r3" });
    const rotated = (await t.cloud.registry.device("lamp-r3"))!;
    assert.ok((await t.cloud.registry.commitPending("lamp-r3", rotated.pending_generation!, "test")));
    const stale = await run(s, ttls("lamp-r3", { session: first.session }));
    assert.equal(stale.reason, "BAD_PROOF");
  });

  for (const tickets of [false, true]) {
    it(`eapTls_RevokedCertificateOnAResumedSession_Refused (${tickets ? "ticket" : "session id"}), session forgotten`, async () => {
      const s = server();
      const peer = await certDevice(tickets ? "lamp-rct" : "lamp-rc");
      const full = await run(s, { ...peer, tickets });
      assert.ok(full.ok && !full.resumed, full.reason);
      const resumed = await run(s, { ...peer, tickets, session: full.session });
      assert.ok(resumed.ok, resumed.reason);
      assert.equal(resumed.resumed, true, `resumed by ${tickets ? "ticket" : "session id"} (${resumed.roundTrips} vs ${full.roundTrips} round trips)`);
      // a ticket carries the client certificate: the ClientHello that returns it (about 1.1 KB) takes a fragment more
      if (tickets) assert.ok(resumed.roundTrips <= full.roundTrips);
      else assert.ok(resumed.roundTrips < full.roundTrips, `${resumed.roundTrips} vs ${full.roundTrips}`);
      assert.notDeepEqual(resumed.msk, full.msk);
      await t.cloud.services.revokeCertificate({ caName: "lamps", serial: peer.serial });
      const refused = await run(s, { ...peer, tickets, session: full.session });
      assert.equal(refused.reason, "CERT_REVOKED", "the certificate of a resumed session is checked again");
      assert.equal(s.stats.tlsResumed, 1);
      // forgotten (session id; a ticket is stateless and is refused by the same check each time)
      const after = await run(s, { ...peer, tickets, session: full.session });
      assert.equal(after.reason, "CERT_REVOKED");
      if (!tickets) assert.match(after.alert ?? "", /certificate revoked/, "a full handshake this time: the alert in the clear");
    });
  }

  it("store_BoundAndLifetime_OldestEvictedAndExpiredSessionsGetAFullHandshake", async () => {
    let clock = 1_000_000;
    // each TTLS session takes two entries: the session by id and its binding
    const s = server({ tlsSessions: { store: new MemorySessionStore(4, () => clock), lifetimeS: 60 } });
    const first = await run(s, ttls("lamp-r1"));
    const second = await run(s, ttls("lamp-r2"));
    assert.equal((await run(s, ttls("lamp-r2", { session: second.session }))).resumed, true, "two sessions fit");
    assert.ok((await run(s, ttls("lamp-r4"))).ok); // evicts lamp-r1's session
    const evicted = await run(s, ttls("lamp-r1", { session: first.session }));
    assert.ok(evicted.ok);
    assert.equal(evicted.resumed, false, "evicted: a full handshake");
    const fresh = await run(s, ttls("lamp-r2"));
    clock += 61_000;
    const expired = await run(s, ttls("lamp-r2", { session: fresh.session }));
    assert.ok(expired.ok);
    assert.equal(expired.resumed, false, "past the lifetime: a full handshake");
  });

  it("resumptionOff_EveryAuthenticationIsAFullHandshake", async () => {
    const s = server({ tlsSessions: { enabled: false } });
    const full = await run(s, ttls("lamp-r1", { tickets: true }));
    const again = await run(s, ttls("lamp-r1", { tickets: true, session: full.session }));
    assert.ok(again.ok);
    assert.equal(again.resumed, false);
    assert.equal(s.tlsSessionStore, undefined);
  });
});
