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

/**
 * Key agreement and the cipher of sealing (docs/protocol.md 14.4): P-256 ECDH
 * and AES-128-GCM. The host only computes; the core decides what is sealed,
 * with which keys and labels, and validates every public key it is given
 * before it reaches the port. Moddable: etc/curve.js over arith/ec.c and
 * etc/gcm.js over the native AES and GHASH (hosts/moddable/seal.ts); Node:
 * node:crypto (hosts/node/node-seal.ts).
 */
export interface SealPort {
  /** The uncompressed P-256 public key (0x04 || X || Y, 65 bytes) of a secret scalar (32 bytes big-endian, 1 <= k < n). */
  p256PublicKey(secretKey: Uint8Array): Uint8Array;
  /** The P-256 ECDH shared secret: the X coordinate (32 bytes) of secretKey * publicKey, for a public key the core checked is on the curve. */
  p256SharedSecret(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** AES-128-GCM encryption with a 16-byte key and a 12-byte IV: ciphertext || 16-byte tag. */
  aesGcmSeal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** AES-128-GCM decryption of ciphertext || tag; undefined when the tag does not verify. */
  aesGcmOpen(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
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

/**
 * Computes a temporary device's temporary secret (docs/protocol.md 5.1):
 * HMAC-SHA256(lotKey, "wcm-v1 temporary-secret" 0x00 deviceId). The core does not
 * care where the lot key lives: in the configuration (the weaker lot-key mode),
 * nowhere on the device (the derived secret is stored instead), or in hardware
 * that computes the HMAC without letting software read the key (an ESP32 eFuse
 * key block with the HMAC peripheral: hosts/esp32/hmac; simulated in
 * hosts/node/efuse.ts). Hardware ports are passed as ManagerPorts.temporarySecret.
 */
export interface TemporarySecretPort {
  /**
   * The 32-byte temporary secret of `deviceId`.
   * @throws WcmError KEY_UNAVAILABLE when the key cannot be used (hardware: key block
   *   not burned, burned for another purpose, peripheral fault); the manager reports
   *   that as the failure KEY_UNAVAILABLE and retries on the authentication schedule
   */
  temporarySecret(deviceId: string): Uint8Array;
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

// ---------------------------------------------------------------- Wi-Fi

/** How an access point secures its network, as a scan reports it. */
export type NetworkSecurity = "open" | "psk" | "enterprise";

/** One access point seen by a scan. */
export interface ScanResult {
  ssid: string;
  bssid: string;
  /** dBm, e.g. -60 */
  rssi: number;
  channel: number;
  security: NetworkSecurity;
  /** Hotspot 2.0 roaming-consortium OIs (hex, e.g. "5a03ba"), when advertised */
  roamingConsortium?: string[];
}

/** Server validation for WPA2-Enterprise: the RADIUS server's trust anchor and name. */
export interface EapServerCheck {
  /** PEM trust anchor(s) for the RADIUS server's certificate */
  ca: string;
  /** the name the RADIUS server's certificate must carry (SAN DNS or CN) */
  serverName: string;
}

/** What to join. Secrets here are derived hotspot keys or the owner's network password, never the device secret. */
export type JoinRequest =
  | { security: "open"; ssid: string; bssid?: string }
  | { security: "psk"; ssid: string; bssid?: string; password: string }
  | {
      security: "enterprise"; ssid: string; bssid?: string; method: "ttls-pap";
      /** inner identity: the device id */
      identity: string;
      /** outer (anonymous) identity, e.g. "anonymous@wcm" */
      anonymousIdentity?: string;
      password: string;
      server: EapServerCheck;
    }
  | {
      security: "enterprise"; ssid: string; bssid?: string; method: "tls";
      identity: string;
      certificate: string;
      privateKey: string;
      server: EapServerCheck;
    };

/**
 * Why joining or staying on a network failed. Hyphenated names follow the
 * original connection-manager reason codes.
 */
export type NetworkFailureReason =
  | "NETWORK-NOT-FOUND"
  | "INCORRECT-PASSWORD"
  | "EAP-REJECTED"
  | "EAP-SERVER-UNTRUSTED"
  | "EAP-TIMEOUT"
  | "ASSOCIATION-FAILED"
  | "DHCP-TIMEOUT"
  | "INTERNET-NOT-REACHABLE"
  | "CONNECTION-LOST";

/** A failure with its reason; `detail` may carry the RADIUS server's Reply-Message. */
export interface NetworkFailure {
  reason: NetworkFailureReason;
  detail?: string;
}

/** Outcome callbacks of one join(): exactly one of onJoined/onFailed, then at most one onLost. */
export interface JoinEvents {
  /** associated, authenticated, and an address obtained */
  onJoined(info: { ip: string; ssid: string; bssid: string }): void;
  onFailed(failure: NetworkFailure): void;
  /** the joined network went away (out of range, deauthenticated) */
  onLost(failure: NetworkFailure): void;
}

/**
 * The Wi-Fi radio (Moddable's WiFi plus, on ESP32, a native WPA2-Enterprise
 * module; a simulated radio on Node). One join at a time: a new join or leave()
 * ends the previous one, after which its callbacks are not called.
 */
export interface NetworkPort {
  /** Scans all channels; `done` gets every access point heard (possibly none). */
  scan(done: (results: ScanResult[]) => void): void;
  join(request: JoinRequest, events: JoinEvents): void;
  /** Leaves the current network (no callbacks follow). */
  leave(): void;
}
