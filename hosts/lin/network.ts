/*
 * The network on the lin simulator: the desktop's own. Moddable's simulator
 * Wi-Fi (wifi/sim) is a fake with canned scan results, so there is no radio to
 * give the core: without a NetworkPort the manager connects to the cloud
 * directly, through the host's sockets. The ESP32 host (hosts/esp32/network.ts)
 * gives the core a real NetworkPort.
 */
import type { NetworkPort } from "wcm/ports";

/** No radio on the simulator. */
export function createNetworkPort(): NetworkPort | undefined {
  return undefined;
}
