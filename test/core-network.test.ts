/*
 * Core network modules: selection (table-driven), back-off, the network store
 * and profile store under a power cut at every write, sealing (round trip,
 * tamper, wrong key, wrong device, low-order key), the wall clock, the
 * firmware config's hotspots/buildTime, and the protocol's new messages
 * (round trips and error tables).
 */
import assert from "node:assert/strict";
import { createCipheriv, createECDH, hkdfSync, randomBytes } from "node:crypto";
import { legacyPublicKey, legacySealTo } from "../cloud/legacy-seal";
import { nodeSeal } from "../hosts/node/node-seal";
import { fromBase64Url, fromHex, toBase64Url, toHex, utf8Encode } from "../modules/bytes";
import { validateConfig } from "../modules/config";
import { isWcmError } from "../modules/errors";
import type { HotspotProfile } from "../modules/hotspots";
import { nobleDigest as digest } from "../modules/noble-digest";
import {
  candidateKey, clearNetworkBackoff, rankCandidates, recordNetworkFailure, rescanDelay, selectNetwork, type PrivateNetwork,
} from "../modules/network-selection";
import { applyNetworkChange, NetworkStore } from "../modules/network-store";
import type { ScanResult } from "../modules/ports";
import {
  decodeCloudMessage, decodeNetworkChange, decodeRequest, decodeResponse, encodeNetworkChange, encodeRequest, encodeResponse,
  MAX_CONFIG_BYTES, MAX_MESSAGE_BYTES, type CloudResponse, type DeviceRequest,
} from "../modules/protocol";
import { jsSeal } from "../modules/js-seal";
import { isSealPublicKey, newSealSecretKey, openSealed, SEAL_OVERHEAD, sealPublicKey } from "../modules/seal";
import { sealTo } from "../modules/seal-to";
import { wallNow, wallObserve, wallStart } from "../modules/wall-clock";
import { MemoryFlash, PowerCutSignal } from "./support/scenarios";
import { VECTORS } from "./support/vectors";

const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----";
const RADIUS = { serverName: "radius.localhost", ca: CA };
const ZIP: HotspotProfile = { name: "zip", roamingConsortium: ["5a03ba"], radius: RADIUS };
const CAFE: HotspotProfile = { name: "cafe", ssid: "Cafe", radius: RADIUS };
const HOME: PrivateNetwork = { ssid: "Home", password: "home-password", priority: 10 };
const OFFICE: PrivateNetwork = { ssid: "Office", password: "office-password", priority: 50 };
const OPEN: PrivateNetwork = { ssid: "Garden", password: "", priority: 5 };

function ap(ssid: string, rssi: number, security: ScanResult["security"], extra: Partial<ScanResult> = {}): ScanResult {
  return { ssid, bssid: `02:${ssid.length}:${rssi}`, rssi, channel: 1, security, ...extra };
}

