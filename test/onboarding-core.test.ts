/*
 * Local onboarding, the portable core (modules/onboarding): the vectors (and
 * the same vectors recomputed from @noble/curves and node:crypto alone), the
 * label code, the handshake, sealed calls, and the attacks of docs/protocol.md
 * 15.1 tried as an attacker would: wrong codes until lockout, a replayed call,
 * a recorded session searched for the password and guessed offline, bad input.
 * Time is a manual clock: nothing here depends on scheduling.
 */
import { strict as assert } from "node:assert";
import { createCipheriv, createHmac, hkdfSync } from "node:crypto";
import { p256, p256_hasher } from "@noble/curves/nist.js";
import { fromHex, toHex, utf8Decode, utf8Encode } from "../modules/bytes";
import { jsSeal } from "../modules/js-seal";
import { NetworkStore, applyNetworkChange } from "../modules/network-store";
import { nobleDigest } from "../modules/noble-digest";
import { OnboardingClient, OnboardError, type LocalTransport } from "../modules/onboarding/client";
import { cpaceGenerator, ONBOARD_DST } from "../modules/onboarding/cpace";
import { newLabelCode, parseLabelCode, labelQrPayload, parseLabelQr, softApName } from "../modules/onboarding/label-code";
import { MAX_FAILED_HANDSHAKES } from "../modules/onboarding/machine";
import { liftX } from "../modules/onboarding/p256-map";
import { OnboardingRunner, type OnboardingPort } from "../modules/onboarding/runner";
import type { OnboardNetwork } from "../modules/onboarding/messages";
import { nodeSeal } from "../hosts/node/node-seal";
import { ManualTime, seededRandom } from "../hosts/node/sim-ports";
import { ENCODE_TO_CURVE_VECTORS, ONBOARDING_VECTOR as V, RFC9380_DST, checkOnboardingVectors } from "./support/onboarding-vectors";
import { MemoryFlash } from "./support/scenarios";

const CODE = "1RVV-WN6H-7BH6-J2";
const DEVICE = "lamp-0001";

/** A device with the onboarding runner, a fake SoftAP port, a real NetworkStore on memory flash. */
function device(options: { code?: string; failStore?: boolean } = {}) {
  const time = new ManualTime();
  const flash = new MemoryFlash();
  const store = new NetworkStore(flash, nobleDigest, DEVICE);
  const wire: { path: string; body: Uint8Array; status: number; answer: Uint8Array }[] = [];
  let handler: Parameters<OnboardingPort["open"]>[1] | undefined;
  const port: OnboardingPort & { ssid?: string; opens: number; closes: number } = {
    opens: 0, closes: 0,
    open(ssid, h) {
      this.ssid = ssid;
      this.opens++;
      handler = h;
    },
    close() {
      this.closes++;
      handler = undefined;
    },
  };
  const stored: OnboardNetwork[][] = [];
  const runner = new OnboardingRunner(
    { digest: nobleDigest, seal: nodeSeal, random: seededRandom("device"), clock: time, scheduler: time },
    port,
    {
      storeNetworks(networks) {
        if (options.failStore) throw new Error("flash write failed");
        let list = store.loadNetworks().networks;
        for (const n of networks) list = applyNetworkChange(list, { action: "set", ...n });
        store.saveNetworks({ networks: list, seq: store.loadNetworks().seq });
        stored.push(networks);
      },
    },
    { deviceId: DEVICE, code: parseLabelCode(options.code ?? CODE) },
  );
  /** The phone's HTTP: straight into the port's handler (synchronous answers), recorded like a sniffer would. */
  const send: LocalTransport = (method, path, body = new Uint8Array(0)) =>
    new Promise((resolve) => {
      if (!handler) return resolve({ status: 503, body: new Uint8Array(0) });
      handler({ method, path, body }, (status, answer) => {
        wire.push({ path, body, status, answer });
        resolve({ status, body: answer });
      });
    });
  const client = (seed = "client") => new OnboardingClient(send, { digest: nobleDigest, seal: nodeSeal, random: seededRandom(seed).bytes });
  return { time, flash, store, port, runner, send, client, wire, stored };
}

