/*
 * A simulated device on the Node host: the portable ConnectionManager wired to
 * node:tls + MQTT.js, a file-backed Moddable-like flash, and system or
 * deterministic clock/randomness. Tests, the demo and the benchmarks use it.
 * With `radio` (hosts/node/radio), the device joins simulated access points
 * and reaches the cloud only where the joined network lets it. With
 * `temporarySecret` (e.g. hosts/node/efuse.ts), a temporary device in hardware
 * mode computes its temporary secret there. With `onboarding` (hosts/node/onboarding-softap.ts)
 * and a labelCode in the config, it offers local onboarding.
 */
import { validateConfig } from "../../modules/config";
import { ConnectionManager, type ManagerOptions, type ManagerPorts } from "../../modules/manager";
import { nobleDigest } from "../../modules/noble-digest";
import type { CloudLinkFactory, KeyValuePort, LogPort } from "../../modules/ports";
import { SimulatedFlash } from "./file-preferences";
import { nodeSeal } from "./node-seal";
import { createMqttLink, TlsSessionCache } from "./mqtt-link";
import type { SimulatedRadio } from "./radio/radio";
import { systemClock, systemRandom, systemScheduler } from "./sim-ports";

/** Options of a simulated device; every port can be replaced. */
export interface NodeDeviceOptions extends Partial<ManagerPorts> {
  /** a JSON file that plays the device's flash (ignored when `kv` is given) */
  flashFile?: string;
  manager?: ManagerOptions;
  /**
   * the simulated Wi-Fi radio: becomes ManagerPorts.network (unless `network`
   * is given) and gates the default MQTT link by what the joined AP reaches
   */
  radio?: SimulatedRadio;
}

/**
 * Builds a ConnectionManager for a device configuration (validated here).
 * @throws WcmError CONFIG_INVALID for a bad configuration
 */
export function createNodeDevice(config: unknown, options: NodeDeviceOptions = {}): { manager: ConnectionManager; flash: KeyValuePort } {
  const flash = options.kv ?? new SimulatedFlash(options.flashFile);
  const radio = options.radio;
  // one TLS session cache per device, as Moddable keeps one per process
  const sessionCache = new TlsSessionCache();
  const link: CloudLinkFactory = options.link ?? (() => createMqttLink(radio ? { gate: radio.gate, sessionCache } : { sessionCache }));
  const network = options.network ?? radio;
  const log: LogPort | undefined = options.log;
  const manager = new ConnectionManager(
    validateConfig(config),
    {
      digest: options.digest ?? nobleDigest,
      seal: options.seal ?? nodeSeal,
      random: options.random ?? systemRandom,
      clock: options.clock ?? systemClock,
      scheduler: options.scheduler ?? systemScheduler,
      kv: flash,
      link,
      ...(log ? { log } : {}),
      ...(network ? { network } : {}),
      ...(options.temporarySecret ? { temporarySecret: options.temporarySecret } : {}),
      ...(options.onboarding ? { onboarding: options.onboarding } : {}),
    },
    options.manager,
  );
  return { manager, flash };
}
