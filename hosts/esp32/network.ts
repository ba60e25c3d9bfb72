/*
 * The core's NetworkPort on ESP32 (modules/ports.ts): the manager scans,
 * selects (stored private networks by priority, then hotspot profiles) and
 * joins; this module only drives the radio.
 * - scan: the native wcm-host/eap scan (Moddable's WiFi.scan reports enterprise
 *   access points as "wpa_wpa2_psk", so it cannot tell a hotspot from a PSK
 *   network). Open → "open"; WEP/WPA/WPA2/WPA3 personal (and WAPI, OWE) →
 *   "psk"; WPA/WPA2/WPA3 enterprise → "enterprise". roamingConsortium is never
 *   set: ESP-IDF's scan records do not expose the Hotspot 2.0 Roaming
 *   Consortium element, so profiles match here by SSID only.
 * - join: open/psk with the Moddable "wifi" module ({ssid, password, bssid});
 *   enterprise after configuring the native module (EAP-TTLS/PAP or EAP-TLS,
 *   RADIUS server checked by CA and name).
 * - outcome: exactly one onJoined/onFailed per join; onLost at most once after
 *   onJoined. The wifi module retries a connect 5 times itself and reports one
 *   "disconnect" when it gives up; the reason comes from the native module
 *   (wifi_err_reason_t), else Moddable's -1 (handshake failed).
 * - leave(): closes the wifi object, disconnects, clears EAP; nothing follows.
 * NEVER BUILT for ESP32 nor run on hardware (no ESP-IDF here); it was
 * type-checked by a lin build that maps it in with a stub for wcm-host/eap
 * (docs/moddable.md).
 */
import Net from "net";
import Timer from "timer";
import WiFi from "wifi";
import Eap, { type NativeScanRecord } from "wcm-host/eap";
import { pemBlocks } from "wcm-host/mqtt-link";
import type { JoinEvents, JoinRequest, NetworkFailure, NetworkFailureReason, NetworkPort, NetworkSecurity, ScanResult } from "wcm/ports";

/** The SoftAP and its service (hosts/esp32/onboarding.ts) and the key hardware (hmac/ or none): main.ts takes the platform's ports from wcm-host/network, as on lin. */
export { createOnboardingPort } from "wcm-host/onboarding";
export { hardwareTemporarySecret } from "wcm-host/hardware-key";

/** From the connect request to "connect" (association + authentication, the wifi module's 5 tries included). */
export const ASSOCIATE_DEADLINE_MS = 30_000;
/** From "connect" to "gotIP" (the wifi module waits for IPv4 and an IPv6 link-local address). */
export const DHCP_DEADLINE_MS = 12_000;

// wifi_err_reason_t (esp_wifi_types_generic.h, ESP-IDF 5.5/6.0)
const REASON = {
  AUTH_EXPIRE: 2,
  MIC_FAILURE: 14,
  FOURWAY_HANDSHAKE_TIMEOUT: 15,
  IEEE8021X_AUTH_FAILED: 23,
  NO_AP_FOUND: 201,
  AUTH_FAIL: 202,
  HANDSHAKE_TIMEOUT: 204,
  NO_AP_FOUND_W_COMPATIBLE_SECURITY: 210,
  NO_AP_FOUND_IN_AUTHMODE_THRESHOLD: 211,
  NO_AP_FOUND_IN_RSSI_THRESHOLD: 212,
} as const;

// wifi_auth_mode_t (same header)
const AUTH_OPEN = 0;
const ENTERPRISE_MODES = new Set([5 /* ENTERPRISE = WPA2_ENTERPRISE */, 11 /* WPA3_ENT_192 */, 15 /* WPA3_ENTERPRISE */, 16 /* WPA2_WPA3_ENTERPRISE */, 17 /* WPA_ENTERPRISE */]);

/** open / psk / enterprise from wifi_auth_mode_t. */
export function securityOf(authmode: number): NetworkSecurity {
  if (authmode === AUTH_OPEN) return "open";
  return ENTERPRISE_MODES.has(authmode) ? "enterprise" : "psk";
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join(":");
}

function bssidBytes(bssid: string): ArrayBuffer | undefined {
  const parts = bssid.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return Uint8Array.from(parts, (p) => parseInt(p, 16)).buffer;
}

/**
 * The failure for a disconnect before an address.
 * @param reason - wifi_err_reason_t from the native module (0 when unknown)
 * @param moddable - the wifi module's value: -1 when the handshake failed, else 0
 */
export function joinFailure(security: JoinRequest["security"], reason: number, moddable: number): NetworkFailure {
  const detail = `wifi reason ${reason || moddable}`;
  let code: NetworkFailureReason = "ASSOCIATION-FAILED";
  if (reason === REASON.NO_AP_FOUND || reason === REASON.NO_AP_FOUND_W_COMPATIBLE_SECURITY
    || reason === REASON.NO_AP_FOUND_IN_AUTHMODE_THRESHOLD || reason === REASON.NO_AP_FOUND_IN_RSSI_THRESHOLD) {
    code = "NETWORK-NOT-FOUND";
  } else if (security === "enterprise") {
    // EAP-Failure (Access-Reject), a server the supplicant did not trust, or keys
    // that do not match: the driver tells these apart only as below.
    if (reason === REASON.IEEE8021X_AUTH_FAILED || reason === REASON.FOURWAY_HANDSHAKE_TIMEOUT
      || reason === REASON.HANDSHAKE_TIMEOUT || reason === REASON.AUTH_FAIL || moddable === -1) code = "EAP-REJECTED";
  } else if (security === "psk") {
    if (reason === REASON.FOURWAY_HANDSHAKE_TIMEOUT || reason === REASON.HANDSHAKE_TIMEOUT || reason === REASON.MIC_FAILURE
      || reason === REASON.AUTH_FAIL || moddable === -1) code = "INCORRECT-PASSWORD";
  }
  return { reason: code, detail };
}