const HOME: OnboardNetwork = { ssid: "Home-5G", password: "correct horse battery", priority: 50 };

describe("onboarding core: vectors and label code", () => {
  it("vectors_NodeCryptoAndPureJs_AllMatch", () => {
    for (const seal of [nodeSeal, jsSeal]) assert.deepEqual(checkOnboardingVectors(nobleDigest, seal).filter((r) => !r.ok), []);
  });

  it("vectors_RecomputedFromNobleCurvesAndNodeCrypto", () => {
    for (const e of ENCODE_TO_CURVE_VECTORS) assert.equal(toHex(p256_hasher.encodeToCurve(utf8Encode(e.msg), { DST: RFC9380_DST }).toBytes(false)), e.point);
    const lv = (b: Uint8Array) => Buffer.concat([Buffer.of(b.length), b]);
    const msg = Buffer.concat([lv(utf8Encode("wcm-v1 cpace-p256")), lv(utf8Encode(V.code)), lv(utf8Encode(V.deviceId)), lv(fromHex(V.sid))]);
    const G = p256_hasher.encodeToCurve(msg, { DST: ONBOARD_DST });
    assert.equal(toHex(G.toBytes(false)), V.generator);
    const ya = BigInt(`0x${V.clientScalar}`), yb = BigInt(`0x${V.deviceScalar}`);
    assert.equal(toHex(G.multiply(ya).toBytes(true).subarray(1)), V.clientShare);
    assert.equal(toHex(G.multiply(yb).toBytes(true).subarray(1)), V.deviceShare);
    const K = G.multiply(ya).multiply(yb).toBytes(true).subarray(1);
    const info = Buffer.concat([Buffer.from("wcm-v1 onboard-keys\0lamp-0001\0"), fromHex(V.clientShare), fromHex(V.deviceShare)]);
    const okm = Buffer.from(hkdfSync("sha256", K, fromHex(V.sid), info, 64));
    assert.equal(createHmac("sha256", okm.subarray(0, 16)).update("wcm-v1 onboard-confirm\0device").digest("hex"), V.deviceTag);
    assert.equal(createHmac("sha256", okm.subarray(16, 32)).update("wcm-v1 onboard-confirm\0client").digest("hex"), V.clientTag);
    assert.equal(okm.subarray(32, 48).toString("hex"), V.c2s);
    const iv = Buffer.alloc(12);
    iv[0] = 1;
    iv.writeUInt32BE(1, 8);
    const cipher = createCipheriv("aes-128-gcm", okm.subarray(32, 48), iv).setAAD(Buffer.concat([Buffer.from("wcm-v1 onboard-call\0"), fromHex(V.sid)]));
    const sealed = Buffer.concat([cipher.update(V.call1Plaintext), cipher.final(), cipher.getAuthTag()]);
    assert.equal(sealed.toString("hex"), V.call1Sealed);
  });

  it("liftX_PointsOnAndOffTheCurve", () => {
    const point = p256.Point.BASE.multiply(987654321n);
    assert.equal(toHex(liftX(point.toBytes(true).subarray(1))!.subarray(1, 33)), toHex(point.toBytes(true).subarray(1)));
    let offCurve = 0;
    for (let x = 1; x < 40; x++) {
      const bytes = new Uint8Array(32);
      bytes[31] = x;
      if (!liftX(bytes)) offCurve++;
    }
    assert.ok(offCurve > 5, "about half of all x are not on the curve");
    assert.equal(liftX(new Uint8Array(32).fill(0xff)), undefined, "x >= p refused");
  });

  it("labelCode_65BitsFormattedTypedLoosely_TyposCaught", () => {
    const random = seededRandom("codes");
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const code = newLabelCode(random.bytes);
      assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{2}$/);
      seen.add(parseLabelCode(code));
    }
    assert.equal(seen.size, 200);
    assert.equal(parseLabelCode(" 1rvv wn6h 7bh6 j2 "), V.code);
    assert.equal(parseLabelCode("IRVV-WN6H-7BH6-J2"), V.code, "I reads as 1");
    let caught = 0;
    for (let i = 0; i < 13; i++) {
      const typo = V.code.slice(0, i) + (V.code[i] === "2" ? "3" : "2") + V.code.slice(i + 1);
      try {
        parseLabelCode(`${typo}2`);
      } catch (error) {
        assert.match(String(error), /CONFIG_INVALID: labelCode: check character/);
        caught++;
      }
    }
    assert.equal(caught, 13, "every one-character typo is caught by the check character");
    assert.throws(() => parseLabelCode("1RVV-WN6H-7BH6-J"), /14-character/);
    assert.throws(() => parseLabelCode("1RVV-WN6H-7BH6-JU2"), /14-character/);
  });

  it("labelQr_RoundTrip_SoftApNameFitsAnSsid", () => {
    assert.equal(labelQrPayload(DEVICE, CODE), "WCM1:lamp-0001:1RVV-WN6H-7BH6-J2:wcm-lamp-0001");
    assert.deepEqual(parseLabelQr(labelQrPayload(DEVICE, CODE)), { deviceId: DEVICE, code: CODE, softAp: "wcm-lamp-0001" });
    assert.equal(softApName("x".repeat(64)).length, 32);
    assert.equal(parseLabelQr("http://evil/"), undefined);
  });
});

