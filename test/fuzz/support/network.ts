/*
 * Network fuzz of a running cloud (startCloud on loopback, default limits), in
 * the manner of Mosquitto's broker fuzzing (every packet type in every
 * connection state):
 *   MQTT, each connection in one state, from source addresses 127.0.0.2-41:
 *     tcp        mutated bytes on plain TCP (the TLS layer's first read)
 *     preConnect mutated recorded packets of any type before CONNECT
 *     connect    a mutated recorded CONNECT, then more mutated packets
 *     midPacket  the first bytes of a genuine CONNECT, a pause, then mutated rest (or a close)
 *     postLogin  a genuine login, then mutated packets: raw mutations of every
 *                recorded packet type, and well-formed PUBLISHes on the device's
 *                own request/status topics whose payloads are mutated recorded
 *                requests and status reports (they reach the cloud's decoders)
 *     postLoginMid  a genuine login, then half a packet and a pause or a close
 *   RADIUS, from a NAS at 127.0.0.1 whose secret the fuzzer knows:
 *     mutated recorded Access-Requests sent as mutated (most fail the
 *     Message-Authenticator) or re-signed with the right secret (they reach
 *     the EAP layer), EAP-level mutations re-signed, and whole EAP-TTLS
 *     conversations in which one request, at a random step of the TLS
 *     handshake or tunnel, is replaced by a mutated, re-signed one.
 * Findings: an uncaught exception in the process, an "error" line in the cloud's
 * log, a RADIUS internal error (stats.errors), an answer that is not signed
 * with the NAS secret, unauthenticated MQTT slots not released afterwards, heap
 * growth after GC past a bound (Mosquitto's memory bound under floods), and
 * afterwards a genuine device that cannot log in and get a response, or a
 * genuine EAP-TTLS authentication (another NAS) that does not succeed.
 */
import { randomBytes } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import mqttPacket from "mqtt-packet";
import { authenticate, type Transport } from "../../../bench/radius-peer";
import { ATTR, decodePacket, joinEapMessage, signRequest, splitEapMessage, verifyResponse } from "../../../cloud/radius/packet";
import { deriveHotspotPassword } from "../../../modules/derive";
import { nobleDigest } from "../../../modules/noble-digest";
import { deviceTopics } from "../../../modules/protocol";
import { connectDevice, exchange, loginPassword, startTestCloud, type TestCloud } from "../../cloud-helpers";
import { seedBytes, type Corpus } from "./corpus";
import { fullGc } from "./engine";
import { mutate, Prng } from "./mutate";

/** How much to send. */
export interface NetworkFuzzOptions {
  corpus: Corpus;
  seed: number;
  /** MQTT connections (each in one state) */
  connections: number;
  /** single mutated RADIUS datagrams */
  datagrams: number;
  /** EAP-TTLS conversations with one mutated request each */
  conversations: number;
  /** connections open at once (default 4) */
  concurrency?: number;
  progress?: (line: string) => void;
}

/** What a network fuzz run did and found. */
export interface NetworkFuzzReport {
  mqtt: { connections: number; packets: number; bytes: number; byState: Record<string, number>; closedByServer: number; connacks: Record<string, number> };
  /** `sessions`: half-open EAP sessions the RADIUS server holds after the fuzz (bounded by maxSessions, 1000; idle ones expire after 30 s) */
  radius: { datagrams: number; resigned: number; answered: number; conversations: number; sessions: number };
  /** a genuine device's login + request/response after the fuzz, ms; a genuine EAP-TTLS authentication after the fuzz, ms */
  genuine: { mqttMs: number; radiusMs: number };
  /** the process's heap + external memory after a full GC: once the devices are registered, and after the fuzz with every connection closed */
  heap: { beforeBytes: number; afterBytes: number };
  ms: number;
  findings: string[];
}

const STATES = ["tcp", "preConnect", "connect", "midPacket", "postLogin", "postLoginMid"] as const;
type State = (typeof STATES)[number];
const LOGINS_PER_DEVICE = 8; // under the per-device login burst (10)
const FUZZ_NAS = { address: "127.0.0.1" };
const GENUINE_NAS = { address: "127.0.0.9", secret: "genuine-nas-shared-secret" };

/**
 * Allowed growth of the heap after GC over a whole run: 8 MiB (caches, the
 * duplicate-answer cache), plus 64 KiB per half-open EAP session the RADIUS
 * server still holds (each keeps a TLS server state, about 40 KiB; their number
 * is capped by maxSessions and idle ones expire after 30 s).
 */
