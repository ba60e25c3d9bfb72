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
import { check, fail, fields, optional, type Check } from "wcm/check";
import { validateConfig } from "wcm/config";
import { ConnectionManager, type ManagerStatus } from "wcm/manager";
import type { RetryPolicy } from "wcm/retry";
import { factoryIdentity } from "wcm-host/factory-identity";
import { createModdableLink } from "wcm-host/mqtt-link";
import { createNetworkPort, createOnboardingPort, hardwareTemporarySecret } from "wcm-host/network";
import { moddableClock, moddableRandom, moddableScheduler, nativeDigest, preferenceStore } from "wcm-host/ports";
import { nativeSeal } from "wcm-host/seal";
import { applyTimeFloor, raiseClock, syncTime } from "wcm-host/time-floor";

/*
 * The app's own settings in config.wcm, beside the device's (validateConfig):
 *   sntp          SNTP server; "" skips SNTP
 *   timeFloor     seconds: the clock is never set below this (e.g. the build date)
 *   measureHeap   measurement builds only: trace the live heap (after a full GC) at boot,
 *                 at the first ONLINE, and after stopping the manager there (npm run check:moddable)
 *   retry         the reconnect back-off (modules/retry.ts; default DEFAULT_RETRY_POLICY):
 *                 networkBaseMs, networkMaxMs, authBaseMs, authMaxMs. npm run check:moddable
 *                 shortens it to watch several retries of a refused device in seconds.
 *   hmacKeyBlock  temporarySecretFrom "hardware": the eFuse key block (0..5) holding the lot key
 *                 (default 5; the NVS identity's hmacKeyBlock, written by make-lot, takes precedence)
 *   networks, hotspotCa   no longer used: private networks come from the cloud, hotspots from `hotspots`
 */

/** Back-off bounds: whole milliseconds, 100 ms to 1 day. */
const MS = [100, 86_400_000] as const;

/** config.wcm.retry: the four bounds and nothing else, each base at most its max. */
const retryPolicy: Check = (value, field, code): RetryPolicy => {
  const policy = check(value, { networkBaseMs: MS, networkMaxMs: MS, authBaseMs: MS, authMaxMs: MS }, field, code);
  return policy.networkBaseMs > policy.networkMaxMs || policy.authBaseMs > policy.authMaxMs ? fail(code, "a base above its max", field) : policy;
};

/** The eFuse key block of a hardware-mode device: 0..5 (a number or its digit as text). */
const keyBlock: Check = (value, field, code): number => check(typeof value === "string" && /^[0-5]$/.test(value) ? Number(value) : value, [0, 5], field, code);

/** The identity fields of config.wcm, cleared when the NVS partition brings the identity. */
const NO_IDENTITY = {
  deviceId: undefined, option: undefined, secret: undefined, temporarySecret: undefined, temporarySecretFrom: undefined,
  provisioningKey: undefined, certificate: undefined, privateKey: undefined,
};

/** The whole VM's XS heap use as "slots N chunks N" (bytes): wcm, TLS and MQTT together; undefined in release builds (no instrumentation). */
function heap(gc?: boolean): string | undefined {
  if (gc) Debug.gc();
  const slots = Instrumentation.get(Instrumentation.map("XS Slot Heap Used"));
  const chunks = Instrumentation.get(Instrumentation.map("XS Chunk Heap Used"));
  return slots === undefined || chunks === undefined ? undefined : `slots ${slots} chunks ${chunks}`;
}

const sntpTrace = (ok: boolean) => trace(`wcm sntp ${ok ? "ok" : "unavailable"}\n`);

function main(): void {
  const settings: Record<string, any> | undefined = (config as Record<string, any>).wcm;
  // measureHeap: the live heap at boot, before anything of wcm runs
  let bootHeap = settings?.measureHeap === true ? heap(true) : undefined;
  // the manufacturing line's NVS identity, when flashed, takes the place of the built-in one
  const factory = factoryIdentity();
  const input = factory ? { ...settings, ...NO_IDENTITY, ...factory } : settings;
  let device, app;
  try {
    device = validateConfig(input);
    // the NVS identity's hmacKeyBlock before config.wcm's
    app = fields({ ...settings, ...factory }, { retry: optional(retryPolicy), hmacKeyBlock: optional(keyBlock, 5) }, "", "CONFIG_INVALID");
  } catch (error) {
    trace(`wcm config invalid: ${error instanceof Error ? error.message : "error"}\n`);
    return;
  }
  const retry: RetryPolicy | undefined = app.retry;
  if (settings!.networks !== undefined || settings!.hotspotCa !== undefined) trace("wcm config: networks/hotspotCa are ignored\n");
  applyTimeFloor(Math.max(settings!.timeFloor ?? 0, device.buildTime ?? 0));
  const network = createNetworkPort();

  const manager = new ConnectionManager(device, {
    digest: nativeDigest,
    seal: nativeSeal,
    random: moddableRandom(),
    clock: moddableClock(),
    scheduler: moddableScheduler,
    kv: preferenceStore(),
    link: createModdableLink,
    network,
    // hardware mode: the temporary secret comes from the HMAC peripheral (ESP32 s2/s3/c3/c6), not from flash
    temporarySecret: "temporarySecretFrom" in device ? hardwareTemporarySecret(app.hmacKeyBlock) : undefined,
    // local onboarding (docs/protocol.md 15): the SoftAP + HTTP service, used when config carries a labelCode
    onboarding: device.labelCode ? createOnboardingPort() : undefined,
    log: (level, message) => trace(`wcm log ${level} ${message}\n`),
  }, { retry });
  // the core's wall clock: build time, the cloud's last time (persisted), monotonic time
  raiseClock(manager.wallClock().unixSeconds);
  if (retry) trace(`wcm retry ${JSON.stringify(retry)}\n`);
  trace(`wcm boot device ${device.deviceId} option ${device.option} identity ${factory ? "nvs" : "config"} time ${Math.floor(Date.now() / 1000)} radio ${network ? "yes" : "no"} hotspots ${manager.hotspots.profiles.length}\n`);

  const sntp = settings!.sntp ?? (config as Record<string, unknown>).sntp;
  const sntpHost = typeof sntp === "string" ? sntp : "";
  let sntpTried = false;
  let synced = false;
  manager.onStatus((status) => {
    // the status as a trace line (the check:moddable tool reads these)
    const failure = status.lastFailure;
    let line = `wcm state ${status.state} credential ${status.credential}`;
    if (status.retryInMs !== undefined) line += ` attempt ${status.attempt} retryInMs ${Math.round(status.retryInMs)}`;
    if (failure) line += ` lastFailure ${failure.reason}${failure.detail ? ` (${failure.detail})` : ""}`;
    trace(line + "\n");
    const wall = manager.wallClock();
    if (wall.synced) {
      if (raiseClock(wall.unixSeconds)) trace(`wcm time ${wall.unixSeconds} (cloud)\n`);
      if (!synced) trace(`wcm time synced ${wall.unixSeconds}\n`);
      synced = true;
    }
    if (status.state === "ONLINE") {
      trace(`wcm heap ${heap() ?? "n/a (release build: measure on debug)"}\n`);
      const boot = bootHeap;
      if (boot) {
        // measureHeap, at the first ONLINE: the live heap then, and again once the manager has stopped (link, TLS and MQTT gone)
        bootHeap = undefined;
        Timer.set(() => {
          trace(`wcm heap-live boot ${boot} online ${heap(true)}\n`);
          manager.stop();
          Timer.set(() => trace(`wcm heap-live stopped ${heap(true)}\n`), 500);
        }, 200);
      }
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
