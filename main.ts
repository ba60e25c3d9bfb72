/*
 * The wcm Moddable app: starts the ConnectionManager with the device settings
 * that the build put in mc/config (config.wcm, from provisioning/device.json)
 * and reports every state change with trace().
 *
 * Boot: raise the clock to the persisted time floor (TLS checks certificate
 * dates), bring the network up (hosts/lin: the desktop's; hosts/esp32: Wi-Fi,
 * WPA2-Enterprise hotspots included), try SNTP, then start the manager.
 * Trace lines start with "wcm " so a test harness can follow them; secrets are
 * never traced.
 */
import Instrumentation from "instrumentation";
import config from "mc/config";
import { validateConfig, type DeviceConfig } from "wcm/config";
import { CredentialStore } from "wcm/credential-store";
import { deriveHotspotPassword, deriveTemporarySecret } from "wcm/derive";
import { ConnectionManager, type ManagerStatus } from "wcm/manager";
import { createModdableLink } from "wcm-host/mqtt-link";
import { startNetwork } from "wcm-host/network";
import type { HotspotCredentials, NetworkConfig } from "wcm-host/network-types";
import { moddableClock, moddableRandom, moddableScheduler, nativeDigest, preferenceStore } from "wcm-host/ports";
import { applyTimeFloor, syncTime } from "wcm-host/time-floor";

interface AppSettings {
  networks?: NetworkConfig[];
  /** SNTP server; "" skips SNTP */
  sntp?: string;
  /** seconds: the clock is never set below this (e.g. the build date) */
  timeFloor?: number;
  /** PEM CA of partner hotspots' RADIUS servers */
  hotspotCa?: string;
}

function describe(status: ManagerStatus): string {
  let line = `wcm state ${status.state} credential ${status.credential}`;
  if (status.retryInMs !== undefined) line += ` retryInMs ${Math.round(status.retryInMs)}`;
  if (status.lastFailure) line += ` lastFailure ${status.lastFailure.reason}${status.lastFailure.detail ? ` (${status.lastFailure.detail})` : ""}`;
  return line;
}

/** The whole VM's XS heap use (slots and chunks, bytes): wcm, TLS and MQTT together. */
function heapReport(): string {
  const read = (name: "XS Slot Heap Used" | "XS Chunk Heap Used") => Instrumentation.get(Instrumentation.map(name));
  return `slots ${read("XS Slot Heap Used") ?? "?"} chunks ${read("XS Chunk Heap Used") ?? "?"}`;
}

function hotspotCredentials(device: DeviceConfig, app: AppSettings): HotspotCredentials {
  const base: HotspotCredentials = { identity: device.deviceId, ...(app.hotspotCa ? { ca: app.hotspotCa } : {}) };
  if (device.option === "certificate") return { ...base, certificate: device.certificate, privateKey: device.privateKey };
  const stored = new CredentialStore(preferenceStore(), nativeDigest, device.deviceId).loadSecret();
  const secret = stored?.secret
    ?? (device.option === "secret" ? device.secret : deriveTemporarySecret(nativeDigest, device.provisioningKey, device.deviceId));
  return { ...base, password: deriveHotspotPassword(nativeDigest, secret, device.deviceId) };
}

function main(): void {
  const settings = (config as Record<string, unknown>).wcm as (Record<string, unknown> & AppSettings) | undefined;
  let device: DeviceConfig;
  try {
    device = validateConfig(settings);
  } catch (error) {
    trace(`wcm config invalid: ${error instanceof Error ? error.message : "error"}\n`);
    return;
  }
  const app: AppSettings = settings ?? {};
  const wallClock = applyTimeFloor(app.timeFloor ?? 0);
  trace(`wcm boot device ${device.deviceId} option ${device.option} time ${wallClock}\n`);

  const manager = new ConnectionManager(device, {
    digest: nativeDigest,
    random: moddableRandom(),
    clock: moddableClock(),
    scheduler: moddableScheduler,
    kv: preferenceStore(),
    link: createModdableLink,
    log: (level, message) => trace(`wcm log ${level} ${message}\n`),
  });
  manager.onStatus((status) => {
    trace(`${describe(status)}\n`);
    if (status.state === "ONLINE") trace(`wcm heap ${heapReport()}\n`);
  });

  let started = false;
  startNetwork(app.networks ?? [], {
    onUp(detail) {
      trace(`wcm network up ${detail}\n`);
      if (started) return;
      started = true;
      const sntp = app.sntp ?? (config as Record<string, unknown>).sntp;
      if (typeof sntp === "string" && sntp) {
        syncTime(sntp, (ok) => {
          trace(`wcm sntp ${ok ? "ok" : "unavailable"}\n`);
          manager.start();
        });
      } else {
        manager.start();
      }
    },
    onDown(detail) {
      trace(`wcm network down ${detail}\n`);
    },
  }, () => hotspotCredentials(device, app));
}

main();
