/*
 * X25519 (RFC 7748) for the device core, built from @noble/curves' Montgomery
 * ladder alone.
 *
 * `@noble/curves/ed25519.js` also exports x25519, but importing that module
 * initialises the whole Edwards curve, and on XS (Moddable) that fails at load
 * ("Point: get ?: not initialized yet", checked with xsnap, @noble/curves 2.4).
 * The ladder needs only the field prime, an inversion and the scalar clamp, so
 * this module builds x25519 from `abstract/montgomery.js` the way ed25519.js
 * does, minus the Edwards fast path for the base point. Same results (the
 * RFC 7748 vectors in test/core-seal.test.ts), about three times slower for a
 * key pair, which a device makes once.
 */
import { montgomery } from "@noble/curves/abstract/montgomery.js";
import { mod, pow2 } from "@noble/curves/abstract/modular.js";

const P = 2n ** 255n - 19n;

/** x^((p-5)/8) and x^3 by the ed25519 addition chain (as @noble/curves does). */
function pow2252(x: bigint): { pow: bigint; b2: bigint } {
  const x2 = (x * x) % P;
  const b2 = (x2 * x) % P;
  const b4 = (pow2(b2, 2n, P) * b2) % P;
  const b5 = (pow2(b4, 1n, P) * x) % P;
  const b10 = (pow2(b5, 5n, P) * b5) % P;
  const b20 = (pow2(b10, 10n, P) * b10) % P;
  const b40 = (pow2(b20, 20n, P) * b20) % P;
  const b80 = (pow2(b40, 40n, P) * b40) % P;
  const b160 = (pow2(b80, 80n, P) * b80) % P;
  const b240 = (pow2(b160, 80n, P) * b80) % P;
  const b250 = (pow2(b240, 10n, P) * b10) % P;
  return { pow: (pow2(b250, 2n, P) * x) % P, b2 };
}

/** RFC 7748 section 5 clamp (in place). */
function clamp(bytes: Uint8Array): Uint8Array {
  bytes[0] &= 248;
  bytes[31] &= 127;
  bytes[31] |= 64;
  return bytes;
}

const curve = montgomery({
  P,
  type: "x25519",
  powPminus2: (x: bigint) => {
    const { pow, b2 } = pow2252(x);
    return mod(pow2(pow, 3n, P) * b2, P);
  },
  adjustScalarBytes: clamp,
  // never used: every key comes from the RandomPort
  randomBytes: () => {
    throw new Error("x25519: pass the secret key");
  },
});

/** The X25519 public key (32 bytes) of a 32-byte secret key. */
export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return curve.getPublicKey(secretKey);
}

/**
 * The X25519 shared secret of `secretKey` and a peer's `publicKey`.
 * @throws Error for a low-order public key (the all-zero shared secret)
 */
export function x25519SharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return curve.getSharedSecret(secretKey, publicKey);
}