describe("network selection (modules/network-selection.ts)", () => {
  const cases: { name: string; scan: ScanResult[]; networks: PrivateNetwork[]; profiles: HotspotProfile[]; expected: string[] }[] = [
    { name: "Empty_NoCandidate", scan: [], networks: [HOME], profiles: [ZIP], expected: [] },
    { name: "PrivateBeforeHotspot_EvenWhenWeaker", scan: [ap("Zip", -30, "enterprise", { roamingConsortium: ["5a03ba"] }), ap("Home", -80, "psk")], networks: [HOME], profiles: [ZIP], expected: ["private:Home", "hotspot:zip"] },
    { name: "PrivateByPriority_ThenSignal", scan: [ap("Home", -40, "psk"), ap("Office", -85, "psk")], networks: [HOME, OFFICE], profiles: [], expected: ["private:Office", "private:Home"] },
    { name: "HotspotsBySignal", scan: [ap("Cafe", -70, "enterprise"), ap("Zip", -50, "enterprise", { roamingConsortium: ["AA0000", "5A03BA"] })], networks: [], profiles: [CAFE, ZIP], expected: ["hotspot:zip", "hotspot:cafe"] },
    { name: "OpenTwinOfPskNetwork_Ignored", scan: [ap("Home", -40, "open")], networks: [HOME], profiles: [], expected: [] },
    { name: "OpenNetwork_NeedsOpenAp", scan: [ap("Garden", -60, "open"), ap("Garden", -50, "psk")], networks: [OPEN], profiles: [], expected: ["private:Garden"] },
    { name: "HotspotSsidOnNonEnterprise_Ignored", scan: [ap("Cafe", -40, "open")], networks: [], profiles: [CAFE], expected: [] },
    { name: "UnknownOi_Ignored", scan: [ap("Other", -40, "enterprise", { roamingConsortium: ["001bc5"] })], networks: [], profiles: [ZIP], expected: [] },
    { name: "SameProfileManyAps_StrongestKept", scan: [ap("Zip-a", -70, "enterprise", { roamingConsortium: ["5a03ba"] }), ap("Zip-b", -45, "enterprise", { roamingConsortium: ["5a03ba"] })], networks: [], profiles: [ZIP], expected: ["hotspot:zip@Zip-b"] },
  ];
  for (const c of cases) {
    it(`rankCandidates_${c.name}`, () => {
      const ranked = rankCandidates(c.scan, c.networks, c.profiles);
      const keys = ranked.map((r) => (c.expected.some((e) => e.includes("@")) ? `${r.key}@${r.ssid}` : r.key));
      assert.deepEqual(keys, c.expected);
    });
  }

  it("selectNetwork_BackoffSkipsThenWaits", () => {
    const scan = [ap("Home", -40, "psk"), ap("Cafe", -60, "enterprise")];
    let backoff = recordNetworkFailure({}, candidateKey("private", "Home"), { reason: "INCORRECT-PASSWORD" }, 1000, 0);
    assert.equal(backoff["private:Home"].until, 1000 + 5000, "first failure: half of 10 s with jitter 0");
    assert.equal(backoff["private:Home"].last.reason, "INCORRECT-PASSWORD");
    let selection = selectNetwork(scan, [HOME], [CAFE], backoff, 2000);
    assert.equal(selection.candidate?.key, "hotspot:cafe");
    backoff = recordNetworkFailure(backoff, "hotspot:cafe", { reason: "EAP-REJECTED", detail: "no" }, 2000, 0.5);
    selection = selectNetwork(scan, [HOME], [CAFE], backoff, 2000);
    assert.equal(selection.candidate, undefined);
    assert.equal(selection.waitMs, 4000, "Home's back-off ends first");
    assert.equal(selectNetwork(scan, [HOME], [CAFE], backoff, 6000).candidate?.key, "private:Home");
    assert.equal(selectNetwork(scan, [HOME], [CAFE], clearNetworkBackoff(backoff, "private:Home"), 2000).candidate?.key, "private:Home");
  });

  it("recordNetworkFailure_DoublesToCap", () => {
    let backoff = {};
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      backoff = recordNetworkFailure(backoff, "k", { reason: "NETWORK-NOT-FOUND" }, 0, 0.999999);
      delays.push((backoff as Record<string, { until: number }>).k.until);
    }
    assert.deepEqual(delays.slice(0, 4), [9999, 19999, 39999, 79999]);
    assert.equal(delays[9], 599999, "capped at 10 min");
    assert.equal(rescanDelay(1, 0), 2500);
    assert.equal(rescanDelay(100, 0.999999), 119999);
  });

  it("applyNetworkChange_SetReplacesAddsEvictsForget", () => {
    let list = applyNetworkChange([], { action: "set", ...HOME });
    list = applyNetworkChange(list, { action: "set", ...HOME, password: "new-password" });
    assert.deepEqual(list, [{ ...HOME, password: "new-password" }]);
    for (const [i, priority] of [20, 30, 40, 60].entries()) list = applyNetworkChange(list, { action: "set", ssid: `N${i}`, password: "", priority });
    assert.equal(list.length, 4);
    assert.ok(!list.some((n) => n.ssid === "Home"), "lowest priority made room");
    assert.deepEqual(applyNetworkChange(list, { action: "forget", ssid: "N0" }).map((n) => n.ssid), ["N1", "N2", "N3"]);
  });
});

