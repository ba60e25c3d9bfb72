/*
 * A simulated ESP32 eFuse key block bank and HMAC peripheral (esp32s2, s3, c3,
 * c6 class), for the hardware mode of temporary devices
 * (config temporarySecretFrom "hardware"; the real one is hosts/esp32/hmac).
 *
 * Faithful where the tests need it:
 * - six 256-bit key blocks (KEY0..KEY5), each burnt once with a purpose, as
 *   `espefuse.py burn_key` / esp_efuse_write_key do: a used block refuses a
 *   second burn (ESP_ERR_EFUSE_REPEATED_PROG), HMAC and XTS purposes set the
 *   block's read protection, and a read-protected block reads back as zeros;
 * - the HMAC peripheral in upstream mode (esp_hmac_calculate):
 *   HMAC-SHA256(key block, message), the key used as it was burnt (checked
 *   against ESP-IDF's own test vector); a block whose purpose is not HMAC_UP
 *   (unburnt blocks have purpose USER) fails as the hardware does (ESP_FAIL);
 * - a scriptable peripheral fault (failNextHmac).
 * There is no call that returns a burnt key: the simulator keeps it private.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { temporarySecretMessage } from "../../modules/derive";
import { WcmError } from "../../modules/errors";
import type { TemporarySecretPort } from "../../modules/ports";

/** Key purposes of the esp32c3 class (esp_efuse_purpose_t names). */
export type KeyPurpose =
  | "USER" | "XTS_AES_128_KEY" | "HMAC_DOWN_ALL" | "HMAC_DOWN_JTAG" | "HMAC_DOWN_DIGITAL_SIGNATURE" | "HMAC_UP"
  | "SECURE_BOOT_DIGEST0" | "SECURE_BOOT_DIGEST1" | "SECURE_BOOT_DIGEST2";

/** Number of key blocks (BLOCK_KEY0..BLOCK_KEY5 = HMAC_KEY0..HMAC_KEY5). */
export const KEY_BLOCKS = 6;

const READ_PROTECTED: ReadonlySet<KeyPurpose> = new Set(["XTS_AES_128_KEY", "HMAC_DOWN_ALL", "HMAC_DOWN_JTAG", "HMAC_DOWN_DIGITAL_SIGNATURE", "HMAC_UP"]);

/** An ESP-IDF error as the simulated hardware reports it. */
export class EfuseError extends Error {
  constructor(readonly code: "ESP_ERR_INVALID_ARG" | "ESP_ERR_EFUSE_REPEATED_PROG" | "ESP_FAIL", message: string) {
    super(`${code}: ${message}`);
    this.name = "EfuseError";
  }
}

interface Block {
  key: Uint8Array;
  purpose: KeyPurpose;
  readProtected: boolean;
}

function checkBlock(block: number): void {
  if (!Number.isInteger(block) || block < 0 || block >= KEY_BLOCKS) throw new EfuseError("ESP_ERR_INVALID_ARG", `key block ${block} is not 0..${KEY_BLOCKS - 1}`);
}

/** The chip's key blocks and HMAC peripheral. Keep one per simulated chip across reboots. */
export class SimulatedEfuse {
  readonly #blocks: (Block | undefined)[] = new Array(KEY_BLOCKS).fill(undefined);
  #hmacFaults = 0;
  /** HMAC computations done (so a test can see the peripheral was used) */
  hmacCalls = 0;

  /**
   * Burns a 256-bit key with its purpose (espefuse.py burn_key BLOCK_KEY<n> key.bin <purpose>).
   * @throws EfuseError ESP_ERR_EFUSE_REPEATED_PROG when the block is already used, ESP_ERR_INVALID_ARG for a bad block or key length
   */
  burnKey(block: number, key: Uint8Array, purpose: KeyPurpose): void {
    checkBlock(block);
    if (key.length !== 32) throw new EfuseError("ESP_ERR_INVALID_ARG", "a key block holds exactly 32 bytes");
    if (this.#blocks[block]) throw new EfuseError("ESP_ERR_EFUSE_REPEATED_PROG", `key block ${block} is already programmed`);
    this.#blocks[block] = { key: key.slice(), purpose, readProtected: READ_PROTECTED.has(purpose) };
  }

  /** The block's purpose (USER when never burnt). */
  keyPurpose(block: number): KeyPurpose {
    checkBlock(block);
    return this.#blocks[block]?.purpose ?? "USER";
  }

  /** True when the block was never burnt (esp_efuse_key_block_unused). */
  unused(block: number): boolean {
    checkBlock(block);
    return this.#blocks[block] === undefined;
  }

  /** What software reads from the block: zeros when it is read-protected (as the hardware returns). */
  readKeyBlock(block: number): Uint8Array {
    checkBlock(block);
    const entry = this.#blocks[block];
    return entry && !entry.readProtected ? entry.key.slice() : new Uint8Array(32);
  }

  /** Makes the next `count` HMAC computations fail as a peripheral fault (ESP_FAIL). */
  failNextHmac(count = 1): void {
    this.#hmacFaults += count;
  }

  /**
   * The HMAC peripheral in upstream mode (esp_hmac_calculate(HMAC_KEY<n>, message, len, hmac)).
   * @throws EfuseError ESP_FAIL when the block's purpose is not HMAC_UP (an unburnt block's is USER) or on an injected fault
   */
  hmacCalculate(keyId: number, message: Uint8Array): Uint8Array {
    checkBlock(keyId);
    this.hmacCalls++;
    if (this.#hmacFaults > 0) {
      this.#hmacFaults--;
      throw new EfuseError("ESP_FAIL", "HMAC peripheral fault");
    }
    const entry = this.#blocks[keyId];
    if (!entry || entry.purpose !== "HMAC_UP") throw new EfuseError("ESP_FAIL", `key block ${keyId} purpose is ${entry?.purpose ?? "USER"}, not HMAC_UP`);
    return hmac(sha256, entry.key, message);
  }
}

/**
 * The TemporarySecretPort over the (simulated) HMAC peripheral: the lot key sits
 * in key block `keyBlock` with purpose HMAC_UP, and the temporary secret is
 * HMAC(lot key, "wcm-v1 temporary-secret" 0 deviceId) computed by the peripheral.
 * Faults become WcmError KEY_UNAVAILABLE naming the block and the cause.
 */
export function efuseTemporarySecret(efuse: SimulatedEfuse, keyBlock: number): TemporarySecretPort {
  return {
    temporarySecret(deviceId) {
      if (efuse.unused(keyBlock)) throw new WcmError("KEY_UNAVAILABLE", `eFuse key block ${keyBlock} is not burnt`);
      const purpose = efuse.keyPurpose(keyBlock);
      if (purpose !== "HMAC_UP") throw new WcmError("KEY_UNAVAILABLE", `eFuse key block ${keyBlock} has purpose ${purpose}, not HMAC_UP`);
      try {
        return efuse.hmacCalculate(keyBlock, temporarySecretMessage(deviceId));
      } catch (error) {
        throw new WcmError("KEY_UNAVAILABLE", `HMAC peripheral: ${error instanceof EfuseError ? error.code : "error"}`);
      }
    },
  };
}
