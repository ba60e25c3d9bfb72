/*
 * The P-256 field arithmetic the onboarding PAKE needs beside the host's
 * SealPort (which only multiplies points): RFC 9380 encode_to_curve for the
 * suite P256_XMD:SHA-256_SSWU_NU_ (expand_message_xmd over the DigestPort,
 * hash_to_field with one element, the simplified SWU map, cofactor 1), and the
 * lift of an x coordinate to a point (the even y), which checks that a peer's
 * x is on the curve before any scalar multiplication.
 *
 * BigInt, not constant-time: the inputs are public (the generator is derived
 * from the label code, but each handshake leaks at most one timing trace of a
 * hash of it, and the code is already bounded by the attempt limit). Three
 * field exponentiations per encode, one per lift.
 */
import { concatBytes, utf8Encode } from "../bytes";
import type { DigestPort } from "../ports";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const A = P - 3n;
/** RFC 9380 8.2: Z = -10 for P-256. */
const Z = P - 10n;

const mod = (a: bigint) => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let b = mod(base), e = exponent; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) result = (result * b) % P;
  return result;
}

const inv0 = (a: bigint) => pow(a, P - 2n);
const rhs = (x: bigint) => mod(((x * x) % P) * x + A * x + B);

/** A square root mod p (p = 3 mod 4), or undefined when `a` is not a square. */
function sqrt(a: bigint): bigint | undefined {
  const r = pow(a, (P + 1n) >> 2n);
  return (r * r) % P === mod(a) ? r : undefined;
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = 0; i < bytes.length; i++) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

function toBytes32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 31; i >= 0; i--, n >>= 8n) out[i] = Number(n & 255n);
  return out;
}

function point(x: bigint, y: bigint): Uint8Array {
  return concatBytes(Uint8Array.of(4), toBytes32(x), toBytes32(y));
}

/** RFC 9380 5.3.1 expand_message_xmd with SHA-256 (length <= 255 * 32, DST <= 255 bytes). */
export function expandMessageXmd(digest: DigestPort, msg: Uint8Array, dst: Uint8Array, length: number): Uint8Array {
  const ell = Math.ceil(length / 32);
  if (ell > 255 || dst.length > 255 || length > 65535) throw new RangeError("expand_message_xmd: out of range");
  const dstPrime = concatBytes(dst, Uint8Array.of(dst.length));
  const b0 = digest.sha256(concatBytes(new Uint8Array(64), msg, Uint8Array.of(length >> 8, length & 255, 0), dstPrime));
  const out = new Uint8Array(ell * 32);
  let previous = digest.sha256(concatBytes(b0, Uint8Array.of(1), dstPrime));
  out.set(previous, 0);
  for (let i = 2; i <= ell; i++) {
    const mixed = new Uint8Array(32);
    for (let j = 0; j < 32; j++) mixed[j] = b0[j] ^ previous[j];
    previous = digest.sha256(concatBytes(mixed, Uint8Array.of(i), dstPrime));
    out.set(previous, (i - 1) * 32);
  }
  return out.subarray(0, length);
}

/** RFC 9380 6.6.2 simplified SWU for P-256: an affine point (x, y). */
function mapToCurve(u: bigint): [bigint, bigint] {
  const zu2 = (Z * ((u * u) % P)) % P;
  const tv1 = inv0(mod(zu2 * zu2 + zu2));
  const x1 = tv1 === 0n ? (B * inv0((Z * A) % P)) % P : mod(((P - B) * inv0(A)) % P * (1n + tv1));
  let x = x1;
  let y = sqrt(rhs(x1));
  if (y === undefined) {
    x = (zu2 * x1) % P;
    y = sqrt(rhs(x)) as bigint;
  }
  if ((u & 1n) !== (y & 1n)) y = mod(-y);
  return [x, y];
}

/**
 * RFC 9380 encode_to_curve, suite P256_XMD:SHA-256_SSWU_NU_: an uncompressed
 * point (65 bytes) that nobody knows the discrete logarithm of.
 * @param dst - the domain separation tag (at most 255 bytes)
 */
export function encodeToP256(digest: DigestPort, msg: Uint8Array, dst: string): Uint8Array {
  const u = toBigInt(expandMessageXmd(digest, msg, utf8Encode(dst), 48)) % P;
  const [x, y] = mapToCurve(u);
  return point(x, y);
}

/**
 * The point with x coordinate `x` (32 bytes big-endian) and an even y, as an
 * uncompressed key (65 bytes); undefined when x >= p or x is not on the curve.
 * (x, y) and (x, -y) give the same x coordinate after any scalar
 * multiplication, so x alone identifies a share.
 */
export function liftX(x: Uint8Array): Uint8Array | undefined {
  if (x.length !== 32) return undefined;
  const n = toBigInt(x);
  if (n >= P) return undefined;
  const y = sqrt(rhs(n));
  if (y === undefined) return undefined;
  return point(n, y & 1n ? P - y : y);
}
