/*
 * WPA2-Enterprise and Wi-Fi details for the ESP32 station, over ESP-IDF
 * (esp_eap_client, esp_wifi, esp_event): EAP-TTLS with PAP inside or EAP-TLS,
 * the RADIUS server checked by CA and name; a scan that keeps the
 * authentication mode; the last disconnect reason. Connect with the "wifi"
 * module (ssid only) after configuring. Typings: typings/wcm-eap.d.ts.
 * NEVER COMPILED: this machine has no ESP-IDF (see docs/moddable.md).
 */
function configureTtls(outerIdentity, username, password, ca, serverName) @ "xs_wcm_eap_configure_ttls";
function configureTls(identity, certificate, privateKey, ca, serverName) @ "xs_wcm_eap_configure_tls";
function disable() @ "xs_wcm_eap_disable";
function watch() @ "xs_wcm_wifi_watch";
function takeDisconnectReason() @ "xs_wcm_wifi_take_disconnect_reason";
function scan() @ "xs_wcm_wifi_scan";

export default Object.freeze({ configureTtls, configureTls, disable, watch, takeDisconnectReason, scan });
