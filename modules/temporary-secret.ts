/*
 * Where a temporary device's temporary secret (docs/protocol.md 5.1) comes
 * from: the TemporarySecretPort for its configuration.
 *
 * - derived mode (config.temporarySecret): the line wrote the device's own
 *   derived secret; there is no lot key on the device, so a dump of it logs in
 *   as that one device and no other;
 * - hardware mode (config.temporarySecretFrom = "hardware"): the host's port
 *   (ESP32: the HMAC peripheral over an eFuse key block) computes it;
 * - lot-key mode (config.provisioningKey): computed in software from the lot
 *   key, which the device then holds (weaker: see docs/manufacturing.md).
 */
import type { TemporaryConfig } from "./config";
import { deriveTemporarySecret } from "./derive";
import { WcmError } from "./errors";
import type { DigestPort, TemporarySecretPort } from "./ports";

/**
 * The port that computes the temporary secret for a temporary configuration.
 * @param config - a validated temporary configuration
 * @param digest - HMAC-SHA256 for the lot-key mode
 * @param hardware - the host's hardware port (hardware mode only)
 * @returns a port; its temporarySecret() throws WcmError KEY_UNAVAILABLE when the
 *   secret cannot be had (hardware mode on a host without a port, a derived secret
 *   asked for another device id, or the hardware's own faults)
 * @example temporarySecretPort(config, nobleDigest).temporarySecret(config.deviceId)
 */
export function temporarySecretPort(config: TemporaryConfig, digest: DigestPort, hardware?: TemporarySecretPort): TemporarySecretPort {
  if ("temporarySecret" in config) {
    const stored = config.temporarySecret;
    return {
      temporarySecret(deviceId) {
        if (deviceId !== config.deviceId) throw new WcmError("KEY_UNAVAILABLE", "the stored temporary secret is this device's only", "deviceId");
        return stored.slice();
      },
    };
  }
  if ("provisioningKey" in config) {
    const key = config.provisioningKey;
    return { temporarySecret: (deviceId) => deriveTemporarySecret(digest, key, deviceId) };
  }
  if (hardware) return hardware;
  return {
    temporarySecret() {
      throw new WcmError("KEY_UNAVAILABLE", "temporarySecretFrom is hardware but this host has no hardware key port (ManagerPorts.temporarySecret)");
    },
  };
}
