/*
 * One fuzz harness per decoder, as mbedTLS has one per parser. Each names the
 * typed error its decoder throws by design (anything else thrown is a
 * finding), its seeds from the recorded corpus, and properties checked on the
 * inputs it accepts (round trips, bounds, agreement with a reference decoder):
 * a broken property throws a plain Error, which is a finding too.
 *
 * Typed errors by design:
 *   modules/ (protocol, bytes, config, stores)  WcmError
 *   cloud/csv.ts, cloud/bundle.ts                CloudError
 *   cloud/radius/packet.ts                       RadiusCodecError
 *   cloud/radius/eap.ts, fragments.ts            EapCodecError (ReassemblyTooLarge is one)
 *   cloud/radius/avp.ts                          AvpError
 *   flash loaders, openSealed, parseTopic, peekRequestId, mqttRules, hotspotRules,
 *   PacketSizeScanner, verifyMessageAuthenticator   nothing (they answer undefined / a refusal / false)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqttPacket from "mqtt-packet";
import { CloudError } from "../../../cloud/errors";
import { parseBundle } from "../../../cloud/bundle";
import { parseRegistrationCsv } from "../../../cloud/csv";
import { hotspotRules, mqttRules, type Budget } from "../../../cloud/auth/rules";
import { nodeDigest } from "../../../cloud/node-digest";
import { PacketSizeScanner } from "../../../cloud/packet-guard";
import { AvpError, decodeAvps, readPap } from "../../../cloud/radius/avp";
import { EapCodecError, decodeEap, decodeTlsFrame, encodeEap, TLS_FLAG } from "../../../cloud/radius/eap";
import { FragmentReceiver } from "../../../cloud/radius/fragments";
import { RadiusCodecError, decodePacket, encodePacket, joinEapMessage, verifyMessageAuthenticator, verifyResponse } from "../../../cloud/radius/packet";
import { Registry } from "../../../cloud/registry";
import { CloudServices } from "../../../cloud/services";
import { fromBase64Url, fromHex, toBase64Url, toHex, utf8Decode, utf8Encode } from "../../../modules/bytes";
import { validateConfig } from "../../../modules/config";
import { CredentialStore } from "../../../modules/credential-store";
import { WcmError } from "../../../modules/errors";
import { NetworkStore } from "../../../modules/network-store";
import { nobleDigest } from "../../../modules/noble-digest";
import type { KeyValuePort } from "../../../modules/ports";
import {
  decodeCloudMessage, decodeNetworkChange, decodeRequest, decodeResponse, decodeStatus, encodeNetworkChange, encodeRequest,
  encodeResponse, encodeStatus, parseLoginPassword, formatLoginPassword, parseTopic, peekRequestId, MAX_MESSAGE_BYTES, MAX_CONFIG_BYTES,
} from "../../../modules/protocol";
import { MAX_RECORD_PAYLOAD, RecordStore } from "../../../modules/record-store";
import { jsSeal } from "../../../modules/js-seal";
import { openSealed, sealPublicKey } from "../../../modules/seal";
import { nodeSeal } from "../../../hosts/node/node-seal";
import { seedBytes, type Corpus } from "./corpus";
import { onboardingHarnesses, onboardingSeeds } from "./onboarding-fuzz";

/** A decoder under fuzz. */
export interface Harness {
  name: string;
  /** what it drives, for the report */
  target: string;
  /** share of the requested input count this harness runs (default 1; X25519 per input makes `sealed` costly) */
  weight?: number;
  /** true for an error the decoder throws by design */
  expected(error: unknown): boolean;
  /** the recorded seeds it mutates */
  seeds(corpus: Corpus): Uint8Array[];
  /** prepares state (a registry, keys) and returns the per-input function */
  setup(corpus: Corpus): { run(input: Uint8Array): void | Promise<void>; close?(): void | Promise<void> };
}

const isWcm = (e: unknown) => e instanceof WcmError;
const isCloud = (e: unknown) => e instanceof CloudError;
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const utf8 = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8");

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`property: ${message}`);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** A KeyValuePort over a Map, as Preference is on the device. */
class MapKv implements KeyValuePort {
  readonly map = new Map<string, Uint8Array>();
  get(key: string) {
    return this.map.get(key);
  }
  set(key: string, value: Uint8Array) {
    this.map.set(key, value.slice());
  }
  delete(key: string) {
    this.map.delete(key);
  }
}

