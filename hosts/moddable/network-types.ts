/*
 * What main.ts tells the platform's network module (hosts/lin/network.ts,
 * hosts/esp32/network.ts, both "wcm-host/network"): the networks to try, in
 * order, and the callbacks for up and down.
 */

/** One network the device may join (from config.wcm.networks). */
export interface NetworkConfig {
  ssid: string;
  /**
   * open: no security; psk: WPA2-Personal (password);
   * hotspot: partner WPA2-Enterprise, EAP-TTLS/PAP with identity = device id and
   *   the password derived from the device secret (deriveHotspotPassword), or
   *   EAP-TLS with the device certificate for certificate devices.
   */
  kind: "open" | "psk" | "hotspot";
  password?: string;
}

/** Callbacks of a network module. */
export interface NetworkEvents {
  onUp(detail: string): void;
  onDown(detail: string): void;
}

/** Credentials for a hotspot join, computed by main.ts from the device's state. */
export interface HotspotCredentials {
  identity: string;
  /** EAP-TTLS/PAP password (secret and temporary devices) */
  password?: string;
  /** EAP-TLS (certificate devices): PEM chain and PKCS#8 key */
  certificate?: string;
  privateKey?: string;
  /** PEM of the CA that signs the hotspot's RADIUS server certificate */
  ca?: string;
}
