/*
 * Fuzz harnesses of the local onboarding service (modules/onboarding), with no
 * Node API so they run on XS too (core-fuzz.ts) as well as on Node
 * (harnesses.ts). The seeds are a real exchange: the owner's client side of
 * the handshake and three sealed calls, computed by the real code with a
 * deterministic random source, so the service harness starts from a state
 * with that session open and a mutated seed reaches every check in turn
 * (size, JSON, fields, sid, tag, call number, plaintext).
 * The machine is pure, so every input steps the same starting state.
 */
import { utf8Encode } from "../../../modules/bytes";
import { cpaceGenerator, cpaceKeys, sealCall } from "../../../modules/onboarding/cpace";
import {
  DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, onboardingStep, type OnboardingContext, type OnboardingState,
} from "../../../modules/onboarding/machine";
import {
  encodeCall, encodeCallRequest, encodeCallResponse, encodeConfirm, encodeStart,
  parseCall, parseCallRequest, parseCallResponse, parseStart, type CallRequest,
} from "../../../modules/onboarding/messages";
import type { DigestPort, SealPort } from "../../../modules/ports";

const CODE = "1RVVWN6H7BH6J";
const DEVICE = "fz-onboard-1";

/** A deterministic random source (SHA-256 of a counter). */
function counterRandom(digest: DigestPort, label: string): (length: number) => Uint8Array {
  let counter = 0;
  return (length) => {
    const out = new Uint8Array(length);
    for (let filled = 0; filled < length; filled += 32) out.set(digest.sha256(utf8Encode(`${label}/${counter++}`)).subarray(0, Math.min(32, length - filled)), filled);
    return out;
  };
}

function fail(message: string): never {
  throw new Error(`property: ${message}`);
}

/** The session-open state, the pending-handshake state and the seeds, from one real exchange. */
export function onboardingFixture(digest: DigestPort, seal: SealPort) {
  const ctx: OnboardingContext = { digest, seal, random: counterRandom(digest, "device"), now: 1000, deviceId: DEVICE, code: CODE, times: DEFAULT_ONBOARDING_TIMES };
  const clientRandom = counterRandom(digest, "client");
  let state: OnboardingState = onboardingStep(INITIAL_ONBOARDING, { type: "start", asked: true }, ctx).state;
  state = onboardingStep(state, { type: "scan", results: [{ ssid: "Home-5G", bssid: "02:00:00:00:00:09", rssi: -50, channel: 6, security: "psk" }] }, ctx).state;
  const sid = clientRandom(16);
  const ya = clientRandom(32);
  ya[0] &= 0x7f;
  const a = seal.p256SharedSecret(ya, cpaceGenerator(digest, CODE, DEVICE, sid));
  const start = encodeStart({ sid, a });
  const started = onboardingStep(state, { type: "request", id: 1, request: { method: "POST", path: "/v1/start", body: start } }, ctx);
  const pending = started.state;
  const session = pending.pending!;
  const keys = cpaceKeys(digest, seal, DEVICE, sid, ya, a, deviceShareOf(started.effects), deviceShareOf(started.effects))!;
  const confirm = encodeConfirm({ sid, t: keys.clientTag });
  const open = onboardingStep(pending, { type: "request", id: 2, request: { method: "POST", path: "/v1/confirm", body: confirm } }, ctx).state;
  if (!open.session || session.sid.length !== 16) fail("fixture: the handshake did not open a session");
  const requests: CallRequest[] = [{ op: "status" }, { op: "scan" }, { op: "networks", networks: [{ ssid: "Home-5G", password: "correct horse battery", priority: 50 }] }];
  const plaintexts = requests.map(encodeCallRequest);
  const calls = plaintexts.map((p, i) => encodeCall({ sid, n: i + 1, c: sealCall(seal, keys, "c2s", sid, i + 1, p) }));
  const answers = [
    encodeCallResponse({ op: "status", state: "JOINED", ssid: "Home-5G", online: true }),
    encodeCallResponse({ op: "scan", networks: [{ ssid: "Home-5G", rssi: -50, security: "psk" }] }),
    encodeCallResponse({ op: "networks", stored: 1 }),
    encodeCallResponse({ op: "status", state: "FAILED", ssid: "Home-5G", reason: "INCORRECT-PASSWORD", online: false }),
  ];
  return { ctx, pending, open, seeds: { onboardStart: [start], onboardConfirm: [confirm], onboardCall: calls, onboardPlaintext: plaintexts, onboardAnswer: answers } };
}

