/*
 * The wire format of modules/protocol.ts: valid messages round-trip, malformed
 * ones get the documented WcmError code (table-driven), topics and login
 * passwords parse strictly, and every example JSON in docs/protocol.md decodes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fromHex, toBase64Url, toHex, utf8Encode } from "../modules/bytes";
import { deriveCommitProof, deriveTemporarySecret, deriveWrapKey, unwrapSecret } from "../modules/derive";
import { isWcmError, type WcmErrorCode } from "../modules/errors";
import { nobleDigest } from "../modules/noble-digest";
import {
  appTopic,
  checkDeviceId,
  decodeRequest,
  decodeResponse,
  decodeStatus,
  deviceTopics,
  encodeRequest,
  encodeResponse,
  encodeStatus,
  formatLoginPassword,
  MAX_LOGIN_COUNTER,
  MAX_MESSAGE_BYTES,
  parseLoginPassword,
  parseTopic,
  peekRequestId,
  type CloudResponse,
  type DeviceRequest,
  type DeviceStatus,
} from "../modules/protocol";

const bytes = (length: number, start = 0) => Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
const json = (value: unknown) => utf8Encode(JSON.stringify(value));
const b64 = (length: number, start = 0) => toBase64Url(bytes(length, start));

/** Asserts that `run` throws a WcmError with `code` (and `field` when given). */
function assertWcmError(run: () => unknown, code: WcmErrorCode, field?: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isWcmError(error), `expected a WcmError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (field !== undefined) assert.equal(error.field, field, error.message);
    return true;
  });
}

/** A JSON payload padded with trailing spaces to exactly `size` bytes. */
function padded(value: unknown, size: number): Uint8Array {
  const text = JSON.stringify(value);
  assert.ok(text.length <= size);
  return utf8Encode(text + " ".repeat(size - text.length));
}

// ---------------------------------------------------------------- requests

describe("encodeRequest/decodeRequest", () => {
  const valid: [string, DeviceRequest][] = [
    ["Issue", { v: 1, rid: "Zm9vYmFyYmF6", op: "issue" }],
    ["Issue_OneCharRid", { v: 1, rid: "a", op: "issue" }],
    ["Issue_32CharRid", { v: 1, rid: "A".repeat(16) + "z9_-".repeat(4), op: "issue" }],
    ["Commit", { v: 1, rid: "cXV4cXV1eHh4", op: "commit", gen: 1, proof: bytes(32) }],
    ["Commit_MaxGeneration", { v: 1, rid: "r-1_x", op: "commit", gen: 0x7fffffff, proof: bytes(32, 200) }],
  ];
  for (const [name, request] of valid) {
    it(`RoundTrip_${name}`, () => {
      assert.deepEqual(decodeRequest(encodeRequest(request)), request);
    });
  }

  it("Accepts_ExactlyMaxMessageBytes", () => {
    const payload = padded({ v: 1, rid: "abc", op: "issue" }, MAX_MESSAGE_BYTES);
    assert.equal(payload.length, MAX_MESSAGE_BYTES);
    assert.deepEqual(decodeRequest(payload), { v: 1, rid: "abc", op: "issue" });
  });

  it("Accepts_FieldsInAnyOrder", () => {
    const proof = b64(32);
    assert.deepEqual(decodeRequest(json({ proof, gen: 3, op: "commit", rid: "x", v: 1 })), {
      v: 1, rid: "x", op: "commit", gen: 3, proof: bytes(32),
    });
  });

  const commit = { v: 1, rid: "rid1", op: "commit", gen: 1, proof: b64(32) };
  const errors: [string, Uint8Array, WcmErrorCode, string?][] = [
    ["TooLarge_OneByteOver", padded({ v: 1, rid: "abc", op: "issue" }, MAX_MESSAGE_BYTES + 1), "MESSAGE_TOO_LARGE", "request"],
    ["TooLarge_Huge", new Uint8Array(100_000), "MESSAGE_TOO_LARGE"],
    ["NotJson_Empty", new Uint8Array(0), "MESSAGE_INVALID", "request"],
    ["NotJson_Truncated", utf8Encode('{"v":1,"rid":"a","op":"issue"'), "MESSAGE_INVALID", "request"],
    ["NotJson_Garbage", utf8Encode("issue please"), "MESSAGE_INVALID", "request"],
    ["NotJson_InvalidUtf8", Uint8Array.of(0x7b, 0xff, 0x7d), "MESSAGE_INVALID", "request"],
    ["NotObject_Array", json([1, "issue"]), "MESSAGE_INVALID", "request"],
    ["NotObject_Null", utf8Encode("null"), "MESSAGE_INVALID", "request"],
    ["NotObject_Number", utf8Encode("1"), "MESSAGE_INVALID", "request"],
    ["NotObject_String", json("issue"), "MESSAGE_INVALID", "request"],
    ["WrongVersion_2", json({ v: 2, rid: "a", op: "issue" }), "MESSAGE_INVALID", "request.v"],
    ["WrongVersion_String", json({ v: "1", rid: "a", op: "issue" }), "MESSAGE_INVALID", "request.v"],
    ["WrongVersion_Missing", json({ rid: "a", op: "issue" }), "MESSAGE_INVALID", "request.v"],
    ["UnexpectedField_Issue", json({ v: 1, rid: "a", op: "issue", gen: 1 }), "MESSAGE_INVALID", "request.gen"],
    ["UnexpectedField_Commit", json({ ...commit, extra: true }), "MESSAGE_INVALID", "request.extra"],
    ["UnexpectedField_Proto", utf8Encode('{"v":1,"rid":"a","op":"issue","__proto__":{}}'), "MESSAGE_INVALID", "request.__proto__"],
    ["BadRid_Missing", json({ v: 1, op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_Empty", json({ v: 1, rid: "", op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_33Chars", json({ v: 1, rid: "a".repeat(33), op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_Space", json({ v: 1, rid: "a b", op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_Slash", json({ v: 1, rid: "a/b", op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_NonAscii", json({ v: 1, rid: "é", op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["BadRid_Number", json({ v: 1, rid: 7, op: "issue" }), "MESSAGE_INVALID", "request.rid"],
    ["UnknownOp_Rotate", json({ v: 1, rid: "a", op: "rotate" }), "MESSAGE_INVALID", "request.op"],
    ["UnknownOp_Missing", json({ v: 1, rid: "a" }), "MESSAGE_INVALID", "request.op"],
    ["UnknownOp_Uppercase", json({ v: 1, rid: "a", op: "ISSUE" }), "MESSAGE_INVALID", "request.op"],
    ["BadGen_Zero", json({ ...commit, gen: 0 }), "MESSAGE_INVALID", "request.gen"],
    ["BadGen_Negative", json({ ...commit, gen: -1 }), "MESSAGE_INVALID", "request.gen"],
    ["BadGen_Fraction", json({ ...commit, gen: 1.5 }), "MESSAGE_INVALID", "request.gen"],
    ["BadGen_String", json({ ...commit, gen: "1" }), "MESSAGE_INVALID", "request.gen"],
    ["BadGen_TooLarge", json({ ...commit, gen: 2 ** 31 }), "MESSAGE_INVALID", "request.gen"],
    ["BadGen_Missing", json({ v: 1, rid: "a", op: "commit", proof: b64(32) }), "MESSAGE_INVALID", "request.gen"],
    ["BadBase64_Missing", json({ v: 1, rid: "a", op: "commit", gen: 1 }), "MESSAGE_INVALID", "request.proof"],
    ["BadBase64_Number", json({ ...commit, proof: 12 }), "MESSAGE_INVALID", "request.proof"],
    ["BadBase64_StandardAlphabet", json({ ...commit, proof: `${b64(32).slice(0, 41)}+/` }), "MESSAGE_INVALID"],
    ["BadBase64_Padded", json({ ...commit, proof: `${b64(32)}=` }), "MESSAGE_INVALID"],
    ["BadBase64_NonCanonicalTail", json({ ...commit, proof: `${"A".repeat(42)}B` }), "MESSAGE_INVALID"],
    ["BadBase64_Whitespace", json({ ...commit, proof: ` ${b64(32)}` }), "MESSAGE_INVALID"],
    ["WrongLength_Proof31", json({ ...commit, proof: b64(31) }), "MESSAGE_INVALID", "request.proof"],
    ["WrongLength_Proof33", json({ ...commit, proof: b64(33) }), "MESSAGE_INVALID", "request.proof"],
    ["WrongLength_ProofEmpty", json({ ...commit, proof: "" }), "MESSAGE_INVALID", "request.proof"],
  ];
  for (const [name, payload, code, field] of errors) {
    it(name, () => {
      assertWcmError(() => decodeRequest(payload), code, field);
    });
  }

  it("BadParams_UnknownOp_CarriesFieldForCloudReason", () => {
    // the cloud answers UNKNOWN_OP (not BAD_REQUEST) by looking at error.field
    assertWcmError(() => decodeRequest(json({ v: 1, rid: "abc", op: "delete" })), "MESSAGE_INVALID", "request.op");
  });
});

describe("peekRequestId", () => {
  it("ReadsRid_OfInvalidRequest", () => {
    assert.equal(peekRequestId(json({ v: 9, rid: "keep-me", op: "nope" })), "keep-me");
  });
  it("Undefined_WhenRidInvalidOrMissingOrNotJson", () => {
    assert.equal(peekRequestId(json({ v: 1, rid: "a b" })), undefined);
    assert.equal(peekRequestId(json({ v: 1 })), undefined);
    assert.equal(peekRequestId(utf8Encode("{")), undefined);
    assert.equal(peekRequestId(utf8Encode("null")), undefined);
  });
  it("Undefined_WhenTooLarge", () => {
    assert.equal(peekRequestId(padded({ rid: "abc" }, MAX_MESSAGE_BYTES + 1)), undefined);
  });
});

// ---------------------------------------------------------------- responses

describe("encodeResponse/decodeResponse", () => {
  const valid: [string, CloudResponse][] = [
    ["IssueOk", { v: 1, rid: "Zm9vYmFyYmF6", op: "issue", ok: true, gen: 1, nonce: bytes(16, 16), secret: bytes(32, 1), tag: bytes(32, 2) }],
    ["CommitOk", { v: 1, rid: "cXV4cXV1eHh4", op: "commit", ok: true, gen: 7 }],
    ["Refused_NoDetail", { v: 1, rid: "a", op: "commit", ok: false, reason: "BAD_PROOF" }],
    ["Refused_WithDetail", { v: 1, rid: "a", op: "issue", ok: false, reason: "NOTHING_TO_ISSUE", detail: "temporary credential retired" }],
    ["Refused_UnknownOpEchoed", { v: 1, rid: "-", op: "unknown", ok: false, reason: "BAD_REQUEST" }],
  ];
  for (const reason of ["BAD_REQUEST", "TOO_LARGE", "UNKNOWN_OP", "NOTHING_TO_ISSUE", "BAD_PROOF", "GENERATION_MISMATCH", "RATE_LIMITED", "INTERNAL"] as const) {
    valid.push([`Refused_${reason}`, { v: 1, rid: "r", op: "issue", ok: false, reason }]);
  }
  for (const [name, response] of valid) {
    it(`RoundTrip_${name}`, () => {
      assert.deepEqual(decodeResponse(encodeResponse(response)), response);
    });
  }

  it("Encode_TruncatesDetailTo200", () => {
    const decoded = decodeResponse(encodeResponse({ v: 1, rid: "a", op: "issue", ok: false, reason: "INTERNAL", detail: "x".repeat(500) }));
    assert.equal(decoded.ok, false);
    assert.equal(!decoded.ok && decoded.detail, "x".repeat(200));
  });

  const issueOk = { v: 1, rid: "a", op: "issue", ok: true, gen: 1, nonce: b64(16), secret: b64(32), tag: b64(32) };
  const refused = { v: 1, rid: "a", op: "commit", ok: false, reason: "BAD_PROOF" };
  const errors: [string, Uint8Array, WcmErrorCode, string?][] = [
    ["TooLarge", padded(refused, MAX_MESSAGE_BYTES + 1), "MESSAGE_TOO_LARGE", "response"],
    ["NotJson", utf8Encode("ok"), "MESSAGE_INVALID", "response"],
    ["NotObject", json([refused]), "MESSAGE_INVALID", "response"],
    ["WrongVersion", json({ ...refused, v: 0 }), "MESSAGE_INVALID", "response.v"],
    ["BadRid", json({ ...refused, rid: "" }), "MESSAGE_INVALID", "response.rid"],
    ["BadOp_Missing", json({ v: 1, rid: "a", ok: false, reason: "BAD_PROOF" }), "MESSAGE_INVALID", "response.op"],
    ["BadOp_17Chars", json({ ...refused, op: "o".repeat(17) }), "MESSAGE_INVALID", "response.op"],
    ["UnknownOp_OkTrue", json({ v: 1, rid: "a", op: "rotate", ok: true, gen: 1 }), "MESSAGE_INVALID", "response.op"],
    ["BadOk_String", json({ ...refused, ok: "false" }), "MESSAGE_INVALID", "response.ok"],
    ["BadOk_Missing", json({ v: 1, rid: "a", op: "commit", gen: 1 }), "MESSAGE_INVALID", "response.ok"],
    ["UnknownReason", json({ ...refused, reason: "NOPE" }), "MESSAGE_INVALID", "response.reason"],
    ["UnknownReason_Lowercase", json({ ...refused, reason: "bad_proof" }), "MESSAGE_INVALID", "response.reason"],
    ["UnknownReason_Missing", json({ v: 1, rid: "a", op: "commit", ok: false }), "MESSAGE_INVALID", "response.reason"],
    ["BadDetail_201Chars", json({ ...refused, detail: "d".repeat(201) }), "MESSAGE_INVALID", "response.detail"],
    ["BadDetail_Number", json({ ...refused, detail: 5 }), "MESSAGE_INVALID", "response.detail"],
    ["UnexpectedField_Refused", json({ ...refused, gen: 1 }), "MESSAGE_INVALID", "response.gen"],
    ["UnexpectedField_IssueOk", json({ ...issueOk, reason: "INTERNAL" }), "MESSAGE_INVALID", "response.reason"],
    ["UnexpectedField_CommitOk", json({ v: 1, rid: "a", op: "commit", ok: true, gen: 1, proof: b64(32) }), "MESSAGE_INVALID", "response.proof"],
    ["BadGen_IssueOk", json({ ...issueOk, gen: 0 }), "MESSAGE_INVALID", "response.gen"],
    ["BadGen_CommitOk", json({ v: 1, rid: "a", op: "commit", ok: true, gen: 2 ** 31 }), "MESSAGE_INVALID", "response.gen"],
    ["WrongLength_Nonce15", json({ ...issueOk, nonce: b64(15) }), "MESSAGE_INVALID", "response.nonce"],
    ["WrongLength_Nonce32", json({ ...issueOk, nonce: b64(32) }), "MESSAGE_INVALID", "response.nonce"],
    ["WrongLength_Secret31", json({ ...issueOk, secret: b64(31) }), "MESSAGE_INVALID", "response.secret"],
    ["WrongLength_Tag33", json({ ...issueOk, tag: b64(33) }), "MESSAGE_INVALID", "response.tag"],
    ["BadBase64_Secret", json({ ...issueOk, secret: `${b64(32).slice(0, 42)}=` }), "MESSAGE_INVALID"],
    ["BadBase64_TagMissing", json({ ...issueOk, tag: undefined }), "MESSAGE_INVALID", "response.tag"],
  ];
  for (const [name, payload, code, field] of errors) {
    it(name, () => {
      assertWcmError(() => decodeResponse(payload), code, field);
    });
  }
});

// ---------------------------------------------------------------- status

describe("encodeStatus/decodeStatus", () => {
  const valid: [string, DeviceStatus][] = [];
  for (const state of ["STOPPED", "CONNECTING", "ISSUING", "ONLINE", "RETRY_WAIT", "AUTH_FAILED"] as const) {
    valid.push([`State_${state}`, { v: 1, state, credential: "permanent" }]);
  }
  for (const credential of ["certificate", "secret", "temporary", "permanent"] as const) {
    valid.push([`Credential_${credential}`, { v: 1, state: "ONLINE", credential }]);
  }
  valid.push(["LastFailure_ReasonOnly", { v: 1, state: "ONLINE", credential: "secret", lastFailure: { reason: "REFUSED_GENERATION_MISMATCH" } }]);
  valid.push(["LastFailure_WithDetail", { v: 1, state: "RETRY_WAIT", credential: "temporary", lastFailure: { reason: "NETWORK", detail: "ECONNREFUSED" } }]);
  for (const [name, status] of valid) {
    it(`RoundTrip_${name}`, () => {
      assert.deepEqual(decodeStatus(encodeStatus(status)), status);
    });
  }

  it("Encode_TruncatesDetailTo200", () => {
    const decoded = decodeStatus(encodeStatus({ v: 1, state: "ONLINE", credential: "secret", lastFailure: { reason: "NETWORK", detail: "y".repeat(300) } }));
    assert.equal(decoded.lastFailure?.detail, "y".repeat(200));
  });

  const base = { v: 1, state: "ONLINE", credential: "secret" };
  const errors: [string, Uint8Array, WcmErrorCode, string?][] = [
    ["TooLarge", padded(base, MAX_MESSAGE_BYTES + 1), "MESSAGE_TOO_LARGE", "status"],
    ["NotJson", utf8Encode("ONLINE"), "MESSAGE_INVALID", "status"],
    ["NotObject", utf8Encode("true"), "MESSAGE_INVALID", "status"],
    ["WrongVersion", json({ ...base, v: 2 }), "MESSAGE_INVALID", "status.v"],
    ["UnexpectedField", json({ ...base, rid: "a" }), "MESSAGE_INVALID", "status.rid"],
    ["UnknownState", json({ ...base, state: "SLEEPING" }), "MESSAGE_INVALID", "status.state"],
    ["UnknownState_Missing", json({ v: 1, credential: "secret" }), "MESSAGE_INVALID", "status.state"],
    ["UnknownCredential", json({ ...base, credential: "password" }), "MESSAGE_INVALID", "status.credential"],
    ["LastFailure_Null", json({ ...base, lastFailure: null }), "MESSAGE_INVALID", "status.lastFailure"],
    ["LastFailure_Array", json({ ...base, lastFailure: ["NETWORK"] }), "MESSAGE_INVALID", "status.lastFailure"],
    ["LastFailure_String", json({ ...base, lastFailure: "NETWORK" }), "MESSAGE_INVALID", "status.lastFailure"],
    ["LastFailure_LowercaseReason", json({ ...base, lastFailure: { reason: "network" } }), "MESSAGE_INVALID", "status.lastFailure.reason"],
    ["LastFailure_Reason41Chars", json({ ...base, lastFailure: { reason: "A".repeat(41) } }), "MESSAGE_INVALID", "status.lastFailure.reason"],
    ["LastFailure_MissingReason", json({ ...base, lastFailure: { detail: "x" } }), "MESSAGE_INVALID", "status.lastFailure.reason"],
    ["LastFailure_Detail201", json({ ...base, lastFailure: { reason: "NETWORK", detail: "z".repeat(201) } }), "MESSAGE_INVALID", "status.lastFailure.detail"],
    ["LastFailure_UnexpectedField", json({ ...base, lastFailure: { reason: "NETWORK", at: 5 } }), "MESSAGE_INVALID", "status.lastFailure.at"],
  ];
  for (const [name, payload, code, field] of errors) {
    it(name, () => {
      assertWcmError(() => decodeStatus(payload), code, field);
    });
  }
});

// ---------------------------------------------------------------- topics

describe("deviceTopics", () => {
  it("Topics_OfDevice", () => {
    assert.deepEqual(deviceTopics("lamp-0001"), {
      request: "wcm/v1/lamp-0001/req",
      response: "wcm/v1/lamp-0001/res",
      status: "wcm/v1/lamp-0001/status",
      app: "wcm/v1/lamp-0001/app",
    });
  });
});

describe("appTopic", () => {
  const valid: [string, string][] = [
    ["led", "wcm/v1/lamp-0001/app/led"],
    ["sensors/temp_1/raw-data", "wcm/v1/lamp-0001/app/sensors/temp_1/raw-data"],
    ["a".repeat(64), `wcm/v1/lamp-0001/app/${"a".repeat(64)}`],
  ];
  for (const [suffix, topic] of valid) {
    it(`Valid_${suffix.length > 20 ? "64Chars" : suffix}`, () => {
      assert.equal(appTopic("lamp-0001", suffix), topic);
      assert.deepEqual(parseTopic(topic), { deviceId: "lamp-0001", kind: "app", suffix });
    });
  }
  const invalid: [string, string][] = [
    ["Empty", ""],
    ["65Chars", "a".repeat(65)],
    ["EmptyLevel", "a//b"],
    ["LeadingSlash", "/a"],
    ["TrailingSlash", "a/"],
    ["WildcardPlus", "+"],
    ["WildcardHash", "a/#"],
    ["Dot", "a.b"],
    ["Space", "a b"],
    ["NonAscii", "lüfter"],
  ];
  for (const [name, suffix] of invalid) {
    it(`Invalid_${name}`, () => {
      assertWcmError(() => appTopic("lamp-0001", suffix), "MESSAGE_INVALID", "topic");
    });
  }
});

describe("parseTopic", () => {
  const valid: [string, ReturnType<typeof parseTopic>][] = [
    ["wcm/v1/lamp-0001/req", { deviceId: "lamp-0001", kind: "req" }],
    ["wcm/v1/lamp-0001/res", { deviceId: "lamp-0001", kind: "res" }],
    ["wcm/v1/lamp-0001/status", { deviceId: "lamp-0001", kind: "status" }],
    ["wcm/v1/A.b_c-9/app/x", { deviceId: "A.b_c-9", kind: "app", suffix: "x" }],
    ["wcm/v1/lamp-0001/app/a/b/c", { deviceId: "lamp-0001", kind: "app", suffix: "a/b/c" }],
  ];
  for (const [topic, expected] of valid) {
    it(`Valid_${topic}`, () => {
      assert.deepEqual(parseTopic(topic), expected);
    });
  }
  const invalid = [
    "",
    "wcm",
    "wcm/v1/lamp-0001",
    "wcm/v2/lamp-0001/req",
    "WCM/v1/lamp-0001/req",
    "xyz/v1/lamp-0001/req",
    "/wcm/v1/lamp-0001/req",
    "wcm/v1/+/req",
    "wcm/v1/#",
    "wcm/v1/.hidden/req",
    "wcm/v1//req",
    `wcm/v1/${"a".repeat(65)}/req`,
    "wcm/v1/lamp-0001/req/extra",
    "wcm/v1/lamp-0001/res/",
    "wcm/v1/lamp-0001/status/x",
    "wcm/v1/lamp-0001/other",
    "wcm/v1/lamp-0001/app",
    "wcm/v1/lamp-0001/app/",
    "wcm/v1/lamp-0001/app/a//b",
    "wcm/v1/lamp-0001/app/#",
    "wcm/v1/lamp-0001/app/+",
    `wcm/v1/lamp-0001/app/${"a".repeat(65)}`,
  ];
  for (const topic of invalid) {
    it(`NotWcm_${JSON.stringify(topic)}`, () => {
      assert.equal(parseTopic(topic), undefined);
    });
  }
});

describe("checkDeviceId", () => {
  for (const id of ["a", "0", "lamp-0001", "A.b_c-d", "x".repeat(64)]) {
    it(`Valid_${id.length > 20 ? "64Chars" : id}`, () => {
      assert.equal(checkDeviceId(id), id);
    });
  }
  const invalid: [string, unknown][] = [
    ["Empty", ""], ["65Chars", "x".repeat(65)], ["LeadingDot", ".a"], ["LeadingDash", "-a"], ["LeadingUnderscore", "_a"],
    ["Slash", "a/b"], ["Plus", "a+b"], ["Hash", "a#"], ["Nul", "a\u0000b"], ["Space", "a b"], ["NonAscii", "lämp"],
    ["Number", 7], ["Undefined", undefined],
  ];
  for (const [name, id] of invalid) {
    it(`Invalid_${name}`, () => {
      assertWcmError(() => checkDeviceId(id), "MESSAGE_INVALID", "deviceId");
      assertWcmError(() => checkDeviceId(id, "CONFIG_INVALID"), "CONFIG_INVALID", "deviceId");
    });
  }
});

// ---------------------------------------------------------------- login password

describe("formatLoginPassword/parseLoginPassword", () => {
  const valid: [string, { kind: "s" | "t"; counter: number; proof: Uint8Array }][] = [
    ["Secret_Counter1", { kind: "s", counter: 1, proof: bytes(32) }],
    ["Temporary_Counter0", { kind: "t", counter: 0, proof: bytes(32, 99) }],
    ["MaxCounter", { kind: "s", counter: MAX_LOGIN_COUNTER, proof: bytes(32, 255) }],
  ];
  for (const [name, login] of valid) {
    it(`RoundTrip_${name}`, () => {
      const password = formatLoginPassword(login);
      assert.match(password, /^v1:[st]:\d+:[A-Za-z0-9_-]{43}$/);
      assert.deepEqual(parseLoginPassword(password), login);
    });
  }

  it("DocVector_SecretCounter7", () => {
    const login = parseLoginPassword("v1:s:7:Z330xAgCiarOP-kqDvwY2680RcAmC8Ud5v9Q-zPgrT8");
    assert.equal(login.kind, "s");
    assert.equal(login.counter, 7);
    assert.equal(toHex(login.proof), "677df4c4080289aace3fe92a0efc18dbaf3445c0260bc51de6ff50fb33e0ad3f");
  });

  const proof = b64(32);
  const invalid: [string, string, WcmErrorCode][] = [
    ["Empty", "", "MESSAGE_INVALID"],
    ["TooLong_129", `v1:s:1:${proof}${"A".repeat(129 - 7 - 43)}`, "MESSAGE_TOO_LARGE"],
    ["WrongVersion", `v2:s:1:${proof}`, "MESSAGE_INVALID"],
    ["NoVersion", `s:1:${proof}`, "MESSAGE_INVALID"],
    ["UnknownKind", `v1:c:1:${proof}`, "MESSAGE_INVALID"],
    ["UppercaseKind", `v1:S:1:${proof}`, "MESSAGE_INVALID"],
    ["LeadingZero", `v1:s:07:${proof}`, "MESSAGE_INVALID"],
    ["NegativeCounter", `v1:s:-1:${proof}`, "MESSAGE_INVALID"],
    ["EmptyCounter", `v1:s::${proof}`, "MESSAGE_INVALID"],
    ["HexCounter", `v1:s:0x1:${proof}`, "MESSAGE_INVALID"],
    ["CounterAboveMax", `v1:s:${MAX_LOGIN_COUNTER + 1}:${proof}`, "MESSAGE_INVALID"],
    ["Counter16Digits", `v1:s:1000000000000000:${proof}`, "MESSAGE_INVALID"],
    ["Proof42Chars", `v1:s:1:${proof.slice(0, 42)}`, "MESSAGE_INVALID"],
    ["Proof44Chars", `v1:s:1:${proof}A`, "MESSAGE_INVALID"],
    ["ProofPadded", `v1:s:1:${proof}=`, "MESSAGE_INVALID"],
    ["ProofStandardAlphabet", `v1:s:1:${proof.slice(0, 42)}+`, "MESSAGE_INVALID"],
    ["ProofNonCanonical", `v1:s:1:${"A".repeat(42)}B`, "MESSAGE_INVALID"],
    ["ExtraPart", `v1:s:1:${proof}:x`, "MESSAGE_INVALID"],
    ["TrailingNewline", `v1:s:1:${proof}\n`, "MESSAGE_INVALID"],
  ];
  for (const [name, password, code] of invalid) {
    it(`Invalid_${name}`, () => {
      assertWcmError(() => parseLoginPassword(password), code);
    });
  }
});

// ---------------------------------------------------------------- docs/protocol.md examples

describe("docs/protocol.md examples", () => {
  const doc = readFileSync(new URL("../docs/protocol.md", import.meta.url), "utf8");
  const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1].trim());

  it("HasExamplesOfEveryMessageKind", () => {
    assert.ok(examples.length >= 8, `found ${examples.length} examples`);
    const parsed = examples.map((text) => JSON.parse(text) as Record<string, unknown>);
    assert.ok(parsed.some((m) => m.op === "issue" && m.ok === undefined));
    assert.ok(parsed.some((m) => m.op === "commit" && m.ok === undefined));
    assert.ok(parsed.some((m) => m.op === "issue" && m.ok === true));
    assert.ok(parsed.some((m) => m.op === "commit" && m.ok === true));
    assert.ok(parsed.some((m) => m.ok === false));
    assert.ok(parsed.some((m) => m.state !== undefined));
  });

  examples.forEach((text, index) => {
    it(`Example${index + 1}_Decodes`, () => {
      const payload = utf8Encode(text);
      assert.ok(payload.length <= MAX_MESSAGE_BYTES);
      const value = JSON.parse(text) as Record<string, unknown>;
      if ("state" in value) decodeStatus(payload);
      else if ("ok" in value) decodeResponse(payload);
      else decodeRequest(payload);
    });
  });

  it("IssueExample_UnwrapsToTheDocumentedSecret", () => {
    const digest = nobleDigest;
    const text = examples.find((t) => /"op":"issue","ok":true/.test(t));
    assert.ok(text);
    const response = decodeResponse(utf8Encode(text));
    assert.ok(response.ok && response.op === "issue" && "nonce" in response);
    const temporary = deriveTemporarySecret(digest, fromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff"), "lamp-0001");
    const secret = unwrapSecret(digest, deriveWrapKey(digest, temporary), "lamp-0001", response.nonce, { ciphertext: response.secret, tag: response.tag });
    assert.ok(secret);
    assert.equal(toHex(secret), "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
  });

  it("CommitExample_CarriesTheDocumentedProof", () => {
    const text = examples.find((t) => /"op":"commit","gen"/.test(t));
    assert.ok(text);
    const request = decodeRequest(utf8Encode(text));
    assert.ok(request.op === "commit");
    const newSecret = fromHex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
    assert.deepEqual(request.proof, deriveCommitProof(nobleDigest, newSecret, "lamp-0001", request.gen));
  });
});
