/*
 * RADIUS codec units: packets (round trips, error table), authenticators,
 * EAP-Message split/join, MPPE key encryption, EAP and EAP-TLS framing,
 * fragmentation/reassembly bounds, TTLS AVPs, and the limit structures.
 */
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { AvpError, decodeAvps, encodeAvps, readPap } from "../cloud/radius/avp";
import { EAP_CODE, EAP_TYPE, EapCodecError, TLS_FLAG, decodeEap, decodeTlsFrame, encodeEap, encodeTlsFrame } from "../cloud/radius/eap";
import { FragmentReceiver, FragmentSender, ReassemblyTooLarge } from "../cloud/radius/fragments";
import { TokenBuckets } from "../cloud/limits";
import { DuplicateCache, SessionTable } from "../cloud/radius/limits";
import { decryptMppeKey, encryptMppeKey, mppeKeyAttributes, readMppeKeys } from "../cloud/radius/mppe";
import {
  ATTR, RADIUS_CODE, RadiusCodecError, decodePacket, encodePacket, joinEapMessage, signRequest, signResponse, splitEapMessage,
  verifyMessageAuthenticator, verifyResponse,
} from "../cloud/radius/packet";

const SECRET = Buffer.from("codec-test-shared-secret");

describe("radius: packet codec", () => {
  it("decodePacket_RoundTrip: code, identifier, authenticator and attributes survive encode/decode", () => {
    const cases = [
      { code: 1, id: 0, attrs: [] },
      { code: 11, id: 255, attrs: [{ type: ATTR.state, value: randomBytes(16) }, { type: ATTR.replyMessage, value: Buffer.from("x") }] },
      { code: 2, id: 7, attrs: [{ type: ATTR.userName, value: Buffer.alloc(0) }, { type: 26, value: randomBytes(253) }] },
    ];
    for (const c of cases) {
      const auth = randomBytes(16);
      const bytes = encodePacket(c.code, c.id, auth, c.attrs);
      const packet = decodePacket(bytes);
      assert.equal(packet.code, c.code);
      assert.equal(packet.identifier, c.id);
      assert.deepEqual(packet.authenticator, auth);
      assert.deepEqual(packet.attributes.map((a) => [a.type, a.value.toString("hex")]), c.attrs.map((a) => [a.type, a.value.toString("hex")]));
    }
  });

  it("decodePacket_Padding: bytes after the declared length are ignored", () => {
    const bytes = Buffer.concat([encodePacket(1, 1, randomBytes(16), [{ type: 1, value: Buffer.from("a") }]), Buffer.alloc(10, 0xee)]);
    assert.equal(decodePacket(bytes).raw.length, 23);
  });

  it("decodePacket_ErrorTable: every malformed packet gets its code", () => {
    const good = encodePacket(1, 1, randomBytes(16), [{ type: 1, value: Buffer.from("abc") }]);
    const withLength = (n: number) => {
      const b = Buffer.from(good);
      b.writeUInt16BE(n, 2);
      return b;
    };
    const table: [string, Buffer, string][] = [
      ["empty", Buffer.alloc(0), "TOO_SHORT"],
      ["19 bytes", Buffer.alloc(19), "TOO_SHORT"],
      ["4097 bytes", Buffer.alloc(4097), "TOO_LONG"],
      ["declared 19", withLength(19), "BAD_LENGTH"],
      ["declared 5000", withLength(5000), "BAD_LENGTH"],
      ["declared beyond received", withLength(good.length + 1), "BAD_LENGTH"],
      ["attribute length 0", fix(Buffer.concat([good.subarray(0, 20), Buffer.from([1, 0, 0, 0])])), "BAD_ATTRIBUTE"],
      ["attribute length 1", fix(Buffer.concat([good.subarray(0, 20), Buffer.from([1, 1])])), "BAD_ATTRIBUTE"],
      ["attribute past the end", fix(Buffer.concat([good.subarray(0, 20), Buffer.from([1, 9, 0x61])])), "BAD_ATTRIBUTE"],
      ["truncated attribute header", fix(Buffer.concat([good.subarray(0, 20), Buffer.from([1])])), "BAD_ATTRIBUTE"],
    ];
    for (const [name, bytes, code] of table) {
      assert.throws(() => decodePacket(bytes), (e: unknown) => e instanceof RadiusCodecError && e.code === code, name);
    }
    function fix(b: Buffer): Buffer {
      b.writeUInt16BE(b.length, 2);
      return b;
    }
  });

  it("encodePacket_Bounds: a value over 253 bytes or a packet over 4096 bytes is refused", () => {
    assert.throws(() => encodePacket(1, 1, Buffer.alloc(16), [{ type: 1, value: Buffer.alloc(254) }]), RadiusCodecError);
    const many = Array.from({ length: 17 }, () => ({ type: 79, value: Buffer.alloc(253) }));
    assert.throws(() => encodePacket(1, 1, Buffer.alloc(16), many), RadiusCodecError);
  });

  it("eapMessage_SplitJoin: 253-byte attributes, concatenated in order", () => {
    const eap = randomBytes(1000);
    const attrs = splitEapMessage(eap);
    assert.deepEqual(attrs.map((a) => a.value.length), [253, 253, 253, 241]);
    const packet = decodePacket(encodePacket(1, 1, randomBytes(16), [{ type: ATTR.userName, value: Buffer.from("x") }, ...attrs]));
    assert.deepEqual(joinEapMessage(packet), eap);
    assert.equal(joinEapMessage(decodePacket(encodePacket(1, 1, randomBytes(16), []))), undefined);
  });

  it("messageAuthenticator_Verify: good verifies; tampered, missing, doubled or wrong secret do not", () => {
    const request = signRequest(9, randomBytes(16), SECRET, [{ type: ATTR.userName, value: Buffer.from("lamp-1") }]);
    assert.ok(verifyMessageAuthenticator(decodePacket(request), SECRET));
    assert.ok(!verifyMessageAuthenticator(decodePacket(request), Buffer.from("another-secret-entirely")));
    const tampered = Buffer.from(request);
    tampered[22] ^= 1; // a byte of User-Name
    assert.ok(!verifyMessageAuthenticator(decodePacket(tampered), SECRET));
    const missing = encodePacket(1, 9, randomBytes(16), [{ type: ATTR.userName, value: Buffer.from("lamp-1") }]);
    assert.ok(!verifyMessageAuthenticator(decodePacket(missing), SECRET));
    const doubled = encodePacket(1, 9, randomBytes(16), [{ type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }, { type: ATTR.messageAuthenticator, value: Buffer.alloc(16) }]);
    assert.ok(!verifyMessageAuthenticator(decodePacket(doubled), SECRET));
  });

  it("signResponse_VerifyResponse: the client checks Response Authenticator and Message-Authenticator", () => {
    const reqAuth = randomBytes(16);
    const request = decodePacket(signRequest(3, reqAuth, SECRET, []));
    const response = signResponse(RADIUS_CODE.accessChallenge, request, SECRET, [{ type: ATTR.state, value: Buffer.from("s") }]);
    const decoded = decodePacket(response);
    assert.equal(decoded.attributes[0].type, ATTR.messageAuthenticator, "Message-Authenticator first");
    assert.ok(verifyResponse(decoded, reqAuth, SECRET));
    assert.ok(!verifyResponse(decoded, randomBytes(16), SECRET));
    const tampered = Buffer.from(response);
    tampered[tampered.length - 1] ^= 1;
    assert.ok(!verifyResponse(decodePacket(tampered), reqAuth, SECRET));
  });
});

