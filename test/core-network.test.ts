/*
 * Core network modules: selection (table-driven), back-off, the network store
 * and profile store under a power cut at every write, sealing (round trip,
 * tamper, wrong key, wrong device, low-order key), the wall clock, the
 * firmware config's hotspots/buildTime, and the protocol's new messages
 * (round trips and error tables).
 */
import assert from "node:assert/strict";
import { createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes } from "node:crypto";
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
import { openSealed, SEAL_OVERHEAD, sealPublicKey, sealTo } from "../modules/seal";
import { x25519, x25519PublicKey, x25519SharedSecret } from "../modules/x25519";
import { WallClock } from "../modules/wall-clock";
import { MemoryFlash, PowerCutSignal } from "./support/scenarios";
import { VECTORS, X25519_ITERATED_1000, x25519Iterated } from "./support/vectors";

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
  const secret = new Uint8Array(32).map((_, i) => i + 1);
  const pub = sealPublicKey(secret);
  const message = utf8Encode("network credentials");

  it("sealTo_openSealed_RoundTrip", () => {
    const sealed = sealTo(digest, pub, "lamp-1", message, new Uint8Array(32).fill(3));
    assert.equal(SEAL_OVERHEAD, 65);
    assert.equal(sealed.length, message.length + SEAL_OVERHEAD);
    assert.deepEqual(openSealed(digest, secret, "lamp-1", sealed), message);
  });

  it("openSealed_TamperAnyByte_Refused", () => {
    const sealed = sealTo(digest, pub, "lamp-1", message, new Uint8Array(32).fill(3));
    for (let i = 0; i < sealed.length; i++) {
      const tampered = sealed.slice();
      tampered[i] ^= 0x01;
      assert.equal(openSealed(digest, secret, "lamp-1", tampered), undefined, `byte ${i}`);
    }
    assert.equal(openSealed(digest, secret, "lamp-1", sealed.subarray(0, SEAL_OVERHEAD - 1)), undefined, "truncated");
    assert.equal(openSealed(digest, secret, "lamp-1", sealed.subarray(0, sealed.length - 1)), undefined, "tag cut");
  });

  it("openSealed_WrongKeyOrDevice_Refused", () => {
    const sealed = sealTo(digest, pub, "lamp-1", message, new Uint8Array(32).fill(3));
    assert.equal(openSealed(digest, new Uint8Array(32).fill(8), "lamp-1", sealed), undefined);
    assert.equal(openSealed(digest, secret, "lamp-2", sealed), undefined);
  });

  it("sealTo_LowOrderOrBadKey_CredentialInvalid", () => {
    assert.throws(() => sealTo(digest, new Uint8Array(32), "lamp-1", message, new Uint8Array(32).fill(3)), (e: unknown) => isWcmError(e, "CREDENTIAL_INVALID"));
    assert.throws(() => sealTo(digest, new Uint8Array(31), "lamp-1", message, new Uint8Array(32).fill(3)), (e: unknown) => isWcmError(e, "CREDENTIAL_INVALID"));
  });
});

describe("sealing: independent check with node:crypto", () => {
  const vector = VECTORS.find((v) => v.fn === "sealTo")!;
  const input = (field: string) => vector.inputs[field] as string;

  it("sealVector_RecomputedWithNodeCrypto_X25519_HKDF_HMAC", () => {
    // the same construction from node:crypto's X25519, HKDF and HMAC alone
    const ephemeral = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, Buffer.from(input("ephemeralSecret"), "hex")]), format: "der", type: "pkcs8" });
    const ephemeralPublic = createPublicKey(ephemeral).export({ format: "der", type: "spki" }).subarray(-32);
    const device = Buffer.from(input("publicKey"), "hex");
    const shared = diffieHellman({ privateKey: ephemeral, publicKey: spkiX25519(device) });
    const deviceId = Buffer.from(input("deviceId"));
    const okm = Buffer.from(hkdfSync("sha256", shared, Buffer.concat([ephemeralPublic, device]), Buffer.concat([Buffer.from("wcm-v1 network-seal-2\0"), deviceId]), 64));
    const [encKey, macKey] = [okm.subarray(0, 32), okm.subarray(32)];
    const plaintext = Buffer.from(input("plaintext"));
    const stream: Buffer[] = [];
    for (let i = 0; i * 32 < plaintext.length; i++) {
      const counter = Buffer.alloc(4);
      counter.writeUInt32BE(i);
      stream.push(createHmac("sha256", encKey).update("wcm-v1 seal-stream\0").update(counter).digest());
    }
    const keystream = Buffer.concat(stream);
    const ciphertext = Buffer.from(plaintext.map((byte, i) => byte ^ keystream[i]));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(ciphertext.length);
    const tag = createHmac("sha256", macKey)
      .update(Buffer.concat([Buffer.from("wcm-v1 seal-tag\0"), deviceId, Buffer.of(0), ephemeralPublic, Buffer.of(0), length, Buffer.of(0), ciphertext]))
      .digest();
    assert.equal(Buffer.concat([Buffer.of(2), ephemeralPublic, ciphertext, tag]).toString("hex"), vector.expected);
  });

  it("sealTo_LongPlaintext_NodeHmacStream_RoundTrip", () => {
    const secret = new Uint8Array(randomBytes(32));
    const long = new Uint8Array(randomBytes(447)); // 14 stream blocks, the last one partial; 447 + 65 = MAX_SEALED_BYTES
    const sealed = sealTo(digest, x25519PublicKey(secret), "lamp-1", long, new Uint8Array(randomBytes(32)));
    assert.equal(sealed.length, 512);
    assert.deepEqual(openSealed(digest, secret, "lamp-1", sealed), long);
    assert.deepEqual(openSealed(digest, secret, "lamp-1", sealed.subarray(0, 1 + 32).slice()), undefined, "no tag");
  });
});

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");
function spkiX25519(publicKey: Uint8Array) {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: "der", type: "spki" });
}

