/*
 * The OnboardingPort on ESP32 (modules/onboarding/attach.ts): Moddable's
 * WiFi.accessPoint with `station: true` (ESP-IDF's AP+STA mode, so the manager
 * keeps scanning and joins the handed-over network while the owner's phone
 * stays on the SoftAP to read JOINED), an open SoftAP (the PAKE protects the
 * exchange; a WPA2 passphrase would let a recording be guessed offline), and
 * the HTTP service on port 80 (hosts/moddable/onboarding-http.ts). close()
 * stops the service and puts the radio back to station mode.
 * NEVER RUN on a board: compile-checked by `npm run check:esp32` only.
 */
import WiFi from "wifi";
import { serveOnboarding } from "wcm-host/onboarding-http";
import type { OnboardingPort } from "wcm/onboarding/attach";

/** The SoftAP and its service; undefined where the platform has none. */
export function createOnboardingPort(): OnboardingPort | undefined {
  let stop: (() => void) | undefined;
  return {
    open(ssid, handler) {
      stop?.();
      // `station` is in Moddable's esp32 wifi.c (xs_wifi_accessPoint), not in its typings
      WiFi.accessPoint({ ssid, channel: 1, max: 2, station: true } as Parameters<typeof WiFi.accessPoint>[0]);
      stop = serveOnboarding(80, handler);
      trace(`wcm onboarding: SoftAP ${ssid} up, service on port 80\n`);
    },
    close() {
      stop?.();
      stop = undefined;
      WiFi.mode = WiFi.Mode.station;
      trace("wcm onboarding: SoftAP down\n");
    },
  };
}
