/*
 * Typings for hosts/esp32/eap (native, over ESP-IDF esp_eap_client, esp_wifi
 * and esp_event). ESP32 only; see hosts/esp32/eap/modEap.c.
 */
declare module "wcm-host/eap" {
  /** One access point: [ssid, bssid (6 bytes), rssi dBm, primary channel, wifi_auth_mode_t]. */
  export type NativeScanRecord = [ssid: string, bssid: ArrayBuffer, rssi: number, channel: number, authmode: number];

  const Eap: {
    /**
     * Configures EAP-TTLS with PAP inside and enables WPA2-Enterprise for the
     * next station connect. The RADIUS server must chain to `ca` (DER) and carry
     * `serverName` (esp_eap_client_set_domain_name).
     * @param outerIdentity - the EAP outer (anonymous) identity, 1-127 bytes
     * @param username - the inner (PAP) user name, 1-127 bytes
     * @throws Error naming the esp_eap_client call that failed
     */
    configureTtls(outerIdentity: string, username: string, password: string, ca: ArrayBuffer, serverName: string): void;
    /**
     * Configures EAP-TLS with the device certificate (DER) and private key
     * (PKCS#8 DER) and enables WPA2-Enterprise for the next station connect;
     * the server is checked as for configureTtls.
     */
    configureTls(identity: string, certificate: ArrayBuffer, privateKey: ArrayBuffer, ca: ArrayBuffer, serverName: string): void;
    /** Disables WPA2-Enterprise and clears the stored EAP material. */
    disable(): void;
    /** Starts recording station disconnect reasons; call once before anything touches Wi-Fi. */
    watch(): void;
    /** The last station disconnect reason (wifi_err_reason_t) since the previous call; 0 when none. */
    takeDisconnectReason(): number;
    /**
     * A blocking active scan of every channel (about 2 s), at most 64 records.
     * @throws Error when the driver refuses (e.g. while a connect is in progress)
     */
    scan(): NativeScanRecord[];
  };
  export default Eap;
}