describe("NetworkStore (modules/network-store.ts)", () => {
  it("roundTrip_EveryRecord", () => {
    const flash = new MemoryFlash();
    const store = new NetworkStore(flash, digest, "lamp-1");
    assert.equal(store.loadHotspots(), undefined);
    assert.deepEqual(store.loadNetworks(), { networks: [], seq: 0 });
    store.saveHotspots({ rev: 3, profiles: [ZIP, CAFE] });
    store.saveNetworks({ networks: [HOME, OPEN], seq: 7 });
    store.saveSealKey(new Uint8Array(32).fill(9));
    store.saveTimeFloor(1_780_000_000);
    assert.deepEqual(store.loadHotspots(), { rev: 3, profiles: [ZIP, CAFE] });
    assert.deepEqual(store.loadNetworks(), { networks: [HOME, OPEN], seq: 7 });
    assert.deepEqual(store.loadSealKey(), new Uint8Array(32).fill(9));
    assert.equal(store.loadTimeFloor(), 1_780_000_000);
    const other = new NetworkStore(flash, digest, "lamp-2");
    assert.equal(other.loadHotspots(), undefined, "another device id's records are ignored");
    assert.equal(other.loadSealKey(), undefined);
  });

  const writes: [string, (store: NetworkStore, n: number) => void, (store: NetworkStore) => unknown][] = [
    ["hotspots", (s, n) => s.saveHotspots({ rev: n, profiles: n % 2 ? [ZIP] : [ZIP, CAFE] }), (s) => s.loadHotspots()?.rev ?? 0],
    ["networks", (s, n) => s.saveNetworks({ networks: n % 2 ? [HOME] : [HOME, OFFICE], seq: n }), (s) => s.loadNetworks().seq],
  ];
  for (const [name, write, version] of writes) {
    it(`powerCutAtEveryWrite_${name}_PreviousOrNewNeverLost`, () => {
      for (let cut = 1; cut <= 6; cut++) {
        const flash = new MemoryFlash();
        const store = new NetworkStore(flash, digest, "lamp-1");
        flash.cutPowerAtWrite(cut);
        let done = 0;
        try {
          for (let n = 1; n <= 6; n++) {
            write(store, n);
            done = n;
          }
        } catch (error) {
          assert.ok(error instanceof PowerCutSignal || isWcmError(error, "STORE_FAILED"));
        }
        flash.dead = false;
        const after = new NetworkStore(flash, digest, "lamp-1");
        const got = version(after);
        assert.ok(got === done || got === done + 1, `cut ${cut}: got ${String(got)}, last completed ${done}`);
        if (done >= 1) assert.ok((got as number) >= 1, `cut ${cut}: a completed write is never lost`);
      }
    });
  }
});

