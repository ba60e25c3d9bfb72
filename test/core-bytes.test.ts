/*
 * modules/bytes.ts against Node's own codecs: UTF-8 (strict decoding, invalid
 * sequences rejected), hex, base64url (canonical, unpadded), concatenation and
 * constant-time comparison.
 */
import assert from "node:assert/strict";
import {
  concatBytes,
  constantTimeEqual,
  fromBase64Url,
  fromHex,
  toBase64Url,
  toHex,
  utf8Decode,
  utf8Encode,
} from "../modules/bytes";
import { isWcmError } from "../modules/errors";

/** A small deterministic PRNG (xorshift32) so failures reproduce. */
function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

function randomBytes(next: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => next() & 0xff);
}

function assertInvalid(run: () => unknown): void {
  assert.throws(run, (error: unknown) => isWcmError(error, "MESSAGE_INVALID"));
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

describe("utf8Encode", () => {
  const cases: [string, string][] = [
    ["Empty", ""],
    ["Ascii", "lamp-0001 wcm/v1"],
    ["TwoByte", "héllo ñ ß"],
    ["ThreeByte", "€ 中文 ￿"],
    ["FourByte", "😀 𝄞 \u{10ffff}"],
    ["Nul", "a\u0000b"],
    ["Bom", "\ufeffx"],
  ];
  for (const [name, text] of cases) {
    it(`MatchesBuffer_${name}`, () => {
      assert.deepEqual(utf8Encode(text), new Uint8Array(Buffer.from(text, "utf8")));
    });
  }

  it("LoneHighSurrogate_BecomesReplacementChar", () => {
    assert.equal(toHex(utf8Encode("a\ud800b")), "61efbfbd62");
    assert.equal(toHex(utf8Encode("\ud800")), "efbfbd");
  });

  it("LoneLowSurrogate_BecomesReplacementChar", () => {
    assert.equal(toHex(utf8Encode("\udc00a")), "efbfbd61");
  });

  it("ReversedSurrogatePair_BecomesTwoReplacementChars", () => {
    assert.equal(toHex(utf8Encode("\udc00\ud800")), "efbfbdefbfbd");
  });
});

describe("utf8Decode", () => {
  const texts = ["", "ascii", "héllo", "€ 中文", "😀𝄞", "\u{10ffff}", "\u0000", "\ufeff"];
  for (const text of texts) {
    it(`RoundTrip_${JSON.stringify(text)}`, () => {
      assert.equal(utf8Decode(utf8Encode(text)), text);
    });
  }

  const invalid: [string, number[]][] = [
    ["LoneContinuation", [0x80]],
    ["ContinuationInAscii", [0x41, 0xbf, 0x42]],
    ["Overlong2Byte_Nul", [0xc0, 0x80]],
    ["Overlong2Byte_C1", [0xc1, 0xbf]],
    ["Overlong3Byte", [0xe0, 0x80, 0x80]],
    ["Overlong3Byte_Slash", [0xe0, 0x80, 0xaf]],
    ["Overlong4Byte", [0xf0, 0x80, 0x80, 0x80]],
    ["Overlong4Byte_MaxBmp", [0xf0, 0x8f, 0xbf, 0xbf]],
    ["SurrogateHigh", [0xed, 0xa0, 0x80]],
    ["SurrogateLow", [0xed, 0xbf, 0xbf]],
    ["SurrogatePairEncoded", [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
    ["AboveMaxCodePoint", [0xf4, 0x90, 0x80, 0x80]],
    ["F5Lead", [0xf5, 0x80, 0x80, 0x80]],
    ["F8Lead", [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ["FE", [0xfe]],
    ["FF", [0xff]],
    ["Truncated2Byte", [0xc3]],
    ["Truncated3Byte", [0xe2, 0x82]],
    ["Truncated4Byte", [0xf0, 0x9f, 0x98]],
    ["BadContinuation", [0xc3, 0x28]],
    ["BadSecondContinuation", [0xe2, 0x82, 0x28]],
  ];
  for (const [name, sequence] of invalid) {
    it(`Invalid_${name}`, () => {
      const payload = Uint8Array.from(sequence);
      assert.throws(() => strictDecoder.decode(payload), "Node agrees it is invalid");
      assertInvalid(() => utf8Decode(payload));
    });
  }

  it("AgreesWithStrictTextDecoder_OnRandomBytes", () => {
    const next = prng(0x5eed);
    let valid = 0;
    for (let round = 0; round < 3000; round++) {
      // bias towards bytes that form multi-byte sequences
      const input = Uint8Array.from({ length: next() % 12 }, () => {
        const r = next();
        return r % 3 === 0 ? 0x80 | (r >> 8) % 64 : r % 3 === 1 ? 0xc0 | (r >> 8) % 64 : (r >> 8) & 0xff;
      });
      let expected: string | undefined;
      try {
        expected = strictDecoder.decode(input);
      } catch {
        expected = undefined;
      }
      if (expected === undefined) {
        assertInvalid(() => utf8Decode(input));
      } else {
        valid++;
        assert.equal(utf8Decode(input), expected, toHex(input));
      }
    }
    assert.ok(valid > 100, `only ${valid} valid inputs exercised`);
  });
});

describe("toHex/fromHex", () => {
  it("MatchesBuffer_AllByteValues", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    assert.equal(toHex(all), Buffer.from(all).toString("hex"));
    assert.deepEqual(fromHex(toHex(all)), all);
  });

  it("Empty", () => {
    assert.equal(toHex(new Uint8Array(0)), "");
    assert.deepEqual(fromHex(""), new Uint8Array(0));
  });

  it("AcceptsUpperCase", () => {
    assert.deepEqual(fromHex("DEADbeef"), Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
  });

  for (const [name, text] of [["OddLength", "abc"], ["NonHex", "zz"], ["Prefix", "0x00"], ["Space", "00 11"], ["Sign", "+1"], ["Newline", "00\n"]]) {
    it(`Invalid_${name}`, () => {
      assertInvalid(() => fromHex(text));
    });
  }
});

describe("toBase64Url/fromBase64Url", () => {
  it("MatchesBuffer_Lengths0To70", () => {
    const next = prng(42);
    for (let length = 0; length <= 70; length++) {
      const data = randomBytes(next, length);
      const encoded = toBase64Url(data);
      assert.equal(encoded, Buffer.from(data).toString("base64url"), `length ${length}`);
      assert.deepEqual(fromBase64Url(encoded), data, `length ${length}`);
    }
  });

  it("Rfc4648Vectors", () => {
    const vectors: [string, string][] = [["", ""], ["f", "Zg"], ["fo", "Zm8"], ["foo", "Zm9v"], ["foob", "Zm9vYg"], ["fooba", "Zm9vYmE"], ["foobar", "Zm9vYmFy"]];
    for (const [text, encoded] of vectors) {
      assert.equal(toBase64Url(utf8Encode(text)), encoded);
      assert.equal(utf8Decode(fromBase64Url(encoded)), text);
    }
  });

  it("UsesUrlAlphabet", () => {
    assert.equal(toBase64Url(Uint8Array.of(0xfb, 0xff, 0xbf)), "-_-_");
    assert.deepEqual(fromBase64Url("-_-_"), Uint8Array.of(0xfb, 0xff, 0xbf));
  });

  const invalid: [string, string][] = [
    ["Padding", "Zg=="],
    ["SinglePad", "Zm8="],
    ["StandardPlus", "+/+/"],
    ["StandardSlash", "ab/c"],
    ["Length1", "A"],
    ["Length5", "AAAAA"],
    ["Whitespace", "Zm9 v"],
    ["Newline", "Zm9v\n"],
    ["NonAscii", "Zm9é"],
    ["NonCanonical_OneByteTail", "Zh"], // 'f' is Zg; h sets one of the 4 unused bits
    ["NonCanonical_OneByteTail_B", "AB"],
    ["NonCanonical_TwoByteTail", "Zm9"], // Zm8 is canonical, Zm9 sets an unused bit
    ["NonCanonical_TwoByteTail_B", "AAB"],
  ];
  for (const [name, text] of invalid) {
    it(`Invalid_${name}`, () => {
      assertInvalid(() => fromBase64Url(text));
    });
  }

  it("NonCanonical_BufferWouldAccept", () => {
    // Buffer's lenient decoder maps both to the same byte; wcm accepts only the canonical form
    assert.deepEqual(new Uint8Array(Buffer.from("Zh", "base64url")), Uint8Array.of(0x66));
    assert.deepEqual(fromBase64Url("Zg"), Uint8Array.of(0x66));
    assertInvalid(() => fromBase64Url("Zh"));
  });
});

describe("concatBytes", () => {
  it("Concatenates_InOrder", () => {
    assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
  });
  it("NoParts_Empty", () => {
    assert.deepEqual(concatBytes(), new Uint8Array(0));
  });
  it("Copies_InputsNotAliased", () => {
    const part = Uint8Array.of(9);
    const out = concatBytes(part);
    part[0] = 0;
    assert.equal(out[0], 9);
  });
});

describe("constantTimeEqual", () => {
  it("Equal", () => {
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true);
    assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
  });
  it("DifferentLastByte", () => {
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), false);
  });
  it("DifferentFirstByte", () => {
    assert.equal(constantTimeEqual(Uint8Array.of(0, 2, 3), Uint8Array.of(1, 2, 3)), false);
  });
  it("DifferentLength", () => {
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false);
  });
});