describe("onboarding core: the owner's client and the device", () => {
  it("happyPath_CodeScanNetworks_StoredAsTheCloudHandOffRecord_JoinedReported", async () => {
    const d = device();
    d.runner.start(false);
    assert.equal(d.port.ssid, "wcm-lamp-0001");
    d.runner.scan([
      { ssid: "Home-5G", bssid: "aa:00:00:00:00:01", rssi: -48, channel: 36, security: "psk" },
      { ssid: "Home-5G", bssid: "aa:00:00:00:00:02", rssi: -70, channel: 1, security: "psk" },
      { ssid: "wcm-lamp-0001", bssid: "aa:00:00:00:00:03", rssi: -20, channel: 6, security: "open" },
      { ssid: "Cafe", bssid: "aa:00:00:00:00:04", rssi: -80, channel: 11, security: "open" },
    ]);
    const c = d.client();
    assert.deepEqual(await c.info(), { id: DEVICE, pake: "cpace-p256-v1", locked: false });
    await c.authenticate(DEVICE, CODE);
    assert.deepEqual(await c.scan(), [{ ssid: "Home-5G", rssi: -48, security: "psk" }, { ssid: "Cafe", rssi: -80, security: "open" }]);
    assert.equal((await c.status()).state, "WAITING");
    assert.equal(await c.sendNetworks([HOME]), 1);
    assert.deepEqual(d.store.loadNetworks().networks, [{ ssid: "Home-5G", password: "correct horse battery", priority: 50 }]);
    assert.equal((await c.status()).state, "JOINING");
    d.runner.joined("Home-5G");
    assert.deepEqual(await c.status(), { op: "status", state: "JOINED", ssid: "Home-5G", online: false });
    d.runner.online(true);
    assert.equal((await c.status()).online, true);
    d.time.advance(61_000);
    assert.equal(d.port.closes, 1, "the SoftAP closes after the linger");
    assert.equal(d.runner.active, false);
  });

  it("joinFailed_ReportedWithReason_OwnerRetriesWithinTheWindow", async () => {
    const d = device();
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await c.sendNetworks([{ ssid: "Home-5G", password: "wrong password", priority: 50 }]);
    d.runner.joinFailed("Home-5G", "INCORRECT-PASSWORD");
    assert.deepEqual(await c.status(), { op: "status", state: "FAILED", ssid: "Home-5G", reason: "INCORRECT-PASSWORD", online: false });
    await c.sendNetworks([HOME]);
    assert.equal(d.store.loadNetworks().networks[0].password, HOME.password, "the new password replaced the old");
    d.runner.joined("Home-5G");
    assert.equal((await c.status()).state, "JOINED");
  });

  it("storeFails_ClientToldStoreFailed_NothingStored", async () => {
    const d = device({ failStore: true });
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await assert.rejects(c.sendNetworks([HOME]), (e: OnboardError) => e.code === "STORE_FAILED");
    assert.deepEqual(d.store.loadNetworks(), { networks: [], seq: 0 });
    assert.equal((await c.status()).state, "WAITING");
  });

  it("window_EndsAfterItsTime_ServiceClosed", async () => {
    const d = device();
    d.runner.start(false);
    d.time.advance(15 * 60_000 - 1);
    assert.equal(d.runner.active, true);
    d.time.advance(1);
    assert.equal(d.runner.active, false);
    assert.equal(d.port.closes, 1);
    await assert.rejects(d.client().info(), (e: OnboardError) => e.code === "HTTP_503", "nothing answers any more");
  });

  it("online_AutoStartedWindowCloses_AskedWindowStays", () => {
    const auto = device();
    auto.runner.start(false);
    auto.runner.online(true);
    assert.equal(auto.runner.active, false, "never onboarding while ONLINE unless asked");
    const asked = device();
    asked.runner.online(true);
    asked.runner.start(true);
    asked.runner.online(false);
    asked.runner.online(true);
    assert.equal(asked.runner.active, true);
  });

  it("end_ClientEndsOnboarding_SoftApDown", async () => {
    const d = device();
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await c.end();
    assert.equal(d.runner.active, false);
    assert.equal(d.port.closes, 1);
  });
});