describe("sealing (modules/seal.ts)", () => {
  const secret = newSealSecretKey((n) => new Uint8Array(randomBytes(n)));
  const pub = sealPublicKey(nodeSeal, secret);
  const message = utf8Encode("network credentials");
  const ephemeral = () => newSealSecretKey((n) => new Uint8Array(randomBytes(n)));

  it("sealTo_openSealed_RoundTrip_NodeAndNobleAgree", () => {
    for (const [sealer, opener] of [[nodeSeal, jsSeal], [jsSeal, nodeSeal]]) {
      const sealed = sealTo(digest, sealer, pub, "lamp-1", message, ephemeral(), "network");
      assert.equal(SEAL_OVERHEAD, 82);
      assert.equal(sealed.length, message.length + SEAL_OVERHEAD);
      assert.equal(sealed[0], 3);
      assert.deepEqual(openSealed(digest, opener, secret, pub, "lamp-1", sealed, "network"), message);
    }
  });

  it("openSealed_TamperAnyByte_Refused", () => {
    const sealed = sealTo(digest, nodeSeal, pub, "lamp-1", message, ephemeral());
    for (let i = 0; i < sealed.length; i++) {
      const tampered = sealed.slice();
      tampered[i] ^= 0x01;
      assert.equal(openSealed(digest, nodeSeal, secret, pub, "lamp-1", tampered), undefined, `byte ${i}`);
    }
    assert.equal(openSealed(digest, nodeSeal, secret, pub, "lamp-1", sealed.subarray(0, SEAL_OVERHEAD - 1)), undefined, "truncated");
    assert.equal(openSealed(digest, nodeSeal, secret, pub, "lamp-1", sealed.subarray(0, sealed.length - 1)), undefined, "tag cut");
  });

  it("openSealed_WrongKeyDeviceOrPurpose_Refused", () => {
    const sealed = sealTo(digest, nodeSeal, pub, "lamp-1", message, ephemeral(), "network");
    const other = ephemeral();
    assert.equal(openSealed(digest, nodeSeal, other, sealPublicKey(nodeSeal, other), "lamp-1", sealed), undefined);
    assert.equal(openSealed(digest, nodeSeal, secret, pub, "lamp-2", sealed), undefined);
    assert.equal(openSealed(digest, nodeSeal, secret, pub, "lamp-1", sealed, "rotation"), undefined, "a network change never opens as a rotation");
  });

  it("sealTo_BadPublicKey_CredentialInvalid", () => {
    const offCurve = pub.slice();
    offCurve[64] ^= 1;
    const compressed = Uint8Array.of(2, ...pub.subarray(1, 33));
    const xTooLarge = Uint8Array.of(4, ...new Uint8Array(32).fill(0xff), ...pub.subarray(33));
    for (const key of [offCurve, compressed, xTooLarge, new Uint8Array(65), new Uint8Array(32), pub.subarray(0, 64)]) {
      assert.equal(isSealPublicKey(key), false, toHex(key).slice(0, 16));
      assert.throws(() => sealTo(digest, nodeSeal, key, "lamp-1", message, ephemeral()), (e: unknown) => isWcmError(e, "CREDENTIAL_INVALID"));
    }
  });

  it("openSealed_InvalidCurveEphemeral_NeverReachesThePort", () => {
    // an invalid-curve attack sends a point off P-256 (Moddable's curve.js would multiply it)
    const sealed = sealTo(digest, nodeSeal, pub, "lamp-1", message, ephemeral());
    sealed[65] ^= 1; // the last byte of the ephemeral Y
    const calls: string[] = [];
    const spy = { ...nodeSeal, p256SharedSecret: (k: Uint8Array, p: Uint8Array) => { calls.push("ecdh"); return nodeSeal.p256SharedSecret(k, p); } };
    assert.equal(openSealed(digest, spy, secret, pub, "lamp-1", sealed), undefined);
    assert.deepEqual(calls, []);
  });

  it("newSealSecretKey_ZeroOrAboveOrder_DrawsAgain", () => {
    const draws = [new Uint8Array(32), new Uint8Array(32).fill(0xff), fromHex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"), new Uint8Array(32).fill(7)];
    assert.deepEqual(newSealSecretKey(() => draws.shift()!), new Uint8Array(32).fill(7));
    assert.throws(() => sealPublicKey(nodeSeal, new Uint8Array(32)), (e: unknown) => isWcmError(e, "CREDENTIAL_INVALID"));
  });

  it("sealTo_LongestPlaintext_Fits512", () => {
    const long = new Uint8Array(randomBytes(430)); // 430 + 82 = MAX_SEALED_BYTES
    const sealed = sealTo(digest, nodeSeal, pub, "lamp-1", long, ephemeral());
    assert.equal(sealed.length, 512);
    assert.deepEqual(openSealed(digest, jsSeal, secret, pub, "lamp-1", sealed), long);
  });
});

describe("sealing: independent check with node:crypto", () => {
  const vector = VECTORS.find((v) => v.fn === "sealTo")!;
  const input = (field: string) => vector.inputs[field] as string;

  it("sealVector_RecomputedWithNodeCrypto_ECDH_HKDF_AESGCM", () => {
    // format 3 from node:crypto's ECDH, HKDF and AES-GCM alone
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(Buffer.from(input("ephemeralSecret"), "hex"));
    const ephemeralPublic = ecdh.getPublicKey();
    const device = Buffer.from(input("publicKey"), "hex");
    const shared = ecdh.computeSecret(device);
    const info = Buffer.concat([Buffer.from(`wcm-v1 seal-3\0${input("purpose")}\0`), Buffer.from(input("deviceId"))]);
    const okm = Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralPublic, device]), info, 28));
    const header = Buffer.concat([Buffer.of(3), ephemeralPublic]);
    const cipher = createCipheriv("aes-128-gcm", okm.subarray(0, 16), okm.subarray(16, 28));
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(Buffer.from(input("plaintext"))), cipher.final(), cipher.getAuthTag()]);
    assert.equal(Buffer.concat([header, body]).toString("hex"), vector.expected);
  });
});

