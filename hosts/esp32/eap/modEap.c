/*
 * wcm-host/eap: what the ESP32 NetworkPort (hosts/esp32/network.ts) needs from
 * ESP-IDF beyond Moddable's "wifi" module:
 * - WPA2-Enterprise (EAP-TTLS/PAP, EAP-TLS) through esp_eap_client, with the
 *   RADIUS server checked against a CA and a server name
 *   (esp_eap_client_set_domain_name);
 * - a scan that keeps the authentication mode (Moddable's WiFi.scan reports
 *   every mode it does not know, enterprise included, as "wpa_wpa2_psk");
 * - the station's last disconnect reason (wifi_err_reason_t): Moddable's
 *   callback passes only -1 (handshake failure) or 0.
 *
 * Compiled, never linked or run: `npm run check:esp32` compiles it against the
 * ESP-IDF v6.0 headers with the esp32c3 build's include folders, for rv32imc,
 * -Wall -Wextra -Werror; no Xtensa compile, no link, no board (docs/moddable.md).
 * esp_eap_client.h is reached relative to $(IDF_PATH)/components, as Moddable's
 * own ESP32 modules reach headers outside its default include list
 * (modPreference.c: "nvs_flash/include/nvs_flash.h"). The manifest's
 * { "idf": "wpa_supplicant" } puts the component on the link (CMake REQUIRES).
 *
 * Ownership: esp_eap_client copies identity, username, password and the domain
 * name, but keeps the POINTERS it is given for the CA certificate, the client
 * certificate and the private key (esp_eap_client.c assigns g_wpa_ca_cert and
 * friends). So this module copies those into buffers it owns and frees them only
 * after the supplicant has been told to forget them.
 *
 * Call order (hosts/esp32/network.ts): watch() once before anything touches
 * Wi-Fi (so the reason handler runs before the wifi module's, see watch());
 * WiFi.mode = station; then per join configure*() or disable(), then connect
 * with the "wifi" module giving the ssid only.
 */
#include "xsmc.h"
#include "xsHost.h"
#include "mc.xs.h"

#include "esp_event.h"
#include "esp_idf_version.h"
#include "esp_wifi.h"
#include "wpa_supplicant/esp_supplicant/include/esp_eap_client.h"

#if ESP_IDF_VERSION < ESP_IDF_VERSION_VAL(5, 5, 0)
	#error "wcm-host/eap needs esp_eap_client_set_domain_name (ESP-IDF 5.5 or later) to check the RADIUS server name"
#endif

#define MAX_SCAN_RESULTS (64)

static uint8_t *gCa = NULL;
static uint8_t *gCertificate = NULL;
static uint8_t *gKey = NULL;
static int gKeyLength = 0;

static volatile int32_t gDisconnectReason = 0;
static uint8_t gWatching = 0;

static void release(void)
{
	esp_eap_client_clear_ca_cert();
	esp_eap_client_clear_certificate_and_key();
	if (gCa) { c_free(gCa); gCa = NULL; }
	if (gCertificate) { c_free(gCertificate); gCertificate = NULL; }
	if (gKey) {
		// the key is secret: wipe before freeing
		volatile uint8_t *p = gKey;
		for (int i = 0; i < gKeyLength; i++)
			p[i] = 0;
		c_free(gKey);
		gKeyLength = 0;
		gKey = NULL;
	}
}

/* Copies an ArrayBuffer argument into a new heap buffer; returns its length. */
static int copyBuffer(xsMachine *the, xsSlot *slot, uint8_t **out, const char *what)
{
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferReadable(*slot, &data, &length);
	if ((0 == length) || (length > 8192))
		xsRangeError("wcm eap: %s must be 1 to 8192 bytes", what);
	*out = c_malloc(length);
	if (!*out)
		xsUnknownError("wcm eap: no memory for %s", what);
	c_memcpy(*out, data, length);
	return (int)length;
}

