/*
 * wcm-host/hardware-key on ESP32 chips without an HMAC peripheral (lin has the
 * same in hosts/lin/network.ts): a temporary device configured with
 * temporarySecretFrom "hardware" then fails with KEY_UNAVAILABLE (the core's
 * message says there is no hardware key port). The ESP32 version is
 * hosts/esp32/hmac/hardware-key.ts.
 */
import type { TemporarySecretPort } from "wcm/ports";

/** false: this build has no hardware key. */
export const hasHardwareKey = false;

/** No hardware key here. */
export function hardwareTemporarySecret(_block: number): TemporarySecretPort | undefined {
  return undefined;
}