const BASE_HEAP_GROWTH = 8 * 1024 * 1024;
const HEAP_PER_SESSION = 64 * 1024;

function heapAfterGc(): number {
  fullGc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const generate = (packet: object) => new Uint8Array(mqttPacket.generate(packet as never));

/** A UDP RADIUS client bound to a source address, answers matched by identifier. */
class BoundTransport {
  readonly socket: UdpSocket;
  readonly #waiting = new Map<number, (answer: Buffer | undefined) => void>();
  /** every answer received (fire() does not wait for them) */
  answers: Buffer[] = [];

  private constructor(socket: UdpSocket, readonly port: number, readonly timeoutMs: number) {
    this.socket = socket;
    socket.on("message", (message) => {
      if (message.length < 2) return;
      const waiting = this.#waiting.get(message[1]);
      if (waiting) waiting(message);
      else this.answers.push(message);
    });
  }

  static async open(address: string, port: number, timeoutMs: number): Promise<BoundTransport> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address, port: 0 }, () => resolve());
    });
    return new BoundTransport(socket, port, timeoutMs);
  }

  fire(datagram: Uint8Array): void {
    this.socket.send(datagram, this.port, "127.0.0.1");
  }

  readonly send: Transport = (request) => new Promise((resolve) => {
    let tries = 0;
    let timer: NodeJS.Timeout;
    const finish = (answer: Buffer | undefined) => {
      clearTimeout(timer);
      this.#waiting.delete(request[1]);
      resolve(answer);
    };
    const attempt = () => {
      if (tries++ > 1) return finish(undefined);
      this.fire(request);
      timer = setTimeout(attempt, this.timeoutMs);
    };
    this.#waiting.set(request[1], finish);
    attempt();
  });

  close(): void {
    this.socket.close();
  }
}

/** Re-signs a datagram with `secret` when it still decodes (new Message-Authenticator, same attributes). */
function resign(datagram: Uint8Array, secret: Buffer): Buffer | undefined {
  try {
    const packet = decodePacket(datagram);
    const attributes = packet.attributes.filter((a) => a.type !== ATTR.messageAuthenticator && a.value.length <= 253);
    return signRequest(packet.identifier, packet.authenticator, secret, attributes);
  } catch {
    return undefined;
  }
}

/**
 * Starts a cloud, fuzzes it over the network, then checks that it still serves
 * genuine devices. Never throws for a finding: they are in the report.
 */
