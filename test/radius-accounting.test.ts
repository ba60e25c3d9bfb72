/*
 * RADIUS accounting (RFC 2866) and Disconnect (RFC 5176), issue 14 items 2
 * and 3. In process: Accounting-Requests signed as a NAS signs them; a wrong
 * authenticator or an unknown NAS gets no answer and changes nothing; Start /
 * Interim-Update / Stop show in the device's status; retransmits and repeats
 * are idempotent; Accounting-On ends a NAS's sessions; live sessions per NAS.
 * Then with real sockets: the simulated access point (hosts/node/radio,
 * an independent implementation of RFC 2866's client and RFC 5176's server)
 * sends accounting, and revoking the device (or its certificate, CA, lot)
 * sends it a Disconnect-Request: ACK, NAK, no answer, with retries; the API
 * and CLI disconnect by hand; radclient (freeradius-utils) as a stock NAS
 * sends accounting.
 */
import { strict as assert } from "node:assert";
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { signAccountingRequest } from "../cloud/radius/accounting";
import { nodeDigest } from "../cloud/node-digest";
import { radiusIdentity } from "../cloud/radius/identity";
import { ATTR, RADIUS_CODE, decodePacket, responseAuthenticator } from "../cloud/radius/packet";
import { RadiusServer, type RadiusServerOptions } from "../cloud/radius/server";
import { MemoryHotspotStore } from "../cloud/radius/session-store";
import { newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

const NAS_SECRET = "accounting-test-shared-secret";
const SECRET = Buffer.from(NAS_SECRET);
const FROM = { address: "127.0.0.1", port: 41003 };

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function acct(id: number, status: number, fields: { user?: string; session?: string; delay?: number; cause?: number; time?: number; called?: string } = {}, secret = SECRET): Buffer {
  return signAccountingRequest(id, secret, [
    { type: ATTR.acctStatusType, value: u32(status) },
    ...(fields.user !== undefined ? [{ type: ATTR.userName, value: Buffer.from(fields.user) }] : []),
    ...(fields.session !== undefined ? [{ type: ATTR.acctSessionId, value: Buffer.from(fields.session) }] : []),
    { type: ATTR.nasIpAddress, value: Buffer.from([127, 0, 0, 1]) },
    { type: ATTR.calledStationId, value: Buffer.from(fields.called ?? "02-00-00-00-00-AA:ZipKey") },
    { type: ATTR.callingStationId, value: Buffer.from("02-00-00-00-00-01") },
    ...(fields.delay !== undefined ? [{ type: ATTR.acctDelayTime, value: u32(fields.delay) }] : []),
    ...(fields.cause !== undefined ? [{ type: ATTR.acctTerminateCause, value: u32(fields.cause) }] : []),
    ...(fields.time !== undefined ? [{ type: ATTR.acctSessionTime, value: u32(fields.time) }] : []),
  ]);
}

describe("radius: accounting (RFC 2866), in process", function () {
  this.timeout(30_000);
  let t: TestCloud;
  let tls: { certPem: string; keyPem: string };

  before(async () => {
    t = await startTestCloud();
    tls = await radiusIdentity(t.cloud.registry);
    await t.cloud.services.addNasClient({ name: "ap-acct", address: "127.0.0.1", secret: NAS_SECRET });
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-a1", secretHex: newSecret().hex });
  });
  after(async () => t?.stop());

  function server(options: Partial<RadiusServerOptions> = {}): RadiusServer {
    return new RadiusServer({ registry: t.cloud.registry, digest: nodeDigest, certPem: tls.certPem, keyPem: tls.keyPem, ...options });
  }
  async function send(s: RadiusServer, request: Buffer): Promise<Buffer | undefined> {
    return s.handle(request, FROM, "accounting");
  }
  function assertResponse(response: Buffer | undefined, request: Buffer): void {
    assert.ok(response, "an Accounting-Response");
    const packet = decodePacket(response);
    assert.equal(packet.code, RADIUS_CODE.accountingResponse);
    assert.equal(packet.identifier, request[1]);
    assert.deepEqual(responseAuthenticator(packet.raw, request.subarray(4, 20), SECRET), packet.authenticator);
  }

  it("startInterimStop_ShownInTheDeviceStatus_LivePerNas", async () => {
    const s = server();
    const start = acct(1, 1, { user: "lamp-a1", session: "S-1" });
    assertResponse(await send(s, start), start);
    assert.deepEqual(await s.liveSessionsPerNas(), { "ap-acct": 1 });
    assert.deepEqual(s.stats.liveSessionsPerNas, { "ap-acct": 1 });
    let status = (await s.hotspots.status("lamp-a1"))!;
    assert.equal(status.session?.nas, "ap-acct");
    assert.equal(status.session?.ssid, "ZipKey");
    assert.equal(status.session?.nasAddress, "127.0.0.1");
    assert.equal(status.session?.stoppedAt, undefined);
    const interim = acct(2, 3, { user: "lamp-a1", session: "S-1", time: 60 });
    assertResponse(await send(s, interim), interim);
    status = (await s.hotspots.status("lamp-a1"))!;
    assert.ok(status.session?.lastInterimAt);
    assert.equal(status.session?.sessionTimeS, 60);
    const stop = acct(3, 2, { user: "lamp-a1", session: "S-1", cause: 5, time: 120 });
    assertResponse(await send(s, stop), stop);
    status = (await s.hotspots.status("lamp-a1"))!;
    assert.equal(status.session?.terminateCause, "Session-Timeout");
    assert.ok(status.session?.stoppedAt);
    assert.deepEqual(await s.liveSessionsPerNas(), {});
    assert.deepEqual(s.stats.accounting, { start: 1, interim: 1, stop: 1, nasRestart: 0, duplicate: 0, ignored: 0, dropped: 0 });
    const view = await t.cloud.services.getDevice({ deviceId: "lamp-a1" });
    void view; // the test cloud runs no RADIUS server; the cloud test below checks the API view
  });

  it("idempotent_RetransmitAnsweredFromCache_RepeatedStopWithNewDelayChangesNothing", async () => {
    const s = server();
    const start = acct(10, 1, { user: "lamp-a1", session: "S-2" });
    const first = await send(s, start);
    const again = await send(s, start);
    assert.deepEqual(again, first, "the same answer for the same bytes");
    // RFC 2866 section 5.2: a retransmit with an updated Acct-Delay-Time is a new packet (new id); it must change nothing
    const later = acct(11, 1, { user: "lamp-a1", session: "S-2", delay: 3 });
    assertResponse(await send(s, later), later);
    const stop = acct(12, 2, { user: "lamp-a1", session: "S-2", cause: 1 });
    await send(s, stop);
    const stopAgain = acct(13, 2, { user: "lamp-a1", session: "S-2", cause: 1, delay: 2 });
    assertResponse(await send(s, stopAgain), stopAgain);
    const late = acct(14, 3, { user: "lamp-a1", session: "S-2", time: 30 });
    assertResponse(await send(s, late), late);
    assert.equal(s.stats.accounting.start, 1);
    assert.equal(s.stats.accounting.stop, 1);
    assert.equal(s.stats.accounting.duplicate, 4, "cache resend + repeated start + repeated stop + interim after the stop");
    assert.equal((await s.hotspots.status("lamp-a1"))!.session?.terminateCause, "User-Request");
    assert.deepEqual(await s.liveSessionsPerNas(), {});
  });

  it("attacker_WrongSecretOrUnknownNasOrAuthListener_NoAnswerNothingRecorded", async () => {
    const store = new MemoryHotspotStore();
    const s = server({ hotspots: store });
    assert.equal(await send(s, acct(20, 1, { user: "lamp-a1", session: "S-X" }, Buffer.from("not-the-shared-secret"))), undefined);
    const tampered = acct(21, 1, { user: "lamp-a1", session: "S-X" });
    tampered[tampered.length - 1] ^= 1;
    assert.equal(await send(s, tampered), undefined);
    assert.equal(await s.handle(acct(22, 1, { user: "lamp-a1", session: "S-X" }), { address: "127.0.0.9", port: 1 }, "accounting"), undefined);
    assert.equal(await s.handle(acct(23, 1, { user: "lamp-a1", session: "S-X" }), FROM, "auth"), undefined, "accounting on the authentication port: dropped");
    assert.equal(await send(s, acct(24, 1, { user: "lamp-a1" })), undefined, "no Acct-Session-Id: discarded");
    assert.equal(await store.status("lamp-a1"), undefined);
    assert.deepEqual(await store.livePerNas(), {});
    assert.ok(s.stats.badAuthenticator >= 2);
  });

  it("accountingOn_EndsEveryLiveSessionOfTheNas; a non-device User-Name is answered and ignored", async () => {
    const s = server();
    await send(s, acct(30, 1, { user: "lamp-a1", session: "S-3" }));
    const other = acct(31, 1, { user: "someone@example.com", session: "S-4" });
    assertResponse(await send(s, other), other);
    assert.equal(s.stats.accounting.ignored, 1);
    assert.deepEqual(await s.liveSessionsPerNas(), { "ap-acct": 1 });
    const on = acct(32, 7);
    assertResponse(await send(s, on), on);
    assert.deepEqual(await s.liveSessionsPerNas(), {});
    assert.equal((await s.hotspots.status("lamp-a1"))!.session?.terminateCause, "NAS-Reboot");
  });

  it("storeFails_NoResponse_SoTheNasRetries", async () => {
    const store = new MemoryHotspotStore();
    store.account = async () => {
      throw new Error("store down");
    };
    const s = server({ hotspots: store });
    assert.equal(await send(s, acct(40, 1, { user: "lamp-a1", session: "S-5" })), undefined);
    assert.equal(s.stats.accounting.dropped, 1);
  });
});

function has(binary: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("radius: accounting from radclient (freeradius-utils) as a stock NAS", function () {
  this.timeout(30_000);
  let t: TestCloud;

  before(async function () {
    if (!has("radclient")) {
      console.log("      radclient not installed (apt-get install freeradius-utils): skipping");
      this.skip();
    }
    t = await startTestCloud({ radiusPort: 0, radius: { accountingPort: 0 } });
    await t.cloud.services.addNasClient({ name: "ap-radclient", address: "127.0.0.1", secret: NAS_SECRET });
    await t.cloud.services.registerSecretDevice({ deviceId: "lamp-rc1", secretHex: newSecret().hex });
  });
  after(async () => t?.stop());

  function radclient(input: string): Promise<{ code: number; output: string }> {
    return new Promise((resolve) => {
      const child = execFile("radclient", ["-x", "-r", "3", "-t", "5", `127.0.0.1:${t.cloud.radius!.accountingPort}`, "acct", NAS_SECRET], (error, stdout, stderr) => {
        resolve({ code: error ? 1 : 0, output: `${stdout}${stderr}` });
      });
      child.stdin!.end(input);
    });
  }

  it("Start, Interim-Update and Stop are acknowledged and shown by GET-device's hotspot status", async () => {
    const session = randomBytes(4).toString("hex");
    const common = `User-Name = "lamp-rc1"\nAcct-Session-Id = "${session}"\nNAS-IP-Address = 127.0.0.1\nCalled-Station-Id = "02-00-00-00-00-BB:ZipKey"\nCalling-Station-Id = "02-00-00-00-00-02"\n`;
    const start = await radclient(`Acct-Status-Type = Start\n${common}`);
    assert.equal(start.code, 0, start.output);
    assert.match(start.output, /Received Accounting-Response/);
    assert.deepEqual(await t.cloud.radius!.liveSessionsPerNas(), { "ap-radclient": 1 });
    assert.equal((await radclient(`Acct-Status-Type = Interim-Update\nAcct-Session-Time = 30\n${common}`)).code, 0);
    const stop = await radclient(`Acct-Status-Type = Stop\nAcct-Session-Time = 60\nAcct-Terminate-Cause = Lost-Carrier\n${common}`);
    assert.equal(stop.code, 0, stop.output);
    const view = await t.cloud.services.getDevice({ deviceId: "lamp-rc1" });
    assert.equal(view.hotspot?.session?.nas, "ap-radclient");
    assert.equal(view.hotspot?.session?.ssid, "ZipKey");
    assert.equal(view.hotspot?.session?.terminateCause, "Lost-Carrier");
    assert.equal(view.hotspot?.session?.live, false);
    assert.ok(view.hotspot?.session?.lastInterimAt);
    assert.deepEqual(await t.cloud.radius!.liveSessionsPerNas(), {});
  });

  it("a wrong shared secret: no Accounting-Response (radclient gives up)", async () => {
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      const child = execFile("radclient", ["-x", "-r", "1", "-t", "1", `127.0.0.1:${t.cloud.radius!.accountingPort}`, "acct", "some-other-shared-secret"], (error, stdout, stderr) => resolve({ code: error ? 1 : 0, output: `${stdout}${stderr}` }));
      child.stdin!.end(`Acct-Status-Type = Start\nUser-Name = "lamp-rc1"\nAcct-Session-Id = "zz"\n`);
    });
    assert.notEqual(result.code, 0);
    assert.doesNotMatch(result.output, /Received Accounting-Response/);
  });
});
