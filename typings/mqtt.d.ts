/*
 * Typings for the Moddable SDK's MQTT client, modules/network/mqtt/mqtt.js
 * (SDK 8.2.3; the SDK ships none for "mqtt"). MQTT 3.1.1, QoS 0 for
 * subscriptions, no automatic reconnect. Written from the source: the
 * dictionary fields read by the constructor, the callbacks it calls, and fail(),
 * which carries the only trace of a CONNACK refusal
 * ("server rejected mqtt request with code N") before onClose().
 */
declare module "mqtt" {
  export interface ClientWill {
    topic: string;
    message: string | ArrayBuffer;
    quality?: 0 | 1 | 2;
    retain?: boolean;
  }

  export interface ClientOptions {
    host: string;
    /** default 1883 (80 with `path`) */
    port?: number;
    /** client identifier (default "") */
    id?: string;
    user?: string | ArrayBuffer;
    password?: string | ArrayBuffer;
    will?: ClientWill;
    /** keep-alive in milliseconds (CONNECT carries it rounded up to seconds); 0 = none */
    timeout?: number;
    /** MQTT over WebSocket when present */
    path?: string;
    /** socket class, e.g. SecureSocket from "securesocket" */
    Socket?: unknown;
    /** passed to Socket as `secure` (SecureSocket: protocolVersion, certificate, clientKey, ...) */
    secure?: Record<string, unknown>;
  }

  export interface PublishFlags {
    retain?: boolean;
    quality?: 0 | 1 | 2;
    duplicate?: boolean;
  }

  export default class Client {
    constructor(options: ClientOptions);
    /** 0 connecting, 1 CONNECT sent, 2 ready, -1 closed */
    state: number;
    /** CONNACK accepted (delivered from a timer) */
    onReady?: () => void;
    /** a PUBLISH arrived */
    onMessage?: (topic: string, body: ArrayBuffer) => void;
    /** the connection ended or failed (no argument) */
    onClose?: () => void;
    onConnected?: () => void;
    /** @throws Error "connection closed" when not ready */
    publish(topic: string, data: string | ArrayBuffer, flags?: PublishFlags): void;
    /** @throws Error "connection closed" when not ready */
    subscribe(topic: string): void;
    /** @throws Error "connection closed" when not ready */
    unsubscribe(topic: string): void;
    /** sends DISCONNECT unless `immediate`, closes the socket, stops timers */
    close(immediate?: boolean): void;
    /** traces "MQTT FAIL: <message>", calls onClose(), then close() */
    fail(message?: string): void;
  }
}
