/*
 * The workloads bench/xs-footprint.ts meters inside XS. The bundle installs
 * `globalThis.wcmBench`; each step is then run in its own xsnap crank so its
 * compute and heap figures are its own. Results stay reachable in `kept` until
 * the next step, so "retained" heap is what the step leaves alive.
 */
import { fromHex } from "../../modules/bytes";
import { validateConfig } from "../../modules/config";
import { CredentialStore } from "../../modules/credential-store";
import { deriveCloudLoginKey, deriveCommitProof, deriveLoginProof, deriveTemporarySecret, deriveWrapKey, unwrapSecret, wrapSecret } from "../../modules/derive";
import { ConnectionManager } from "../../modules/manager";
import { nobleDigest } from "../../modules/noble-digest";
import type { DigestPort } from "../../modules/ports";
import { openSealed, sealPublicKey } from "../../modules/seal";
import { sealTo } from "../../modules/seal-to";
import { MemoryFlash, TestBed, testRandom } from "../../test/support/scenarios";
import { jsSeal } from "../../modules/js-seal";
import { modelDigest, modelPorts, modelSeal } from "./device-model";
import { resetDeviceSteps, device } from "./meter-split";
import { cpaceGenerator, cpaceKeys, cpaceShare, sealCall } from "../../modules/onboarding/cpace";
import { DEFAULT_ONBOARDING_TIMES, INITIAL_ONBOARDING, onboardingStep, type OnboardingContext, type OnboardingState } from "../../modules/onboarding/machine";
import { encodeCall, encodeCallRequest, encodeConfirm, encodeStart, parseStartAnswer } from "../../modules/onboarding/messages";

const KEY = fromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff");
const SECRET = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----";

/** Counts the digest operations a side performs. */
function counting(digest: DigestPort): DigestPort & { hmacs: number } {
  const port = {
    hmacs: 0,
    sha256: (data: Uint8Array) => digest.sha256(data),
    hmacSha256: (key: Uint8Array, data: Uint8Array) => {
      port.hmacs++;
      return digest.hmacSha256(key, data);
    },
  };
  return port;
}

let kept: unknown;