describe("sealing format 2 for devices in the field (cloud/legacy-seal.ts)", () => {
  // docs/protocol.md 14.4.1: the vector of the firmware that registered X25519 keys
  const expected = "02de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f26b1402069aab97ecd9110e492c0bb6959224709b53809af66dc22213ca91fd6820f1f21bd3473410950ffadb1b9e01fb51159053f7b8c06b265a995df08a5da23c0713e2d2c176cd19ff74eab6093ac09e9ce07773cdae6c286fc10509d3942c8bbcac20f41c4d95a10250b714913450767a5da8a";
  const plaintext = utf8Encode('{"v":1,"seq":1,"action":"set","ssid":"Home","password":"correct horse","priority":10}');

  it("legacySealTo_Format2Vector", () => {
    const alicePublic = fromHex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    assert.equal(toHex(legacyPublicKey(fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))), toHex(alicePublic));
    const sealed = legacySealTo(alicePublic, "lamp-0001", plaintext, fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    assert.equal(toHex(sealed), expected);
  });

  it("legacySealTo_LowOrderKey_CredentialInvalid", () => {
    assert.throws(() => legacySealTo(new Uint8Array(32), "lamp-0001", plaintext, new Uint8Array(randomBytes(32))), (e: unknown) => isWcmError(e, "CREDENTIAL_INVALID"));
  });
});

describe("wall clock (modules/wall-clock.ts)", () => {
  it("floorPlusUptime_ThenCloudTime_NeverBackwards_PersistStep", () => {
    let now = 5000;
    let clock = wallStart(now, 1_767_225_600);
    now += 10_000;
    assert.equal(wallNow(clock, now), 1_767_225_610);
    assert.equal(clock.sync, undefined);
    let seen = wallObserve(clock, 1_780_000_000, now);
    assert.equal(seen.save, 1_780_000_000, "first cloud time is persisted");
    clock = seen.wall;
    now += 60_000;
    assert.equal(wallNow(clock, now), 1_780_000_060);
    seen = wallObserve(clock, 1_780_000_100, now);
    assert.equal(seen.save, undefined, "less than an hour later: no flash write");
    seen = wallObserve(seen.wall, 1_700_000_000, now);
    assert.equal(seen.save, undefined);
    assert.ok(wallNow(seen.wall, now) >= 1_780_000_100, "an older cloud time never moves it back");
    assert.equal(wallObserve(seen.wall, 1_780_004_000, now).save, 1_780_004_000);
  });
});

describe("config hotspots and buildTime (modules/config.ts)", () => {
  const base = { deviceId: "lamp-1", option: "secret", secret: "00".repeat(32), cloud: { host: "localhost", port: 8883, ca: CA } };
  it("validateConfig_HotspotsArrayOrSet_BuildTime", () => {
    assert.deepEqual(validateConfig({ ...base, hotspots: [ZIP] }).hotspots, { rev: 0, profiles: [ZIP] });
    assert.deepEqual(validateConfig({ ...base, hotspots: { rev: 4, profiles: [CAFE] }, buildTime: 1_767_225_600 }).hotspots, { rev: 4, profiles: [CAFE] });
    assert.equal(validateConfig(base).hotspots, undefined);
  });
  const bad: [string, unknown, string][] = [
    ["NotArray", { hotspots: "zip" }, "hotspots"],
    ["TooMany", { hotspots: [ZIP, CAFE, { ...ZIP, name: "a" }, { ...ZIP, name: "b" }, { ...ZIP, name: "c" }] }, "hotspots"],
    ["NoMatch", { hotspots: [{ name: "x", radius: RADIUS }] }, "hotspots[0].ssid"],
    ["LongSsid", { hotspots: [{ ...CAFE, ssid: "x".repeat(33) }] }, "hotspots[0].ssid"],
    ["BadServerName", { hotspots: [{ ...CAFE, radius: { ...RADIUS, serverName: "bad name" } }] }, "hotspots[0].radius.serverName"],
    ["HugeCa", { hotspots: [{ ...CAFE, radius: { ...RADIUS, ca: `-----BEGIN CERTIFICATE-----\n${"A".repeat(3000)}\n-----END CERTIFICATE-----` } }] }, "hotspots[0].radius.ca"],
    ["ExtraField", { hotspots: { rev: 1, profiles: [], extra: 1 } }, "hotspots.extra"],
    ["BuildTimeTooOld", { buildTime: 1000 }, "buildTime"],
  ];
  for (const [name, extra, field] of bad) {
    it(`validateConfig_${name}_ConfigInvalid`, () => {
      assert.throws(() => validateConfig({ ...base, ...(extra as object) }), (e: unknown) => isWcmError(e, "CONFIG_INVALID") && e.field === field);
    });
  }
});

