/*
 * CloudLink on the Moddable MQTT client (modules/network/mqtt) over SecureSocket:
 * MQTT 3.1.1, QoS 0, TLS 1.2, no automatic reconnect (the core reconnects).
 * - Server check: the cloud CA (DER) as the trust anchor, the configured server
 *   name as tls_server_name (SecureSocket checks chain, dates and SAN). During
 *   a CA roll `cloud.ca` holds two certificates: SecureSocket takes one per
 *   connection, so the second is added to ssl/cert's VM-wide list, which every
 *   chain check also consults.
 * - Certificate devices: clientCertificates [DER] and clientKey (PKCS#8 DER, RSA).
 * - PEM to DER (pemBlocks), which SecureSocket needs, is here too.
 * - A refused CONNECT: the client has no API for the CONNACK code; it calls
 *   fail("server rejected mqtt request with code N") and then onClose(). The
 *   subclass below reads N from that message (mqtt.js, SDK 8.2.3).
 * - Exactly one onClose per connect(); nothing is delivered after it. A CA,
 *   certificate or key that is not PEM, or a client that cannot be made, ends
 *   the attempt one timer turn later with "connect failed: <message>".
 * - The TCP socket under TLS is closed one timer turn after anyone asks (see
 *   DeferredCloseSocket): a close from inside the socket's own callback kills
 *   mcsim on lin.
 */
import Client, { type ClientOptions } from "mqtt";
import SecureSocket from "securesocket";
import { Socket } from "socket";
import Timer from "timer";
import CertificateManager from "ssl/cert";
import type { CloudLink, LinkConnectOptions, LinkEvents } from "wcm/ports";

const REFUSED = "server rejected mqtt request with code ";
const CERTIFICATE = "CERTIFICATE";

// the SDK types Socket as overloads of RAW/TCP/UDP; the link only makes TCP sockets
const TcpSocket = Socket as unknown as new (options: Record<string, unknown>) => { close(): void };

/**
 * A TCP socket whose close() takes effect on the next timer turn, never inside
 * the socket's own callback.
 *
 * Why: on a refused CONNECT (CONNACK 4/5) mqtt.js fail() closes the client
 * inside the socket's readable callback, and SecureSocket closes its socket
 * inside that callback on a TLS error or a peer's close. On lin
 * (modules/network/socket/lin/modSocket.c) the callback holds a use count and
 * close() only forgets the object; when the callback returns, the count hits 0
 * and socketDownUseCount reads the forgotten (maybe collected) object:
 * "xsGetHostDestructor: not a host object", then SIGSEGV. Deferred, the close
 * runs from a timer with no callback on the stack, which is the path every
 * other close takes. On ESP32 (lwip/modSocket.c) close() detaches the record at
 * once and frees it through the use count, so a close inside the callback is
 * safe and a deferred one is too: the same code serves both.
 * SecureSocket ignores everything the socket reports once it is closing, so
 * nothing reaches MQTT during that turn.
 */
class DeferredCloseSocket extends TcpSocket {
  // declared, not defined: a class field costs bytecode on XS (undefined until the first close)
  private declare closing: boolean;

  // written out: XS compiles the implicit one as constructor(...args) { super(...args) }, 45 B more
  constructor(dictionary: Record<string, unknown>) {
    super(dictionary);
  }

  override close(): void {
    if (this.closing) return;
    this.closing = true;
    Timer.set(() => {
      try {
        super.close();
      } catch {
        // lin: the peer's close already released the socket ("close on closed socket")
      }
    }, 0);
  }
}

/** SecureSocket over a DeferredCloseSocket (SecureSocket takes a ready socket as `sock`, else makes one from the same dictionary). */
class LinkSecureSocket extends SecureSocket {
  constructor(dictionary: Record<string, unknown>) {
    dictionary.sock = new DeferredCloseSocket(dictionary);
    super(dictionary);
  }
}

class LinkClient extends Client {
  /** the message of mqtt.js fail(), if it failed */
  declare lastFailure?: string;

