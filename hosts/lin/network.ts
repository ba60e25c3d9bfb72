/*
 * The network on the lin simulator: the desktop's own. Moddable's simulator
 * Wi-Fi (wifi/sim) is a fake with canned scan results, so there is nothing to
 * join: the cloud is reached through the host's sockets. The ESP32 host
 * (hosts/esp32/network.ts) joins real networks, WPA2-Enterprise included.
 */
import type { HotspotCredentials, NetworkConfig, NetworkEvents } from "wcm-host/network-types";

/** Reports the network up at once (asynchronously, as a real join would). */
export function startNetwork(_networks: NetworkConfig[], events: NetworkEvents, _hotspot?: () => HotspotCredentials): void {
  Promise.resolve().then(() => events.onUp("host network"));
}
