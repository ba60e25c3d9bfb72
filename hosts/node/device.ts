/*
 * A simulated device on the Node host: the portable ConnectionManager wired to
 * node:tls + MQTT.js, a file-backed Moddable-like flash, and system or
 * deterministic clock/randomness. Tests, the demo and the benchmarks use it.
 */
import { validateConfig } from "../../modules/config";
import { ConnectionManager, type ManagerOptions, type ManagerPorts } from "../../modules/manager";
import { nobleDigest } from "../../modules/noble-digest";
import type { CloudLinkFactory, KeyValuePort, LogPort } from "../../modules/ports";
import { SimulatedFlash } from "./file-preferences";
import { createMqttLink } from "./mqtt-link";
import { systemClock, systemRandom, systemScheduler } from "./sim-ports";

/** Options of a simulated device; every port can be replaced. */
export interface NodeDeviceOptions extends Partial<ManagerPorts> {
  /** a JSON file that plays the device's flash (ignored when `kv` is given) */
  flashFile?: string;
  manager?: ManagerOptions;
}

/**
 * Builds a ConnectionManager for a device configuration (validated here).
 * @throws WcmError CONFIG_INVALID for a bad configuration
 */
export function createNodeDevice(config: unknown, options: NodeDeviceOptions = {}): { manager: ConnectionManager; flash: KeyValuePort } {
  const flash = options.kv ?? new SimulatedFlash(options.flashFile);
  const link: CloudLinkFactory = options.link ?? (() => createMqttLink());
  const log: LogPort | undefined = options.log;
  const manager = new ConnectionManager(
    validateConfig(config),
    {
      digest: options.digest ?? nobleDigest,
      random: options.random ?? systemRandom,
      clock: options.clock ?? systemClock,
      scheduler: options.scheduler ?? systemScheduler,
      kv: flash,
      link,
      ...(log ? { log } : {}),
    },
    options.manager,
  );
  return { manager, flash };
}
