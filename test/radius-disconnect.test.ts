/*
 * Disconnect (RFC 5176) against the simulated access point, whose accounting
 * client and Dynamic Authorization server (hosts/node/radio/nas-services.ts)
 * are written from the RFCs apart from cloud/radius. A device joins (802.1X
 * through the real RADIUS server), the AP sends Accounting-Start, and:
 * revoking the device, its certificate, its CA or its lot sends a
 * Disconnect-Request to that AP, which deauthenticates the station (the radio
 * reports the loss) and sends Accounting-Stop (Admin-Reset); the outcome is
 * in the device's status. An AP that NAKs or stays silent: NAK with its
 * Error-Cause, or no answer after the retries. By hand: services, HTTP API.
 */
import { strict as assert } from "node:assert";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { SimulatedAir, SimulatedRadio, type SimulatedAccessPoint } from "../hosts/node/radio/index";
import { deriveHotspotPassword } from "../modules/derive";
import type { JoinRequest } from "../modules/ports";
import { digest, newSecret, startTestCloud, temporarySecret, type TestCloud } from "./cloud-helpers";
import { joinOnce } from "./radio-helpers";
import { runCli } from "../cloud/cli";

const NAS_SECRET = "disconnect-test-nas-secret";

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.bind(0, "127.0.0.1", () => {
      const port = socket.address().port;
      socket.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it holds (a generous bound: this is behaviour, not timing). */
async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("radius: Disconnect-Request (RFC 5176) to the simulated access point on revocation", function () {
  this.timeout(60_000);
  let t: TestCloud;
  let dasPort: number;
  const secret = newSecret();
  let lotKeyHex: string;
  const aps: SimulatedAccessPoint[] = [];

  before(async () => {
    dasPort = await freeUdpPort();
    t = await startTestCloud({ radiusPort: 0, httpPort: 0, radius: { accountingPort: 0, dynamicAuthorization: { port: dasPort, timeoutMs: 1000, retries: 3 } } });
    const services = t.cloud.services;
    await services.addNasClient({ name: "sim-ap", address: "127.0.0.1", secret: NAS_SECRET });
    for (const id of ["lamp-d1", "lamp-d2", "lamp-d3", "lamp-d4"]) await services.registerSecretDevice({ deviceId: id, secretHex: secret.hex });
    lotKeyHex = (await services.createProvisioningKey({ lot: "lot-d", allowlist: ["lamp-dt"] })).provisioningKeyHex;
    await services.createProductCa({ name: "lamps-d" });
  });
  after(async () => {
    for (const ap of aps) ap.close();
    await t?.stop();
  });

  async function hotspot(): Promise<{ ap: SimulatedAccessPoint; radio: SimulatedRadio }> {
    for (const old of aps.splice(0)) old.close(); // one AP on the Dynamic Authorization port at a time
    const air = new SimulatedAir();
    const ap = air.addAccessPoint({
      ssid: "ZipKey", security: "enterprise", internet: "full",
      radius: {
        host: "127.0.0.1", port: t.cloud.radiusPort!, secret: NAS_SECRET, timeoutMs: 1000, retries: 3,
        accountingPort: t.cloud.radius!.accountingPort, dynamicAuthorizationPort: dasPort,
      },
    });
    aps.push(ap);
    await ap.listen();
    return { ap, radio: new SimulatedRadio(air) };
  }
  const server = () => ({ ca: t.cloud.serverCaPem, serverName: t.cloud.radiusServerName });
  const ttls = (id: string, password: string): JoinRequest => ({
    security: "enterprise", method: "ttls-pap", ssid: "ZipKey", identity: id, anonymousIdentity: "anonymous@wcm", password, server: server(),
  });
  const live = async (id: string) => (await t.cloud.radius!.hotspots.liveSessions(id)).length;

  async function joined(id: string, request: JoinRequest) {
    const { ap, radio } = await hotspot();
    const outcome = await joinOnce(radio, request);
    assert.equal(outcome.kind, "joined", JSON.stringify(outcome));
    await eventually(`${id}'s accounting session is live`, async () => (await live(id)) === 1);
    return { ap, radio, outcome: outcome as Extract<typeof outcome, { kind: "joined" }> };
  }

  it("revokeDevice_DisconnectAckedByTheAp_StationLosesIt_StopAdminReset_OutcomeInStatus", async () => {
    const { ap, outcome } = await joined("lamp-d1", ttls("lamp-d1", deriveHotspotPassword(digest, secret.bytes, "lamp-d1")));
    await eventually("the AP got the Accounting-Response to its Start", () => ap.eventsOf("acct-answered").length === 1);
    assert.deepEqual(await t.cloud.radius!.liveSessionsPerNas(), { "sim-ap": 1 });
    await t.cloud.services.revokeDevice({ deviceId: "lamp-d1" });
    const lost = await outcome.lost;
    assert.match(JSON.stringify(lost), /deauthenticated|CONNECTION-LOST/);
    await eventually("the Stop arrived", async () => (await live("lamp-d1")) === 0);
    const view = await t.cloud.services.getDevice({ deviceId: "lamp-d1" });
    assert.equal(view.hotspot?.lastDisconnect?.outcome, "ack");
    assert.equal(view.hotspot?.lastDisconnect?.reason, "device revoked");
    assert.equal(view.hotspot?.session?.terminateCause, "Admin-Reset");
    assert.equal(ap.eventsOf("das-request").length, 1);
    assert.equal(t.cloud.radius!.stats.disconnects.ack, 1);
  });

  it("byHand_NakAndSilentAps_ReportedNakWithErrorCauseAndNoAnswerAfterRetries", async () => {
    const { ap } = await joined("lamp-d2", ttls("lamp-d2", deriveHotspotPassword(digest, secret.bytes, "lamp-d2")));
    ap.nasServices!.faults.nakAll = true;
    const nak = await t.cloud.services.disconnectDevice({ deviceId: "lamp-d2" });
    assert.equal(nak.sessions.length, 1);
    assert.equal(nak.sessions[0].outcome.kind, "nak");
    assert.equal((nak.sessions[0].outcome as { error?: string }).error, "Administratively-Prohibited");
    ap.nasServices!.faults.nakAll = false;
    ap.nasServices!.faults.silent = true;
    const silent = await t.cloud.services.disconnectDevice({ deviceId: "lamp-d2" });
    assert.equal(silent.sessions[0].outcome.kind, "no-answer");
    assert.equal(silent.sessions[0].outcome.attempts, 4, "the first transmission and three retries");
    assert.ok(ap.eventsOf("das-request").length >= 5, "one NAKed (retransmits of it NAKed again), four unanswered");
    assert.equal((await t.cloud.services.getDevice({ deviceId: "lamp-d2" })).hotspot?.lastDisconnect?.outcome, "no-answer");
    ap.nasServices!.faults.silent = false;
    const ack = await t.cloud.services.disconnectDevice({ deviceId: "lamp-d2" });
    assert.equal(ack.sessions[0].outcome.kind, "ack");
    await eventually("the Stop arrived", async () => (await live("lamp-d2")) === 0);
    const none = await t.cloud.services.disconnectDevice({ deviceId: "lamp-d2" });
    assert.deepEqual(none.sessions, [], "no live session: nothing sent");
  });

  it("aForgedDisconnect_WrongSecret_IsDiscardedByTheAp", async () => {
    const { ap } = await joined("lamp-d3", ttls("lamp-d3", deriveHotspotPassword(digest, secret.bytes, "lamp-d3")));
    const { DisconnectClient } = await import("../cloud/radius/dynamic-authorization");
    const forger = new DisconnectClient({ timeoutMs: 1000, retries: 0 });
    try {
      const outcome = await forger.disconnect({ nas: "sim-ap", secret: Buffer.from("guessed-wrong-secret"), address: "127.0.0.1", port: dasPort, userName: "lamp-d3" });
      assert.equal(outcome.kind, "no-answer");
    } finally {
      forger.close();
    }
    assert.equal(ap.eventsOf("das-discarded").length, 1);
    assert.equal(await live("lamp-d3"), 1, "still on the hotspot");
    await t.cloud.services.revokeDevice({ deviceId: "lamp-d3" });
    await eventually("revocation disconnects it", async () => (await live("lamp-d3")) === 0);
  });

  it("revokeCertificate_CaAndLot_DisconnectTheirDevices", async () => {
    const services = t.cloud.services;
    const cert = await services.issueDeviceCertificate({ caName: "lamps-d", deviceId: "lamp-dc", keyType: "ec" });
    await services.registerCertificateDevice({ deviceId: "lamp-dc", caName: "lamps-d" });
    const tlsJoin: JoinRequest = { security: "enterprise", method: "tls", ssid: "ZipKey", identity: "lamp-dc", certificate: cert.certificatePem, privateKey: cert.privateKeyPem, server: server() };
    await joined("lamp-dc", tlsJoin);
    await services.revokeCertificate({ caName: "lamps-d", serial: cert.serial });
    await eventually("certificate revocation disconnects it", async () => (await live("lamp-dc")) === 0);
    const cert2 = await services.issueDeviceCertificate({ caName: "lamps-d", deviceId: "lamp-dc", keyType: "ec" });
    await joined("lamp-dc", { ...tlsJoin, certificate: cert2.certificatePem, privateKey: cert2.privateKeyPem } as JoinRequest);
    await services.revokeProductCa({ name: "lamps-d" });
    await eventually("CA revocation disconnects it", async () => (await live("lamp-dc")) === 0);
    await joined("lamp-dt", ttls("lamp-dt", deriveHotspotPassword(digest, temporarySecret(lotKeyHex, "lamp-dt"), "lamp-dt")));
    await services.revokeLot({ lot: "lot-d" });
    await eventually("lot revocation disconnects it", async () => (await live("lamp-dt")) === 0);
    assert.equal((await services.getDevice({ deviceId: "lamp-dc" })).hotspot?.lastDisconnect?.outcome, "ack");
  });

  it("cli_DeviceDisconnect_AsksTheRunningServer_PrintsAckNakNoAnswer", async () => {
    const { ap } = await joined("lamp-d4", ttls("lamp-d4", deriveHotspotPassword(digest, secret.bytes, "lamp-d4")));
    const url = t.cloud.admin!.url;
    const token = readFileSync(join(t.dataDir, "admin-token"), "utf8").trim();
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(["device", "disconnect", ...args], { WCM_DATA: t.dataDir }, { out: (s) => void out.push(s), err: (s) => void err.push(s) });
      const text = `${out.join("\n")}\n${err.join("\n")}`;
      assert.ok(!text.includes(token), "the admin token is never printed");
      return { code, out: out.join("\n"), err: err.join("\n") };
    };
    ap.nasServices!.faults.nakAll = true;
    const nak = await cli("lamp-d4", "--admin-url", url);
    assert.equal(nak.code, 0, nak.err);
    assert.match(JSON.parse(nak.out).outcome[0], /^sim-ap 127\.0\.0\.1 [0-9A-F]+: NAK \(Administratively-Prohibited\) after \d+ transmissions?$/);
    ap.nasServices!.faults.nakAll = false;
    ap.nasServices!.faults.silent = true;
    const silent = await cli("lamp-d4", "--admin-url", url);
    assert.match(JSON.parse(silent.out).outcome[0], /: no answer after 4 transmissions$/);
    ap.nasServices!.faults.silent = false;
    const ack = await cli("lamp-d4", "--admin-url", url);
    const body = JSON.parse(ack.out);
    assert.equal(body.deviceId, "lamp-d4");
    assert.equal(body.sessions[0].outcome.kind, "ack");
    assert.match(body.outcome[0], /: ACK after 1 transmission$/);
    await eventually("the Stop arrived", async () => (await live("lamp-d4")) === 0);
    assert.deepEqual(JSON.parse((await cli("lamp-d4", "--admin-url", url)).out).outcome, ["no live hotspot session"]);
    // the audit log names the CLI's request (through the admin API)
    assert.ok((await t.cloud.registry.auditLog(20, "lamp-d4")).some((r) => r.action === "radius.disconnect"));
    // refusals: an unknown device (the API's error), a server that is not there, a bad URL
    const unknown = await cli("lamp-nobody", "--admin-url", url);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.err, /DEVICE_NOT_FOUND/);
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const port = (probe.address() as { port: number }).port;
        probe.close(() => resolve(port));
      });
    });
    const down = await cli("lamp-d4", "--admin-url", `http://127.0.0.1:${closed}`);
    assert.notEqual(down.code, 0);
    assert.match(down.err, /ADMIN_UNREACHABLE/);
    const bad = await cli("lamp-d4", "--admin-url", "ftp://user:pw@127.0.0.1/");
    assert.match(bad.err, /INVALID_INPUT: admin-url/);
  });
});
