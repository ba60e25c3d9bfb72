/*
 * Wi-Fi on ESP32 with the Moddable "wifi" module, plus WPA2-Enterprise through
 * the native wcm-host/eap module (ESP-IDF esp_eap_client).
 * - Tries config.wcm.networks in order (put the owner's private network first,
 *   partner hotspots after): open, psk (WPA2-Personal), or hotspot
 *   (WPA2-Enterprise: EAP-TLS for certificate devices, else EAP-TTLS/PAP with
 *   the password derived from the device secret).
 * - A network that gives no IP address within JOIN_TIMEOUT_MS, or refuses the
 *   password, is left for the next one; after the last, the list starts again.
 * - Once up, a disconnect reports onDown and starts the list from the top.
 * NEVER BUILT for ESP32 nor run on hardware (no ESP-IDF here); it was
 * type-checked by building a lin variant that maps it in (docs/moddable.md).
 */
import WiFi from "wifi";
import Timer from "timer";
import Eap from "wcm-host/eap";
import { pemBlocks } from "wcm-host/pem";
import type { HotspotCredentials, NetworkConfig, NetworkEvents } from "wcm-host/network-types";

const JOIN_TIMEOUT_MS = 20_000;
const PAUSE_BETWEEN_ROUNDS_MS = 5_000;

/** Joins the first network that works and keeps the device on one. */
export function startNetwork(networks: NetworkConfig[], events: NetworkEvents, hotspot?: () => HotspotCredentials): void {
  if (!networks.length) {
    trace("wcm network: no networks in config.wcm.networks\n");
    return;
  }
  let index = -1;
  let wifi: WiFi | undefined;
  let timer: Timer | undefined;
  let up = false;

  const leave = () => {
    if (timer) Timer.clear(timer);
    timer = undefined;
    if (wifi) {
      wifi.close();
      wifi = undefined;
    }
    WiFi.disconnect();
  };

  const next = () => {
    leave();
    index++;
    if (index >= networks.length) {
      index = -1;
      timer = Timer.set(next, PAUSE_BETWEEN_ROUNDS_MS);
      return;
    }
    join(networks[index]);
  };

  const join = (network: NetworkConfig) => {
    WiFi.mode = WiFi.Mode.station;
    try {
      if (network.kind === "hotspot") {
        const credentials = hotspot?.();
        if (!credentials) throw new Error("no hotspot credentials");
        const ca = credentials.ca ? pemBlocks(credentials.ca, "CERTIFICATE")[0] : undefined;
        if (credentials.certificate && credentials.privateKey) {
          Eap.configureTls(credentials.identity, pemBlocks(credentials.certificate, "CERTIFICATE")[0], pemBlocks(credentials.privateKey, "PRIVATE KEY")[0], ca);
        } else if (credentials.password) {
          Eap.configureTtls(credentials.identity, credentials.password, ca);
        } else {
          throw new Error("hotspot credentials have neither a certificate nor a password");
        }
      } else {
        Eap.disable();
      }
    } catch (error) {
      trace(`wcm network: cannot configure ${network.ssid}: ${error instanceof Error ? error.message : "error"}\n`);
      timer = Timer.set(next, 0);
      return;
    }
    const options = network.kind === "psk" && network.password ? { ssid: network.ssid, password: network.password } : { ssid: network.ssid };
    timer = Timer.set(() => {
      timer = undefined;
      trace(`wcm network: ${network.ssid} gave no address in time\n`);
      next();
    }, JOIN_TIMEOUT_MS);
    wifi = new WiFi(options, (message) => {
      if (message === WiFi.gotIP) {
        if (timer) Timer.clear(timer);
        timer = undefined;
        if (!up) {
          up = true;
          events.onUp(network.ssid);
        }
      } else if (message === WiFi.disconnected) {
        if (up) {
          up = false;
          events.onDown(network.ssid);
          index = -1;
          timer = Timer.set(next, 0);
        }
        // before an address: the join timer moves on (the driver retries meanwhile)
      }
    });
  };

  next();
}
