/*
 * CloudLink on the Moddable MQTT client (modules/network/mqtt) over SecureSocket:
 * MQTT 3.1.1, QoS 0, TLS 1.2, no automatic reconnect (the core reconnects).
 * - Server check: the cloud CA (DER) as the trust anchor, the configured server
 *   name as tls_server_name (SecureSocket checks chain, dates and SAN).
 * - Certificate devices: clientCertificates [DER] and clientKey (PKCS#8 DER, RSA).
 * - A refused CONNECT: the client has no API for the CONNACK code; it calls
 *   fail("server rejected mqtt request with code N") and then onClose(). The
 *   subclass below reads N from that message (mqtt.js, SDK 8.2.3).
 * - Exactly one onClose per connect(); nothing is delivered after it.
 */
import Client from "mqtt";
import SecureSocket from "securesocket";
import type { CloudLink, LinkConnectOptions, LinkEvents } from "wcm/ports";
import { pemBlocks } from "wcm-host/pem";

const REFUSED = /server rejected mqtt request with code (\d+)/;

class LinkClient extends Client {
  lastFailure = "";

  override fail(message?: string): void {
    this.lastFailure = message ?? "";
    super.fail(message);
  }
}

/** Makes one CloudLink (a fresh one per connection attempt). */
export function createModdableLink(): CloudLink {
  let client: LinkClient | undefined;
  let events: LinkEvents | undefined;
  let ready = false;

  const finish = (detail: string, connackCode?: number) => {
    const target = events;
    events = undefined;
    ready = false;
    const old = client;
    client = undefined;
    if (old) {
      old.onReady = old.onMessage = old.onClose = undefined;
      try {
        old.close();
      } catch {
        // already closed
      }
    }
    if (target) target.onClose(connackCode === undefined ? { detail } : { connackCode, detail });
  };

  return {
    connect(options: LinkConnectOptions, linkEvents: LinkEvents): void {
      events = linkEvents;
      const tls = options.tls;
      const secure: Record<string, unknown> = {
        protocolVersion: 0x0303,
        certificate: pemBlocks(tls.ca, "CERTIFICATE")[0],
        tls_server_name: tls.serverName,
        verify: true,
      };
      if (tls.certificate && tls.privateKey) {
        secure.clientCertificates = pemBlocks(tls.certificate, "CERTIFICATE");
        secure.clientKey = pemBlocks(tls.privateKey, "PRIVATE KEY")[0];
      }
      try {
        client = new LinkClient({
          host: options.host,
          port: options.port,
          id: options.clientId,
          user: options.username,
          ...(options.password !== undefined ? { password: ArrayBuffer.fromString(options.password) } : {}),
          timeout: options.keepAliveSeconds * 1000,
          Socket: SecureSocket,
          secure,
        });
      } catch (error) {
        const detail = `connect failed: ${error instanceof Error ? error.message : "error"}`;
        // deliver asynchronously, as a network failure would be
        Promise.resolve().then(() => finish(detail));
        return;
      }
      const current = client;
      current.onReady = () => {
        if (client !== current || !events) return;
        ready = true;
        events.onReady();
      };
      current.onMessage = (topic: string, payload: ArrayBuffer) => {
        if (client === current && ready) events?.onMessage(topic, new Uint8Array(payload));
      };
      current.onClose = () => {
        if (client !== current) return;
        const refused = REFUSED.exec(current.lastFailure);
        finish(current.lastFailure.slice(0, 120) || "connection closed", refused ? Number(refused[1]) : undefined);
      };
    },
    publish(topic: string, payload: Uint8Array): void {
      if (!ready || !client) return;
      try {
        client.publish(topic, payload.slice().buffer as ArrayBuffer);
      } catch {
        // the close arrives through onClose
      }
    },
    subscribe(topic: string): void {
      if (!ready || !client) return;
      try {
        client.subscribe(topic);
      } catch {
        // the close arrives through onClose
      }
    },
    close(): void {
      finish("closed by device");
    },
  };
}
