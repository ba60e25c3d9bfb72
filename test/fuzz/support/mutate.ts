/*
 * Deterministic mutation of recorded seeds, in the manner of libFuzzer's and
 * AFL's havoc stage: bit flips, byte sets to interesting values, truncation,
 * extension, repetition, splicing with another seed, deletion and insertion of
 * runs, ASCII digit and JSON token edits (most decoders here read JSON), and
 * edits of the big-endian 8/16/24/32-bit length fields that the binary formats
 * (RADIUS, EAP, TLS frames, AVPs, MQTT, flash records) carry.
 * The PRNG is xoshiro128** seeded through splitmix32 (no Math.random): a seed and an index give
 * the same input on every run and every machine.
 */
import { concatBytes } from "../../../modules/bytes";

/** A seeded PRNG (xoshiro128**). */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    // splitmix32 expands the seed
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next() | 1;
    this.#b = next();
    this.#c = next();
    this.#d = next();
  }

  /** A uniform 32-bit unsigned integer (xoshiro128**). */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return result;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x2c, 0x3a, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2d, 0x30, 0x39, 0x0a, 0xc0, 0xed, 0xf4];
const INTERESTING_16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x1000, 0x1001, 0xfff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 0x1000000, 0xfffffffe];
/** JSON tokens and values that reach type, range and shape checks. */
const JSON_TOKENS = [
  "null", "true", "false", "0", "-1", "1e309", "-0", "1.5", "9007199254740993", "2147483648", "281474976710656",
  "\"\"", "[]", "{}", "[[[[[[[[[[]]]]]]]]]]", "\"\\u0000\"", "\"\\ud800\"", "\"__proto__\"", "{\"__proto__\":{}}",
  "\"constructor\"", "\"toString\"", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", ",", ":", "\"", "\\",
];

export type Mutator = (input: Uint8Array, rng: Prng, other: Uint8Array) => Uint8Array;

const flipBit: Mutator = (input, rng) => {
  if (input.length === 0) return Uint8Array.of(rng.below(256));
  const out = input.slice();
  out[rng.below(out.length)] ^= 1 << rng.below(8);
  return out;
};

const setByte: Mutator = (input, rng) => {
  if (input.length === 0) return Uint8Array.of(rng.pick(INTERESTING_8));
  const out = input.slice();
  out[rng.below(out.length)] = rng.below(4) === 0 ? rng.below(256) : rng.pick(INTERESTING_8);
  return out;
};

const truncate: Mutator = (input, rng) => input.slice(0, rng.below(input.length + 1));

const dropHead: Mutator = (input, rng) => input.slice(rng.below(input.length + 1));

const extend: Mutator = (input, rng) => {
  const extra = new Uint8Array(1 + rng.below(rng.below(4) === 0 ? 4096 : 64));
  const fill = rng.below(3);
  for (let i = 0; i < extra.length; i++) extra[i] = fill === 0 ? 0 : fill === 1 ? rng.below(256) : 0x41;
  return concat(input, extra);
};

const repeatRun: Mutator = (input, rng) => {
  if (input.length === 0) return input;
  const start = rng.below(input.length);
  const run = input.subarray(start, start + 1 + rng.below(Math.min(64, input.length - start)));
  const times = 1 + rng.below(rng.below(8) === 0 ? 200 : 8);
  const parts: Uint8Array[] = [input.subarray(0, start)];
  for (let i = 0; i < times; i++) parts.push(run);
  parts.push(input.subarray(start));
  return concat(...parts);
};

const deleteRun: Mutator = (input, rng) => {
  if (input.length === 0) return input;
  const start = rng.below(input.length);
  const end = Math.min(input.length, start + 1 + rng.below(16));
  return concat(input.subarray(0, start), input.subarray(end));
};

const insertBytes: Mutator = (input, rng) => {
  const at = rng.below(input.length + 1);
  const bytes = new Uint8Array(1 + rng.below(8));
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.below(2) ? rng.pick(INTERESTING_8) : rng.below(256);
  return concat(input.subarray(0, at), bytes, input.subarray(at));
};

/** Crossover: a head of this seed and a tail of another (AFL's splice). */
const splice: Mutator = (input, rng, other) => {
  const a = rng.below(input.length + 1);
  const b = rng.below(other.length + 1);
  return concat(input.subarray(0, a), other.subarray(b));
};

/** Copies a run of another seed over this one. */
const overwrite: Mutator = (input, rng, other) => {
  if (input.length === 0 || other.length === 0) return concat(input, other);
  const out = input.slice();
  const from = rng.below(other.length);
  const to = rng.below(out.length);
  const n = Math.min(1 + rng.below(32), other.length - from, out.length - to);
  out.set(other.subarray(from, from + n), to);
  return out;
};