describe("radius: MPPE keys (RFC 2548)", () => {
  it("encryptMppeKey_RoundTrip: 32-byte keys with the salt's high bit set", () => {
    const key = randomBytes(32);
    const reqAuth = randomBytes(16);
    const enc = encryptMppeKey(key, SECRET, reqAuth, Buffer.from([0x12, 0x34]));
    assert.equal(enc.length, 2 + 48);
    assert.equal(enc[0] & 0x80, 0x80);
    assert.deepEqual(decryptMppeKey(enc, SECRET, reqAuth), key);
    assert.notDeepEqual(decryptMppeKey(enc, SECRET, randomBytes(16)), key);
  });

  it("mppeKeyAttributes_RecvFirstHalf_SendSecondHalf", () => {
    const msk = randomBytes(64);
    const reqAuth = randomBytes(16);
    const keys = readMppeKeys(mppeKeyAttributes(msk, SECRET, reqAuth), SECRET, reqAuth);
    assert.deepEqual(keys.recv, msk.subarray(0, 32));
    assert.deepEqual(keys.send, msk.subarray(32, 64));
  });
});

describe("radius: EAP framing and fragments", () => {
  it("decodeEap_RoundTripAndErrors", () => {
    const p = { code: EAP_CODE.response, identifier: 5, type: EAP_TYPE.identity, data: Buffer.from("anonymous@wcm") };
    assert.deepEqual(decodeEap(encodeEap(p)), p);
    assert.deepEqual(decodeEap(encodeEap({ code: EAP_CODE.success, identifier: 5, data: Buffer.alloc(0) })).code, EAP_CODE.success);
    const bad: [string, Buffer][] = [
      ["3 bytes", Buffer.from([2, 1, 0])],
      ["length mismatch", Buffer.from([2, 1, 0, 9, 1])],
      ["unknown code", Buffer.from([9, 1, 0, 5, 1])],
      ["response without type", Buffer.from([2, 1, 0, 4])],
      ["success with data", Buffer.from([3, 1, 0, 5, 0])],
    ];
    for (const [name, bytes] of bad) assert.throws(() => decodeEap(bytes), EapCodecError, name);
  });

  it("tlsFrame_LengthFlag: L carries the 4-byte total; L without it is an error", () => {
    const frame = { flags: TLS_FLAG.more, version: 0, totalLength: 5000, fragment: randomBytes(10) };
    const decoded = decodeTlsFrame(encodeTlsFrame(frame));
    assert.equal(decoded.totalLength, 5000);
    assert.equal(decoded.flags & TLS_FLAG.more, TLS_FLAG.more);
    assert.throws(() => decodeTlsFrame(Buffer.from([0x80, 0, 0])), EapCodecError);
    assert.throws(() => decodeTlsFrame(Buffer.alloc(0)), EapCodecError);
  });

  it("fragments_RoundTrip: sender L/M flags, receiver reassembles", () => {
    const data = randomBytes(2500);
    const sender = new FragmentSender(1000, 0);
    const receiver = new FragmentReceiver(64 * 1024);
    sender.load(data);
    const frames = [];
    while (sender.pending) frames.push(sender.next());
    assert.deepEqual(frames.map((f) => [f.totalLength, f.flags & TLS_FLAG.more, f.fragment.length]), [[2500, TLS_FLAG.more, 1000], [undefined, TLS_FLAG.more, 1000], [undefined, 0, 500]]);
    let whole: Buffer | undefined;
    for (const f of frames) whole = receiver.add(decodeTlsFrame(encodeTlsFrame(f)));
    assert.deepEqual(whole, data);
    sender.load(randomBytes(10));
    assert.equal(sender.next().totalLength, undefined, "no L on an unfragmented message");
  });

  it("fragments_Bound: announced or received size over the bound, or more than announced, fails", () => {
    assert.throws(() => new FragmentReceiver(1000).add({ flags: TLS_FLAG.more, version: 0, totalLength: 1001, fragment: Buffer.alloc(10) }), ReassemblyTooLarge);
    const r = new FragmentReceiver(1000);
    r.add({ flags: TLS_FLAG.more, version: 0, fragment: Buffer.alloc(600) });
    assert.throws(() => r.add({ flags: TLS_FLAG.more, version: 0, fragment: Buffer.alloc(600) }), ReassemblyTooLarge);
    const s = new FragmentReceiver(1000);
    s.add({ flags: TLS_FLAG.more, version: 0, totalLength: 100, fragment: Buffer.alloc(60) });
    assert.throws(() => s.add({ flags: 0, version: 0, fragment: Buffer.alloc(60) }), EapCodecError);
  });

  it("avps_PapRoundTrip_AndErrors", () => {
    const bytes = encodeAvps([{ code: 1, data: Buffer.from("lamp-1") }, { code: 2, data: Buffer.concat([Buffer.from("pw"), Buffer.alloc(14)]) }]);
    const pap = readPap(bytes);
    assert.equal(pap.userName, "lamp-1");
    assert.equal(pap.password.toString(), "pw");
    assert.equal(decodeAvps(bytes).length, 2);
    assert.throws(() => readPap(encodeAvps([{ code: 1, data: Buffer.from("x") }])), AvpError);
    assert.throws(() => readPap(encodeAvps([{ code: 1, data: Buffer.from("x") }, { code: 2, data: Buffer.from("y") }, { code: 99, data: Buffer.alloc(1) }])), AvpError, "unknown mandatory AVP");
    assert.throws(() => decodeAvps(Buffer.from([0, 0, 0, 1, 0x40, 0, 0, 99])), AvpError);
    assert.throws(() => decodeAvps(Buffer.alloc(5)), AvpError);
  });
});