describe("onboarding core: attacks", () => {
  it("wrongCodes_BoundedAttemptsThenLocked_EvenTheRightCode_ButtonClears", async () => {
    const d = device();
    d.runner.start(false);
    const random = seededRandom("attacker");
    for (let i = 0; i < MAX_FAILED_HANDSHAKES; i++) {
      const guess = newLabelCode(random.bytes);
      await assert.rejects(d.client(`attacker-${i}`).authenticate(DEVICE, guess), (e: OnboardError) => e.code === "AUTH_FAILED");
    }
    assert.equal((await d.client().info()).locked, true);
    await assert.rejects(d.client("owner").authenticate(DEVICE, CODE), (e: OnboardError) => e.code === "LOCKED");
    d.runner.start(false);
    await assert.rejects(d.client("owner").authenticate(DEVICE, CODE), (e: OnboardError) => e.code === "LOCKED", "an automatic restart does not clear it");
    d.time.advance(20 * 60_000);
    d.runner.start(false);
    await assert.rejects(d.client("owner").authenticate(DEVICE, CODE), (e: OnboardError) => e.code === "LOCKED", "nor does waiting for a new window");
    d.runner.start(true);
    await d.client("owner").authenticate(DEVICE, CODE);
  });

  it("abandonedHandshakes_CountAsFailures", async () => {
    const d = device();
    d.runner.start(false);
    for (let i = 0; i < MAX_FAILED_HANDSHAKES; i++) {
      const sid = seededRandom(`sid-${i}`).bytes(16);
      const g = cpaceGenerator(nobleDigest, "0000000000000", DEVICE, sid);
      const a = nodeSeal.p256SharedSecret(fromHex(V.clientScalar), g);
      const answer = await d.send("POST", "/v1/start", utf8Encode(JSON.stringify({ v: 1, sid: Buffer.from(sid).toString("base64url"), a: Buffer.from(a).toString("base64url") })));
      assert.equal(answer.status, 200);
    }
    await assert.rejects(d.client().authenticate(DEVICE, CODE), (e: OnboardError) => e.code === "LOCKED");
  });

  it("replayedCall_Refused_NothingChanged", async () => {
    const d = device();
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await c.sendNetworks([HOME]);
    const recorded = d.wire.find((w) => w.path === "/v1/call")!;
    await c.sendNetworks([{ ssid: "Other", password: "another password", priority: 60 }]);
    const writes = d.flash.writes;
    const replay = await d.send("POST", "/v1/call", recorded.body);
    assert.equal(replay.status, 409);
    assert.match(utf8Decode(replay.body), /"error":"REPLAY"/);
    assert.equal(d.flash.writes, writes, "nothing stored again");
    assert.deepEqual(d.store.loadNetworks().networks.map((n) => n.ssid), ["Home-5G", "Other"]);
  });

  it("replayedHandshake_RecordedStartAndConfirm_NoSession", async () => {
    const d = device();
    d.runner.start(false);
    await d.client().authenticate(DEVICE, CODE);
    const start = d.wire.find((w) => w.path === "/v1/start")!;
    const confirm = d.wire.find((w) => w.path === "/v1/confirm")!;
    const call = await d.client("x").info();
    assert.equal(call.locked, false);
    assert.equal((await d.send("POST", "/v1/start", start.body)).status, 200, "the device answers with a fresh share");
    const again = await d.send("POST", "/v1/confirm", confirm.body);
    assert.equal(again.status, 403, "the old confirmation does not match the new keys");
  });

  it("recordedSession_NoPasswordNoCode_AndNoOfflineGuessOfTheCode", async () => {
    const d = device();
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await c.scan();
    await c.sendNetworks([HOME]);
    const sniffed = Buffer.concat(d.wire.flatMap((w) => [Buffer.from(w.body), Buffer.from(w.answer)]));
    for (const secret of [HOME.password, V.code, CODE, "correct horse"]) {
      assert.equal(sniffed.includes(Buffer.from(secret)), false, `${secret} in the clear`);
      assert.equal(sniffed.toString("latin1").includes(Buffer.from(secret).toString("base64url").slice(0, 12)), false, `${secret} in base64`);
    }
    // offline guessing: an attacker with the recording tries candidate codes (the right one among them).
    // With only public values, a candidate cannot be checked against the device's tag: the keys need a secret scalar.
    const start = JSON.parse(utf8Decode(d.wire.find((w) => w.path === "/v1/start")!.body));
    const answer = JSON.parse(utf8Decode(d.wire.find((w) => w.path === "/v1/start")!.answer));
    const sid = Buffer.from(start.sid, "base64url"), a = Buffer.from(start.a, "base64url"), b = Buffer.from(answer.b, "base64url");
    const tag = Buffer.from(answer.t, "base64url");
    const candidates = [V.code, "0000000000000", "1RVVWN6H7BH6K"];
    let matches = 0;
    for (const code of candidates) {
      const g = cpaceGenerator(nobleDigest, code, DEVICE, sid);
      // every key an eavesdropper can form from the candidate and the transcript
      for (const k of [a, b, g.subarray(1, 33), Buffer.from(nobleDigest.sha256(utf8Encode(code)))]) {
        const okm = Buffer.from(hkdfSync("sha256", k, sid, Buffer.concat([Buffer.from(`wcm-v1 onboard-keys\0${DEVICE}\0`), a, b]), 64));
        if (createHmac("sha256", okm.subarray(0, 16)).update("wcm-v1 onboard-confirm\0device").digest().equals(tag)) matches++;
      }
    }
    assert.equal(matches, 0);
  });

  it("badInput_TypedErrors_NothingStored_NoAttemptSpent", async () => {
    const d = device();
    d.runner.start(false);
    const bodies: [string, string | Uint8Array, number, string][] = [
      ["/v1/start", "", 400, "MESSAGE_INVALID"],
      ["/v1/start", "{", 400, "MESSAGE_INVALID"],
      ["/v1/start", "[]", 400, "MESSAGE_INVALID"],
      ["/v1/start", '{"v":1,"sid":"AAAAAAAAAAAAAAAAAAAAAA"}', 400, "MESSAGE_INVALID"],
      ["/v1/start", '{"v":2,"sid":"AAAAAAAAAAAAAAAAAAAAAA","a":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}', 400, "MESSAGE_INVALID"],
      ["/v1/start", '{"v":1,"sid":"AAAAAAAAAAAAAAAAAAAAAA","a":"AAAA","x":1}', 400, "MESSAGE_INVALID"],
      ["/v1/start", new Uint8Array(2000).fill(0x20), 413, "MESSAGE_TOO_LARGE"],
      ["/v1/start", Uint8Array.of(0x7b, 0xff, 0x7d), 400, "MESSAGE_INVALID"],
      ["/v1/confirm", '{"v":1,"sid":"AAAAAAAAAAAAAAAAAAAAAA","t":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}', 401, "NO_SESSION"],
      ["/v1/call", '{"v":1,"sid":"AAAAAAAAAAAAAAAAAAAAAA","n":0,"c":"AAAAAAAAAAAAAAAAAAAAAA"}', 400, "MESSAGE_INVALID"],
      ["/v1/call", '{"v":1,"sid":"AAAAAAAAAAAAAAAAAAAAAA","n":1,"c":"AAAAAAAAAAAAAAAAAAAAAA"}', 401, "NO_SESSION"],
      ["/v1/other", "{}", 404, "NOT_FOUND"],
    ];
    for (const [path, body, status, code] of bodies) {
      const answer = await d.send("POST", path, typeof body === "string" ? utf8Encode(body) : body);
      assert.equal(answer.status, status, `${path} ${String(body).slice(0, 40)}`);
      assert.equal(JSON.parse(utf8Decode(answer.body)).error, code);
    }
    assert.equal((await d.send("GET", "/v1/start")).status, 405);
    // a share that is not on the curve: refused before any multiplication
    const offCurve = await d.send("POST", "/v1/start", utf8Encode(JSON.stringify({ v: 1, sid: "AAAAAAAAAAAAAAAAAAAAAA", a: Buffer.alloc(32, 0xff).toString("base64url") })));
    assert.equal(offCurve.status, 400);
    assert.equal(d.runner.state.failures, 1, "only the start that reached the PAKE counted");
    assert.equal(d.flash.writes, 0);
    // inside a session: a sealed call with a bad body
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await assert.rejects(c.sendNetworks([{ ssid: "", password: "x", priority: 1 }]), (e: OnboardError) => e.code === "MESSAGE_INVALID");
    await assert.rejects(c.sendNetworks([HOME, HOME]), (e: OnboardError) => e.code === "MESSAGE_INVALID");
    await assert.rejects(c.sendNetworks([{ ssid: "Home", password: "short", priority: 1 }]), /password/);
    await assert.rejects(c.sendNetworks([1, 2, 3, 4, 5].map((i) => ({ ...HOME, ssid: `n${i}` }))), /1 to 4/);
    assert.equal(d.flash.writes, 0, "nothing stored on bad input");
    assert.equal((await c.status()).state, "WAITING", "the session survives a refused call");
  });

  it("tamperedCall_Refused", async () => {
    const d = device();
    d.runner.start(false);
    const c = d.client();
    await c.authenticate(DEVICE, CODE);
    await c.status();
    const recorded = JSON.parse(utf8Decode(d.wire[d.wire.length - 1].body));
    const sealed = Buffer.from(recorded.c, "base64url");
    sealed[0] ^= 1;
    const answer = await d.send("POST", "/v1/call", utf8Encode(JSON.stringify({ ...recorded, n: 99, c: sealed.toString("base64url") })));
    assert.equal(answer.status, 403);
    assert.equal((await c.status()).state, "WAITING");
  });
});
