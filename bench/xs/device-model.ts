/*
 * The ports of an ESP32 first boot, for metering in XS (bench/xs/meter-split.ts):
 * every port call is "other" (on a board it is the host: Preference, Time,
 * Moddable's native Digest, the radio driver, the MQTT/TLS client), every call
 * back into the core is "device". The digest is hosts/moddable/ports.ts's
 * nativeDigest: HMAC-SHA256 in JavaScript over a native SHA-256, here
 * @noble/hashes' SHA-256 metered as native. The SealPort is hosts/moddable/seal.ts's
 * native ECDH and AES-GCM, here modules/js-seal.ts metered as native (the
 * few JavaScript lines of curve.js and gcm.js around the native calls are not counted).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes } from "../../modules/bytes";
import { jsSeal } from "../../modules/js-seal";
import type {
  ClockPort,
  CloudLinkFactory,
  DigestPort,
  JoinEvents,
  KeyValuePort,
  LinkEvents,
  NetworkPort,
  RandomPort,
  SchedulerPort,
  SealPort,
} from "../../modules/ports";
import { device, other } from "./meter-split";

const BLOCK = 64;

function nativeSha256(...parts: Uint8Array[]): Uint8Array {
  return other(() => sha256(concatBytes(...parts)));
}

/** hosts/moddable/ports.ts nativeDigest, over a SHA-256 metered as native. */
export const modelDigest: DigestPort = {
  sha256: (data) => nativeSha256(data),
  hmacSha256(key, data) {
    const block = new Uint8Array(BLOCK);
    block.set(key.length > BLOCK ? nativeSha256(key) : key);
    const inner = new Uint8Array(BLOCK);
    const outer = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) {
      inner[i] = block[i] ^ 0x36;
      outer[i] = block[i] ^ 0x5c;
    }
    return nativeSha256(outer, nativeSha256(inner, data));
  },
};

/** hosts/moddable/seal.ts nativeSeal, modelled by @noble metered as native. */
export const modelSeal: SealPort = {
  p256PublicKey: (secretKey) => other(() => jsSeal.p256PublicKey(secretKey)),
  p256SharedSecret: (secretKey, publicKey) => other(() => jsSeal.p256SharedSecret(secretKey, publicKey)),
  aesGcmSeal: (key, iv, aad, plaintext) => other(() => jsSeal.aesGcmSeal(key, iv, aad, plaintext)),
  aesGcmOpen: (key, iv, aad, sealed) => other(() => jsSeal.aesGcmOpen(key, iv, aad, sealed)),
};

/** Wraps the host ports a device gets: calls in are "other", callbacks out are "device". */
export function modelPorts(ports: {
  random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; kv: KeyValuePort; link: CloudLinkFactory; network: NetworkPort;
}) {
  const wrapLinkEvents = (events: LinkEvents): LinkEvents => ({
    onReady: () => device(() => events.onReady()),
    onMessage: (topic, payload) => device(() => events.onMessage(topic, payload)),
    onClose: (info) => device(() => events.onClose(info)),
  });
  const wrapJoinEvents = (events: JoinEvents): JoinEvents => ({
    onJoined: (info) => device(() => events.onJoined(info)),
    onFailed: (failure) => device(() => events.onFailed(failure)),
    onLost: (failure) => device(() => events.onLost(failure)),
  });
  return {
    digest: modelDigest,
    seal: modelSeal,
    random: { bytes: (length: number) => other(() => ports.random.bytes(length)) },
    clock: { now: () => other(() => ports.clock.now()) },
    scheduler: {
      after: (delayMs: number, callback: () => void) => {
        const task = other(() => ports.scheduler.after(delayMs, () => device(callback)));
        return { cancel: () => other(() => task.cancel()) };
      },
    },
    kv: {
      get: (key: string) => other(() => ports.kv.get(key)),
      set: (key: string, value: Uint8Array) => other(() => ports.kv.set(key, value)),
      delete: (key: string) => other(() => ports.kv.delete(key)),
    },
    link: () => {
      const link = other(() => ports.link());
      return {
        connect: (options: Parameters<typeof link.connect>[0], events: LinkEvents) => other(() => link.connect(options, wrapLinkEvents(events))),
        publish: (topic: string, payload: Uint8Array) => other(() => link.publish(topic, payload)),
        subscribe: (topic: string) => other(() => link.subscribe(topic)),
        close: () => other(() => link.close()),
      };
    },
    network: {
      scan: (done: Parameters<NetworkPort["scan"]>[0]) => other(() => ports.network.scan((results) => device(() => done(results)))),
      join: (request: Parameters<NetworkPort["join"]>[0], events: JoinEvents) => other(() => ports.network.join(request, wrapJoinEvents(events))),
      leave: () => other(() => ports.network.leave()),
    } satisfies NetworkPort,
  };
}