static void check(xsMachine *the, esp_err_t err, const char *call)
{
	if (ESP_OK != err) {
		esp_wifi_sta_enterprise_disable();
		release();
		xsUnknownError("wcm eap: %s failed (%d)", call, (int)err);
	}
}

static const char *string(xsMachine *the, int argument, const char *what)
{
	const char *value = xsmcToString(xsArg(argument));
	int length = c_strlen(value);
	if ((0 == length) || (length > 127))
		xsRangeError("wcm eap: %s must be 1 to 127 bytes", what);
	return value;
}

/* The RADIUS server check: CA (DER, copied) and the name its certificate must carry. */
static void setServer(xsMachine *the, int caArgument, int nameArgument)
{
	int length = copyBuffer(the, &xsArg(caArgument), &gCa, "ca");
	check(the, esp_eap_client_set_ca_cert(gCa, length), "esp_eap_client_set_ca_cert");
	check(the, esp_eap_client_set_domain_name(string(the, nameArgument, "serverName")), "esp_eap_client_set_domain_name");
}

/* configureTtls(outerIdentity, username, password, ca DER, serverName) */
void xs_wcm_eap_configure_ttls(xsMachine *the)
{
	const char *value;

	esp_wifi_sta_enterprise_disable();
	release();

	value = string(the, 0, "outer identity");
	check(the, esp_eap_client_set_identity((const unsigned char *)value, c_strlen(value)), "esp_eap_client_set_identity");
	value = string(the, 1, "username");
	check(the, esp_eap_client_set_username((const unsigned char *)value, c_strlen(value)), "esp_eap_client_set_username");
	value = string(the, 2, "password");
	check(the, esp_eap_client_set_password((const unsigned char *)value, c_strlen(value)), "esp_eap_client_set_password");
	check(the, esp_eap_client_set_ttls_phase2_method(ESP_EAP_TTLS_PHASE2_PAP), "esp_eap_client_set_ttls_phase2_method");

	setServer(the, 3, 4);
	check(the, esp_wifi_sta_enterprise_enable(), "esp_wifi_sta_enterprise_enable");
}

/* configureTls(identity, certificate DER, privateKey PKCS#8 DER, ca DER, serverName) */
void xs_wcm_eap_configure_tls(xsMachine *the)
{
	const char *identity;
	int certificateLength, keyLength;

	esp_wifi_sta_enterprise_disable();
	release();

	identity = string(the, 0, "identity");
	check(the, esp_eap_client_set_identity((const unsigned char *)identity, c_strlen(identity)), "esp_eap_client_set_identity");
	certificateLength = copyBuffer(the, &xsArg(1), &gCertificate, "certificate");
	keyLength = copyBuffer(the, &xsArg(2), &gKey, "privateKey");
	gKeyLength = keyLength;
	check(the, esp_eap_client_set_certificate_and_key(gCertificate, certificateLength, gKey, keyLength, NULL, 0), "esp_eap_client_set_certificate_and_key");

	setServer(the, 3, 4);
	check(the, esp_wifi_sta_enterprise_enable(), "esp_wifi_sta_enterprise_enable");
}

/* disable(): back to open / WPA2-Personal joins; forgets the EAP material */
void xs_wcm_eap_disable(xsMachine *the)
{
	(void)the;
	esp_wifi_sta_enterprise_disable();
	esp_eap_client_clear_identity();
	esp_eap_client_clear_username();
	esp_eap_client_clear_password();
	release();
}

/*
 * Runs in the ESP-IDF event task. Registered for ESP_EVENT_ANY_ID on WIFI_EVENT
 * before the wifi module registers its own handler the same way, so it runs
 * first (esp_event runs handlers of one level in registration order) and the
 * reason is in place before the wifi module posts "disconnect" to the VM.
 */
static void onWiFiEvent(void *arg, esp_event_base_t base, int32_t id, void *data)
{
	(void)arg;
	(void)base;		// registered for WIFI_EVENT only
	if ((WIFI_EVENT_STA_DISCONNECTED == id) && data)
		gDisconnectReason = ((wifi_event_sta_disconnected_t *)data)->reason;
}

