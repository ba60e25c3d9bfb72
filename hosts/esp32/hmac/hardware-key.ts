/*
 * The hardware TemporarySecretPort on ESP32 chips with an HMAC peripheral:
 * the lot key sits in an eFuse key block burnt with purpose HMAC_UP (read
 * protected), and the temporary secret of docs/protocol.md 5.1,
 * HMAC(lotKey, "wcm-v1 temporary-secret" 0 deviceId), is one HMAC the
 * peripheral computes (wcm-host/hmac). Its faults become KEY_UNAVAILABLE.
 */
import Hmac from "wcm-host/hmac";
import { temporarySecretMessage } from "wcm/derive";
import { WcmError } from "wcm/errors";
import type { TemporarySecretPort } from "wcm/ports";

/** One eFuse key block (0..5 = BLOCK_KEY0..BLOCK_KEY5) used through the HMAC peripheral. */
export class HmacKey {
  readonly block: number;

  constructor(block: number) {
    this.block = block;
  }

  /** HMAC-SHA256(key block, message), 32 bytes. @throws Error when the block is not burnt as HMAC_UP */
  calculate(message: Uint8Array): Uint8Array {
    return new Uint8Array(Hmac.calculate(this.block, message.slice().buffer as ArrayBuffer));
  }
}

/** true: this build can compute the temporary secret in hardware. */
export const hasHardwareKey = true;

/**
 * The TemporarySecretPort over key block `block`.
 * @example new ConnectionManager(config, { ...ports, temporarySecret: hardwareTemporarySecret(5) })
 */
export function hardwareTemporarySecret(block: number): TemporarySecretPort | undefined {
  const key = new HmacKey(block);
  return {
    temporarySecret(deviceId: string): Uint8Array {
      try {
        return key.calculate(temporarySecretMessage(deviceId));
      } catch (error) {
        throw new WcmError("KEY_UNAVAILABLE", error instanceof Error ? error.message : "HMAC peripheral");
      }
    },
  };
}
