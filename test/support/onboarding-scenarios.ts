/*
 * Local onboarding through the connection manager, written without Node APIs
 * so the same scenarios run on Node (test/onboarding-manager.test.ts) and inside
 * XS (test/xs-core.test.ts, through SCENARIOS). The owner's client is driven
 * synchronously here (the fake SoftAP answers inside the call), with the same
 * cpace.ts and messages.ts the real client uses.
 */
import { fromHex, utf8Decode } from "../../modules/bytes";
import { ConnectionManager } from "../../modules/manager";
import { jsSeal } from "../../modules/js-seal";
import { NetworkStore } from "../../modules/network-store";
import { cpaceGenerator, cpaceKeys, cpaceShare, openCall, sealCall, type OnboardKeys } from "../../modules/onboarding/cpace";
import { parseLabelCode } from "../../modules/onboarding/label-code";
import type { LocalRequest } from "../../modules/onboarding/machine";
import {
  encodeCall, encodeCallRequest, encodeConfirm, encodeStart, parseCallAnswer, parseCallResponse, parseStartAnswer, type CallRequest, type CallResponse,
} from "../../modules/onboarding/messages";
import type { OnboardingPort } from "../../modules/onboarding/runner";
import type { DigestPort } from "../../modules/ports";
import { MemoryFlash, TestBed, testRandom } from "./scenarios";

const SECRET = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const CODE = "1RVV-WN6H-7BH6-J2";

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** A SoftAP port that keeps the handler, so the test is the phone. */
class FakeSoftAp implements OnboardingPort {
  ssid: string | undefined;
  opens = 0;
  closes = 0;
  #handler: ((request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void) | undefined;
  open(ssid: string, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void {
    this.ssid = ssid;
    this.opens++;
    this.#handler = handler;
  }
  close(): void {
    this.closes++;
    this.ssid = undefined;
    this.#handler = undefined;
  }
  get up(): boolean {
    return this.#handler !== undefined;
  }
  send(path: string, body: Uint8Array): { status: number; body: Uint8Array } {
    let answer: { status: number; body: Uint8Array } = { status: 0, body: new Uint8Array(0) };
    if (!this.#handler) return { status: 503, body: new Uint8Array(0) };
    this.#handler({ method: "POST", path, body }, (status, b) => {
      answer = { status, body: b };
    });
    return answer;
  }
}

/** The owner's phone, synchronous: handshake, then sealed calls. */
class SyncOwner {
  #keys: OnboardKeys | undefined;
  #sid: Uint8Array = new Uint8Array(0);
  #n = 0;
  constructor(readonly ap: FakeSoftAp, readonly digest: DigestPort, readonly random: (n: number) => Uint8Array) {}

