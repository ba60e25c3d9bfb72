/*
 * SealPort in pure JavaScript, for hosts without native crypto and for the XS
 * test suite (test/xs/entry.ts runs every sealing vector and scenario through
 * it): P-256 ECDH over BigInt (below), AES-128-GCM from @noble/ciphers. The
 * Moddable firmware uses its native ECDH and AES instead (hosts/moddable/seal.ts)
 * and does not ship this module; the cloud and the Node host use node:crypto.
 *
 * P-256 (SEC 2, y^2 = x^3 - 3x + b): Jacobian coordinates (dbl-2001-b,
 * add-2007-bl from the Explicit-Formulas Database), left-to-right
 * double-and-add, one inversion at the end. Not constant-time (BigInt never
 * is): a fallback, not what a device ships. (@noble/curves 2.4 does not load
 * in XS 13: "Point: get ?: not initialized yet".)
 */
import { gcm } from "@noble/ciphers/aes.js";
import type { SealPort } from "./ports";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n;
const GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n;

type Jacobian = [bigint, bigint, bigint];

const mod = (a: bigint) => ((a % P) + P) % P;

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let b = mod(base), e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P;
  return result;
}

function double([x, y, z]: Jacobian): Jacobian {
  if (z === 0n || y === 0n) return [1n, 1n, 0n];
  const delta = (z * z) % P, gamma = (y * y) % P, beta = (x * gamma) % P;
  const alpha = mod(3n * mod(x - delta) * (x + delta));
  const x3 = mod(alpha * alpha - 8n * beta);
  const z3 = mod((y + z) * (y + z) - gamma - delta);
  const y3 = mod(alpha * (4n * beta - x3) - 8n * gamma * gamma);
  return [x3, y3, z3];
}

function add(a: Jacobian, b: Jacobian): Jacobian {
  if (a[2] === 0n) return b;
  if (b[2] === 0n) return a;
  const z1z1 = (a[2] * a[2]) % P, z2z2 = (b[2] * b[2]) % P;
  const u1 = (a[0] * z2z2) % P, u2 = (b[0] * z1z1) % P;
  const s1 = (a[1] * b[2] * z2z2) % P, s2 = (b[1] * a[2] * z1z1) % P;
  const h = mod(u2 - u1), r = mod(2n * (s2 - s1));
  if (h === 0n) return r === 0n ? double(a) : [1n, 1n, 0n];
  const i = (4n * h * h) % P, j = (h * i) % P, v = (u1 * i) % P;
  const x3 = mod(r * r - j - 2n * v);
  const y3 = mod(r * (v - x3) - 2n * s1 * j);
  const z3 = mod(((a[2] + b[2]) * (a[2] + b[2]) - z1z1 - z2z2) * h);
  return [x3, y3, z3];
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = 0; i < bytes.length; i++) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

function toBytes(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, n >>= 8n) out[i] = Number(n & 255n);
  return out;
}

/** k * (x, y) in affine coordinates. */
function multiply(k: bigint, x: bigint, y: bigint): [bigint, bigint] {
  let result: Jacobian = [1n, 1n, 0n];
  const point: Jacobian = [x, y, 1n];
  for (let bit = BigInt(k.toString(2).length - 1); bit >= 0n; bit--) {
    result = double(result);
    if ((k >> bit) & 1n) result = add(result, point);
  }
  if (result[2] === 0n) throw new Error("p256: point at infinity");
  const zInv = pow(result[2], P - 2n), zInv2 = (zInv * zInv) % P;
  return [(result[0] * zInv2) % P, (result[1] * zInv2 * zInv) % P];
}

/** The pure-JavaScript implementation of SealPort. */
export const jsSeal: SealPort = {
  p256PublicKey(secretKey) {
    const [x, y] = multiply(toBigInt(secretKey), GX, GY);
    const out = new Uint8Array(65);
    out[0] = 4;
    out.set(toBytes(x), 1);
    out.set(toBytes(y), 33);
    return out;
  },
  p256SharedSecret: (secretKey, publicKey) =>
    toBytes(multiply(toBigInt(secretKey), toBigInt(publicKey.subarray(1, 33)), toBigInt(publicKey.subarray(33, 65)))[0]),
  aesGcmSeal: (key, iv, aad, plaintext) => gcm(key, iv, aad).encrypt(plaintext),
  aesGcmOpen(key, iv, aad, sealed) {
    try {
      return gcm(key, iv, aad).decrypt(sealed);
    } catch {
      return undefined;
    }
  },
};
