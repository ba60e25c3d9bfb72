/*
 * Records the fuzz seed corpus from the real code paths, as mbedTLS seeds its
 * parser harnesses with recorded exchanges:
 *   - a temporary device (the portable ConnectionManager on the Node host)
 *     boots against the real cloud (startCloud), is issued a permanent secret,
 *     fetches a hotspot profile set and a sealed private network; a CloudLink
 *     wrapper captures every CONNECT (client id, password), every publish
 *     (requests, status reports) and every message from the cloud (responses,
 *     notices); the device's simulated flash gives the store records;
 *   - the bench RADIUS peer runs EAP-TTLS/PAP and EAP-TLS against the cloud's
 *     RADIUS server over UDP; every Access-Request and answer is captured, with
 *     the EAP packets and TLS frames inside them and the TTLS inner AVPs as the
 *     server's TLS tunnel decrypted them;
 *   - make-lot writes a secret and a temporary lot (device configs, bundles),
 *     imported into the cloud; a registration CSV of the same devices imported too.
 * Raw MQTT packets are the recorded CONNECT/SUBSCRIBE/PUBLISH serialised with
 * mqtt-packet (the library MQTT.js writes them with).
 * The corpus holds throwaway secrets made for this run only.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import mqttPacket from "mqtt-packet";
import { authenticate, UdpTransport } from "../../../bench/radius-peer";
import { decodeEap, decodeTlsFrame } from "../../../cloud/radius/eap";
import { decodePacket, joinEapMessage } from "../../../cloud/radius/packet";
import { TlsTunnel } from "../../../cloud/radius/tls-tunnel";
import { createNodeDevice } from "../../../hosts/node/device";
import { SimulatedFlash } from "../../../hosts/node/file-preferences";
import { createMqttLink } from "../../../hosts/node/mqtt-link";
import { deriveHotspotPassword } from "../../../modules/derive";
import { nobleDigest } from "../../../modules/noble-digest";
import type { ConnectionManager } from "../../../modules/manager";
import type { CloudLink } from "../../../modules/ports";
import { makeLot } from "../../../tools/manufacturing/make-lot";
import { startTestCloud } from "../../cloud-helpers";
import type { Corpus } from "./corpus";
import type { Registry } from "../../../cloud/registry";

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64");

function until(done: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const tick = async () => {
      if (await done()) return resolve();
      if (Date.now() > end) return reject(new Error(`recording: timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** Records a fresh corpus (about 10 s: a cloud, a device boot, four RADIUS authentications). */