describe("X25519 (modules/x25519.ts)", () => {
  it("x25519_RandomKeys_MatchNodeCrypto", () => {
    for (let i = 0; i < 16; i++) {
      const a = new Uint8Array(randomBytes(32));
      const b = new Uint8Array(randomBytes(32));
      const nodeA = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, a]), format: "der", type: "pkcs8" });
      const nodePublicA = createPublicKey(nodeA).export({ format: "der", type: "spki" }).subarray(-32);
      assert.equal(toHex(x25519PublicKey(a)), nodePublicA.toString("hex"), `public key ${i}`);
      const publicB = x25519PublicKey(b);
      const nodeShared = diffieHellman({ privateKey: nodeA, publicKey: spkiX25519(publicB) });
      assert.equal(toHex(x25519SharedSecret(a, publicB)), nodeShared.toString("hex"), `shared ${i}`);
      assert.deepEqual(x25519SharedSecret(b, x25519PublicKey(a)), x25519SharedSecret(a, publicB));
    }
  });

  it("x25519_NonCanonicalU_ReducedLikeNodeCrypto", () => {
    // u = p + 3 (canonical 3) and u with the top bit set: both as node:crypto computes them
    const scalar = new Uint8Array(randomBytes(32));
    const nodeKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, scalar]), format: "der", type: "pkcs8" });
    for (const u of ["f0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "0900000000000000000000000000000000000000000000000000000000000080"]) {
      const nodeShared = diffieHellman({ privateKey: nodeKey, publicKey: spkiX25519(fromHex(u)) });
      assert.equal(toHex(x25519(scalar, fromHex(u))), nodeShared.toString("hex"), u);
    }
  });

  it("x25519_RFC7748_Iterated1000", function () {
    this.timeout(30_000);
    assert.equal(x25519Iterated(1000), X25519_ITERATED_1000);
  });

  it("x25519SharedSecret_LowOrderPoints_Throw", () => {
    // the points of order 1, 2, 4 and 8 (and their non-canonical forms) give the all-zero secret
    const lowOrder = [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    const secret = new Uint8Array(randomBytes(32));
    for (const u of lowOrder) assert.throws(() => x25519SharedSecret(secret, fromHex(u)), /low-order/, u);
    assert.throws(() => x25519PublicKey(new Uint8Array(31)), /32 bytes/);
  });
});

describe("WallClock (modules/wall-clock.ts)", () => {
  it("floorPlusUptime_ThenCloudTime_NeverBackwards_PersistStep", () => {
    let now = 5000;
    const clock = new WallClock({ now: () => now }, 1_767_225_600);
    now += 10_000;
    assert.equal(clock.now(), 1_767_225_610);
    assert.equal(clock.synced, false);
    assert.equal(clock.observe(1_780_000_000), 1_780_000_000, "first cloud time is persisted");
    clock.saved(1_780_000_000);
    now += 60_000;
    assert.equal(clock.now(), 1_780_000_060);
    assert.equal(clock.observe(1_780_000_100), undefined, "less than an hour later: no flash write");
    assert.equal(clock.observe(1_700_000_000), undefined);
    assert.ok(clock.now() >= 1_780_000_100, "an older cloud time never moves it back");
    assert.equal(clock.observe(1_780_004_000), 1_780_004_000);
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
  const key = new Uint8Array(32).fill(5);
  const requests: DeviceRequest[] = [
    { v: 1, rid: "h", op: "hello", rev: 0, key },
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
