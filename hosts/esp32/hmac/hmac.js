/*
 * wcm-host/hmac: HMAC-SHA256 by the ESP32 HMAC peripheral under a key burnt
 * into an eFuse key block (purpose HMAC_UP). Native: modHmac.c. Typings:
 * typings/wcm-hmac.d.ts. Only on chips with the peripheral (manifest.json).
 */
function calculate(keyBlock, message) @ "xs_wcm_hmac_calculate";

export default Object.freeze({ calculate });