/** The ESP32 radio. Call once, before anything else touches Wi-Fi. */
export function createNetworkPort(): NetworkPort {
  Eap.watch();
  let stationReady = false;
  let generation = 0;
  let wifi: WiFi | undefined;
  let timer: Timer | undefined;

  const station = () => {
    if (!stationReady) {
      WiFi.mode = WiFi.Mode.station;
      stationReady = true;
    }
  };

  const stop = () => {
    generation++;
    if (timer) Timer.clear(timer);
    timer = undefined;
    const old = wifi;
    wifi = undefined;
    if (old) old.close();
    if (!stationReady) return;
    try {
      WiFi.disconnect();
    } catch {
      // nothing to disconnect
    }
  };

  return {
    scan(done: (results: ScanResult[]) => void): void {
      station();
      let records: NativeScanRecord[] = [];
      let failed = "";
      try {
        records = Eap.scan();
      } catch (error) {
        failed = error instanceof Error ? error.message : "scan failed";
      }
      const results: ScanResult[] = records
        .filter(([ssid]) => ssid.length > 0)
        .map(([ssid, bssid, rssi, channel, authmode]) => ({ ssid, bssid: hex(bssid), rssi, channel, security: securityOf(authmode) }));
      if (failed) trace(`wcm network: ${failed}\n`);
      // asynchronously, as the contract's callers expect
      Timer.set(() => done(results), 0);
    },

    join(request: JoinRequest, events: JoinEvents): void {
      try {
        station();
      } catch {
        // reported by the connect below
      }
      stop();
      const id = ++generation;
      let phase: "associating" | "addressing" | "joined" | "done" = "associating";
      const current = () => id === generation;
      const end = () => {
        phase = "done";
        if (timer) Timer.clear(timer);
        timer = undefined;
      };
      const fail = (failure: NetworkFailure) => {
        if (!current() || phase === "done" || phase === "joined") return;
        end();
        stop();
        try {
          Eap.disable();
        } catch {
          // nothing configured
        }
        events.onFailed(failure);
      };
      const deadline = (ms: number, failure: () => NetworkFailure) => {
        if (timer) Timer.clear(timer);
        timer = Timer.set(() => {
          timer = undefined;
          fail(failure());
        }, ms);
      };

      try {
        Eap.takeDisconnectReason();
        if (request.security === "enterprise") {
          const ca = pemBlocks(request.server.ca, "CERTIFICATE")[0];
          if (!ca) throw new Error("no CA certificate for the RADIUS server");
          if (request.method === "tls") {
            Eap.configureTls(request.identity, pemBlocks(request.certificate, "CERTIFICATE")[0], pemBlocks(request.privateKey, "PRIVATE KEY")[0], ca, request.server.serverName);
          } else {
            Eap.configureTtls(request.anonymousIdentity ?? request.identity, request.identity, request.password, ca, request.server.serverName);
          }
        } else {
          Eap.disable();
        }
      } catch (error) {
        const detail = `cannot configure: ${error instanceof Error ? error.message : "error"}`.slice(0, 64);
        Timer.set(() => fail({ reason: "ASSOCIATION-FAILED", detail }), 0);
        return;
      }

      const options: Record<string, unknown> = { ssid: request.ssid };
      if (request.security === "psk") options.password = request.password;
      const bssid = request.bssid ? bssidBytes(request.bssid) : undefined;
      if (bssid) options.bssid = bssid;

      deadline(ASSOCIATE_DEADLINE_MS, () => {
        const reason = Eap.takeDisconnectReason();
        if (reason) return joinFailure(request.security, reason, 0);
        return request.security === "enterprise"
          ? { reason: "EAP-TIMEOUT", detail: "802.1X did not finish in time" }
          : { reason: "ASSOCIATION-FAILED", detail: "no association in time" };
      });
      try {
        wifi = new WiFi(options as { ssid: string }, (message: string, value?: number) => {
          if (!current()) return;
          if (message === WiFi.connected) {
            if (phase !== "associating") return;
            phase = "addressing";
            deadline(DHCP_DEADLINE_MS, () => ({ reason: "DHCP-TIMEOUT", detail: `no address from ${request.ssid}` }));
          } else if (message === WiFi.gotIP) {
            if (phase !== "associating" && phase !== "addressing") return;
            phase = "joined";
            if (timer) Timer.clear(timer);
            timer = undefined;
            let ip = "";
            let joinedBssid = request.bssid ?? "";
            try {
              ip = Net.get("IP", "station") ?? "";
              joinedBssid = (Net.get("BSSID") ?? joinedBssid).toLowerCase();
            } catch {
              // details only
            }
            events.onJoined({ ip, ssid: request.ssid, bssid: joinedBssid });
          } else if (message === WiFi.disconnected) {
            const reason = Eap.takeDisconnectReason();
            if (phase === "joined") {
              end();
              stop();
              events.onLost({ reason: "CONNECTION-LOST", detail: `wifi reason ${reason || value || 0}` });
            } else {
              fail(joinFailure(request.security, reason, value ?? 0));
            }
          }
        });
      } catch (error) {
        const detail = `connect failed: ${error instanceof Error ? error.message : "error"}`.slice(0, 64);
        Timer.set(() => fail({ reason: "ASSOCIATION-FAILED", detail }), 0);
      }
    },

    leave(): void {
      stop();
      try {
        Eap.disable();
      } catch {
        // nothing configured
      }
    },
  };
}