export async function fuzzRunningCloud(options: NetworkFuzzOptions): Promise<NetworkFuzzReport> {
  const findings: string[] = [];
  const finding = (line: string) => {
    if (findings.length < 50) findings.push(line);
  };
  const onUncaught = (error: Error) => finding(`uncaught exception: ${error.name}: ${error.message}`);
  process.on("uncaughtException", onUncaught);
  const errors: string[] = [];
  const t: TestCloud = await startTestCloud({
    radiusPort: 0,
    log: (level, message) => {
      if (level === "error") errors.push(message);
    },
  });
  const started = performance.now();
  const rng = new Prng(options.seed);
  const corpus = options.corpus;
  const report: NetworkFuzzReport = {
    mqtt: { connections: 0, packets: 0, bytes: 0, byState: {}, closedByServer: 0, connacks: {} },
    radius: { datagrams: 0, resigned: 0, answered: 0, conversations: 0, sessions: 0 },
    genuine: { mqttMs: -1, radiusMs: -1 },
    heap: { beforeBytes: 0, afterBytes: 0 },
    ms: 0,
    findings,
  };
  const { cloud } = t;
  const fuzzRadius = await BoundTransport.open(FUZZ_NAS.address, cloud.radiusPort!, 300);
  try {
    // ---- devices and NAS clients
    const genuine = { id: "fz-genuine-1", secret: randomBytes(32) };
    await cloud.services.registerSecretDevice({ deviceId: genuine.id, secretHex: genuine.secret.toString("hex") });
    const radiusGenuine = { id: "fz-genuine-r", secret: randomBytes(32) };
    await cloud.services.registerSecretDevice({ deviceId: radiusGenuine.id, secretHex: radiusGenuine.secret.toString("hex") });
    const radiusFuzz = { id: "fz-radius-f", secret: randomBytes(32) };
    await cloud.services.registerSecretDevice({ deviceId: radiusFuzz.id, secretHex: radiusFuzz.secret.toString("hex") });
    const postLogin = STATES.filter((s) => s.startsWith("postLogin")).length / STATES.length;
    const fuzzDevices = Array.from({ length: Math.max(1, Math.ceil((options.connections * postLogin * 2) / LOGINS_PER_DEVICE)) }, (_, i) => ({
      id: `fz-fuzz-${i}`, secret: randomBytes(32), counter: 1, logins: 0,
    }));
    for (const d of fuzzDevices) await cloud.services.registerSecretDevice({ deviceId: d.id, secretHex: d.secret.toString("hex") });
    await cloud.services.addNasClient({ name: "fz-nas", address: FUZZ_NAS.address, secret: corpus.nasSecret });
    await cloud.services.addNasClient({ name: "fz-genuine-nas", address: GENUINE_NAS.address, secret: GENUINE_NAS.secret });
    const nasSecret = Buffer.from(corpus.nasSecret);

    // a genuine device logs in and gets a response; a genuine EAP-TTLS authentication through another NAS succeeds
    let genuineCounter = 1;
    const genuineChecks = async (when: string) => {
      const mqttStart = performance.now();
      const outcome = await connectDevice(cloud, { id: genuine.id, password: loginPassword(genuine.id, genuine.secret, "s", genuineCounter++) });
      if (!outcome.client) finding(`a genuine device could not log in ${when}: ${outcome.code ?? outcome.error.message}`);
      else {
        try {
          const response = await exchange(outcome.client, genuine.id, { v: 1, rid: `genuine${genuineCounter}`, op: "config" });
          if (!response.ok) finding(`a genuine request ${when} was refused: ${response.reason}`);
          report.genuine.mqttMs = performance.now() - mqttStart;
        } catch (error) {
          finding(`a genuine request ${when} got no response: ${(error as Error).message}`);
        } finally {
          await outcome.client.endAsync(true);
        }
      }
      const genuineRadius = await BoundTransport.open(GENUINE_NAS.address, cloud.radiusPort!, 1000);
      try {
        const radiusStart = performance.now();
        const result = await authenticate(genuineRadius.send, {
          nasSecret: GENUINE_NAS.secret, method: "ttls", identity: radiusGenuine.id, password: deriveHotspotPassword(nobleDigest, radiusGenuine.secret, radiusGenuine.id),
          caPem: cloud.serverCaPem, serverName: cloud.radiusServerName,
        });
        if (!result.ok) finding(`a genuine EAP-TTLS authentication ${when} failed: ${result.reason}`);
        else report.genuine.radiusMs = performance.now() - radiusStart;
      } finally {
        genuineRadius.close();
      }
    };
    // once before (warms every code path the check uses, so the heap baseline is not first-use allocation)
    await genuineChecks("before the fuzz");
    report.heap.beforeBytes = heapAfterGc();

    // ---- MQTT
    const packets = seedBytes(corpus, "mqttPacket");
    const connectSeeds = packets.filter((p) => p[0] >> 4 === 1);
    const requests = seedBytes(corpus, "request");
    const statuses = seedBytes(corpus, "status");
    let nextDevice = 0;
    const takeDevice = () => {
      for (let i = 0; i < fuzzDevices.length; i++) {
        const d = fuzzDevices[(nextDevice + i) % fuzzDevices.length];
        if (d.logins < LOGINS_PER_DEVICE) {
          nextDevice = (nextDevice + i + 1) % fuzzDevices.length;
          d.logins++;
          return d;
        }
      }
      return undefined;
    };

    const oneConnection = async (index: number): Promise<void> => {
      let state: State = STATES[index % STATES.length];
      const device = state.startsWith("postLogin") ? takeDevice() : undefined;
      if (state.startsWith("postLogin") && !device) state = "connect";
      report.mqtt.byState[state] = (report.mqtt.byState[state] ?? 0) + 1;
      report.mqtt.connections++;
      const localAddress = `127.0.0.${2 + (index % 40)}`;
      const tcp = netConnect({ host: "127.0.0.1", port: cloud.mqttPort, localAddress });
      const socket: Socket = state === "tcp" ? tcp : tlsConnect({ socket: tcp, ca: cloud.serverCaPem, servername: cloud.serverName, maxVersion: "TLSv1.2" });
      tcp.on("error", () => undefined);
      let closed = false;
      let received = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]).subarray(-4096);
      });
      socket.on("error", () => undefined);
      const closedPromise = new Promise<void>((resolve) => socket.on("close", () => {
        closed = true;
        resolve();
      }));
      const ready = new Promise<boolean>((resolve) => {
        socket.once(state === "tcp" ? "connect" : "secureConnect", () => resolve(true));
        socket.once("close", () => resolve(false));
      });
      const send = (bytes: Uint8Array) => {
        if (closed) return;
        report.mqtt.packets++;
        report.mqtt.bytes += bytes.length;
        socket.write(bytes);
      };
      const waitFor = async (ms: number, done: () => boolean) => {
        for (const end = Date.now() + ms; !closed && !done() && Date.now() < end;) await sleep(5);
      };
      try {
        if (!(await ready)) return;
        if (state === "tcp" || state === "preConnect") {
          for (let k = 0, n = 1 + rng.below(3); k < n; k++) send(mutate(packets, rng));
        } else if (state === "connect") {
          send(mutate(connectSeeds, rng));
          await waitFor(30, () => received.length > 0);
          for (let k = 0, n = rng.below(3); k < n; k++) send(mutate(packets, rng));
        } else if (state === "midPacket") {
          const connectPacket = connectSeeds[rng.below(connectSeeds.length)];
          const cut = 1 + rng.below(connectPacket.length - 1);
          send(connectPacket.subarray(0, cut));
          await sleep(10 + rng.below(40));
          if (rng.below(4) > 0) send(mutate([connectPacket.subarray(cut)], rng));
        } else if (device) {
          const password = loginPassword(device.id, device.secret, "s", device.counter++);
          send(generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: device.id, username: device.id, password: Buffer.from(password) }));
          await waitFor(3000, () => received.length >= 4);
          const code = received.length >= 4 && received[0] === 0x20 ? String(received[3]) : "none";
          report.mqtt.connacks[code] = (report.mqtt.connacks[code] ?? 0) + 1;
          if (code !== "0") finding(`a genuine login of ${device.id} during the fuzz got CONNACK ${code}`);
          const topics = deviceTopics(device.id);
          send(generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: topics.response, qos: 0 }] }));
          if (state === "postLogin") {
            for (let k = 0, n = 1 + rng.below(6); k < n; k++) {
              const choice = rng.below(4);
              if (choice === 0) send(mutate(packets, rng));
              else if (choice === 1) send(generate({ cmd: "publish", topic: topics.request, payload: Buffer.from(mutate(requests, rng)), qos: 0, retain: false, dup: false }));
              else if (choice === 2) send(generate({ cmd: "publish", topic: topics.status, payload: Buffer.from(mutate(statuses, rng)), qos: 0, retain: false, dup: false }));
              else send(mutate([generate({ cmd: "publish", topic: topics.request, payload: Buffer.from(requests[rng.below(requests.length)]), qos: 0, retain: false, dup: false })], rng));
              await sleep(rng.below(10));
            }
          } else {
            const whole = generate({ cmd: "publish", topic: topics.request, payload: Buffer.from(requests[rng.below(requests.length)]), qos: 0, retain: false, dup: false });
            send(whole.subarray(0, 1 + rng.below(whole.length - 1)));
            await sleep(10 + rng.below(40));
          }
        }
        await waitFor(40, () => false);
      } finally {
        if (closed) report.mqtt.closedByServer++;
        socket.destroy();
        tcp.destroy();
        await closedPromise;
      }
    };
    const concurrency = options.concurrency ?? 4;
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < options.connections) {
        const index = next++;
        await oneConnection(index);
        if (index % 100 === 99) options.progress?.(`mqtt: ${index + 1}/${options.connections} connections`);
      }
    }));

    // ---- RADIUS: single datagrams, in windows of distinct identifiers
    const radiusSeeds = seedBytes(corpus, "radiusRequest");
    const eapSeeds = seedBytes(corpus, "eap");
    // an answer may come after its window (a busy machine): check it against every request sent with its identifier
    const sentWith = new Map<number, Buffer[]>();
    const checkAnswers = () => {
      for (const answer of fuzzRadius.answers) {
        report.radius.answered++;
        try {
          const packet = decodePacket(answer);
          if (!(sentWith.get(packet.identifier) ?? []).some((auth) => verifyResponse(packet, auth, nasSecret))) finding(`RADIUS answer ${packet.identifier} not signed with the NAS secret`);
        } catch (error) {
          finding(`RADIUS answer does not decode: ${(error as Error).message}`);
        }
      }
      fuzzRadius.answers = [];
    };
    for (let sent = 0; sent < options.datagrams;) {
      for (let id = 0; id < 64 && sent < options.datagrams; id++, sent++) {
        const choice = rng.below(3);
        let datagram: Uint8Array = mutate(radiusSeeds, rng);
        if (choice === 2) {
          const eap = Buffer.from(mutate(eapSeeds, rng)).subarray(0, 3000);
          datagram = signRequest(0, randomBytes(16), nasSecret, [...splitEapMessage(eap), ...(rng.below(2) ? [{ type: ATTR.state, value: randomBytes(16) }] : [])]);
        }
        if (datagram.length >= 2) datagram[1] = id;
        const signed = choice > 0 ? resign(datagram, nasSecret) : undefined;
        const out = signed ?? Buffer.from(datagram);
        if (signed) report.radius.resigned++;
        if (out.length >= 20) {
          const list = sentWith.get(id) ?? [];
          list.push(Buffer.from(out.subarray(4, 20)));
          sentWith.set(id, list);
        }
        fuzzRadius.fire(out);
        report.radius.datagrams++;
      }
      await sleep(100);
      checkAnswers();
    }
    await sleep(300);
    checkAnswers();
    options.progress?.(`radius: ${report.radius.datagrams} datagrams`);

    // ---- RADIUS: conversations with one mutated, re-signed request at a random step
    const peer = {
      nasSecret: corpus.nasSecret, method: "ttls" as const, identity: radiusFuzz.id, password: deriveHotspotPassword(nobleDigest, radiusFuzz.secret, radiusFuzz.id),
      caPem: cloud.serverCaPem, serverName: cloud.radiusServerName, fragmentSize: 300,
    };
    for (let c = 0; c < options.conversations; c++) {
      const step = 1 + rng.below(7);
      let n = 0;
      const transport: Transport = async (request) => {
        if (++n !== step) return fuzzRadius.send(request);
        const packet = decodePacket(request);
        const eap = joinEapMessage(packet);
        const mutated = rng.below(2) && eap
          ? signRequest(packet.identifier, packet.authenticator, nasSecret, [
            ...splitEapMessage(Buffer.from(mutate([eap], rng)).subarray(0, 3000)),
            ...packet.attributes.filter((a) => a.type !== ATTR.eapMessage && a.type !== ATTR.messageAuthenticator),
          ])
          : resign(mutate([request], rng), nasSecret) ?? request;
        mutated[1] = request[1];
        const signed = resign(mutated, nasSecret) ?? mutated;
        const answer = await fuzzRadius.send(signed);
        if (answer && !verifyResponse(decodePacket(answer), signed.subarray(4, 20), nasSecret)) finding("RADIUS answer in a conversation not signed with the NAS secret");
        return answer;
      };
      await authenticate(transport, peer);
      report.radius.conversations++;
      // a clean conversation for the same device still succeeds after each mutated one (no state left behind)
      if (c === options.conversations - 1 || c % 10 === 9) {
        const clean = await authenticate(fuzzRadius.send, peer);
        if (!clean.ok && clean.reason !== "RATE_LIMITED") finding(`a clean EAP-TTLS conversation after mutated ones failed: ${clean.reason}`);
      }
    }

    // ---- afterwards: everything released, genuine devices served
    for (const end = Date.now() + 5000; cloud.mqtt.connections.unauthenticated > 0 && Date.now() < end;) await sleep(20);
    if (cloud.mqtt.connections.unauthenticated > 0) finding(`${cloud.mqtt.connections.unauthenticated} unauthenticated MQTT slots still held after every fuzz connection closed`);
    await genuineChecks("after the fuzz");
    report.radius.sessions = cloud.radius!.sessions.size;
    report.heap.afterBytes = heapAfterGc();
    const allowed = BASE_HEAP_GROWTH + report.radius.sessions * HEAP_PER_SESSION;
    if (report.heap.afterBytes - report.heap.beforeBytes > allowed) {
      finding(`heap after GC grew ${((report.heap.afterBytes - report.heap.beforeBytes) / 1048576).toFixed(1)} MiB over the fuzz (every connection closed, ${report.radius.sessions} EAP sessions held: ${(allowed / 1048576).toFixed(1)} MiB allowed)`);
    }
    if (cloud.radius!.stats.errors > 0) finding(`RADIUS server internal errors: ${cloud.radius!.stats.errors}`);
    for (const line of errors.slice(0, 10)) finding(`cloud logged an error: ${line}`);
  } finally {
    fuzzRadius.close();
    await t.stop();
    process.off("uncaughtException", onUncaught);
    report.ms = performance.now() - started;
  }
  return report;
}