describe("protocol: network messages (modules/protocol.ts)", () => {
  const key = new Uint8Array(32).fill(5); // a format-2 (X25519) key of older firmware
  const p256 = sealPublicKey(nodeSeal, new Uint8Array(32).fill(5));
  const requests: DeviceRequest[] = [
    { v: 1, rid: "h", op: "hello", rev: 0, key },
    { v: 1, rid: "h", op: "hello", rev: 0, seal: 3, key: p256 },
    { v: 1, rid: "h", op: "hello", rev: 3, key, net: { kind: "hotspot", ssid: "Zip" }, failures: [{ kind: "private", ssid: "Home", reason: "EAP-REJECTED", detail: "no", n: 2 }] },
    { v: 1, rid: "c", op: "config" },
    { v: 1, rid: "n", op: "network" },
    { v: 1, rid: "r", op: "network-result", seq: 2, result: "FAILED", reason: "INCORRECT-PASSWORD" },
    { v: 1, rid: "r", op: "network-result", seq: 2, result: "JOINED" },
  ];
  for (const request of requests) {
    it(`request_RoundTrip_${request.op}_${JSON.stringify(request).length}`, () => {
      assert.deepEqual(decodeRequest(encodeRequest(request)), request);
    });
  }
  const responses: CloudResponse[] = [
    { v: 1, rid: "h", op: "hello", ok: true, time: 1_780_000_000, rev: 2, network: true },
    { v: 1, rid: "c", op: "config", ok: true, rev: 2, hotspots: [ZIP, CAFE] },
    { v: 1, rid: "n", op: "network", ok: true, seq: 1, sealed: new Uint8Array(80).fill(1) },
    { v: 1, rid: "r", op: "network-result", ok: true, seq: 1 },
    { v: 1, rid: "i", op: "issue", ok: true, gen: 2, sealed: new Uint8Array(162).fill(2) }, // a sealed rotation (9.5)
    { v: 1, rid: "n", op: "network", ok: false, reason: "NOTHING_PENDING" },
  ];
  for (const response of responses) {
    it(`response_RoundTrip_${response.op}_${response.ok}`, () => {
      assert.deepEqual(decodeResponse(encodeResponse(response)), response);
    });
  }

  it("encodeRequest_HelloWithLongFailures_TrimmedUnderTheBound", () => {
    const failures = Array.from({ length: 4 }, (_, i) => ({ kind: "private" as const, ssid: "é".repeat(16), reason: "EAP-REJECTED" as const, detail: "x".repeat(64), n: i + 1 }));
    const bytes = encodeRequest({ v: 1, rid: "h", op: "hello", rev: 1, key, net: { kind: "private", ssid: "é".repeat(16) }, failures });
    assert.ok(bytes.length <= MAX_MESSAGE_BYTES);
    decodeRequest(bytes);
  });

  const badRequests: [string, string, string][] = [
    ["HelloNoKey", `{"v":1,"rid":"a","op":"hello","rev":0}`, "request.key"],
    ["HelloShortKey", `{"v":1,"rid":"a","op":"hello","rev":0,"key":"AAAA"}`, "request.key"],
    ["HelloSeal3With32ByteKey", `{"v":1,"rid":"a","op":"hello","rev":0,"seal":3,"key":"${toBase64Url(key)}"}`, "request.key"],
    ["HelloSeal3OffCurve", `{"v":1,"rid":"a","op":"hello","rev":0,"seal":3,"key":"${toBase64Url(Uint8Array.of(4, ...new Uint8Array(64).fill(1)))}"}`, "request.key"],
    ["HelloSeal2Explicit", `{"v":1,"rid":"a","op":"hello","rev":0,"seal":2,"key":"${toBase64Url(key)}"}`, "request.seal"],
    ["HelloBadRev", `{"v":1,"rid":"a","op":"hello","rev":1.5,"key":"${toBase64Url(key)}"}`, "request.rev"],
    ["HelloBadNetKind", `{"v":1,"rid":"a","op":"hello","rev":0,"key":"${toBase64Url(key)}","net":{"kind":"lan","ssid":"x"}}`, "request.net.kind"],
    ["HelloFiveFailures", `{"v":1,"rid":"a","op":"hello","rev":0,"key":"${toBase64Url(key)}","failures":[${Array(5).fill('{"kind":"private","ssid":"a","reason":"DHCP-TIMEOUT","n":1}').join(",")}]}`, "request.failures"],
    ["HelloUnknownReason", `{"v":1,"rid":"a","op":"hello","rev":0,"key":"${toBase64Url(key)}","failures":[{"kind":"private","ssid":"a","reason":"BAD","n":1}]}`, "request.failures[0].reason"],
    ["HelloZeroCount", `{"v":1,"rid":"a","op":"hello","rev":0,"key":"${toBase64Url(key)}","failures":[{"kind":"private","ssid":"a","reason":"DHCP-TIMEOUT","n":0}]}`, "request.failures[0].n"],
    ["ConfigExtra", `{"v":1,"rid":"a","op":"config","rev":1}`, "request.rev"],
    ["ResultFailedNoReason", `{"v":1,"rid":"a","op":"network-result","seq":1,"result":"FAILED"}`, "request.reason"],
    ["ResultJoinedWithReason", `{"v":1,"rid":"a","op":"network-result","seq":1,"result":"JOINED","reason":"DHCP-TIMEOUT"}`, "request.reason"],
    ["ResultSeqZero", `{"v":1,"rid":"a","op":"network-result","seq":0,"result":"JOINED"}`, "request.seq"],
  ];
  for (const [name, payload, field] of badRequests) {
    it(`decodeRequest_${name}_MessageInvalid`, () => {
      assert.throws(() => decodeRequest(utf8Encode(payload)), (e: unknown) => isWcmError(e, "MESSAGE_INVALID") && e.field === field);
    });
  }

  it("decodeCloudMessage_OnlyConfigOkMayExceedTheMessageBound", () => {
    const big = `-----BEGIN CERTIFICATE-----\n${"A".repeat(1700)}\n-----END CERTIFICATE-----`;
    const config = encodeResponse({ v: 1, rid: "c", op: "config", ok: true, rev: 1, hotspots: [{ ...ZIP, radius: { ...RADIUS, ca: big } }, { ...CAFE, radius: { ...RADIUS, ca: big } }] });
    assert.ok(config.length > MAX_MESSAGE_BYTES && config.length <= MAX_CONFIG_BYTES);
    assert.equal((decodeCloudMessage(config) as { op: string }).op, "config");
    const padded = utf8Encode(`{"v":1,"rid":"h","op":"hello","ok":true,"time":1,"rev":0,"network":false,"pad":"${"x".repeat(1100)}"}`);
    assert.throws(() => decodeCloudMessage(padded), (e: unknown) => isWcmError(e, "MESSAGE_TOO_LARGE"));
    assert.throws(() => decodeCloudMessage(new Uint8Array(MAX_CONFIG_BYTES + 1).fill(32)), (e: unknown) => isWcmError(e, "MESSAGE_TOO_LARGE"));
    assert.deepEqual(decodeCloudMessage(utf8Encode(`{"v":1,"notice":"network"}`)), { v: 1, notice: "network" });
    assert.throws(() => decodeCloudMessage(utf8Encode(`{"v":1,"notice":"reboot"}`)), (e: unknown) => isWcmError(e, "MESSAGE_INVALID"));
  });

  it("networkChange_RoundTripAndErrors", () => {
    for (const change of [{ seq: 1, action: "set", ssid: "Home", password: "", priority: 0 }, { seq: 2, action: "forget", ssid: "Home" }] as const) {
      assert.deepEqual(decodeNetworkChange(encodeNetworkChange(change)), change);
    }
    const bad: [string, string][] = [
      [`{"v":1,"seq":1,"action":"set","ssid":"Home","password":"short","priority":1}`, "change.password"],
      [`{"v":1,"seq":1,"action":"set","ssid":"Home","password":"","priority":101}`, "change.priority"],
      [`{"v":1,"seq":1,"action":"drop","ssid":"Home"}`, "change.action"],
      [`{"v":1,"seq":1,"action":"forget","ssid":"Home","password":""}`, "change.password"],
    ];
    for (const [payload, field] of bad) {
      assert.throws(() => decodeNetworkChange(utf8Encode(payload)), (e: unknown) => isWcmError(e, "MESSAGE_INVALID") && e.field === field, payload);
    }
    assert.equal(fromBase64Url(toBase64Url(key)).length, 32);
  });
});