/* watch(): starts recording disconnect reasons; idempotent */
void xs_wcm_wifi_watch(xsMachine *the)
{
	esp_err_t err;

	if (gWatching)
		return;
	err = esp_event_loop_create_default();
	if ((ESP_OK != err) && (ESP_ERR_INVALID_STATE != err))		// INVALID_STATE: it exists already
		xsUnknownError("wcm wifi: esp_event_loop_create_default failed (%d)", (int)err);
	err = esp_event_handler_register(WIFI_EVENT, ESP_EVENT_ANY_ID, onWiFiEvent, NULL);
	if (ESP_OK != err)
		xsUnknownError("wcm wifi: esp_event_handler_register failed (%d)", (int)err);
	gWatching = 1;
}

/* takeDisconnectReason(): the last station disconnect reason since the previous call (0: none) */
void xs_wcm_wifi_take_disconnect_reason(xsMachine *the)
{
	int32_t reason = gDisconnectReason;
	gDisconnectReason = 0;
	xsmcSetInteger(xsResult, reason);
}

/*
 * scan(): a blocking active scan of all channels (about 1.5-2 s with the
 * default 120 ms per channel); returns [[ssid, bssid ArrayBuffer(6), rssi,
 * channel, authmode (wifi_auth_mode_t)], ...], at most MAX_SCAN_RESULTS.
 * Throws when the driver refuses (e.g. while a connect is in progress).
 */
void xs_wcm_wifi_scan(xsMachine *the)
{
	wifi_scan_config_t config;
	wifi_ap_record_t *aps;
	uint16_t count = 0, i;
	esp_err_t err;

	c_memset(&config, 0, sizeof(config));
	config.scan_type = WIFI_SCAN_TYPE_ACTIVE;
	err = esp_wifi_scan_start(&config, true);
	if (ESP_OK != err)
		xsUnknownError("wcm wifi: esp_wifi_scan_start failed (%d)", (int)err);

	esp_wifi_scan_get_ap_num(&count);
	if (count > MAX_SCAN_RESULTS)
		count = MAX_SCAN_RESULTS;
	aps = c_calloc(count ? count : 1, sizeof(wifi_ap_record_t));
	if (!aps) {
		esp_wifi_clear_ap_list();
		xsUnknownError("wcm wifi: no memory for scan results");
	}
	// reads up to count records and frees the driver's list
	err = esp_wifi_scan_get_ap_records(&count, aps);
	if (ESP_OK != err) {
		c_free(aps);
		xsUnknownError("wcm wifi: esp_wifi_scan_get_ap_records failed (%d)", (int)err);
	}

	xsTry {
		xsmcVars(2);
		xsmcSetNewArray(xsResult, count);
		for (i = 0; i < count; i++) {
			wifi_ap_record_t *ap = &aps[i];
			xsmcSetNewArray(xsVar(0), 5);
			xsmcSetString(xsVar(1), (char *)ap->ssid);		// ssid is NUL-terminated (33 bytes)
			xsmcSetIndex(xsVar(0), 0, xsVar(1));
			xsmcSetArrayBuffer(xsVar(1), ap->bssid, sizeof(ap->bssid));
			xsmcSetIndex(xsVar(0), 1, xsVar(1));
			xsmcSetInteger(xsVar(1), ap->rssi);
			xsmcSetIndex(xsVar(0), 2, xsVar(1));
			xsmcSetInteger(xsVar(1), ap->primary);
			xsmcSetIndex(xsVar(0), 3, xsVar(1));
			xsmcSetInteger(xsVar(1), (int)ap->authmode);
			xsmcSetIndex(xsVar(0), 4, xsVar(1));
			xsmcSetIndex(xsResult, i, xsVar(0));
		}
	}
	xsCatch {
		c_free(aps);
		xsThrow(xsException);
	}
	c_free(aps);
}
