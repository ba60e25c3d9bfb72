/*
 * Typings for hosts/esp32/hmac (native, over ESP-IDF esp_hmac_calculate).
 * ESP32 chips with an HMAC peripheral only; see hosts/esp32/hmac/modHmac.c.
 */
declare module "wcm-host/hmac" {
  const Hmac: {
    /**
     * HMAC-SHA256 of `message` (at most 1024 bytes) under eFuse key block
     * `keyBlock` (0..5), which must be burnt with purpose HMAC_UP.
     * @returns 32 bytes
     * @throws RangeError for a bad block or message; Error when the block is not burnt as HMAC_UP
     */
    calculate(keyBlock: number, message: ArrayBuffer): ArrayBuffer;
  };
  export default Hmac;
}
