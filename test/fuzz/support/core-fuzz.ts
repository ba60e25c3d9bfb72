/*
 * The device-side decoders fuzzed with no Node API, so the same loop runs on
 * the XS engine the firmware runs on (test/fuzz/xs.test.ts bundles it for
 * xsnap) as well as on Node: the protocol decoders, the login password, topics,
 * config, the byte codecs and the flash record loaders. An exception that is
 * not a WcmError (an XS difference in JSON, RegExp or typed arrays would show
 * here first) is a crash; the input is kept as hex.
 */
import { fromBase64Url, fromHex, toBase64Url, utf8Decode } from "../../../modules/bytes";
import { validateConfig } from "../../../modules/config";
import { CredentialStore } from "../../../modules/credential-store";
import { WcmError } from "../../../modules/errors";
import { NetworkStore } from "../../../modules/network-store";
import type { DigestPort, KeyValuePort } from "../../../modules/ports";
import {
  decodeCloudMessage, decodeNetworkChange, decodeRequest, decodeResponse, decodeStatus, parseLoginPassword, parseTopic, peekRequestId,
} from "../../../modules/protocol";
import { MAX_RECORD_PAYLOAD, RecordStore } from "../../../modules/record-store";
import { jsSeal } from "../../../modules/js-seal";
import { mutate, Prng } from "./mutate";
import { onboardingHarnesses } from "./onboarding-fuzz";

/** Seeds per core harness, as hex. */
export type CoreSeeds = Record<string, string[]>;

/** What one core harness did. */
export interface CoreReport {
  harness: string;
  inputs: number;
  accepted: number;
  refused: number;
  crashes: { detail: string; inputHex: string }[];
}

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

const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);
const latin1 = (bytes: Uint8Array) => {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
  return out;
};

function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
  return out;
}

/** The core harnesses: which recorded seeds each mutates (names of the corpus), and the call. */
export function coreHarnesses(digest: DigestPort, deviceId: string): Record<string, { seeds: string; run(input: Uint8Array): void }> {
  // the local onboarding service too, with no handshake per input (P-256 in BigInt on XS is slow)
  const onboarding = onboardingHarnesses(digest, jsSeal, false);
  const record = (names: readonly string[], input: Uint8Array) => {
    const kv = new MapKv();
    for (const name of names) new RecordStore(kv, digest, name).write(input.subarray(0, MAX_RECORD_PAYLOAD));
    return kv;
  };
  return {
    request: { seeds: "request", run: (input) => void decodeRequest(input) },
    response: { seeds: "response", run: (input) => void decodeResponse(input) },
    cloudMessage: { seeds: "cloudMessage", run: (input) => void decodeCloudMessage(input) },
    status: { seeds: "status", run: (input) => void decodeStatus(input) },
    peekRequestId: { seeds: "request", run: (input) => void peekRequestId(input) },
    topic: { seeds: "topic", run: (input) => void parseTopic(text(input)) },
    loginPassword: { seeds: "loginPassword", run: (input) => void parseLoginPassword(latin1(input)) },
    networkChange: { seeds: "networkChange", run: (input) => void decodeNetworkChange(input) },
    config: {
      seeds: "config",
      run(input) {
        let value: unknown;
        try {
          value = JSON.parse(text(input));
        } catch {
          throw new WcmError("CONFIG_INVALID", "not JSON");
        }
        validateConfig(value);
      },
    },
    bytes: {
      seeds: "loginPassword",
      run(input) {
        for (const step of [() => utf8Decode(input), () => toBase64Url(fromBase64Url(latin1(input))), () => fromHex(latin1(input))]) {
          try {
            step();
          } catch (error) {
            if (!(error instanceof WcmError)) throw error;
          }
        }
      },
    },
    recordSlot: {
      seeds: "flashSlot",
      run(input) {
        const kv = new MapKv();
        kv.map.set("fz.0", input);
        new RecordStore(kv, digest, "fz").read();
      },
    },
    credentialRecord: {
      seeds: "credentialPayload",
      run(input) {
        const store = new CredentialStore(record(["cred", "ctr"], input), digest, deviceId);
        store.loadSecret();
        store.nextLoginCounter();
      },
    },
    networkRecord: {
      seeds: "networkPayload",
      run(input) {
        const store = new NetworkStore(record(["hotspots", "nets", "netkey", "tfloor"], input), digest, deviceId);
        store.loadHotspots();
        store.loadNetworks();
        store.loadSealKey();
        store.loadTimeFloor();
      },
    },
    ...onboarding,
  };
}

/** Runs `count` mutated inputs through every core harness that has seeds. */
export function runCoreFuzz(digest: DigestPort, deviceId: string, seeds: CoreSeeds, count: number, seed: number): CoreReport[] {
  const reports: CoreReport[] = [];
  for (const [name, harness] of Object.entries(coreHarnesses(digest, deviceId))) {
    const list = (seeds[harness.seeds] ?? []).map((h) => fromHex(h));
    if (list.length === 0) continue;
    const rng = new Prng(seed + name.length * 7919);
    const report: CoreReport = { harness: name, inputs: 0, accepted: 0, refused: 0, crashes: [] };
    for (let i = 0; i < count; i++) {
      const input = mutate(list, rng);
      report.inputs++;
      try {
        harness.run(input);
        report.accepted++;
      } catch (error) {
        if (error instanceof WcmError) report.refused++;
        else if (report.crashes.length < 4) report.crashes.push({ detail: `${(error as Error)?.name}: ${(error as Error)?.message}`, inputHex: hex(input).slice(0, 4000) });
      }
    }
    reports.push(report);
  }
  return reports;
}