function bootToOnline(option: "secret" | "temporary"): string {
  const bed = new TestBed(nobleDigest, "bench");
  if (option === "secret") bed.cloud.registerSecret("bench-0001", SECRET);
  else bed.cloud.addProvisioningKey(KEY);
  const cloud = { host: "cloud.example", port: 8883, ca: CA };
  const config = validateConfig(option === "secret"
    ? { deviceId: "bench-0001", option, secret: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", cloud }
    : { deviceId: "bench-0001", option, provisioningKey: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff", cloud });
  const digest = counting(nobleDigest);
  const manager = new ConnectionManager(config, {
    digest,
    seal: jsSeal,
    random: testRandom(nobleDigest, "bench/device"),
    clock: { now: () => bed.time.now },
    scheduler: bed.time,
    kv: new MemoryFlash(),
    link: bed.cloud.linkFactory(),
  });
  manager.start();
  bed.time.advance(1000);
  const status = manager.status;
  if (status.state !== "ONLINE") throw new Error(`bench boot ended ${status.state}`);
  kept = { bed, manager };
  return `${status.state}/${status.credential}, device HMACs ${digest.hmacs}`;
}

/**
 * An ESP32 first boot, power-on to PERMANENT and ONLINE: scan, select the
 * partner hotspot, join it (TTLS-PAP, password derived from the temporary
 * secret), log in `t`, issue, commit, then the first `hello` (the sealing key
 * pair is made here) and the profile fetch it calls for. Only the device's
 * JavaScript counts (bench/xs/device-model.ts): the cloud, radio, flash and
 * native digest do not.
 */
function firstBoot(): string {
  const bed = new TestBed(nobleDigest, "bench");
  bed.cloud.addProvisioningKey(KEY);
  const radius = { serverName: "radius.localhost", ca: "-----BEGIN CERTIFICATE-----\nMIIBradiusCA\n-----END CERTIFICATE-----" };
  const zipkey = { name: "zipkey", roamingConsortium: ["5a03ba"], radius };
  bed.cloud.setHotspots([zipkey, { name: "partner", ssid: "Partner", radius }]);
  const radio = bed.radio();
  radio.add({ ssid: "Neighbour", bssid: "02:00:00:00:00:01", rssi: -30, security: "psk", psk: "not-ours-12" });
  radio.add(bed.hotspotAp("ZipKey", "02:00:00:00:00:02", -60, { roamingConsortium: ["5A03BA"] }));
  const config = validateConfig({
    deviceId: "bench-0001", option: "temporary", provisioningKey: "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff",
    cloud: { host: "cloud.example", port: 8883, ca: CA }, hotspots: [zipkey], buildTime: 1_767_225_600,
  });
  const ports = modelPorts({
    random: testRandom(nobleDigest, "bench/device"),
    clock: { now: () => bed.time.now },
    scheduler: bed.time,
    kv: new MemoryFlash(),
    link: radio.gate(bed.cloud.linkFactory()),
    network: radio,
  });
  resetDeviceSteps();
  const manager = device(() => new ConnectionManager(config, ports));
  device(() => manager.start());
  bed.time.advance(5000);
  const steps = resetDeviceSteps();
  const status = manager.status;
  if (status.state !== "ONLINE" || status.credential !== "permanent") throw new Error(`bench first boot ended ${status.state}/${status.credential}`);
  const record = bed.cloud.devices.get("bench-0001");
  if (!record?.sealKey) throw new Error("bench first boot: no hello with the sealing key");
  if (manager.hotspots.profiles.length !== 2) throw new Error("bench first boot: profiles not fetched");
  kept = { bed, manager };
  return JSON.stringify({ deviceSteps: steps, note: `${status.state}/${status.credential} on ${status.network?.ssid}, hello + config` });
}

const NET_KEY = fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
const CHANGE = new TextEncoder().encode('{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}');
let sealedChange: Uint8Array | undefined;
let NET_PUBLIC: Uint8Array = new Uint8Array(0);

/** Local onboarding, device side: one handshake (start + confirm), then scan and networks calls; the owner's side unmetered. */
function onboarding(part: "handshake" | "calls"): string {
  const random = testRandom(nobleDigest, "bench/onboard").bytes;
  const ctx: OnboardingContext = { digest: modelDigest, seal: modelSeal, random, now: 0, deviceId: "bench-0001", code: "1RVVWN6H7BH6J", times: DEFAULT_ONBOARDING_TIMES };
  const step = (state: OnboardingState, path: string, body: Uint8Array) => device(() => onboardingStep(state, { type: "request", id: 1, request: { method: "POST", path, body } }, ctx));
  let state = onboardingStep(INITIAL_ONBOARDING, { type: "start", asked: true }, ctx).state;
  state = onboardingStep(state, { type: "scan", results: [{ ssid: "Home", bssid: "02:00:00:00:00:01", rssi: -50, channel: 6, security: "psk" }] }, ctx).state;
  const sid = random(16);
  const mine = cpaceShare(jsSeal, cpaceGenerator(nobleDigest, "1RVVWN6H7BH6J", "bench-0001", sid), random);
  resetDeviceSteps();
  const started = step(state, "/v1/start", encodeStart({ sid, a: mine.share }));
  const respond = started.effects.find((e) => e.type === "respond");
  if (!respond || respond.type !== "respond" || respond.status !== 200) throw new Error("bench onboarding: start refused");
  const answer = parseStartAnswer(respond.body);
  const keys = cpaceKeys(nobleDigest, jsSeal, "bench-0001", sid, mine.scalar, mine.share, answer.b, answer.b)!;
  const open = step(started.state, "/v1/confirm", encodeConfirm({ sid, t: keys.clientTag })).state;
  if (!open.session) throw new Error("bench onboarding: no session");
  const handshake = resetDeviceSteps();
  const requests = [encodeCallRequest({ op: "scan" }), encodeCallRequest({ op: "networks", networks: [{ ssid: "Home", password: "correct horse battery", priority: 50 }] })];
  let s2 = open;
  requests.forEach((plaintext, i) => {
    s2 = step(s2, "/v1/call", encodeCall({ sid, n: i + 1, c: sealCall(jsSeal, keys, "c2s", sid, i + 1, plaintext) })).state;
  });
  const calls = resetDeviceSteps();
  kept = s2;
  return part === "handshake"
    ? JSON.stringify({ deviceSteps: handshake, note: "CPace: encode_to_curve + 1 lift in the core; 3 ECDH, HKDF, 2 HMACs native" })
    : JSON.stringify({ deviceSteps: calls, note: "scan + networks calls: open, parse, seal the answer (AES-GCM native)" });
}

const steps: Record<string, () => string> = {
  onboardHandshake: () => onboarding("handshake"),
  onboardCalls: () => onboarding("calls"),
  /** nothing: the cost of a crank */
  baseline: () => "",
  temporarySecret: () => {
    kept = deriveTemporarySecret(nobleDigest, KEY, "bench-0001");
    return "1 HMAC";
  },
  sealKeyPair: () => {
    resetDeviceSteps();
    kept = device(() => sealPublicKey(modelSeal, NET_KEY));
    return JSON.stringify({ deviceSteps: resetDeviceSteps(), note: "P-256 public key (1 ECDH)" });
  },
  openSealed: () => {
    if (!sealedChange) throw new Error("run prepareSealed first");
    const digest = counting(modelDigest);
    resetDeviceSteps();
    const opened = device(() => openSealed(digest, modelSeal, NET_KEY, NET_PUBLIC, "bench-0001", sealedChange as Uint8Array, "network"));
    const steps = resetDeviceSteps();
    if (!opened) throw new Error("openSealed failed");
    kept = opened;
    return JSON.stringify({ deviceSteps: steps, note: `${CHANGE.length}-byte change: 1 ECDH, AES-GCM, ${digest.hmacs} HMACs` });
  },
  loginProof: () => {
    const loginKey = deriveCloudLoginKey(nobleDigest, SECRET);
    kept = deriveLoginProof(nobleDigest, loginKey, "bench-0001", "s", 42);
    return "2 HMACs (login key + proof)";
  },
  issuanceDeviceSide: () => {
    // what the device does with an issue response: unwrap, store in two slots, prove
    const wrapKey = deriveWrapKey(nobleDigest, SECRET);
    const nonce = new Uint8Array(16).fill(7);
    const wrapped = wrapSecret(nobleDigest, wrapKey, "bench-0001", nonce, KEY); // the cloud's half, for input
    const secret = unwrapSecret(nobleDigest, wrapKey, "bench-0001", nonce, wrapped);
    if (!secret) throw new Error("unwrap failed");
    const store = new CredentialStore(new MemoryFlash(), nobleDigest, "bench-0001");
    store.saveSecret({ deviceId: "bench-0001", secret, generation: 1, confirmed: false });
    kept = deriveCommitProof(nobleDigest, secret, "bench-0001", 1);
    store.saveSecret({ deviceId: "bench-0001", secret, generation: 1, confirmed: true });
    return "incl. the cloud-side wrap (2 HMACs) used as input";
  },
  bootSecret: () => bootToOnline("secret"),
  bootTemporary: () => bootToOnline("temporary"),
  firstBoot,
  release: () => {
    kept = undefined;
    return "";
  },
  /** the cloud's half of openSealed (sealTo), made in its own unmetered crank */
  prepareSealed: () => {
    NET_PUBLIC = sealPublicKey(jsSeal, NET_KEY);
    sealedChange = sealTo(nobleDigest, jsSeal, NET_PUBLIC, "bench-0001", CHANGE, SECRET, "network");
    return "";
  },
};

(globalThis as unknown as { wcmBench: unknown }).wcmBench = {
  run(name: string): void {
    const step = steps[name];
    if (!step) throw new Error(`no step ${name}`);
    const note = step();
    (globalThis as unknown as { issueCommand(buffer: ArrayBuffer): ArrayBuffer }).issueCommand(new TextEncoder().encode(note).buffer as ArrayBuffer);
  },
};
