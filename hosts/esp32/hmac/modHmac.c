/*
 * wcm-host/hmac: the ESP32 HMAC peripheral in upstream mode for the core's
 * TemporarySecretPort (hosts/esp32/hmac/temporary-secret.ts): HMAC-SHA256 of a
 * message under the 256-bit key burnt into an eFuse key block with purpose
 * HMAC_UP (espefuse.py burn_key BLOCK_KEY<n> lot-key.bin HMAC_UP, which also
 * read-protects the block). Software never sees the key; it gets the HMAC.
 *
 * Chips: those with the peripheral (SOC_HMAC_SUPPORTED: esp32s2, esp32s3,
 * esp32c3, esp32c6, ...). The manifest picks them; this file refuses to build
 * elsewhere too.
 *
 * esp_hmac.h (components/esp_security/include in ESP-IDF v6.0) includes
 * hal/hmac_types.h from components/esp_hal_security/include, a folder that is
 * not among the include folders Moddable 8.2.3 gives module C files. So the one
 * function this module calls is declared below as v6.0's esp_hmac.h declares it
 * (hmac_key_id_t is an enum of HMAC_KEY0..HMAC_KEY5 = 0..5, passed as unsigned int).
 *
 * calculate(keyBlock, message): ArrayBuffer of 32 bytes, or throws:
 *   RangeError for a block outside 0..5 or a message over 1024 bytes;
 *   Error "wcm hmac: key block N not usable (not burnt, or purpose is not HMAC_UP)"
 *   when the peripheral refuses the block (ESP_FAIL), "wcm hmac: ESP_ERR_..." otherwise.
 */
#include "xsmc.h"
#include "xsHost.h"
#include "mc.xs.h"

#include <stdint.h>
#include <stddef.h>
#include "esp_err.h"
#include "soc/soc_caps.h"

#if !SOC_HMAC_SUPPORTED
	#error "wcm-host/hmac: this chip has no HMAC peripheral (esp32s2, esp32s3, esp32c3 and esp32c6 have one): use make-lot's derived mode"
#endif

#define WCM_HMAC_KEY_BLOCKS (6)
#define WCM_HMAC_MAX_MESSAGE (1024)

extern esp_err_t esp_hmac_calculate(unsigned int key_id, const void *message, size_t message_len, uint8_t *hmac);

void xs_wcm_hmac_calculate(xsMachine *the)
{
	int block = xsmcToInteger(xsArg(0));
	void *data;
	xsUnsignedValue length;
	uint8_t message[WCM_HMAC_MAX_MESSAGE];
	uint8_t out[32];
	volatile uint8_t *wipe = out;
	esp_err_t err;
	int i;

	if ((block < 0) || (block >= WCM_HMAC_KEY_BLOCKS))
		xsRangeError("wcm hmac: key block must be 0..%d", WCM_HMAC_KEY_BLOCKS - 1);
	xsmcGetBufferReadable(xsArg(1), &data, &length);
	if (length > WCM_HMAC_MAX_MESSAGE)
		xsRangeError("wcm hmac: message over %d bytes", WCM_HMAC_MAX_MESSAGE);
	// copied first: the peripheral call must not read a buffer the VM could move
	c_memcpy(message, data, length);
	err = esp_hmac_calculate((unsigned int)block, message, length, out);
	if (ESP_FAIL == err)
		xsUnknownError("wcm hmac: key block %d not usable (not burnt, or purpose is not HMAC_UP)", block);
	if (ESP_OK != err)
		xsUnknownError("wcm hmac: %s", esp_err_to_name(err));
	xsmcSetArrayBuffer(xsResult, out, sizeof(out));
	for (i = 0; i < (int)sizeof(out); i++)
		wipe[i] = 0;
}
