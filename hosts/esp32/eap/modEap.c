/*
 * wcm-host/eap: WPA2-Enterprise (EAP-TTLS/PAP, EAP-TLS) for the ESP32 station
 * through ESP-IDF's esp_eap_client API (ESP-IDF 5.1 or later; Moddable SDK 8.x
 * builds with ESP-IDF 5.x).
 *
 * NEVER COMPILED: written against the ESP-IDF 5.x headers
 * (components/wpa_supplicant/esp_supplicant/include/esp_eap_client.h) without an
 * ESP-IDF toolchain on the machine it was written on. See docs/moddable.md.
 *
 * Ownership: esp_eap_client copies identity, username and password, but keeps
 * the POINTERS it is given for the CA certificate, the client certificate and
 * the private key. So this module copies those into buffers it owns and frees
 * them only after the supplicant has been told to forget them.
 *
 * Call order (hosts/esp32/network.ts): WiFi.mode = station (esp_wifi_init has
 * run), configure*(), then connect with the "wifi" module giving the ssid only.
 */
#include "xsmc.h"
#include "xsHost.h"
#include "mc.xs.h"

#include "esp_wifi.h"
#include "esp_eap_client.h"

static uint8_t *gCa = NULL;
static uint8_t *gCertificate = NULL;
static uint8_t *gKey = NULL;
static int gKeyLength = 0;

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
		release();
		esp_wifi_sta_enterprise_disable();
		xsUnknownError("wcm eap: %s failed (%d)", call, (int)err);
	}
}

static void setIdentity(xsMachine *the, const char *identity)
{
	int length = c_strlen(identity);
	if ((0 == length) || (length > 128))
		xsRangeError("wcm eap: identity must be 1 to 128 bytes");
	check(the, esp_eap_client_set_identity((const unsigned char *)identity, length), "esp_eap_client_set_identity");
}

static void setCa(xsMachine *the, int argument)
{
	if ((xsmcArgc > argument) && xsmcTest(xsArg(argument))) {
		int length = copyBuffer(the, &xsArg(argument), &gCa, "ca");
		check(the, esp_eap_client_set_ca_cert(gCa, length), "esp_eap_client_set_ca_cert");
	}
}

/* configureTtls(identity, password, ca?) */
void xs_wcm_eap_configure_ttls(xsMachine *the)
{
	char *password;
	int length;

	esp_wifi_sta_enterprise_disable();
	release();

	setIdentity(the, xsmcToString(xsArg(0)));
	check(the, esp_eap_client_set_username((const unsigned char *)xsmcToString(xsArg(0)), c_strlen(xsmcToString(xsArg(0)))), "esp_eap_client_set_username");

	password = xsmcToString(xsArg(1));
	length = c_strlen(password);
	if ((0 == length) || (length > 128))
		xsRangeError("wcm eap: password must be 1 to 128 bytes");
	check(the, esp_eap_client_set_password((const unsigned char *)password, length), "esp_eap_client_set_password");
	check(the, esp_eap_client_set_ttls_phase2_method(ESP_EAP_TTLS_PHASE2_PAP), "esp_eap_client_set_ttls_phase2_method");

	setCa(the, 2);
	check(the, esp_wifi_sta_enterprise_enable(), "esp_wifi_sta_enterprise_enable");
}

/* configureTls(identity, certificate DER, privateKey PKCS#8 DER, ca?) */
void xs_wcm_eap_configure_tls(xsMachine *the)
{
	int certificateLength, keyLength;

	esp_wifi_sta_enterprise_disable();
	release();

	setIdentity(the, xsmcToString(xsArg(0)));
	certificateLength = copyBuffer(the, &xsArg(1), &gCertificate, "certificate");
	keyLength = copyBuffer(the, &xsArg(2), &gKey, "privateKey");
	gKeyLength = keyLength;
	check(the, esp_eap_client_set_certificate_and_key(gCertificate, certificateLength, gKey, keyLength, NULL, 0), "esp_eap_client_set_certificate_and_key");

	setCa(the, 3);
	check(the, esp_wifi_sta_enterprise_enable(), "esp_wifi_sta_enterprise_enable");
}

/* disable(): back to open / WPA2-Personal joins */
void xs_wcm_eap_disable(xsMachine *the)
{
	esp_wifi_sta_enterprise_disable();
	esp_eap_client_clear_identity();
	esp_eap_client_clear_username();
	esp_eap_client_clear_password();
	release();
}
