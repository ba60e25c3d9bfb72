/*
 * X25519 (RFC 7748), self-contained: the Montgomery ladder of section 5 over
 * BigInt, so the device core carries no curve library in flash.
 *
 * - scalar: the 32 secret bytes, little-endian, clamped (bits 0-2 and 255
 *   cleared, bit 254 set);
 * - u-coordinate: 32 bytes little-endian with the top bit masked, non-canonical
 *   values (u >= p) reduced mod p as the RFC requires;
 * - ladder: 255 steps of the same arithmetic whatever the key bits, the two
 *   points exchanged by a masked conditional swap (cswap) instead of a branch.
 *   BigInt arithmetic is not constant-time on any engine; the structure is,
 *   which is what a JS implementation can offer (the secret key never leaves
 *   the device and a device makes one key pair);
 * - result: x2 * z2^(p-2) mod p (Fermat inversion by the ed25519 addition
 *   chain: 254 squarings and 11 multiplications), encoded little-endian.
 *
 * A shared secret of all zeros (the peer sent a low-order point) is refused
 * with an Error, as RFC 7748 section 6.1 allows and the sealing requires.
 * Vectors: RFC 7748 5.2 (both), the 1 and 1,000 iteration vectors, 6.1
 * (test/support/vectors.ts on Node and in XS, test/core-network.test.ts
 * against node:crypto).
 */

const P = 2n ** 255n - 19n;
const A24 = 121665n;

/** x^(2^k) mod p. */
function square(x: bigint, k: number): bigint {
  while (k-- > 0) x = (x * x) % P;
  return x;
}

/** x^(p-2) mod p, i.e. 1/x (0 for 0). */
function invert(x: bigint): bigint {
  const z2 = (x * x) % P;
  const z9 = (square(z2, 2) * x) % P;
  const z11 = (z9 * z2) % P;
  const z5 = (((z11 * z11) % P) * z9) % P; // 2^5 - 1
  const z10 = (square(z5, 5) * z5) % P; // 2^10 - 1
  const z20 = (square(z10, 10) * z10) % P;
  const z40 = (square(z20, 20) * z20) % P;
  const z50 = (square(z40, 10) * z10) % P;
  const z100 = (square(z50, 50) * z50) % P;
  const z200 = (square(z100, 100) * z100) % P;
  const z250 = (square(z200, 50) * z50) % P; // 2^250 - 1
  return (square(z250, 5) * z11) % P; // 2^255 - 21 = p - 2
}

/** Little-endian bytes to an integer. */
function decode(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** RFC 7748 scalar multiplication of the u-coordinate `uBytes` by `scalar`. */
function scalarMult(scalar: Uint8Array, uBytes: Uint8Array): Uint8Array {
  if (scalar.length !== 32 || uBytes.length !== 32) throw new Error("x25519: keys are 32 bytes");
  const e = scalar.slice();
  e[0] &= 248;
  e[31] = (e[31] & 127) | 64;
  const k = decode(e);
  const u = uBytes.slice();
  u[31] &= 127;
  const x1 = decode(u) % P;
  let x2 = 1n, z2 = 0n, x3 = x1, z3 = 1n, swap = 0n;
  for (let t = 254n; t >= 0n; t--) {
    const bit = (k >> t) & 1n;
    swap ^= bit;
    // cswap: mask is 0 or all ones, both pairs exchanged or neither
    const mask = -swap;
    let d = mask & (x2 ^ x3);
    x2 ^= d;
    x3 ^= d;
    d = mask & (z2 ^ z3);
    z2 ^= d;
    z3 ^= d;
    swap = bit;
    const a = x2 + z2, aa = (a * a) % P;
    const b = x2 - z2 + P, bb = (b * b) % P;
    const ee = aa - bb + P;
    const c = x3 + z3, dd = x3 - z3 + P;
    const da = (dd * a) % P, cb = (c * b) % P;
    const sum = da + cb, diff = da - cb + P;
    x3 = (sum * sum) % P;
    z3 = (x1 * ((diff * diff) % P)) % P;
    x2 = (aa * bb) % P;
    z2 = (ee * ((aa + A24 * ee) % P)) % P;
  }
  const mask = -swap;
  x2 ^= mask & (x2 ^ x3);
  z2 ^= mask & (z2 ^ z3);
  let r = (x2 * invert(z2)) % P;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, r >>= 8n) out[i] = Number(r & 255n);
  return out;
}

const BASE = Uint8Array.of(9, ...new Uint8Array(31));

/** The X25519 public key (32 bytes) of a 32-byte secret key. */
export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return scalarMult(secretKey, BASE);
}

/**
 * The X25519 shared secret of `secretKey` and a peer's `publicKey`.
 * @throws Error for a low-order public key (the all-zero shared secret)
 */
export function x25519SharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const shared = scalarMult(secretKey, publicKey);
  let any = 0;
  for (let i = 0; i < 32; i++) any |= shared[i];
  if (any === 0) throw new Error("x25519: low-order public key");
  return shared;
}

/** The raw RFC 7748 X25519 function (no all-zero check): for the iterated test vectors. */
export const x25519 = scalarMult;
