/*
 * Typings for the Moddable SDK's "rng" (modules/crypt/etc/rng.js + rng.c): an
 * RC4 stream seeded from c_rand() (esp_random() on ESP32, rand() on lin) or
 * from init(seed). Not typed by the SDK.
 */
declare module "rng" {
  const RNG: {
    /** `count` pseudo-random bytes */
    get(count: number): ArrayBuffer;
    /** reseeds; no argument reseeds from c_rand() */
    init(seed?: ArrayBuffer): void;
  };
  export default RNG;
}
