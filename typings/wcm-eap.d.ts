/*
 * Typings for hosts/esp32/eap (the native WPA2-Enterprise module over ESP-IDF's
 * esp_eap_client). ESP32 only; see hosts/esp32/eap/modEap.c.
 */
declare module "wcm-host/eap" {
  const Eap: {
    /**
     * Configures EAP-TTLS with PAP inside and enables WPA2-Enterprise for the
     * next station connect. `ca` (DER) checks the RADIUS server certificate.
     * @throws Error naming the esp_eap_client call that failed
     */
    configureTtls(identity: string, password: string, ca?: ArrayBuffer): void;
    /**
     * Configures EAP-TLS with the device certificate (DER) and private key
     * (PKCS#8 DER) and enables WPA2-Enterprise for the next station connect.
     */
    configureTls(identity: string, certificate: ArrayBuffer, privateKey: ArrayBuffer, ca?: ArrayBuffer): void;
    /** Disables WPA2-Enterprise and clears the stored EAP material. */
    disable(): void;
  };
  export default Eap;
}
