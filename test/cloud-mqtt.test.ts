/*
 * MqttServer: TLS policy (ECDHE only, server preference), topic ACLs, the
 * packet size guard and the CONNECT deadline.
 */
import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { CONNACK, deviceTopics } from "../modules/protocol";
import { PacketSizeScanner } from "../cloud/packet-guard";
import { connectDevice, end, loginPassword, mustConnect, newSecret, sleep, startTestCloud, type TestCloud } from "./cloud-helpers";

function tlsOutcome(t: TestCloud, options: Record<string, unknown>): Promise<{ socket?: TLSSocket; error?: Error }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: t.cloud.mqttPort, ca: t.cloud.serverCaPem, servername: "localhost", ...options });
    socket.once("secureConnect", () => resolve({ socket }));
    socket.once("error", (error) => resolve({ error }));
  });
}

function closesWithin(socket: TLSSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe("cloud MQTT endpoint (MqttServer)", function () {
  let t: TestCloud;
  const a = newSecret();
  const b = newSecret();
  let counter = 10;

  before(async function () {
    t = await startTestCloud({ connectTimeoutMs: 400 });
    await t.cloud.services.registerSecretDevice({ deviceId: "dev-a", secretHex: a.hex });
    await t.cloud.services.registerSecretDevice({ deviceId: "dev-b", secretHex: b.hex });
  });
  after(async () => t?.stop());

  describe("TLS", function () {
    it("tls_OnlyPlainRsaSuitesOffered_HandshakeRefused", async function () {
      const outcome = await tlsOutcome(t, { ciphers: "AES128-GCM-SHA256", maxVersion: "TLSv1.2" });
      assert.ok(outcome.error, "the handshake must fail");
      outcome.socket?.destroy();
    });

    it("tls12_PlainRsaOfferedFirst_ServerPicksEcdhe", async function () {
      const outcome = await tlsOutcome(t, { ciphers: "AES128-GCM-SHA256:AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256", maxVersion: "TLSv1.2" });
      assert.ok(outcome.socket, outcome.error?.message);
      assert.equal(outcome.socket.getProtocol(), "TLSv1.2");
      assert.equal(outcome.socket.getCipher().name, "ECDHE-RSA-AES128-GCM-SHA256");
      outcome.socket.destroy();
    });

    it("tls_Version11_Refused", async function () {
      const outcome = await tlsOutcome(t, { minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT:@SECLEVEL=0" });
      assert.ok(outcome.error);
    });

    it("tls13_Accepted_WithServerNameLocalhost", async function () {
      const outcome = await tlsOutcome(t, {});
      assert.ok(outcome.socket, outcome.error?.message);
      assert.equal(outcome.socket.getProtocol(), "TLSv1.3");
      outcome.socket.destroy();
    });

    it("tls_WrongServerName_ClientRefusesServer", async function () {
      const outcome = await tlsOutcome(t, { servername: "evil.example" });
      assert.ok(outcome.error);
    });
  });

  describe("ACL", function () {
    it("authorizeSubscribe_OwnTopics_Granted_OthersRefused128", async function () {
      const client = await mustConnect(t.cloud, { id: "dev-a", password: loginPassword("dev-a", a.bytes, "s", ++counter) });
      const own = deviceTopics("dev-a");
      const other = deviceTopics("dev-b");
      const topics = [own.response, `${own.app}/#`, `${own.app}/lamp/+`, other.response, `${other.app}/#`, "#", "wcm/v1/+/res", own.request, own.status];
      // MQTT.js rejects when any code is 0x80; the SUBACK travels on the error
      const granted = await client.subscribeAsync(topics, { qos: 0 }).then(
        (list) => list.map((g) => g.qos),
        (error: { packet?: { granted?: number[] } }) => error.packet?.granted,
      );
      assert.deepEqual(granted, [0, 0, 0, 128, 128, 128, 128, 128, 128]);
      await end(client);
    });

    it("authorizePublish_OwnAppTopic_Delivered", async function () {
      const client = await mustConnect(t.cloud, { id: "dev-a", password: loginPassword("dev-a", a.bytes, "s", ++counter) });
      const topic = `${deviceTopics("dev-a").app}/echo`;
      await client.subscribeAsync(topic, { qos: 0 });
      const got = new Promise<string>((resolve) => client.once("message", (_t, m) => resolve(m.toString())));
      client.publish(topic, "hello", { qos: 0 });
      assert.equal(await got, "hello");
      await end(client);
    });

    it("authorizePublish_OtherDevicesTopic_DroppedAndConnectionClosed", async function () {
      const victim = await mustConnect(t.cloud, { id: "dev-b", password: loginPassword("dev-b", b.bytes, "s", ++counter) });
      const victimTopic = `${deviceTopics("dev-b").app}/cmd`;
      await victim.subscribeAsync([victimTopic, deviceTopics("dev-b").response], { qos: 0 });
      let received = 0;
      victim.on("message", () => received++);
      const attacker = await mustConnect(t.cloud, { id: "dev-a", password: loginPassword("dev-a", a.bytes, "s", ++counter) });
      const attackerClosed = new Promise<void>((resolve) => attacker.once("close", () => resolve()));
      attacker.publish(victimTopic, "turn off", { qos: 0 });
      attacker.publish(deviceTopics("dev-b").response, "fake", { qos: 0 });
      await attackerClosed;
      await sleep(150);
      assert.equal(received, 0);
      assert.ok(t.cloud.mqtt.stats.refusedPublish >= 1);
      await end(attacker);
      await end(victim);
    });
  });

  describe("bounds", function () {
    it("packetGuard_AnnouncedPacketTooLarge_ConnectionDestroyed", async function () {
      const outcome = await tlsOutcome(t, {});
      assert.ok(outcome.socket);
      const before = t.cloud.mqtt.stats.oversized;
      // CONNECT announcing 1 MiB of remaining length: cut before it is buffered
      outcome.socket.write(Buffer.from([0x10, 0x80, 0x80, 0x40]));
      assert.equal(await closesWithin(outcome.socket, 2000), true);
      await sleep(20);
      assert.equal(t.cloud.mqtt.stats.oversized, before + 1);
    });

    it("connectTimeout_NoConnectPacket_ConnectionClosed", async function () {
      const outcome = await tlsOutcome(t, {});
      assert.ok(outcome.socket);
      assert.equal(await closesWithin(outcome.socket, 3000), true);
    });

    it("connect_AfterOversizedAttempt_OthersStillServed", async function () {
      const outcome = await connectDevice(t.cloud, { id: "dev-a", password: loginPassword("dev-a", a.bytes, "s", ++counter) });
      assert.ok(outcome.client);
      await end(outcome.client);
      assert.notEqual(outcome.code, CONNACK.serverUnavailable);
    });
  });

  describe("PacketSizeScanner", function () {
    const cases: [string, number[][], boolean][] = [
      ["zero-length packets", [[0xc0, 0x00, 0xd0, 0x00]], true],
      ["one packet at the limit", [[0x30, 0x64], new Array(100).fill(0)], true],
      ["one byte over the limit", [[0x30, 0x65]], false],
      ["length split across chunks", [[0x30], [0x80], [0x01]], false],
      ["five length bytes", [[0x30, 0x80, 0x80, 0x80, 0x80, 0x01]], false],
      ["two packets in one chunk", [[0x30, 0x02, 1, 2, 0x30, 0x01, 9]], true],
      ["one byte at a time", [[0x30], [0x03], [1], [2], [3], [0xe0], [0x00]], true],
    ];
    for (const [name, chunks, ok] of cases) {
      it(`feed_${name.replace(/ /g, "_")}_${ok ? "Accepted" : "Refused"}`, function () {
        const scanner = new PacketSizeScanner(100);
        const result = chunks.every((chunk) => scanner.feed(Uint8Array.from(chunk)));
        assert.equal(result, ok);
      });
    }
  });
});