/** The payloads of the recorded flash records named `name` (both slots). */
function recordPayloads(corpus: Corpus, names: readonly string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const name of names) {
    const kv = new MapKv();
    for (const slot of [0, 1]) {
      const value = corpus.flash[`${name}.${slot}`];
      if (!value) continue;
      kv.map.clear();
      kv.map.set(`${name}.0`, new Uint8Array(Buffer.from(value, "base64")));
      const record = new RecordStore(kv, nobleDigest, name).read();
      if (record) out.push(record.payload);
    }
  }
  return out;
}

/** The recorded sealed network changes (bytes of each `network` response's `sealed`). */
function sealedSeeds(corpus: Corpus): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const response of seedBytes(corpus, "response")) {
    const object = JSON.parse(utf8(response)) as { op?: string; sealed?: string };
    if (object.op === "network" && typeof object.sealed === "string") out.push(fromBase64Url(object.sealed));
  }
  return out;
}

function sealKey(corpus: Corpus): Uint8Array {
  const kv = new MapKv();
  for (const [key, value] of Object.entries(corpus.flash)) kv.map.set(key, new Uint8Array(Buffer.from(value, "base64")));
  const key = new NetworkStore(kv, nobleDigest, corpus.deviceId).loadSealKey();
  if (!key) throw new Error("corpus: the recorded flash holds no seal key");
  return key;
}

/** Writes `payload` as a valid record (right magic, length and checksum) into slot 0 of `name`. */
function writeRecord(kv: MapKv, name: string, payload: Uint8Array): void {
  new RecordStore(kv, nobleDigest, name).write(payload.subarray(0, MAX_RECORD_PAYLOAD));
}

/** Runs a decoder on a JSON payload and checks that what it accepts re-encodes to something it accepts the same way. */
function jsonDecoder<T>(name: string, target: string, seedName: string, decode: (bytes: Uint8Array) => T, encode?: (value: T) => Uint8Array): Harness {
  return {
    name, target, expected: isWcm,
    seeds: (corpus) => seedBytes(corpus, seedName),
    setup: () => ({
      run(input) {
        const value = decode(input);
        if (encode) {
          const again = decode(encode(value));
          check(JSON.stringify(again, bytesAsHex) === JSON.stringify(value, bytesAsHex), `${target}: re-encoding what it accepted changes it`);
        }
      },
    }),
  };
}

function bytesAsHex(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? toHex(value) : value;
}

/** Login rates that never refuse, so every input reaches the proof check. */
const OPEN_BUDGET: Budget = { device: () => true, lot: () => true };