function deviceShareOf(effects: ReturnType<typeof onboardingStep>["effects"]): Uint8Array {
  const respond = effects.find((e) => e.type === "respond");
  if (!respond || respond.type !== "respond" || respond.status !== 200) fail("fixture: start refused");
  const text = new TextDecoder().decode(respond.body);
  const b = /"b":"([A-Za-z0-9_-]+)"/.exec(text)![1];
  const bin = b.replace(/-/g, "+").replace(/_/g, "/");
  const bytes: number[] = [];
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let bits = 0, value = 0;
  for (const c of bin) {
    value = (value << 6) | alphabet.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 255);
    }
  }
  return Uint8Array.from(bytes);
}

const STATUSES = [200, 400, 401, 403, 404, 405, 409, 410, 413, 423];

/**
 * The onboarding harnesses: parser round trips, and the service (a state with a
 * session open, or one with a handshake pending) stepping each input as a body.
 * `handshakes`: also feed inputs to /v1/start (a full PAKE per input: off on XS).
 */
export function onboardingHarnesses(digest: DigestPort, seal: SealPort, handshakes: boolean): Record<string, { seeds: string; run(input: Uint8Array): void }> {
  let fixture: ReturnType<typeof onboardingFixture> | undefined;
  const get = () => (fixture ??= onboardingFixture(digest, seal));
  const roundTrip = <T>(decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array, what: string) => (input: Uint8Array) => {
    const value = decode(input);
    const again = decode(encode(value));
    if (JSON.stringify(again, hexReplacer) !== JSON.stringify(value, hexReplacer)) fail(`${what}: re-encoding what it accepted changes it`);
  };
  const service = (input: Uint8Array) => {
    const f = get();
    const text = new TextDecoder().decode(input.subarray(0, 64));
    const path = /"a"/.test(text) && handshakes ? "/v1/start" : /"t"/.test(text) ? "/v1/confirm" : "/v1/call";
    const from = path === "/v1/call" ? f.open : f.pending;
    const step = onboardingStep(from, { type: "request", id: 9, request: { method: "POST", path, body: input } }, f.ctx);
    const responds = step.effects.filter((e) => e.type === "respond");
    const stores = step.effects.filter((e) => e.type === "store");
    if (responds.length + stores.length !== 1) fail(`${path}: ${responds.length} answers and ${stores.length} stores for one request`);
    const r = responds[0];
    if (r && r.type === "respond" && !STATUSES.includes(r.status)) fail(`${path}: status ${r.status}`);
    if (r && r.type === "respond" && r.body.length > 2048) fail(`${path}: answer of ${r.body.length} bytes`);
    if (path === "/v1/call" && step.state.failures !== from.failures) fail("a call changed the failure count");
    if (path === "/v1/confirm" && step.state.failures > from.failures) fail("a confirmation counted a failure");
    if (path === "/v1/confirm" && step.state.failures < from.failures && !step.state.session) fail("failures cleared without a session");
    if (path === "/v1/start" && step.state.failures > from.failures + 1) fail("a start counted more than one failure");
    if (r && r.type === "respond" && r.status !== 200 && (step.state.session !== from.session || step.state.phase !== from.phase)) fail(`${path}: a refused request changed the state`);
  };
  return {
    onboardStart: { seeds: "onboardStart", run: roundTrip(parseStart, encodeStart, "parseStart") },
    onboardCall: { seeds: "onboardCall", run: roundTrip(parseCall, encodeCall, "parseCall") },
    onboardPlaintext: { seeds: "onboardPlaintext", run: roundTrip(parseCallRequest, encodeCallRequest, "parseCallRequest") },
    onboardAnswer: { seeds: "onboardAnswer", run: (input) => void parseCallResponse(input) },
    onboardService: { seeds: "onboardService", run: service },
  };
}

function hexReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    let out = "";
    for (let i = 0; i < value.length; i++) out += (value[i] < 16 ? "0" : "") + value[i].toString(16);
    return out;
  }
  return value;
}

/** The seeds of each onboarding harness (the service mutates every recorded body). */
export function onboardingSeeds(digest: DigestPort, seal: SealPort): Record<string, Uint8Array[]> {
  const s = onboardingFixture(digest, seal).seeds;
  return { ...s, onboardService: [...s.onboardStart, ...s.onboardConfirm, ...s.onboardCall] };
}

