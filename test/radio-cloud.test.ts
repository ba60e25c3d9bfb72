/*
 * The simulated radio against the real reference cloud: the access point's
 * RADIUS client and the station's EAP peer talk to cloud/radius (started with
 * radiusPort 0, the AP registered as a NAS client). TTLS/PAP for a
 * shared-secret device and a temporary device, EAP-TLS for an RSA certificate
 * device, a wrong server name, a revoked device, an unregistered NAS, small
 * fragments both ways; then the MQTT link through the gate of the joined AP.
 */
import assert from "node:assert/strict";
import { createMqttLink } from "../hosts/node/mqtt-link";
import { SimulatedAir, SimulatedRadio, type SimulatedAccessPoint } from "../hosts/node/radio/index";
import { deriveHotspotPassword } from "../modules/derive";
import type { JoinRequest } from "../modules/ports";
import { digest, loginPassword, newSecret, startTestCloud, temporarySecret, type TestCloud } from "./cloud-helpers";
import { joinOnce } from "./radio-helpers";

const NAS_SECRET = "radio-sim-nas-secret";

describe("radio: simulated access points against the cloud's RADIUS server", function () {
  this.timeout(30_000);
  let t: TestCloud;
  const secretDevice = newSecret();
  let lotKeyHex: string;
  let certificate: { certificatePem: string; privateKeyPem: string };

  before(async () => {
    t = await startTestCloud({ radiusPort: 0 });
    const services = t.cloud.services;
    await services.addNasClient({ name: "sim-ap", address: "127.0.0.1", secret: NAS_SECRET });
    await services.registerSecretDevice({ deviceId: "lamp-s1", secretHex: secretDevice.hex });
    await services.registerSecretDevice({ deviceId: "lamp-revoked", secretHex: secretDevice.hex });
    await services.revokeDevice({ deviceId: "lamp-revoked" });
    lotKeyHex = (await services.createProvisioningKey({ lot: "lot-radio", allowlist: ["lamp-t1"] })).provisioningKeyHex;
    await services.createProductCa({ name: "lamps" });
    certificate = await services.issueDeviceCertificate({ caName: "lamps", deviceId: "lamp-c1", keyType: "rsa" });
    await services.registerCertificateDevice({ deviceId: "lamp-c1", caName: "lamps" });
  });
  after(async () => { await t?.stop(); });

  function hotspot(over: { secret?: string; internet?: "full" | "none" } = {}): { air: SimulatedAir; ap: SimulatedAccessPoint; radio: SimulatedRadio } {
    const air = new SimulatedAir();
    const ap = air.addAccessPoint({
      ssid: "ZipKey", security: "enterprise", roamingConsortium: ["5a03ba"], internet: over.internet ?? "full",
      radius: { host: "127.0.0.1", port: t.cloud.radiusPort!, secret: over.secret ?? NAS_SECRET, timeoutMs: 300, retries: 1 },
    });
    return { air, ap, radio: new SimulatedRadio(air) };
  }

  const server = () => ({ ca: t.cloud.serverCaPem, serverName: t.cloud.radiusServerName });
  const ttls = (id: string, password: string, over: Partial<Extract<JoinRequest, { method: "ttls-pap" }>> = {}): JoinRequest => ({
    security: "enterprise", method: "ttls-pap", ssid: "ZipKey", identity: id, anonymousIdentity: "anonymous@wcm", password, server: server(), ...over,
  });
  const hotspotPassword = (secret: Uint8Array, id: string) => deriveHotspotPassword(digest, secret, id);

  it("TTLS/PAP, shared-secret device: joined, MPPE keys match the station's MSK", async () => {
    const { ap, radio } = hotspot();
    const outcome = await joinOnce(radio, ttls("lamp-s1", hotspotPassword(secretDevice.bytes, "lamp-s1")));
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
    assert.equal(ap.eventsOf("4way-ok").length, 1);
    assert.equal(radio.joined?.ssid, "ZipKey");
  });

  it("TTLS/PAP, temporary device: password from the temporary secret", async () => {
    const { radio } = hotspot();
    const temporary = temporarySecret(lotKeyHex, "lamp-t1");
    const outcome = await joinOnce(radio, ttls("lamp-t1", hotspotPassword(temporary, "lamp-t1")));
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
  });

  it("EAP-TLS, RSA certificate device", async () => {
    const { radio } = hotspot();
    const outcome = await joinOnce(radio, {
      security: "enterprise", method: "tls", ssid: "ZipKey", identity: "lamp-c1",
      certificate: certificate.certificatePem, privateKey: certificate.privateKeyPem, server: server(),
    });
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
  });

  it("wrong server name → EAP-SERVER-UNTRUSTED; the inner password never leaves", async () => {
    const { radio } = hotspot();
    const rejects = t.cloud.radius!.stats.rejects;
    const outcome = await joinOnce(radio, ttls("lamp-s1", hotspotPassword(secretDevice.bytes, "lamp-s1"), { server: { ca: t.cloud.serverCaPem, serverName: "radius.example" } }));
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-SERVER-UNTRUSTED", JSON.stringify(outcome));
    assert.equal(t.cloud.radius!.stats.rejects, rejects);
  });

  it("revoked device → EAP-REJECTED with the Reply-Message", async () => {
    const { radio } = hotspot();
    const outcome = await joinOnce(radio, ttls("lamp-revoked", hotspotPassword(secretDevice.bytes, "lamp-revoked")));
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-REJECTED", JSON.stringify(outcome));
    if (outcome.kind === "failed") assert.match(outcome.failure.detail ?? "", /REVOKED/);
  });

  it("wrong hotspot password → EAP-REJECTED", async () => {
    const { radio } = hotspot();
    const outcome = await joinOnce(radio, ttls("lamp-s1", "not-the-derived-password"));
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-REJECTED", JSON.stringify(outcome));
  });

  it("AP with the wrong NAS secret → the server stays silent → EAP-TIMEOUT", async () => {
    const { ap, radio } = hotspot({ secret: "not-the-nas-secret" });
    const outcome = await joinOnce(radio, ttls("lamp-s1", hotspotPassword(secretDevice.bytes, "lamp-s1")));
    assert.equal(outcome.kind === "failed" && outcome.failure.reason, "EAP-TIMEOUT", JSON.stringify(outcome));
    assert.equal(ap.eventsOf("radius-retransmit").length, 1);
  });

  it("small fragments both ways (server fragment size 200, station 120)", async () => {
    const small = await startTestCloud({ radiusPort: 0, radius: { fragmentSize: 200 } });
    try {
      await small.cloud.services.addNasClient({ name: "sim-ap", address: "127.0.0.1", secret: NAS_SECRET });
      await small.cloud.services.createProductCa({ name: "lamps" });
      const cert = await small.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "lamp-c2", keyType: "rsa" });
      await small.cloud.services.registerCertificateDevice({ deviceId: "lamp-c2", caName: "lamps" });
      const air = new SimulatedAir();
      const ap = air.addAccessPoint({ ssid: "ZipKey", security: "enterprise", radius: { host: "127.0.0.1", port: small.cloud.radiusPort!, secret: NAS_SECRET, framedMtu: 250 } });
      const radio = new SimulatedRadio(air, { eapFragmentSize: 120 });
      const outcome = await joinOnce(radio, {
        security: "enterprise", method: "tls", ssid: "ZipKey", identity: "lamp-c2",
        certificate: cert.certificatePem, privateKey: cert.privateKeyPem, server: { ca: small.cloud.serverCaPem, serverName: small.cloud.radiusServerName },
      });
      assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
      const fromStation = ap.eventsOf("eap-from-station").map((e) => e.detail);
      const toStation = ap.eventsOf("eap-to-station").map((e) => e.detail);
      assert.ok(fromStation.some((d) => /^Response\/TLS 120B L M$/.test(d)), fromStation.join("\n"));
      assert.ok(toStation.some((d) => /^Request\/TLS 200B L M$/.test(d)), toStation.join("\n"));
      assert.ok(fromStation.includes("Response/TLS ACK"));
      assert.ok(toStation.includes("Request/TLS ACK"));
    } finally {
      await small.stop();
    }
  });

  it("joined behind an AP without internet: the MQTT link closes with INTERNET-NOT-REACHABLE; with internet it logs in", async () => {
    const connect = (radio: SimulatedRadio) => new Promise<{ ready: boolean; detail?: string }>((resolve) => {
      const link = createMqttLink({ gate: radio.gate, connectTimeoutMs: 5000 });
      let ready = false;
      link.connect({
        host: "127.0.0.1", port: t.cloud.mqttPort, clientId: "lamp-s1", username: "lamp-s1",
        password: loginPassword("lamp-s1", secretDevice.bytes, "s", Date.now()), keepAliveSeconds: 30,
        tls: { ca: t.cloud.serverCaPem, serverName: t.cloud.serverName },
      }, {
        onReady: () => { ready = true; link.close(); },
        onMessage: () => {},
        onClose: (info) => resolve({ ready, detail: info.detail }),
      });
    });
    const dead = hotspot({ internet: "none" });
    assert.equal((await joinOnce(dead.radio, ttls("lamp-s1", hotspotPassword(secretDevice.bytes, "lamp-s1")))).kind, "joined");
    const refused = await connect(dead.radio);
    assert.deepEqual(refused, { ready: false, detail: "INTERNET-NOT-REACHABLE: no internet behind ZipKey" });
    const live = hotspot();
    assert.equal((await joinOnce(live.radio, ttls("lamp-s1", hotspotPassword(secretDevice.bytes, "lamp-s1")))).kind, "joined");
    assert.equal((await connect(live.radio)).ready, true);
  });
});