export async function recordCorpus(): Promise<Corpus> {
  const seeds: Record<string, string[]> = {};
  const add = (name: string, bytes: Uint8Array | string) => {
    const list = (seeds[name] ??= []);
    const encoded = b64(bytes);
    if (!list.includes(encoded)) list.push(encoded);
  };
  const t = await startTestCloud({ radiusPort: 0 });
  const work = mkdtempSync(join(tmpdir(), "wcm-fuzz-record-"));
  try {
    const { cloud } = t;
    const cloudConfig = { host: "127.0.0.1", port: cloud.mqttPort, ca: cloud.serverCaPem, serverName: cloud.serverName };

    // ---- manufacturing: bundles, device configs, a CSV
    for (const option of ["secret", "temporary"] as const) {
      const out = join(work, option);
      const made = await makeLot({
        option, count: 3, prefix: `fz-${option[0]}-`, start: 1, out, cloudHost: "127.0.0.1", cloudPort: cloud.mqttPort,
        cloudCaPem: cloud.serverCaPem, serverName: cloud.serverName, progress: { write: () => true } as never,
      });
      const bundle = readFileSync(made.bundle!);
      add("bundle", bundle);
      await cloud.services.importBundle({ bundle, checksum: readFileSync(`${made.bundle}.sha256`, "utf8") });
      const cloudJson = JSON.parse(readFileSync(join(out, "cloud.json"), "utf8")) as Record<string, unknown>;
      for (const file of readdirSync(join(out, "devices")).filter((f) => f.endsWith(".json"))) {
        const device = JSON.parse(readFileSync(join(out, "devices", file), "utf8")) as Record<string, unknown>;
        add("config", JSON.stringify({ ...device, cloud: cloudJson }));
      }
    }
    const csvSecret = randomBytes(32).toString("hex");
    const csv = `device_id,option,secret_hex\r\nfz-csv-1,secret,${csvSecret}\r\nfz-csv-2,certificate,\r\nfz-csv-3,temporary,\r\n`;
    await cloud.services.createProductCa({ name: "fz-ca" });
    await cloud.services.createProvisioningKey({ lot: "fz-csv-lot" });
    await cloud.services.importDevicesCsv({ csv, caName: "fz-ca", lot: "fz-csv-lot" });
    add("csv", csv);

    // ---- a temporary device against the cloud, every boundary captured
    const lot = await cloud.services.createProvisioningKey({ lot: "fz-lot", allowlist: ["fz-dev-1"] });
    await cloud.network.setHotspotProfiles({
      profiles: [{ name: "zipkey", roamingConsortium: ["5a03ba"], ssid: "ZipKey", radius: { serverName: cloud.radiusServerName, ca: cloud.serverCaPem } }],
    });
    const config = { deviceId: "fz-dev-1", option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudConfig };
    add("config", JSON.stringify(config));
    const mqtt: { connect: { clientId: string; username: string; password?: string }[]; publish: { topic: string; payload: Uint8Array }[]; subscribe: string[] } =
      { connect: [], publish: [], subscribe: [] };
    let received = 0;
    const link = (): CloudLink => {
      const inner = createMqttLink();
      return {
        connect(options, events) {
          mqtt.connect.push({ clientId: options.clientId, username: options.username, password: options.password });
          if (options.password) add("loginPassword", options.password);
          inner.connect(options, {
            onReady: () => events.onReady(),
            onClose: (info) => events.onClose(info),
            onMessage(topic, payload) {
              received++;
              add("topic", topic);
              add("cloudMessage", payload);
              if (!("notice" in (JSON.parse(Buffer.from(payload).toString()) as object))) add("response", payload);
              events.onMessage(topic, payload);
            },
          });
        },
        publish(topic, payload) {
          mqtt.publish.push({ topic, payload: payload.slice() });
          add("topic", topic);
          if (topic.endsWith("/req")) add("request", payload);
          if (topic.endsWith("/status")) add("status", payload);
          inner.publish(topic, payload);
        },
        subscribe(topic) {
          mqtt.subscribe.push(topic);
          add("topic", topic);
          inner.subscribe(topic);
        },
        close: () => inner.close(),
      };
    };
    const flash = new SimulatedFlash();
    const device = createNodeDevice(config, { kv: flash, link, manager: { requestTimeoutMs: 2000, sync: true } });
    const manager: ConnectionManager = device.manager;
    manager.start();
    try {
      await until(() => manager.status.state === "ONLINE" && manager.status.credential === "permanent", 15_000, "the device online with a permanent secret");
      await until(async () => (await cloud.registry.device("fz-dev-1"))?.kind === "secret", 5000, "the registry row");
      const before = received;
      await until(() => hasSealKey(cloud, "fz-dev-1"), 5000, "the device's seal key");
      await cloud.network.setDeviceNetwork({ deviceId: "fz-dev-1", ssid: "Home", password: "correct horse battery", priority: 10 });
      await until(() => received >= before + 2, 5000, "the network notice and response");
      await cloud.network.forgetDeviceNetwork({ deviceId: "fz-dev-1", ssid: "Old" }).catch(() => undefined);
      await until(() => received >= before + 4, 5000, "the forget notice and response");
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      manager.stop();
    }
    // a restart: the permanent secret's login, from the same flash
    const again = createNodeDevice(config, { kv: flash, link, manager: { requestTimeoutMs: 2000, sync: true } }).manager;
    again.start();
    try {
      await until(() => again.status.state === "ONLINE", 15_000, "the restarted device online");
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      again.stop();
    }
    const flashRecords: Record<string, string> = {};
    for (const key of flash.keys()) flashRecords[key] = b64(flash.get(key)!);

    // raw MQTT packets, serialised from what was recorded
    const packet = (p: object) => add("mqttPacket", mqttPacket.generate(p as never));
    for (const c of mqtt.connect) {
      packet({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 60, clientId: c.clientId, username: c.username, password: c.password === undefined ? undefined : Buffer.from(c.password) });
    }
    for (const topic of mqtt.subscribe) packet({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    for (const p of mqtt.publish) packet({ cmd: "publish", topic: p.topic, payload: Buffer.from(p.payload), qos: 0, retain: false, dup: false });
    packet({ cmd: "pingreq" });
    packet({ cmd: "disconnect" });

    // ---- RADIUS: EAP-TTLS/PAP and EAP-TLS over UDP, every datagram and the TTLS inner AVPs captured
    const nasSecret = "fuzz-record-nas-secret";
    await cloud.services.addNasClient({ name: "fz-ap", address: "127.0.0.1", secret: nasSecret });
    const secretDevice = randomBytes(32);
    await cloud.services.registerSecretDevice({ deviceId: "fz-radius-1", secretHex: secretDevice.toString("hex") });
    const certificate = await cloud.services.issueDeviceCertificate({ caName: "fz-ca", deviceId: "fz-radius-c1", keyType: "ec" });
    await cloud.services.registerCertificateDevice({ deviceId: "fz-radius-c1", caName: "fz-ca" });
    const takeCleartext = TlsTunnel.prototype.takeCleartext;
    TlsTunnel.prototype.takeCleartext = function (this: TlsTunnel) {
      const out = takeCleartext.call(this);
      if (out.length > 0) add("avps", out); // only the server reads cleartext (the peer's inner AVPs)
      return out;
    };
    const udp = new UdpTransport("127.0.0.1", cloud.radiusPort!);
    try {
      const transport = async (request: Buffer) => {
        add("radiusRequest", request);
        captureEap(add, request);
        const answer = await udp.send(request);
        if (answer) {
          add("radiusResponse", answer);
          captureEap(add, answer);
        }
        return answer;
      };
      const common = { nasSecret, caPem: cloud.serverCaPem, serverName: cloud.radiusServerName };
      for (const fragmentSize of [1000, 300]) {
        const ttls = await authenticate(transport, {
          ...common, method: "ttls", identity: "fz-radius-1", password: deriveHotspotPassword(nobleDigest, secretDevice, "fz-radius-1"), fragmentSize,
        });
        if (!ttls.ok) throw new Error(`recording: EAP-TTLS failed (${ttls.reason})`);
        const tls = await authenticate(transport, { ...common, method: "tls", identity: "fz-radius-c1", certPem: certificate.certificatePem, keyPem: certificate.privateKeyPem, fragmentSize });
        if (!tls.ok) throw new Error(`recording: EAP-TLS failed (${tls.reason})`);
      }
      const wrong = await authenticate(transport, { ...common, method: "ttls", identity: "fz-radius-1", password: "not-the-password" });
      if (wrong.ok) throw new Error("recording: a wrong password was accepted");
    } finally {
      TlsTunnel.prototype.takeCleartext = takeCleartext;
      udp.close();
    }
    return { version: 1, seeds, flash: flashRecords, deviceId: "fz-dev-1", nasSecret };
  } finally {
    await t.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function hasSealKey(cloud: { registry: Registry }, id: string): Promise<boolean> {
  const row = await cloud.registry.storage.get<{ seal_key: Buffer | null }>("SELECT seal_key FROM devices WHERE id = ?", [id]);
  return !!row?.seal_key;
}

function captureEap(add: (name: string, bytes: Uint8Array) => void, datagram: Buffer): void {
  const eap = joinEapMessage(decodePacket(datagram));
  if (!eap) return;
  add("eap", eap);
  const packet = decodeEap(eap);
  if ((packet.type === 13 || packet.type === 21) && packet.data.length > 0) {
    add("tlsFrame", packet.data);
    const frame = decodeTlsFrame(packet.data);
    if (frame.fragment.length > 0) add("tlsRecords", frame.fragment);
  }
}
