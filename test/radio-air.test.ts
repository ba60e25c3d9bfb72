/*
 * The simulated air, access points and radio: scan, open / PSK joins, the
 * AP's RADIUS client (NAS) against an in-test UDP RADIUS server (attributes,
 * Message-Authenticator, retransmission, bad answers discarded, MPPE keys vs
 * MSK), each failure reason, scripted faults (out of range now and later,
 * deauthentication, dropped RADIUS, silent DHCP), and the reachability gate
 * with the MQTT link (no internet, walled garden) against the real cloud.
 */
import assert from "node:assert/strict";
import type { JoinRequest } from "../modules/ports";
import { createMqttLink } from "../hosts/node/mqtt-link";
import { SimulatedAir, SimulatedRadio, type AccessPointConfig } from "../hosts/node/radio/index";
import { RADIUS_ATTR } from "../hosts/node/radio/radius-codec";
import { EAP_TYPE } from "../hosts/node/radio/eap";
import { TestRadiusServer, joinOnce, radioPki, type RadioPki, type TestRadiusOptions } from "./radio-helpers";
import { startTestCloud, type TestCloud } from "./cloud-helpers";

const SECRET = "nas-shared-secret";

describe("radio: simulated air, access points and radio", function () {
  this.timeout(30_000);
  let pki: RadioPki;
  let servers: TestRadiusServer[] = [];
  before(async () => { pki = await radioPki(); });
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  async function radius(over: Partial<TestRadiusOptions> = {}): Promise<TestRadiusServer> {
    const server = await TestRadiusServer.start({
      method: "ttls", certPem: pki.server.certPem, keyPem: pki.server.keyPem, clientCa: pki.productCaPem, secret: SECRET,
      checkPassword: (user, password) => (user === "dev-1" && password === "hotspot-password" ? undefined : "Device dev-1 refused: bad credentials"),
      ...over,
    });
    servers.push(server);
    return server;
  }

  function enterpriseAp(air: SimulatedAir, server: TestRadiusServer, over: Partial<AccessPointConfig> = {}) {
    return air.addAccessPoint({
      ssid: "ZipKey", security: "enterprise", roamingConsortium: ["5a03ba"],
      radius: { host: "127.0.0.1", port: server.port, secret: SECRET, timeoutMs: 150, retries: 2 }, ...over,
    });
  }

  const ttlsRequest = (over: Partial<Extract<JoinRequest, { method: "ttls-pap" }>> = {}): JoinRequest => ({
    security: "enterprise", method: "ttls-pap", ssid: "ZipKey", identity: "dev-1", anonymousIdentity: "anonymous@wcm",
    password: "hotspot-password", server: { ca: pki.caPem, serverName: "radius.localhost" }, ...over,
  });

  it("scan: hears APs in range with their advertised fields", async () => {
    const air = new SimulatedAir();
    air.addAccessPoint({ ssid: "Home", bssid: "AA:BB:CC:00:00:01", channel: 11, rssi: -40, security: "psk", password: "correct horse" });
    const far = air.addAccessPoint({ ssid: "Cafe", security: "open" });
    air.addAccessPoint({ ssid: "ZipKey", security: "enterprise", roamingConsortium: ["5a03ba"], radius: { host: "127.0.0.1", port: 1, secret: "x" } });
    far.goOutOfRange();
    const results = await new Promise<unknown[]>((resolve) => new SimulatedRadio(air).scan(resolve));
    assert.deepEqual(results.map((r) => (r as { ssid: string }).ssid), ["Home", "ZipKey"]);
    assert.deepEqual(results[0], { ssid: "Home", bssid: "aa:bb:cc:00:00:01", rssi: -40, channel: 11, security: "psk" });
    assert.deepEqual((results[1] as { roamingConsortium: string[] }).roamingConsortium, ["5a03ba"]);
  });

  it("join open and PSK: joined with an address; wrong password → INCORRECT-PASSWORD; absent → NETWORK-NOT-FOUND", async () => {
    const air = new SimulatedAir();
    air.addAccessPoint({ ssid: "Cafe", security: "open" });
    const home = air.addAccessPoint({ ssid: "Home", security: "psk", password: "correct horse" });
    const radio = new SimulatedRadio(air);
    const open = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    assert.equal(open.kind, "joined");
    const psk = await joinOnce(radio, { security: "psk", ssid: "Home", password: "correct horse" });
    assert.equal(psk.kind, "joined");
    if (psk.kind === "joined") assert.match(psk.ip, /^10\.\d+\.\d+\.\d+$/);
    const wrong = await joinOnce(radio, { security: "psk", ssid: "Home", password: "battery staple" });
    assert.deepEqual(wrong.kind === "failed" && wrong.failure.reason, "INCORRECT-PASSWORD");
    assert.equal(home.eventsOf("4way-failed").length, 1);
    const absent = await joinOnce(radio, { security: "open", ssid: "Nowhere" });
    assert.deepEqual(absent.kind === "failed" && absent.failure.reason, "NETWORK-NOT-FOUND");
    const mismatch = await joinOnce(radio, { security: "open", ssid: "Home" });
    assert.deepEqual(mismatch.kind === "failed" && mismatch.failure.reason, "ASSOCIATION-FAILED");
  });

  it("the strongest AP of an SSID is chosen; bssid pins one", async () => {
    const air = new SimulatedAir();
    air.addAccessPoint({ ssid: "Mesh", bssid: "02:00:00:00:10:01", rssi: -80, security: "open" });
    air.addAccessPoint({ ssid: "Mesh", bssid: "02:00:00:00:10:02", rssi: -50, security: "open" });
    const radio = new SimulatedRadio(air);
    const best = await joinOnce(radio, { security: "open", ssid: "Mesh" });
    assert.equal(best.kind === "joined" && best.bssid, "02:00:00:00:10:02");
    const pinned = await joinOnce(radio, { security: "open", ssid: "Mesh", bssid: "02:00:00:00:10:01" });
    assert.equal(pinned.kind === "joined" && pinned.bssid, "02:00:00:00:10:01");
  });

  it("enterprise TTLS/PAP through the AP's RADIUS client: joined; the Access-Request carries what an 802.1X NAS sends", async () => {
    const server = await radius();
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server, { bssid: "02:aa:bb:cc:dd:ee" });
    const radio = new SimulatedRadio(air, { mac: "02:11:22:33:44:55" });
    const outcome = await joinOnce(radio, ttlsRequest());
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
    assert.equal(ap.eventsOf("4way-ok").length, 1);
    const first = server.requestsSeen[0];
    const text = (type: number) => Buffer.from(first.find((a) => a.type === type)!.value).toString();
    assert.equal(text(RADIUS_ATTR.userName), "anonymous@wcm");
    assert.equal(text(RADIUS_ATTR.calledStationId), "02-AA-BB-CC-DD-EE:ZipKey");
    assert.equal(text(RADIUS_ATTR.callingStationId), "02-11-22-33-44-55");
    assert.equal(text(RADIUS_ATTR.nasIdentifier), "wcm-sim-02aabbccddee");
    assert.equal(Buffer.from(first.find((a) => a.type === RADIUS_ATTR.nasPortType)!.value).readUInt32BE(0), 19);
    assert.equal(Buffer.from(first.find((a) => a.type === RADIUS_ATTR.framedMtu)!.value).readUInt32BE(0), 1400);
    assert.ok(first.some((a) => a.type === RADIUS_ATTR.messageAuthenticator));
    // every later request echoes the State of the challenge before it
    assert.ok(server.requestsSeen.slice(1).every((attrs) => attrs.some((a) => a.type === RADIUS_ATTR.state)));
    // EAP-Message attributes are at most 253 bytes, several per request when the EAP packet is larger
    assert.ok(server.requestsSeen.some((attrs) => attrs.filter((a) => a.type === RADIUS_ATTR.eapMessage).length > 1));
    assert.ok(ap.events.some((e) => e.kind === "eap-to-station" && e.detail === "Request/Identity"));
    assert.ok(ap.events.some((e) => e.kind === "radius-answer" && e.detail.startsWith("Access-Accept")));
  });

  it("enterprise EAP-TLS with an RSA certificate; small fragments both ways", async () => {
    const server = await radius({ method: "tls", fragmentSize: 100 });
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server, { radius: { host: "127.0.0.1", port: server.port, secret: SECRET, framedMtu: 200 } });
    const radio = new SimulatedRadio(air, { eapFragmentSize: 100 });
    const outcome = await joinOnce(radio, {
      security: "enterprise", method: "tls", ssid: "ZipKey", identity: "dev-rsa",
      certificate: pki.rsaDevice.certPem, privateKey: pki.rsaDevice.keyPem, server: { ca: pki.caPem, serverName: "radius.localhost" },
    });
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
    assert.ok(ap.events.filter((e) => e.kind === "eap-from-station" && / M$/.test(e.detail)).length > 5);
    assert.ok(ap.events.some((e) => e.kind === "eap-from-station" && e.detail === "Response/TLS ACK"));
    assert.equal(EAP_TYPE.tls, 13);
  });

  it("Access-Reject → EAP-REJECTED with the Reply-Message", async () => {
    const server = await radius();
    const air = new SimulatedAir();
    enterpriseAp(air, server);
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest({ password: "wrong" }));
    assert.deepEqual(outcome.kind === "failed" && outcome.failure, { reason: "EAP-REJECTED", detail: "Device dev-1 refused: bad credentials" });
  });

  it("wrong server name → EAP-SERVER-UNTRUSTED, no Access-Accept", async () => {
    const server = await radius();
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server);
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest({ server: { ca: pki.caPem, serverName: "radius.example" } }));
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-SERVER-UNTRUSTED");
    assert.ok(!ap.events.some((e) => e.detail.startsWith("Access-Accept")));
  });

  it("RADIUS server silent → retransmits, then EAP-TIMEOUT", async () => {
    const server = await radius({ silent: true });
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server);
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest());
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-TIMEOUT");
    assert.equal(ap.eventsOf("radius-retransmit").length, 2);
    assert.equal(server.requests, 3);
  });

  it("AP drops its RADIUS traffic → EAP-TIMEOUT, nothing reaches the server", async () => {
    const server = await radius();
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server);
    ap.faults.dropRadius = true;
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest());
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-TIMEOUT");
    assert.equal(ap.eventsOf("radius-dropped").length, 3);
    assert.equal(server.requests, 0);
  });

  it("RADIUS server down (nothing listens) → EAP-TIMEOUT; the radio's own 802.1X deadline too", async () => {
    const closed = await radius();
    const port = closed.port;
    await closed.close();
    servers = servers.filter((s) => s !== closed);
    const air = new SimulatedAir();
    air.addAccessPoint({ ssid: "ZipKey", security: "enterprise", radius: { host: "127.0.0.1", port, secret: SECRET, timeoutMs: 100, retries: 1 } });
    const down = await joinOnce(new SimulatedRadio(air), ttlsRequest());
    assert.equal(down.kind === "failed" && down.failure.reason, "EAP-TIMEOUT");
    const slow = new SimulatedAir();
    slow.addAccessPoint({ ssid: "ZipKey", security: "enterprise", radius: { host: "127.0.0.1", port, secret: SECRET, timeoutMs: 5000 } });
    const deadline = await joinOnce(new SimulatedRadio(slow, { eapTimeoutMs: 150 }), ttlsRequest());
    assert.deepEqual(deadline.kind === "failed" && deadline.failure, { reason: "EAP-TIMEOUT", detail: "802.1X did not finish in 150 ms" });
  });

  it("answers signed with another secret are discarded → EAP-TIMEOUT", async () => {
    const server = await radius({ answerSecret: "not-the-secret" });
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server);
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest());
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-TIMEOUT");
    assert.ok(ap.eventsOf("radius-discarded").some((e) => e.detail === "bad Response Authenticator"));
  });

  it("MPPE keys that are not the station's MSK → ASSOCIATION-FAILED (4-way handshake)", async () => {
    const server = await radius({ wrongKeys: true });
    const air = new SimulatedAir();
    const ap = enterpriseAp(air, server);
    const outcome = await joinOnce(new SimulatedRadio(air), ttlsRequest());
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "ASSOCIATION-FAILED");
    assert.equal(ap.eventsOf("4way-failed").length, 1);
  });

  it("out of range now, later, and deauthentication → onLost CONNECTION-LOST", async () => {
    const air = new SimulatedAir();
    const cafe = air.addAccessPoint({ ssid: "Cafe", security: "open" });
    const radio = new SimulatedRadio(air);
    const now = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    assert.equal(now.kind, "joined");
    if (now.kind !== "joined") return;
    cafe.goOutOfRange();
    assert.deepEqual(await now.lost, { reason: "CONNECTION-LOST", detail: "Cafe out of range" });
    assert.equal(radio.joined, undefined);
    const gone = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    assert.equal(gone.kind === "failed" && gone.failure.reason, "NETWORK-NOT-FOUND");

    cafe.comeIntoRange();
    const later = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    assert.equal(later.kind, "joined");
    if (later.kind !== "joined") return;
    const started = Date.now();
    cafe.goOutOfRange(100);
    assert.equal((await later.lost).reason, "CONNECTION-LOST");
    assert.ok(Date.now() - started >= 90);

    cafe.comeIntoRange();
    const third = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    if (third.kind !== "joined") return assert.fail("not joined");
    cafe.deauthenticate();
    assert.equal((await third.lost).detail, "deauthenticated by Cafe");
  });

  it("leave(): no callbacks follow, the AP sees the station go", async () => {
    const air = new SimulatedAir();
    const cafe = air.addAccessPoint({ ssid: "Cafe", security: "open" });
    const radio = new SimulatedRadio(air);
    const joined = await joinOnce(radio, { security: "open", ssid: "Cafe" });
    assert.equal(joined.kind, "joined");
    radio.leave();
    let called = false;
    if (joined.kind === "joined") void joined.lost.then(() => { called = true; });
    cafe.goOutOfRange();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(called, false);
    assert.equal(cafe.eventsOf("disassociate").length, 1);
    // a join superseded by another join or a leave reports nothing
    let reported = false;
    cafe.comeIntoRange();
    radio.join({ security: "open", ssid: "Cafe" }, { onJoined: () => { reported = true; }, onFailed: () => { reported = true; }, onLost: () => {} });
    radio.leave();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(reported, false);
  });

  it("DHCP silent → DHCP-TIMEOUT", async () => {
    const air = new SimulatedAir();
    const cafe = air.addAccessPoint({ ssid: "Cafe", security: "open" });
    cafe.faults.dhcpSilent = true;
    const outcome = await joinOnce(new SimulatedRadio(air, { dhcpTimeoutMs: 50 }), { security: "open", ssid: "Cafe" });
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "DHCP-TIMEOUT");
  });

  describe("reachability gate and the MQTT link", () => {
    let cloud: TestCloud;
    before(async () => { cloud = await startTestCloud(); });
    after(async () => { await cloud.stop(); });

    /** Connects a gated link (with no valid login: a CONNACK refusal proves the broker was reached). */
    function connectThrough(radio: SimulatedRadio, port = cloud.cloud.mqttPort): Promise<{ connackCode?: number; detail: string }> {
      return new Promise((resolve) => {
        const link = createMqttLink({ gate: radio.gate, connectTimeoutMs: 5000 });
        link.connect({
          host: "127.0.0.1", port, clientId: "nobody", username: "nobody", password: "x", keepAliveSeconds: 30,
          tls: { ca: cloud.cloud.serverCaPem, serverName: cloud.cloud.serverName },
        }, { onReady: () => link.close(), onMessage: () => {}, onClose: resolve });
      });
    }

    it("not joined, or no internet behind the AP → INTERNET-NOT-REACHABLE without touching the network", async () => {
      const air = new SimulatedAir();
      air.addAccessPoint({ ssid: "Dead", security: "open", internet: "none" });
      const radio = new SimulatedRadio(air);
      const before = cloud.cloud.mqtt;
      const unjoined = await connectThrough(radio);
      assert.match(unjoined.detail, /^INTERNET-NOT-REACHABLE: not joined/);
      assert.equal((await joinOnce(radio, { security: "open", ssid: "Dead" })).kind, "joined");
      const closed = await connectThrough(radio);
      assert.deepEqual(closed, { detail: "INTERNET-NOT-REACHABLE: no internet behind Dead" });
      assert.ok(before);
    });

    it("walled garden: the cloud's host:port only", async () => {
      const air = new SimulatedAir();
      air.addAccessPoint({ ssid: "Garden", security: "open", internet: "walled-garden", walledGarden: [{ host: "127.0.0.1", port: cloud.cloud.mqttPort }] });
      const radio = new SimulatedRadio(air);
      assert.equal((await joinOnce(radio, { security: "open", ssid: "Garden" })).kind, "joined");
      const toCloud = await connectThrough(radio);
      assert.ok(!toCloud.detail.startsWith("INTERNET-NOT-REACHABLE"), toCloud.detail);
      assert.ok(toCloud.connackCode !== undefined, `reached the broker: ${JSON.stringify(toCloud)}`);
      const elsewhere = await connectThrough(radio, 1883);
      assert.match(elsewhere.detail, /^INTERNET-NOT-REACHABLE: 127\.0\.0\.1:1883 is outside the walled garden of Garden/);
      assert.deepEqual(radio.gate("example.com", 443), { reachable: false, detail: "example.com:443 is outside the walled garden of Garden" });
    });
  });
});