/** Sets a big-endian 8/16/24/32-bit field at any offset to an interesting value or +-small. */
const lengthField: Mutator = (input, rng) => {
  const width = rng.pick([1, 2, 2, 3, 4]);
  if (input.length < width) return setByte(input, rng, input);
  const out = input.slice();
  const at = rng.below(out.length - width + 1);
  let value = 0;
  for (let i = 0; i < width; i++) value = value * 256 + out[at + i];
  const max = 2 ** (8 * width) - 1;
  const choice = rng.below(4);
  if (choice === 0) value = rng.pick(width === 1 ? INTERESTING_8 : width === 4 ? INTERESTING_32 : INTERESTING_16) % (max + 1);
  else if (choice === 1) value = (value + 1 + rng.below(16)) % (max + 1);
  else if (choice === 2) value = (value - 1 - rng.below(16) + max + 1) % (max + 1);
  else value = out.length - at + rng.below(3) - 1;
  value = Math.max(0, Math.min(max, value));
  for (let i = width - 1; i >= 0; i--) {
    out[at + i] = value % 256;
    value = Math.floor(value / 256);
  }
  return out;
};

/** Replaces a run of ASCII digits with an interesting number. */
const digits: Mutator = (input, rng) => {
  const positions: number[] = [];
  for (let i = 0; i < input.length; i++) if (input[i] >= 0x30 && input[i] <= 0x39 && (i === 0 || input[i - 1] < 0x30 || input[i - 1] > 0x39)) positions.push(i);
  if (positions.length === 0) return insertBytes(input, rng, input);
  const start = rng.pick(positions);
  let end = start;
  while (end < input.length && input[end] >= 0x30 && input[end] <= 0x39) end++;
  const number = rng.pick(["0", "1", "-1", "4294967296", "2147483647", "2147483648", "281474976710655", "281474976710656", "1e3", "99999999999999999999", "00", "1.0"]);
  return concat(input.subarray(0, start), ascii(number), input.subarray(end));
};

/** Replaces a JSON value (after a `:` or `[`/`,`) with an interesting token. */
const jsonToken: Mutator = (input, rng) => {
  const positions: number[] = [];
  for (let i = 0; i < input.length; i++) if (input[i] === 0x3a || input[i] === 0x5b || input[i] === 0x2c) positions.push(i + 1);
  const token = ascii(rng.pick(JSON_TOKENS));
  if (positions.length === 0) return concat(input, token);
  const start = rng.pick(positions);
  let end = start;
  let depth = 0;
  let inString = false;
  for (; end < input.length; end++) {
    const c = input[end];
    if (inString) {
      if (c === 0x5c) end++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) break;
      depth--;
    } else if (c === 0x2c && depth === 0) break;
  }
  return concat(input.subarray(0, start), token, input.subarray(end));
};

/** Duplicates a JSON member (`"k":v,`), testing duplicate-key handling, or grows a string. */
const jsonGrow: Mutator = (input, rng) => {
  const quotes: number[] = [];
  for (let i = 0; i < input.length; i++) if (input[i] === 0x22) quotes.push(i);
  if (quotes.length === 0) return extend(input, rng, input);
  const at = rng.pick(quotes) + 1;
  const fill = ascii(rng.pick(["A", "\\u00e9", "é", "\\\\", "/", "\u{1F600}", "\\n", "a".repeat(64)]).repeat(1 + rng.below(rng.below(4) === 0 ? 400 : 8)));
  return concat(input.subarray(0, at), fill, input.subarray(at));
};

export const MUTATORS: readonly Mutator[] = [
  flipBit, flipBit, setByte, setByte, truncate, dropHead, extend, repeatRun, deleteRun, insertBytes,
  splice, overwrite, lengthField, lengthField, digits, jsonToken, jsonToken, jsonGrow,
];

/**
 * The `index`-th input of a run: a seed with 1-8 stacked mutations
 * (sometimes the seed unchanged, so the clean path stays covered).
 */
export function mutate(seeds: readonly Uint8Array[], rng: Prng): Uint8Array {
  const seed = seeds[rng.below(seeds.length)];
  if (rng.below(64) === 0) return seed.slice();
  let out = seed;
  const stack = 1 + rng.below(rng.below(4) === 0 ? 8 : 3);
  for (let i = 0; i < stack; i++) out = rng.pick(MUTATORS)(out, rng, seeds[rng.below(seeds.length)]);
  // keep inputs bounded (the decoders' own bounds are a few kB; well past them is enough)
  return out.length > 70_000 ? out.subarray(0, 70_000) : out;
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const concat = concatBytes;