/** A registry in a temporary folder with a secret device and a lot allowing one id. */
function loginRegistry(): { ready: Promise<Registry>; close(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "wcm-fuzz-login-"));
  const ready = (async () => {
    const registry = await Registry.open(dir, new Uint8Array(32).fill(7));
    const services = new CloudServices(registry, "fuzz");
    await services.registerSecretDevice({ deviceId: "fz-dev-1", secretHex: "11".repeat(32) });
    await services.createProvisioningKey({ lot: "fz-lot", allowlist: ["fz-temp-1"] });
    return registry;
  })();
  return {
    ready,
    async close() {
      await (await ready).close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A sequence of frames, each as u16 length + bytes (so length edits reach the framing too). */
function splitFrames(input: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let offset = 0;
  while (offset + 2 <= input.length && frames.length < 64) {
    const length = (input[offset] << 8) | input[offset + 1];
    frames.push(input.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return frames;
}

function joinFrames(frames: readonly Uint8Array[]): Uint8Array {
  const parts: Buffer[] = [];
  for (const frame of frames) {
    const header = Buffer.alloc(2);
    header.writeUInt16BE(frame.length);
    parts.push(header, Buffer.from(frame));
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** The TLS frames of each recorded conversation, peer to server, in order (a reassembly seed each). */
function conversations(corpus: Corpus): Uint8Array[] {
  let current: Uint8Array[] = [];
  const out: Uint8Array[] = [];
  for (const request of seedBytes(corpus, "radiusRequest")) {
    const packet = decodePacket(request);
    const eap = joinEapMessage(packet);
    if (!eap) continue;
    const decoded = decodeEap(eap);
    if (decoded.type === 1) {
      if (current.length > 0) out.push(joinFrames(current));
      current = [];
      continue;
    }
    if ((decoded.type === 13 || decoded.type === 21) && decoded.data.length > 0) current.push(decoded.data);
  }
  if (current.length > 0) out.push(joinFrames(current));
  return out;
}

const MAX_REASSEMBLY = 16_384;

export const HARNESSES: readonly Harness[] = [
  // ------------------------------------------------------------ modules/protocol.ts
  jsonDecoder("request", "protocol.decodeRequest", "request", decodeRequest, encodeRequest),
  jsonDecoder("response", "protocol.decodeResponse", "response", decodeResponse, encodeResponse),
  {
    name: "cloudMessage", target: "protocol.decodeCloudMessage", expected: isWcm,
    seeds: (corpus) => seedBytes(corpus, "cloudMessage"),
    setup: () => ({
      run(input) {
        const message = decodeCloudMessage(input);
        check(!("notice" in message) || input.length <= MAX_MESSAGE_BYTES, "a notice larger than MAX_MESSAGE_BYTES was accepted");
        check(input.length <= MAX_CONFIG_BYTES, "a message larger than MAX_CONFIG_BYTES was accepted");
      },
    }),
  },
  jsonDecoder("status", "protocol.decodeStatus", "status", decodeStatus, encodeStatus),
  {
    name: "peekRequestId", target: "protocol.peekRequestId", expected: () => false,
    seeds: (corpus) => seedBytes(corpus, "request"),
    setup: () => ({
      run(input) {
        const rid = peekRequestId(input);
        check(rid === undefined || /^[A-Za-z0-9_-]{1,32}$/.test(rid), "peekRequestId gave a malformed rid");
      },
    }),
  },
  {
    name: "topic", target: "protocol.parseTopic", expected: () => false,
    seeds: (corpus) => seedBytes(corpus, "topic"),
    setup: () => ({
      run(input) {
        const topic = utf8(input);
        const parsed = parseTopic(topic);
        if (parsed) check(topic.startsWith(`wcm/v1/${parsed.deviceId}/${parsed.kind}`), "parseTopic named a device the topic does not");
      },
    }),
  },
  {
    name: "loginPassword", target: "protocol.parseLoginPassword", expected: isWcm,
    seeds: (corpus) => seedBytes(corpus, "loginPassword"),
    setup: () => ({
      run(input) {
        const text = latin1(input);
        const login = parseLoginPassword(text);
        check(formatLoginPassword(login) === text, "a password it accepted does not format back to itself");
      },
    }),
  },
  {
    name: "networkChange", target: "protocol.decodeNetworkChange (opened sealed plaintext)", expected: isWcm,
    seeds: (corpus) => {
      const key = sealKey(corpus);
      const pub = sealPublicKey(jsSeal, key);
      return sealedSeeds(corpus).map((sealed) => openSealed(nobleDigest, jsSeal, key, pub, corpus.deviceId, sealed)).filter((p): p is Uint8Array => p !== undefined);
    },
    setup: () => ({
      run(input) {
        const change = decodeNetworkChange(input);
        check(JSON.stringify(decodeNetworkChange(encodeNetworkChange(change))) === JSON.stringify(change), "a network change does not round-trip");
      },
    }),
  },
  // ------------------------------------------------------------ other core decoders
  {
    name: "sealed", target: "seal.openSealed + decodeNetworkChange", expected: isWcm, weight: 0.05,
    seeds: sealedSeeds,
    setup: (corpus) => {
      const key = sealKey(corpus);
      const pub = sealPublicKey(jsSeal, key);
      return {
        run(input) {
          const plaintext = openSealed(nobleDigest, jsSeal, key, pub, corpus.deviceId, input);
          // only the recorded blobs themselves may open: any change must fail the tag
          if (plaintext) decodeNetworkChange(plaintext);
        },
      };
    },
  },
  {
    name: "config", target: "config.validateConfig (device JSON)", expected: isWcm,
    seeds: (corpus) => seedBytes(corpus, "config"),
    setup: () => ({
      run(input) {
        let value: unknown;
        try {
          value = JSON.parse(utf8(input));
        } catch {
          // the host's JSON reader refuses it before validateConfig does: counted as refused
          throw new WcmError("CONFIG_INVALID", "not JSON");
        }
        validateConfig(value);
      },
    }),
  },
  {
    name: "bytes", target: "bytes.utf8Decode / fromBase64Url / fromHex", expected: isWcm,
    seeds: (corpus) => [...seedBytes(corpus, "request"), ...seedBytes(corpus, "loginPassword"), ...seedBytes(corpus, "avps")],
    setup: () => {
      const fatal = new TextDecoder("utf-8", { fatal: true });
      return {
        run(input) {
          let reference: string | undefined;
          try {
            reference = fatal.decode(input);
          } catch {
            reference = undefined;
          }
          let ours: string | undefined;
          try {
            ours = utf8Decode(input);
          } catch (error) {
            if (!isWcm(error)) throw error;
          }
          check(ours === reference, "utf8Decode disagrees with TextDecoder (fatal)");
          if (ours !== undefined) check(same(utf8Encode(ours), input), "utf8Encode(utf8Decode(x)) !== x");
          const text = latin1(input);
          try {
            check(toBase64Url(fromBase64Url(text)) === text, "fromBase64Url accepted a non-canonical text");
          } catch (error) {
            if (!isWcm(error)) throw error;
          }
          try {
            check(toHex(fromHex(text)) === text.toLowerCase(), "fromHex does not round-trip");
          } catch (error) {
            if (!isWcm(error)) throw error;
          }
        },
      };
    },
  },
  {
    name: "recordSlot", target: "record-store.RecordStore.read (raw flash slot)", expected: () => false,
    seeds: (corpus) => Object.values(corpus.flash).map((v) => new Uint8Array(Buffer.from(v, "base64"))),
    setup: () => {
      const kv = new MapKv();
      const store = new RecordStore(kv, nobleDigest, "fz");
      return {
        run(input) {
          kv.map.clear();
          kv.map.set("fz.0", input);
          const record = store.read();
          if (record) check(record.payload.length === input.length - 17, "a record's payload length disagrees with its slot");
        },
      };
    },
  },
  {
    name: "credentialRecord", target: "credential-store.loadSecret / nextLoginCounter (checksummed payload)", expected: isWcm,
    seeds: (corpus) => recordPayloads(corpus, ["cred", "ctr"]),
    setup: (corpus) => ({
      run(input) {
        const kv = new MapKv();
        writeRecord(kv, "cred", input);
        writeRecord(kv, "ctr", input);
        const store = new CredentialStore(kv, nobleDigest, corpus.deviceId);
        const secret = store.loadSecret();
        if (secret) check(secret.secret.length >= 16 && secret.secret.length <= 64 && secret.generation >= 1, "loadSecret gave an out-of-range secret");
        const first = store.nextLoginCounter();
        check(Number.isSafeInteger(first) && first >= 1 && store.nextLoginCounter() > first, "login counters not increasing");
      },
    }),
  },
  {
    name: "networkRecord", target: "network-store loaders (checksummed payload)", expected: () => false,
    seeds: (corpus) => recordPayloads(corpus, ["hotspots", "nets", "netkey", "tfloor"]),
    setup: (corpus) => ({
      run(input) {
        const kv = new MapKv();
        for (const name of ["hotspots", "nets", "netkey", "tfloor"]) writeRecord(kv, name, input);
        const store = new NetworkStore(kv, nobleDigest, corpus.deviceId);
        store.loadHotspots();
        const networks = store.loadNetworks();
        check(networks.networks.length <= 4, "more than 4 private networks loaded");
        const key = store.loadSealKey();
        check(key === undefined || key.length === 32, "a seal key that is not 32 bytes");
        const floor = store.loadTimeFloor();
        check(Number.isInteger(floor) && floor >= 0, "a bad time floor");
      },
    }),
  },
  // ------------------------------------------------------------ cloud/
  {
    name: "cloudLogin", target: "auth/rules.mqttRules (CONNECT password bytes)", expected: () => false,
    seeds: (corpus) => seedBytes(corpus, "loginPassword"),
    setup: () => {
      const { ready, close } = loginRegistry();
      return {
        async run(input) {
          const registry = await ready;
          const id = latin1(input).startsWith("v1:t") ? "fz-temp-1" : "fz-dev-1";
          const result = await mqttRules(registry, nodeDigest, { clientId: id, username: id, password: input, peerCertificate: undefined }, OPEN_BUDGET);
          check(!result.ok, "a mutated password logged in");
        },
        close,
      };
    },
  },
  {
    name: "hotspotLogin", target: "auth/rules.hotspotRules (PAP User-Password from the TTLS tunnel)", expected: () => false,
    seeds: (corpus) => seedBytes(corpus, "avps").map((avps) => new Uint8Array(readPap(Buffer.from(avps)).password)),
    setup: () => {
      const { ready, close } = loginRegistry();
      return {
        async run(input) {
          const registry = await ready;
          const id = input.length % 2 === 0 ? "fz-dev-1" : "fz-temp-1";
          const result = await hotspotRules(registry, nodeDigest, id, input, OPEN_BUDGET);
          check(!result.ok, "a mutated hotspot password was accepted");
        },
        close,
      };
    },
  },
  {
    name: "csv", target: "csv.parseRegistrationCsv", expected: isCloud,
    seeds: (corpus) => seedBytes(corpus, "csv"),
    setup: () => ({ run: (input) => void parseRegistrationCsv(utf8(input)) }),
  },
  {
    name: "bundle", target: "bundle.parseBundle", expected: isCloud,
    seeds: (corpus) => seedBytes(corpus, "bundle"),
    setup: () => ({
      run(input) {
        const { header, rows } = parseBundle(utf8(input));
        check(rows.length === header.count, "row count differs from the header's");
      },
    }),
  },
  {
    name: "mqttGuard", target: "packet-guard.PacketSizeScanner (whole and split, against mqtt-packet)", expected: () => false,
    seeds: (corpus) => {
      // whole recorded sessions: every packet the device sent, in order
      const packets = seedBytes(corpus, "mqttPacket");
      return [...packets, Buffer.concat(packets)];
    },
    setup: () => ({
      run(input) {
        const max = 512;
        const whole = new PacketSizeScanner(max).feed(input);
        const split = new PacketSizeScanner(max);
        const cut = input.length === 0 ? 0 : (input[0] * 7 + input.length) % (input.length + 1);
        const parts = [input.subarray(0, cut), input.subarray(cut, cut + 1), input.subarray(cut + 1)];
        let splitOk = true;
        for (const part of parts) if (splitOk) splitOk = split.feed(part);
        check(whole === splitOk, "the guard's verdict depends on how the bytes are split");
        check(whole === referenceGuard(input, max), "the guard disagrees with the reference reading of the fixed headers");
        if (whole) {
          // what the guard lets through, the broker's own parser (mqtt-packet) never reads as a packet over the bound
          const parser = mqttPacket.parser({ protocolVersion: 4 });
          let biggest = 0;
          parser.on("packet", (packet) => void (biggest = Math.max(biggest, (packet as { length?: number }).length ?? 0)));
          parser.on("error", () => undefined);
          parser.parse(Buffer.from(input));
          check(biggest <= max, `the guard let through a packet mqtt-packet reads as ${biggest} bytes`);
        }
      },
    }),
  },
  // ------------------------------------------------------------ cloud/radius/
  {
    name: "radiusPacket", target: "radius/packet.decodePacket + Message-Authenticator + Response Authenticator", expected: (e) => e instanceof RadiusCodecError,
    seeds: (corpus) => [...seedBytes(corpus, "radiusRequest"), ...seedBytes(corpus, "radiusResponse")],
    setup: (corpus) => {
      const secret = Buffer.from(corpus.nasSecret);
      return {
        run(input) {
          const packet = decodePacket(input);
          verifyMessageAuthenticator(packet, secret);
          verifyResponse(packet, Buffer.alloc(16), secret);
          joinEapMessage(packet);
          // what decodes re-encodes to the same bytes (up to the declared length)
          const again = encodePacket(packet.code, packet.identifier, packet.authenticator, packet.attributes);
          check(same(again, packet.raw), "decodePacket/encodePacket do not round-trip");
        },
      };
    },
  },
  {
    name: "eap", target: "radius/eap.decodeEap + decodeTlsFrame", expected: (e) => e instanceof EapCodecError,
    seeds: (corpus) => seedBytes(corpus, "eap"),
    setup: () => ({
      run(input) {
        const packet = decodeEap(input);
        check(same(encodeEap(packet), input), "decodeEap/encodeEap do not round-trip");
        if (packet.type === 13 || packet.type === 21) decodeTlsFrame(packet.data);
      },
    }),
  },
  {
    name: "tlsReassembly", target: "radius/fragments.FragmentReceiver over decodeTlsFrame", expected: (e) => e instanceof EapCodecError,
    seeds: conversations,
    setup: () => ({
      run(input) {
        const receiver = new FragmentReceiver(MAX_REASSEMBLY);
        for (const data of splitFrames(input)) {
          const frame = decodeTlsFrame(Buffer.from(data));
          const whole = receiver.add(frame);
          if (whole) {
            check(whole.length <= MAX_REASSEMBLY, "reassembled past the bound");
            if (frame.flags & TLS_FLAG.more) throw new Error("property: a message completed on an M fragment");
          }
        }
      },
    }),
  },
  {
    name: "avps", target: "radius/avp.decodeAvps + readPap (TTLS inner AVPs)", expected: (e) => e instanceof AvpError,
    seeds: (corpus) => seedBytes(corpus, "avps"),
    setup: () => ({
      run(input) {
        const avps = decodeAvps(Buffer.from(input));
        check(avps.length <= 32, "more than MAX_AVPS decoded");
        const pap = readPap(Buffer.from(input));
        check(pap.password.length <= 253 && pap.userName.length <= 253, "a PAP User-Name or User-Password over 253 bytes");
      },
    }),
  },
  // ------------------------------------------------------------ modules/onboarding (local service)
  ...Object.entries(onboardingHarnesses(nobleDigest, nodeSeal, true)).map(([name, h]): Harness => ({
    name,
    target: name === "onboardService" ? "onboarding/machine step: every request of the local service (session open, handshake pending)" : `onboarding/messages ${name}`,
    expected: name === "onboardService" ? () => false : isWcm,
    ...(name === "onboardService" ? { weight: 0.3 } : {}),
    seeds: () => onboardingSeeds(nobleDigest, nodeSeal)[h.seeds],
    setup: () => ({ run: h.run }),
  })),
];

/** An independent reading of MQTT fixed headers: false when a packet announces more than `max` or a malformed length. */
function referenceGuard(bytes: Uint8Array, max: number): boolean {
  let i = 0;
  while (i < bytes.length) {
    i++; // type byte
    let length = 0;
    let n = 0;
    for (;;) {
      if (i >= bytes.length) return true; // the length continues in bytes not seen yet
      const byte = bytes[i++];
      length += (byte & 0x7f) * 128 ** n;
      n++;
      if (length > max) return false;
      if (!(byte & 0x80)) break;
      if (n === 4) return false;
    }
    i += length;
  }
  return true;
}

/** Harnesses that exist only to test the machinery (decoders.test.ts): not run by `npm run fuzz`. */
const PROBES: readonly Harness[] = [
  {
    name: "hang-probe", target: "a decoder that never returns on some input", expected: () => false,
    seeds: (corpus) => seedBytes(corpus, "status"),
    setup: () => ({
      run(input) {
        if (input.length > 60) for (;;);
      },
    }),
  },
];

/** Seeds of the portable core harnesses (core-fuzz.ts, run on XS), as hex. */
export function coreSeeds(corpus: Corpus): Record<string, string[]> {
  const hexOf = (list: Uint8Array[]) => list.map((b) => Buffer.from(b).toString("hex"));
  const networkChange = HARNESSES.find((h) => h.name === "networkChange")!.seeds(corpus);
  const out: Record<string, string[]> = {
    networkChange: hexOf(networkChange),
    flashSlot: hexOf(Object.values(corpus.flash).map((v) => new Uint8Array(Buffer.from(v, "base64")))),
    credentialPayload: hexOf(recordPayloads(corpus, ["cred", "ctr"])),
    networkPayload: hexOf(recordPayloads(corpus, ["hotspots", "nets", "netkey", "tfloor"])),
  };
  for (const name of ["request", "response", "cloudMessage", "status", "topic", "loginPassword", "config"]) out[name] = hexOf(seedBytes(corpus, name));
  for (const [name, list] of Object.entries(onboardingSeeds(nobleDigest, nodeSeal))) out[name] = hexOf(list);
  return out;
}

/** The harness called `name`. */
export function harness(name: string): Harness {
  const found = HARNESSES.find((h) => h.name === name) ?? PROBES.find((h) => h.name === name);
  if (!found) throw new Error(`no harness ${name} (have ${HARNESSES.map((h) => h.name).join(", ")})`);
  return found;
}
