/*
 * What the lin simulator has of the platform ports main.ts takes from
 * wcm-host/network: the radio, the onboarding service and the key hardware.
 * - No NetworkPort: the desktop's own network. Moddable's simulator Wi-Fi
 *   (wifi/sim) is a fake with canned scan results, so there is no radio to give
 *   the core: without a NetworkPort the manager connects to the cloud directly,
 *   through the host's sockets. The ESP32 host (hosts/esp32/network.ts) gives
 *   the core a real NetworkPort.
 * - The OnboardingPort: no SoftAP (the desktop has no radio for it, and lin has
 *   no NetworkPort, so the manager never starts onboarding by itself), but the
 *   same HTTP service on port 8080 of the desktop when the product asks
 *   (manager.startOnboarding()), so `npm run onboard -- --url
 *   http://127.0.0.1:8080` can talk to a simulated device.
 * - No key hardware: a temporary device configured with temporarySecretFrom
 *   "hardware" fails with KEY_UNAVAILABLE (as hosts/moddable/no-hardware-key.ts
 *   does for ESP32 chips without an HMAC peripheral).
 */
import { serveOnboarding } from "wcm-host/onboarding-http";
import type { OnboardingPort } from "wcm/onboarding/attach";
import type { NetworkPort, TemporarySecretPort } from "wcm/ports";

/** No key hardware on the simulator. */
export function hardwareTemporarySecret(_block: number): TemporarySecretPort | undefined {
  return undefined;
}

/** No radio on the simulator. */
export function createNetworkPort(): NetworkPort | undefined {
  return undefined;
}

/** The service without a SoftAP. */
export function createOnboardingPort(): OnboardingPort | undefined {
  let stop: (() => void) | undefined;
  return {
    open(ssid, handler) {
      stop?.();
      stop = serveOnboarding(8080, handler);
      trace(`wcm onboarding: (no SoftAP on lin: would be ${ssid}) service on port 8080\n`);
    },
    close() {
      stop?.();
      stop = undefined;
    },
  };
}
