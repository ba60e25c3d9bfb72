/*
 * The ports the portable core needs from its host, and their contracts.
 *
 * The core does no I/O of its own (no sockets, timers, flash or clock): each host
 * (hosts/node, hosts/lin, hosts/esp32) implements these interfaces and passes them
 * in. Everything here must be implementable on Moddable XS and on Node.
 */

/** SHA-256 and HMAC-SHA256. A host may back it with native code or secure hardware. */
export interface DigestPort {
  /** SHA-256 of `data` (32 bytes). */
  sha256(data: Uint8Array): Uint8Array;
  /** HMAC-SHA256 (RFC 2104) of `data` under `key` (32 bytes). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
}

/** Cryptographically secure random bytes. */
export interface RandomPort {
  /** Returns `length` fresh random bytes. */
  bytes(length: number): Uint8Array;
}

/** A monotonic millisecond clock; it need not be related to wall time. */
export interface ClockPort {
  /** Milliseconds since an arbitrary origin; never decreases. */
  now(): number;
}

/** A handle returned by SchedulerPort.after; cancel() is idempotent. */
export interface ScheduledTask {
  cancel(): void;
}

/** One-shot timers (XS has no setTimeout: the host provides them). */
export interface SchedulerPort {
  /** Calls `callback` once after `delayMs` milliseconds unless cancelled. */
  after(delayMs: number, callback: () => void): ScheduledTask;
}

/**
 * A small key-value store with Moddable Preference semantics on ESP32 (NVS):
 * keys at most 15 characters, values at most 4000 bytes. A `set` may be cut by
 * a power failure at any point, leaving the key absent, old or corrupt: the core
 * never relies on one key for anything it cannot lose (see record-store.ts).
 * Every method may throw; the core reports that as STORE_FAILED.
 */
export interface KeyValuePort {
  /** The stored bytes, or undefined when the key is absent. */
  get(key: string): Uint8Array | undefined;
  /** Replaces the value of `key`. */
  set(key: string, value: Uint8Array): void;
  /** Removes `key`; absent keys are fine. */
  delete(key: string): void;
}

/** TLS material for the cloud link, in PEM (hosts convert to DER where they need to). */
export interface LinkTls {
  /** The trust anchor(s) for the cloud's server certificate. */
  ca: string;
  /** Client certificate chain for certificate devices. */
  certificate?: string;
  /** Client private key (PKCS#8 PEM) for certificate devices. */
  privateKey?: string;
  /** Expected server name (SAN) of the cloud. */
  serverName: string;
}

/** Parameters of one MQTT 3.1.1 connection to the cloud. */
export interface LinkConnectOptions {
  host: string;
  port: number;
  clientId: string;
  username: string;
  /** Absent for certificate devices. */
  password?: string;
  /** MQTT keep-alive in seconds. */
  keepAliveSeconds: number;
  tls: LinkTls;
}

/**
 * Why a link closed. `connackCode` is the MQTT 3.1.1 CONNACK return code when the
 * broker refused the CONNECT (4 = bad user name or password, 5 = not authorized,
 * 3 = server unavailable); absent for network-level closes.
 */
export interface LinkCloseInfo {
  connackCode?: number;
  /** A short description for logs; never contains secrets. */
  detail: string;
}

/** Callbacks a link delivers. Exactly one onClose per connect(), after which nothing else is delivered. */
export interface LinkEvents {
  /** CONNACK accepted: publish and subscribe may be used. */
  onReady(): void;
  /** A PUBLISH from the cloud (QoS 0). */
  onMessage(topic: string, payload: Uint8Array): void;
  /** The connection ended or could not be made. */
  onClose(info: LinkCloseInfo): void;
}

/**
 * An MQTT 3.1.1 client over TLS at QoS 0, as the Moddable MQTT client offers:
 * no retained state, no automatic reconnect. `connect` is called once per link.
 */
export interface CloudLink {
  connect(options: LinkConnectOptions, events: LinkEvents): void;
  /** QoS 0 publish; silently dropped if the link is down. */
  publish(topic: string, payload: Uint8Array): void;
  /** QoS 0 subscription. */
  subscribe(topic: string): void;
  /** Closes the link; onClose follows (asynchronously or synchronously). */
  close(): void;
}

/** Makes a fresh CloudLink for each connection attempt. */
export type CloudLinkFactory = () => CloudLink;

/** Optional log sink; the core never passes secrets to it. */
export interface LogPort {
  (level: "debug" | "info" | "warn" | "error", message: string): void;
}
