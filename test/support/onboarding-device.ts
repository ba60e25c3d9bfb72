/*
 * A simulated device that does only local onboarding (no connection manager):
 * the onboarding runner over a NodeSoftAp (real HTTP on loopback, a SoftAP on
 * the simulated air), a real NetworkStore on memory flash, and a SimulatedRadio
 * that joins what the owner hands over. The CLI and browser tests use it; the
 * manager's own path is tested in test/onboarding-manager.test.ts.
 */
import { applyNetworkChange, NetworkStore } from "../../modules/network-store";
import { nobleDigest } from "../../modules/noble-digest";
import { parseLabelCode } from "../../modules/onboarding/label-code";
import { OnboardingRunner } from "../../modules/onboarding/runner";
import { nodeSeal } from "../../hosts/node/node-seal";
import { NodeSoftAp } from "../../hosts/node/onboarding-softap";
import { SimulatedAir, SimulatedRadio } from "../../hosts/node/radio";
import { systemClock, systemRandom, systemScheduler } from "../../hosts/node/sim-ports";
import { MemoryFlash } from "./scenarios";

export const TEST_CODE = "1RVV-WN6H-7BH6-J2";

/** Starts a device `deviceId` in onboarding on a fresh air with Home-5G (psk "correct horse battery") and Cafe (open). */
export async function onboardingDevice(deviceId = "lamp-0005") {
  const air = new SimulatedAir();
  air.addAccessPoint({ ssid: "Home-5G", security: "psk", password: "correct horse battery", rssi: -50 });
  air.addAccessPoint({ ssid: "Cafe", security: "open", rssi: -78 });
  const radio = new SimulatedRadio(air);
  const flash = new MemoryFlash();
  const store = new NetworkStore(flash, nobleDigest, deviceId);
  const softAp = new NodeSoftAp(air);
  const runner: OnboardingRunner = new OnboardingRunner(
    { digest: nobleDigest, seal: nodeSeal, random: systemRandom, clock: systemClock, scheduler: systemScheduler },
    softAp,
    {
      storeNetworks(networks) {
        let list = store.loadNetworks().networks;
        for (const n of networks) list = applyNetworkChange(list, { action: "set", ...n });
        store.saveNetworks({ networks: list, seq: store.loadNetworks().seq });
        const target = networks[0];
        radio.join(target.password ? { security: "psk", ssid: target.ssid, password: target.password } : { security: "open", ssid: target.ssid }, {
          onJoined: () => runner.joined(target.ssid),
          onFailed: (failure) => runner.joinFailed(target.ssid, failure.reason),
          onLost: () => {},
        });
      },
    },
    { deviceId, code: parseLabelCode(TEST_CODE) },
  );
  runner.start(false);
  await new Promise<void>((resolve) => radio.scan((results) => (runner.scan(results), resolve())));
  for (let i = 0; i < 200 && !softAp.url; i++) await new Promise((r) => setTimeout(r, 10));
  if (!softAp.url) throw new Error("the SoftAP's HTTP server did not start");
  return { air, radio, store, flash, softAp, runner, url: softAp.url, stop: () => runner.stop() };
}
