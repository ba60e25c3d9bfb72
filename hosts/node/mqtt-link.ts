/*
 * CloudLink over MQTT.js and node:tls: MQTT 3.1.1, QoS 0, no automatic
 * reconnect (the core reconnects), exactly one onClose per connect().
 * A refused CONNECT is reported with its CONNACK return code. An optional
 * gate (the simulated radio) says whether the destination is reachable at all;
 * when it is not, the link closes at once with an INTERNET-NOT-REACHABLE detail.
 */
import mqtt, { type MqttClient } from "mqtt";
import type { CloudLink, LinkConnectOptions, LinkEvents } from "../../modules/ports";

/** Whether the network the device is on lets it reach host:port (hosts/node/radio SimulatedRadio.gate). */
export type LinkGate = (host: string, port: number) => { reachable: true } | { reachable: false; detail: string };

/** Options of the Node link that a device on real hardware would not have. */
export interface NodeLinkOptions {
  /** milliseconds to wait for TCP + TLS + CONNACK (default 30 s) */
  connectTimeoutMs?: number;
  /** highest TLS version to offer; "TLSv1.2" behaves like Moddable's SecureSocket */
  maxTlsVersion?: "TLSv1.2" | "TLSv1.3";
  /** checked before connecting; unreachable → onClose (network-level) with "INTERNET-NOT-REACHABLE: <detail>" */
  gate?: LinkGate;
  /** local address to connect from (benchmarks spread simulated devices over 127.0.0.0/8) */
  localAddress?: string;
}

/** Makes a CloudLink backed by MQTT.js. */
export function createMqttLink(options: NodeLinkOptions = {}): CloudLink {
  let client: MqttClient | undefined;
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
    connect(connect: LinkConnectOptions, linkEvents: LinkEvents): void {
      events = linkEvents;
      const reach = options.gate?.(connect.host, connect.port);
      if (reach && !reach.reachable) {
        queueMicrotask(() => finish(`INTERNET-NOT-REACHABLE: ${reach.detail}`));
        return;
      }
      const tlsVersion = options.maxTlsVersion ? ({ maxVersion: options.maxTlsVersion } as object) : {};
      client = mqtt.connect({
        ...tlsVersion,
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
        ca: connect.tls.ca,
        servername: connect.tls.serverName,
        rejectUnauthorized: true,
        ...(connect.tls.certificate ? { cert: connect.tls.certificate, key: connect.tls.privateKey } : {}),
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