describe("radius: limits", () => {
  it("tokenBuckets_BurstThenRefill", () => {
    const buckets = new TokenBuckets({ burst: 2, perSecond: 1 });
    assert.ok(buckets.take("a", 0));
    assert.ok(buckets.take("a", 0));
    assert.ok(!buckets.take("a", 0));
    assert.ok(buckets.take("b", 0), "keys are independent");
    assert.ok(buckets.take("a", 1000));
  });

  it("tokenBuckets_ClockStepsBack_NeitherDrainsNorRefills (one implementation for MQTT and RADIUS)", () => {
    const buckets = new TokenBuckets({ burst: 2, perSecond: 1 });
    assert.ok(buckets.take("a", 10_000));
    assert.ok(buckets.take("a", 10_000));
    // a clock that steps back 1 h: the bucket is empty, not 3600 tokens in debt
    assert.ok(!buckets.take("a", 10_000 - 3_600_000));
    assert.ok(buckets.take("a", 10_000 - 3_600_000 + 1000), "refills from the stepped time on, not after an hour");
  });

  it("tokenBuckets_BoundedKeys", () => {
    const buckets = new TokenBuckets({ burst: 1, perSecond: 0 }, 3);
    for (const k of ["a", "b", "c", "d"]) buckets.take(k, 0);
    assert.equal(buckets.size, 3);
  });

  it("duplicateCache_ResendSameAuthenticator_NewOnOtherAuthenticator", () => {
    const cache = new DuplicateCache(5000, 2);
    const auth = randomBytes(16);
    assert.equal(cache.check("nas|1.2.3.4:1", 7, auth, 0).kind, "new");
    assert.equal(cache.check("nas|1.2.3.4:1", 7, auth, 1).kind, "in-progress");
    cache.answer("nas|1.2.3.4:1", 7, auth, Buffer.from("answer"), 2);
    const again = cache.check("nas|1.2.3.4:1", 7, auth, 3);
    assert.equal(again.kind, "resend");
    assert.equal(cache.check("nas|1.2.3.4:1", 7, randomBytes(16), 4).kind, "new");
    assert.equal(cache.check("nas|1.2.3.4:1", 8, auth, 9000).kind, "new");
    cache.check("x", 1, auth, 0);
    cache.check("y", 1, auth, 0);
    assert.ok(cache.size <= 2);
  });

  it("sessionTable_CapEvictsLeastRecentlyUsed_IdleExpires", () => {
    const closed: string[] = [];
    const table = new SessionTable<{ close(): void }>(2, 1000);
    const session = (name: string) => ({ close: () => closed.push(name) });
    table.add("a", session("a"), 0);
    table.add("b", session("b"), 0);
    table.get("a", 10);
    table.add("c", session("c"), 20);
    assert.deepEqual(closed, ["b"]);
    assert.equal(table.evicted, 1);
    assert.equal(table.get("a", 2000), undefined);
    assert.ok(closed.includes("a"));
    table.clear();
    assert.equal(table.size, 0);
  });
});