  authenticate(deviceId: string, printed: string): boolean {
    const code = parseLabelCode(printed);
    this.#sid = this.random(16);
    const mine = cpaceShare(jsSeal, cpaceGenerator(this.digest, code, deviceId, this.#sid), this.random);
    const started = this.ap.send("/v1/start", encodeStart({ sid: this.#sid, a: mine.share }));
    if (started.status !== 200) return false;
    const answer = parseStartAnswer(started.body);
    const keys = cpaceKeys(this.digest, jsSeal, deviceId, this.#sid, mine.scalar, mine.share, answer.b, answer.b);
    if (!keys || keys.deviceTag.some((b, i) => b !== answer.t[i])) return false;
    if (this.ap.send("/v1/confirm", encodeConfirm({ sid: this.#sid, t: keys.clientTag })).status !== 200) return false;
    this.#keys = keys;
    return true;
  }

  call(request: CallRequest): CallResponse {
    const keys = this.#keys!;
    const n = ++this.#n;
    const answer = this.ap.send("/v1/call", encodeCall({ sid: this.#sid, n, c: sealCall(jsSeal, keys, "c2s", this.#sid, n, encodeCallRequest(request)) }));
    if (answer.status !== 200) throw new Error(`call ${request.op}: HTTP ${answer.status} ${utf8Decode(answer.body)}`);
    const sealed = parseCallAnswer(answer.body);
    return parseCallResponse(openCall(jsSeal, keys, "s2c", this.#sid, n, sealed.c)!);
  }
}

function homeDevice(digest: DigestPort, options: { hotspot: boolean }) {
  const bed = new TestBed(digest);
  bed.cloud.registerSecret("dev-home", SECRET);
  const radio = bed.radio();
  radio.add({ ssid: "Home", bssid: "02:00:00:00:01:01", rssi: -50, security: "psk", psk: "correct horse battery" });
  if (options.hotspot) radio.add(bed.hotspotAp("ZipKey", "02:00:00:00:02:01", -60, { roamingConsortium: ["5a03ba"] }));
  const flash = new MemoryFlash();
  const ap = new FakeSoftAp();
  const extra = options.hotspot
    ? { labelCode: CODE, hotspots: [{ name: "zipkey", roamingConsortium: ["5a03ba"], radius: { serverName: "radius.localhost", ca: "-----BEGIN CERTIFICATE-----\nMIIBradiusCA\n-----END CERTIFICATE-----" } }] }
    : { labelCode: CODE };
  const config = bed.config("dev-home", "secret", SECRET, extra);
  const manager = new ConnectionManager(config, {
    digest, seal: jsSeal, random: testRandom(digest, "dev-home/device"), clock: { now: () => bed.time.now }, scheduler: bed.time,
    kv: flash, link: radio.gate(bed.cloud.linkFactory()), network: radio, onboarding: ap,
  }, { requestTimeoutMs: 2000, onboardAfterMs: 10_000 });
  const owner = new SyncOwner(ap, digest, testRandom(digest, "owner").bytes);
  return { bed, radio, flash, ap, manager, owner, store: new NetworkStore(flash, digest, "dev-home") };
}

/** No hotspot, no network: after onboardAfterMs the SoftAP opens; the owner hands over Home; JOINED, ONLINE, SoftAP down. */
export function scenarioOnboardingNoHotspot(digest: DigestPort): void {
  const { bed, ap, manager, owner, store } = homeDevice(digest, { hotspot: false });
  manager.start();
  bed.time.advance(9_000);
  check(!ap.up, "no onboarding before onboardAfterMs");
  bed.time.advance(2_000);
  check(ap.up && ap.ssid === "wcm-dev-home", `SoftAP up after onboardAfterMs: ${ap.ssid}`);
  check(owner.authenticate("dev-home", CODE), "the label code is accepted");
  bed.time.advance(6_000);
  const scan = owner.call({ op: "scan" });
  check(scan.op === "scan" && scan.networks.some((n) => n.ssid === "Home"), `the scan lists Home: ${JSON.stringify(scan)}`);
  const stored = owner.call({ op: "networks", networks: [{ ssid: "Home", password: "correct horse battery", priority: 50 }] });
  check(stored.op === "networks" && stored.stored === 1, "stored");
  check(store.loadNetworks().networks[0]?.ssid === "Home", "in the nets record, as a cloud hand-off");
  bed.time.advance(3_000);
  const status = owner.call({ op: "status" });
  check(status.op === "status" && status.state === "JOINED" && status.ssid === "Home", `JOINED told locally: ${JSON.stringify(status)}`);
  check(manager.status.state === "ONLINE" && manager.status.network?.kind === "private" && manager.status.network.ssid === "Home", `ONLINE on Home: ${manager.status.state}`);
  check(bed.cloud.devices.get("dev-home")?.net?.kind === "private", "the cloud's hello says private Home");
  bed.time.advance(61_000);
  check(!ap.up && ap.closes === 1, "the SoftAP is down after the linger");
  bed.time.advance(10 * 60_000);
  check(!ap.up && ap.opens === 1, "never again while ONLINE");
}

/** Wrong password: FAILED with the reason, told locally; the owner corrects it in the same window. */
export function scenarioOnboardingWrongPassword(digest: DigestPort): void {
  const { bed, ap, manager, owner } = homeDevice(digest, { hotspot: false });
  manager.start();
  bed.time.advance(11_000);
  check(ap.up && owner.authenticate("dev-home", CODE), "onboarding open, code accepted");
  owner.call({ op: "networks", networks: [{ ssid: "Home", password: "not the password", priority: 50 }] });
  bed.time.advance(3_000);
  const failed = owner.call({ op: "status" });
  check(failed.op === "status" && failed.state === "FAILED" && failed.reason === "INCORRECT-PASSWORD", `FAILED INCORRECT-PASSWORD: ${JSON.stringify(failed)}`);
  owner.call({ op: "networks", networks: [{ ssid: "Home", password: "correct horse battery", priority: 50 }] });
  bed.time.advance(3_000);
  const joined = owner.call({ op: "status" });
  check(joined.op === "status" && joined.state === "JOINED", `then JOINED: ${JSON.stringify(joined)}`);
  check(manager.status.state === "ONLINE", "ONLINE");
  // the corrected network replaced the failed one, so (as for a cloud change) its old failure is not reported
  check(bed.cloud.devices.get("dev-home")?.net?.kind === "private", "the cloud's hello says private Home");
}

/** ONLINE over a hotspot: no automatic onboarding; startOnboarding() (a button) opens it anyway. */
export function scenarioOnboardingOnlineOnlyWhenAsked(digest: DigestPort): void {
  const { bed, ap, manager } = homeDevice(digest, { hotspot: true });
  manager.start();
  bed.time.advance(5_000);
  check(manager.status.state === "ONLINE" && manager.status.network?.kind === "hotspot", `ONLINE on the hotspot: ${manager.status.state}`);
  bed.time.advance(60_000);
  check(ap.opens === 0, "no onboarding while ONLINE");
  check(manager.startOnboarding(), "the device has onboarding");
  check(ap.up, "the button opens it while ONLINE");
  bed.time.advance(15 * 60_000 + 1);
  check(!ap.up, "closed after its window");
}

export const ONBOARDING_SCENARIOS: Record<string, (digest: DigestPort) => unknown> = {
  scenarioOnboardingNoHotspot,
  scenarioOnboardingWrongPassword,
  scenarioOnboardingOnlineOnlyWhenAsked,
};

