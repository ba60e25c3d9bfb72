/*
 * CloudLink over MQTT.js and node:tls: MQTT 3.1.1, QoS 0, no automatic
 * reconnect (the core reconnects), exactly one onClose per connect().
 * A refused CONNECT is reported with its CONNACK return code. An optional
 * gate (the simulated radio) says whether the destination is reachable at all;
 * when it is not, the link closes at once with an INTERNET-NOT-REACHABLE detail.
 * TLS resumption as Moddable's client does it (modules/crypt/ssl/ssl_cache.js):
 * a one-entry session cache per device (TlsSessionCache, shared by the links a
 * device makes one after the other), for one server name; a connect to that
 * name offers it, any new session replaces it.
 * The TLS context (trust anchor, client certificate, versions) is built once
 * per distinct setting and shared by every link of the process, so a reconnect
 * does not parse the CA again (a simulator host runs thousands of devices).
 */
import { constants as cryptoConstants } from "node:crypto";
import { createSecureContext, type SecureContext } from "node:tls";
import mqtt, { type MqttClient } from "mqtt";
import type { CloudLink, LinkConnectOptions, LinkEvents } from "../../modules/ports";

/** Whether the network the device is on lets it reach host:port (hosts/node/radio SimulatedRadio.gate). */
export type LinkGate = (host: string, port: number) => { reachable: true } | { reachable: false; detail: string };

/** Options of the Node link that a device on real hardware would not have. */
export interface NodeLinkOptions {
  /** milliseconds to wait for TCP + TLS + CONNACK (default 30 s) */
  connectTimeoutMs?: number;
  /** highest TLS version to offer; "TLSv1.2" behaves like Moddable's SecureSocket (TLS 1.2 without the SessionTicket extension: resumption by session id) */
  maxTlsVersion?: "TLSv1.2" | "TLSv1.3";
  /** checked before connecting; unreachable → onClose (network-level) with "INTERNET-NOT-REACHABLE: <detail>" */
  gate?: LinkGate;
  /** local address to connect from (benchmarks spread simulated devices over 127.0.0.1/8) */
  localAddress?: string;
  /** the device's one-entry TLS session cache (none: every connect is a full handshake) */
  sessionCache?: TlsSessionCache;
}

/** One cached TLS session for one server name, as Moddable's ssl_cache.js keeps it. */
export class TlsSessionCache {
  #entry: { serverName: string; session: Buffer } | undefined;

  /** The session cached for `serverName`, if it is the one cached. */
  get(serverName: string): Buffer | undefined {
    return this.#entry?.serverName === serverName ? this.#entry.session : undefined;
  }

  /** Replaces the cached session. */
  save(serverName: string, session: Buffer): void {
    this.#entry = { serverName, session };
  }

  /** Forgets the cached session. */
  clear(): void {
    this.#entry = undefined;
  }
}

const contexts = new Map<string, SecureContext>();

/** The shared TLS context of one setting (at most 32 kept: a process talks to few clouds). */
function secureContextFor(ca: string, certificate: string | undefined, privateKey: string | undefined, maxVersion: "TLSv1.2" | "TLSv1.3" | undefined): SecureContext {
  const key = JSON.stringify([ca, certificate ?? "", privateKey ?? "", maxVersion ?? ""]);
  let context = contexts.get(key);
  if (!context) {
    if (contexts.size >= 32) contexts.clear();
    context = createSecureContext({
      ca, ...(certificate ? { cert: certificate, key: privateKey } : {}),
      ...(maxVersion ? { maxVersion, ...(maxVersion === "TLSv1.2" ? { secureOptions: cryptoConstants.SSL_OP_NO_TICKET } : {}) } : {}),
    });
    contexts.set(key, context);
  }
  return context;
}

/** What a link reports about its last TLS handshake. */
export interface LinkTlsInfo {
  /** the handshake resumed the cached session */
  resumed: boolean;
  protocol: string | null;
}

/** Makes a CloudLink backed by MQTT.js. */
export function createMqttLink(options: NodeLinkOptions = {}): CloudLink & { readonly lastTls: LinkTlsInfo | undefined } {
  let client: MqttClient | undefined;
  let lastTls: LinkTlsInfo | undefined;
  let events: LinkEvents | undefined;
  let closed = false;
  let connackCode: number | undefined;
  let lastError = "";

  const finish = (detail: string) => {
    if (closed || !events) return;
    closed = true;
    const info = connackCode === undefined ? { detail } : { connackCode, detail };
    const target = events;
    events = undefined;
    client?.end(true);
    target.onClose(info);
  };

  return {
    get lastTls() {
      return lastTls;
    },
    connect(connect: LinkConnectOptions, linkEvents: LinkEvents): void {
      events = linkEvents;
      const reach = options.gate?.(connect.host, connect.port);
      if (reach && !reach.reachable) {
        queueMicrotask(() => finish(`INTERNET-NOT-REACHABLE: ${reach.detail}`));
        return;
      }
      const serverName = connect.tls.serverName;
      const offered = options.sessionCache?.get(serverName);
      lastTls = undefined;
      const secureContext = secureContextFor(connect.tls.ca, connect.tls.certificate, connect.tls.privateKey, options.maxTlsVersion);
      client = mqtt.connect({
        ...(options.localAddress ? ({ localAddress: options.localAddress } as object) : {}),
        protocol: "mqtts",
        host: connect.host,
        port: connect.port,
        protocolVersion: 4,
        clientId: connect.clientId,
        username: connect.username,
        ...(connect.password !== undefined ? { password: connect.password } : {}),
        keepalive: connect.keepAliveSeconds,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: options.connectTimeoutMs ?? 30_000,
        ...({ secureContext } as object),
        servername: connect.tls.serverName,
        rejectUnauthorized: true,
        ...(offered ? ({ session: offered } as object) : {}),
      });
      const stream = client.stream as (NodeJS.EventEmitter & { isSessionReused?(): boolean; getProtocol?(): string | null }) | undefined;
      stream?.on("session", (session: Buffer) => {
        options.sessionCache?.save(serverName, session);
      });
      stream?.once("secureConnect", () => {
        lastTls = { resumed: stream.isSessionReused?.() ?? false, protocol: stream.getProtocol?.() ?? null };
      });
      client.on("connect", () => {
        if (!closed) events?.onReady();
      });
      client.on("message", (topic, payload) => {
        if (!closed) events?.onMessage(topic, new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
      });
      client.on("error", (error: Error & { code?: unknown }) => {
        if (typeof error.code === "number" && error.code >= 1 && error.code <= 5) connackCode = error.code;
        lastError = error.message.slice(0, 120);
      });
      client.on("close", () => finish(lastError || "connection closed"));
    },
    publish(topic: string, payload: Uint8Array): void {
      if (!closed && client?.connected) client.publish(topic, Buffer.from(payload), { qos: 0 });
    },
    subscribe(topic: string): void {
      if (!closed && client?.connected) client.subscribe(topic, { qos: 0 });
    },
    close(): void {
      finish("closed by device");
    },
  };
}