  // written out, as above
  constructor(options: ClientOptions) {
    super(options);
  }

  override fail(message?: string): void {
    this.lastFailure = message;
    super.fail(message);
  }
}

/**
 * Every block of `label` ("CERTIFICATE", "PRIVATE KEY") in `pem`, as DER (for
 * SecureSocket here and for the EAP client, hosts/esp32/network.ts). Strict
 * base64 by XS's own Uint8Array.fromBase64 (SDK 8.2.x, xs/sources/xsDataView.c,
 * every platform): padding required, unused bits zero, ASCII whitespace skipped.
 * @throws Error "PEM: unterminated <label>" or "PEM: bad base64"
 */
export function pemBlocks(pem: string, label: string): ArrayBuffer[] {
  const end = `-----END ${label}-----`;
  return pem.split(`-----BEGIN ${label}-----`).slice(1).map((block) => {
    const stop = block.indexOf(end);
    if (stop < 0) throw new Error(`PEM: unterminated ${label}`);
    try {
      return Uint8Array.fromBase64(block.slice(0, stop), { lastChunkHandling: "strict" }).buffer as ArrayBuffer;
    } catch {
      throw new Error("PEM: bad base64");
    }
  });
}

/** Makes one CloudLink (a fresh one per connection attempt: connect() is called once per link, wcm/ports). */
export function createModdableLink(): CloudLink {
  let client: LinkClient | undefined;
  let events: LinkEvents | undefined;
  let ready = false;

  const finish = (detail: string, connackCode?: number) => {
    const target = events;
    const old = client;
    events = client = undefined;
    ready = false;
    // mqtt.js close() catches its own errors
    old?.close();
    target?.onClose({ connackCode, detail });
  };
  /** Publish and subscribe while ready; a failure here arrives through onClose. */
  const send = (method: "publish" | "subscribe", topic: string, payload?: ArrayBuffer) => {
    try {
      if (ready && client) client[method](topic, payload as ArrayBuffer);
    } catch {
      // the close arrives through onClose
    }
  };

  return {
    connect(options: LinkConnectOptions, linkEvents: LinkEvents): void {
      events = linkEvents;
      const tls = options.tls;
      try {
        const anchors = pemBlocks(tls.ca, CERTIFICATE);
        anchors.slice(1).forEach(CertificateManager.register);
        const secure: Record<string, unknown> = { protocolVersion: 0x0303, certificate: anchors[0], tls_server_name: tls.serverName, verify: true };
        if (tls.certificate && tls.privateKey) {
          secure.clientCertificates = pemBlocks(tls.certificate, CERTIFICATE);
          secure.clientKey = pemBlocks(tls.privateKey, "PRIVATE KEY")[0];
        }
        client = new LinkClient({
          host: options.host,
          port: options.port,
          id: options.clientId,
          user: options.username,
          password: options.password === undefined ? undefined : ArrayBuffer.fromString(options.password),
          timeout: options.keepAliveSeconds * 1000,
          Socket: LinkSecureSocket,
          secure,
        });
        // finish() clears events, client and ready: nothing is delivered after it
        client.onReady = () => {
          if (!events) return;
          ready = true;
          events.onReady();
        };
        client.onMessage = (topic: string, payload: ArrayBuffer) => {
          if (ready) events!.onMessage(topic, new Uint8Array(payload));
        };
        client.onClose = () => {
          if (!client) return;
          const failure = client.lastFailure ?? "";
          finish(failure.slice(0, 120) || "connection closed", failure.startsWith(REFUSED) ? Number(failure.slice(REFUSED.length)) : undefined);
        };
      } catch (error) {
        const detail = `connect failed: ${error instanceof Error ? error.message : "error"}`;
        // deliver asynchronously, as a network failure would be
        Timer.set(() => finish(detail), 0);
      }
    },
    publish: (topic: string, payload: Uint8Array) => send("publish", topic, payload.slice().buffer as ArrayBuffer),
    subscribe: (topic: string) => send("subscribe", topic),
    close: () => finish("closed by device"),
  };
}
