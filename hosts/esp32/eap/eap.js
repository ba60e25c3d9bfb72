/*
 * WPA2-Enterprise for the ESP32 station, over ESP-IDF's esp_eap_client (a port
 * of wpa_supplicant): EAP-TTLS with PAP inside, or EAP-TLS. Configure, then
 * connect with the "wifi" module (ssid only). Typings: typings/wcm-eap.d.ts.
 * NEVER COMPILED: this machine has no ESP-IDF (see docs/moddable.md).
 */
function configureTtls(identity, password, ca) @ "xs_wcm_eap_configure_ttls";
function configureTls(identity, certificate, privateKey, ca) @ "xs_wcm_eap_configure_tls";
function disable() @ "xs_wcm_eap_disable";

export default Object.freeze({ configureTtls, configureTls, disable });
