/*
 * The wcm Moddable app: starts the ConnectionManager with the device settings
 * that the build put in mc/config (config.wcm, from provisioning/device.json)
 * and reports every state change with trace(). The device's identity (id,
 * option, secret / provisioning key / certificate) comes from the
 * manufacturing line's NVS partition when one was flashed (one image per lot),
 * else from config.wcm (one image per device).
 *
 * Boot: raise the clock to the time floors (TLS checks certificate dates: the
 * host's persisted floor, config timeFloor/buildTime, and the core's wall
 * clock), then start the manager.
 * - ESP32 (hosts/esp32): the manager gets the radio as its NetworkPort and
 *   scans, selects and joins networks itself (stored private networks, hotspot
 *   profiles from config.wcm.hotspots or the cloud); SNTP is tried in the
 *   background once a network is joined.
 * - lin (hosts/lin): no NetworkPort; the desktop's network is up, SNTP is
 *   tried, then the manager connects directly.
 * The clock is raised to the core's wall clock after every status change, so
 * the time the cloud tells in `hello` reaches the system clock.
 * Trace lines start with "wcm " so a test harness can follow them; secrets are
 * never traced.
 */
import Debug from "debug";
import Instrumentation from "instrumentation";
import Timer from "timer";
import config from "mc/config";
import { validateConfig, type DeviceConfig } from "wcm/config";
import { ConnectionManager, type ManagerStatus } from "wcm/manager";
import type { RetryPolicy } from "wcm/retry";
import { factoryIdentity } from "wcm-host/factory-identity";
import { createModdableLink } from "wcm-host/mqtt-link";
import { createNetworkPort, createOnboardingPort, hardwareTemporarySecret } from "wcm-host/network";
import { moddableClock, moddableRandom, moddableScheduler, nativeDigest, preferenceStore } from "wcm-host/ports";
import { nativeSeal } from "wcm-host/seal";
import { applyTimeFloor, raiseClock, syncTime } from "wcm-host/time-floor";

interface AppSettings {
  /** SNTP server; "" skips SNTP */
  sntp?: string;
  /** seconds: the clock is never set below this (e.g. the build date) */
  timeFloor?: number;
  /**
   * measurement builds only: trace the live heap (after a full GC) at boot, at the
   * first ONLINE, and after stopping the manager there (npm run check:moddable)
   */
  measureHeap?: boolean;
  /**
   * the reconnect back-off (modules/retry.ts; default DEFAULT_RETRY_POLICY):
   * networkBaseMs, networkMaxMs, authBaseMs, authMaxMs. npm run check:moddable
   * shortens it to watch several retries of a refused device in seconds.
   */
  retry?: RetryPolicy;
  /**
   * temporarySecretFrom "hardware": the eFuse key block (0..5) holding the lot key
   * (default 5; the NVS identity's hmacKeyBlock, written by make-lot, takes precedence)
   */
  hmacKeyBlock?: number | string;
  /** no longer used: private networks come from the cloud, hotspots from `hotspots` */
  networks?: unknown;
  hotspotCa?: unknown;
}

/** The eFuse key block of a hardware-mode device: 0..5, default 5 (BLOCK_KEY5). */
function keyBlock(value: unknown): number {
  const n = value === undefined ? 5 : typeof value === "string" && /^[0-5]$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 5) throw new Error("hmacKeyBlock: an eFuse key block, 0..5");
  return n;
}

function describe(status: ManagerStatus): string {
  const failure = status.lastFailure;
  return `wcm state ${status.state} credential ${status.credential}${status.retryInMs === undefined ? "" : ` attempt ${status.attempt} retryInMs ${Math.round(status.retryInMs)}`}${
    failure ? ` lastFailure ${failure.reason}${failure.detail ? ` (${failure.detail})` : ""}` : ""}\n`;
}

const RETRY_FIELDS = ["networkBaseMs", "networkMaxMs", "authBaseMs", "authMaxMs"] as const;

/** config.wcm.retry checked: four whole numbers of milliseconds, 100 ms to 1 day, each base at most its max. */
function retryPolicy(value: unknown): RetryPolicy | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) throw new Error("retry: an object");
  const fields = value as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !(RETRY_FIELDS as readonly string[]).includes(key));
  if (unknown !== undefined) throw new Error(`retry: unknown field ${unknown.slice(0, 32)}`);
  for (const key of RETRY_FIELDS) {
    const n = fields[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 100 || n > 86_400_000) throw new Error(`retry.${key}: whole milliseconds, 100 to 86400000`);
  }
  const policy = fields as unknown as RetryPolicy;
  if (policy.networkBaseMs > policy.networkMaxMs || policy.authBaseMs > policy.authMaxMs) throw new Error("retry: a base above its max");
  return { networkBaseMs: policy.networkBaseMs, networkMaxMs: policy.networkMaxMs, authBaseMs: policy.authBaseMs, authMaxMs: policy.authMaxMs };
}

/** The whole VM's XS heap use (slots and chunks, bytes): wcm, TLS and MQTT together; undefined in release builds (no instrumentation). */
function heap(gc: boolean): { slots: number | undefined; chunks: number | undefined } {
  if (gc) Debug.gc();
  const read = (name: "XS Slot Heap Used" | "XS Chunk Heap Used") => Instrumentation.get(Instrumentation.map(name));
  return { slots: read("XS Slot Heap Used"), chunks: read("XS Chunk Heap Used") };
}

