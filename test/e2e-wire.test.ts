/*
 * The bytes a device puts on the wire, decoded with mqtt-packet as the reference
 * codec: a scripted TLS peer plays the cloud, so the test sees exactly what the
 * Node host's link sends for a temporary device's first session (CONNECT,
 * SUBSCRIBE, the issue request) and answers with CONNACK and SUBACK.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import mqttPacket, { type Packet } from "mqtt-packet";
import { createServerIdentity, privateKeyPem } from "../cloud/pki";
import { createNodeDevice } from "../hosts/node/device";
import { deriveCloudLoginKey, deriveLoginProof, deriveTemporarySecret } from "../modules/derive";
import { nobleDigest } from "../modules/noble-digest";
import { decodeRequest, deviceTopics, parseLoginPassword } from "../modules/protocol";
import { constantTimeEqual, fromHex } from "../modules/bytes";

const KEY_HEX = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff";

describe("e2e: bytes on the wire (mqtt-packet as reference codec)", function () {
  this.timeout(20_000);

  it("TemporaryDevice_FirstFlight_ConnectSubscribeIssue_AreValidMqtt311Qos0", async () => {
    const identity = await createServerIdentity();
    const packets: Packet[] = [];
    let sawAll: () => void = () => {};
    const complete = new Promise<void>((resolve) => { sawAll = resolve; });
    const server = tls.createServer({ cert: identity.certPem, key: privateKeyPem(identity.keyDer) }, (socket) => {
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      parser.on("packet", (packet: Packet) => {
        packets.push(packet);
        if (packet.cmd === "connect") socket.write(mqttPacket.generate({ cmd: "connack", returnCode: 0, sessionPresent: false }));
        if (packet.cmd === "subscribe") {
          socket.write(mqttPacket.generate({ cmd: "suback", messageId: packet.messageId, granted: packet.subscriptions.map(() => 0) }));
        }
        if (packet.cmd === "publish") sawAll();
      });
      parser.on("error", (error: Error) => assert.fail(`device sent a malformed packet: ${error.message}`));
      socket.on("data", (chunk) => parser.parse(chunk));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const { manager } = createNodeDevice({
      deviceId: "wire-0001", option: "temporary", provisioningKey: KEY_HEX,
      cloud: { host: "127.0.0.1", port, ca: identity.caCertPem, serverName: "localhost", keepAliveSeconds: 45 },
    });
    manager.start();
    try {
      await complete;
    } finally {
      manager.stop();
      server.close();
    }

    const [connect, subscribe, publish] = packets;
    assert.equal(connect.cmd, "connect");
    if (connect.cmd !== "connect") return;
    assert.equal(connect.protocolId, "MQTT");
    assert.equal(connect.protocolVersion, 4);
    assert.equal(connect.clientId, "wire-0001");
    assert.equal(connect.username, "wire-0001");
    assert.equal(connect.clean, true);
    assert.equal(connect.keepalive, 45);
    const login = parseLoginPassword(String(connect.password));
    assert.equal(login.kind, "t");
    const temporary = deriveTemporarySecret(nobleDigest, fromHex(KEY_HEX), "wire-0001");
    const expected = deriveLoginProof(nobleDigest, deriveCloudLoginKey(nobleDigest, temporary), "wire-0001", "t", login.counter);
    assert.ok(constantTimeEqual(login.proof, expected), "the login proof verifies against the temporary secret");

    const topics = deviceTopics("wire-0001");
    assert.equal(subscribe.cmd, "subscribe");
    if (subscribe.cmd !== "subscribe") return;
    assert.deepEqual(subscribe.subscriptions.map((s) => [s.topic, s.qos]), [[topics.response, 0]]);

    assert.equal(publish.cmd, "publish");
    if (publish.cmd !== "publish") return;
    assert.equal(publish.topic, topics.request);
    assert.equal(publish.qos, 0);
    assert.equal(publish.retain, false);
    const request = decodeRequest(new Uint8Array(publish.payload as Buffer));
    assert.equal(request.op, "issue");
  });
});