/** At the first ONLINE: the live heap then, and again once the manager has stopped (link, TLS and MQTT gone). */
function measureHeapOnce(manager: ConnectionManager, boot: { slots?: number; chunks?: number }): void {
  let done = false;
  manager.onStatus((status) => {
    if (done || status.state !== "ONLINE") return;
    done = true;
    Timer.set(() => {
      const online = heap(true);
      trace(`wcm heap-live boot slots ${boot.slots ?? 0} chunks ${boot.chunks ?? 0} online slots ${online.slots ?? 0} chunks ${online.chunks ?? 0}\n`);
      manager.stop();
      Timer.set(() => {
        const stopped = heap(true);
        trace(`wcm heap-live stopped slots ${stopped.slots ?? 0} chunks ${stopped.chunks ?? 0}\n`);
      }, 500);
    }, 200);
  });
}

/** The identity fields of config.wcm, cleared when the NVS partition brings the identity. */
const NO_IDENTITY = {
  deviceId: undefined, option: undefined, secret: undefined, temporarySecret: undefined, temporarySecretFrom: undefined,
  hmacKeyBlock: undefined, provisioningKey: undefined, certificate: undefined, privateKey: undefined,
};

const sntpTrace = (ok: boolean) => trace(`wcm sntp ${ok ? "ok" : "unavailable"}\n`);

function main(): void {
  const settings = (config as Record<string, unknown>).wcm as (Record<string, unknown> & AppSettings) | undefined;
  const app: AppSettings = settings ?? {};
  const bootHeap = app.measureHeap === true ? heap(true) : undefined;
  // the manufacturing line's NVS identity, when flashed, takes the place of the built-in one
  const factory = factoryIdentity();
  let device: DeviceConfig;
  let retry: RetryPolicy | undefined;
  let block: number;
  try {
    retry = retryPolicy(app.retry);
    block = keyBlock(factory?.hmacKeyBlock ?? app.hmacKeyBlock);
    device = validateConfig(factory ? { ...settings, ...NO_IDENTITY, ...factory } : settings);
  } catch (error) {
    trace(`wcm config invalid: ${error instanceof Error ? error.message : "error"}\n`);
    return;
  }
  if (app.networks !== undefined || app.hotspotCa !== undefined) trace("wcm config: networks/hotspotCa are ignored (hotspots: profiles; private networks: the cloud)\n");
  applyTimeFloor(Math.max(app.timeFloor ?? 0, device.buildTime ?? 0));
  const network = createNetworkPort();
  // local onboarding (docs/protocol.md 15): the SoftAP + HTTP service, used when config carries a labelCode
  const onboarding = device.labelCode ? createOnboardingPort() : undefined;
  // hardware mode: the temporary secret comes from the HMAC peripheral (ESP32 s2/s3/c3/c6), not from flash
  const temporarySecret = device.option === "temporary" && "temporarySecretFrom" in device ? hardwareTemporarySecret(block) : undefined;

  const manager = new ConnectionManager(device, {
    digest: nativeDigest,
    seal: nativeSeal,
    random: moddableRandom(),
    clock: moddableClock(),
    scheduler: moddableScheduler,
    kv: preferenceStore(),
    link: createModdableLink,
    network,
    temporarySecret,
    onboarding,
    log: (level, message) => trace(`wcm log ${level} ${message}\n`),
  }, { retry });
  // the core's wall clock: build time, the cloud's last time (persisted), monotonic time
  raiseClock(manager.wallClock().unixSeconds);
  if (retry) trace(`wcm retry network ${retry.networkBaseMs}-${retry.networkMaxMs} auth ${retry.authBaseMs}-${retry.authMaxMs}\n`);
  trace(`wcm boot device ${device.deviceId} option ${device.option} identity ${factory ? "nvs" : "config"} time ${Math.floor(Date.now() / 1000)} radio ${network ? "yes" : "no"} hotspots ${manager.hotspots.profiles.length}\n`);

  const sntp = app.sntp ?? (config as Record<string, unknown>).sntp;
  const sntpHost = typeof sntp === "string" ? sntp : "";
  let sntpTried = false;
  let synced = false;
  if (bootHeap) measureHeapOnce(manager, bootHeap);
  manager.onStatus((status) => {
    trace(describe(status));
    const wall = manager.wallClock();
    if (wall.synced && raiseClock(wall.unixSeconds)) trace(`wcm time ${wall.unixSeconds} (cloud)\n`);
    if (wall.synced && !synced) {
      synced = true;
      trace(`wcm time synced ${wall.unixSeconds}\n`);
    }
    if (status.state === "ONLINE") {
      const now = heap(false);
      trace(`wcm heap ${now.slots === undefined || now.chunks === undefined ? "n/a (release build: measure on debug)" : `slots ${now.slots} chunks ${now.chunks}`}\n`);
    }
    if (network && status.network && !sntpTried && sntpHost) {
      // once per boot, in the background: TLS already has the floors and the cloud's time
      sntpTried = true;
      syncTime(sntpHost, sntpTrace);
    }
  });

  if (network || !sntpHost) manager.start();
  else {
    syncTime(sntpHost, (ok) => {
      sntpTrace(ok);
      manager.start();
    });
  }
}

main();
