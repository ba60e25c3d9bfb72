/*
 * node:tls without a socket: a TLSSocket over an in-memory Duplex that the
 * EAP layer feeds with reassembled TLS records and drains into fragments.
 *
 * TLS processing in node is event driven, so after feeding a record the
 * tunnel waits until the TLS engine has gone quiet (no new output for a few
 * event-loop turns) before the EAP layer looks at what came out. Used by the
 * server (isServer) and by the bench/test peer (client).
 */
import { Duplex } from "node:stream";
import { connect, TLSSocket, type ConnectionOptions, type TLSSocketOptions } from "node:tls";

class MemoryWire extends Duplex {
  out: Buffer[] = [];
  writes = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.out.push(chunk);
    this.writes++;
    callback();
  }
  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }
}

/** Turns of the event loop without new TLS output after which the engine counts as idle. */
const QUIET_TURNS = 2;
/** Most turns to wait for one feed. */
const MAX_TURNS = 200;
/** Longest wait for the engine's asynchronous callbacks (a session lookup in a shared store), ms. */
const MAX_BUSY_MS = 10_000;

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** One TLS connection in memory. */
export class TlsTunnel {
  readonly socket: TLSSocket;
  readonly #wire = new MemoryWire();
  #clear: Buffer[] = [];
  #error: Error | undefined;
  #secure = false;
  #events = 0;
  readonly #busy: (() => boolean) | undefined;

  /**
   * @param options - server: TLSSocket options with isServer true (secureContext, requestCert, ...);
   *   client: tls.connect options (ca, servername, cert, key, ...)
   * @param busy - true while a callback the engine waits for is running (the session-id lookup): the engine is not idle then
   */
  constructor(options: (TLSSocketOptions & { isServer: true }) | (ConnectionOptions & { isServer?: false }), busy?: () => boolean) {
    this.#busy = busy;
    this.socket = options.isServer
      ? new TLSSocket(this.#wire as never, options)
      : connect({ ...options, socket: this.#wire as never });
    this.socket.on("data", (chunk: Buffer) => {
      this.#clear.push(chunk);
      this.#events++;
    });
    this.socket.on("error", (error: Error) => {
      this.#error ??= error;
      this.#events++;
    });
    this.socket.on(options.isServer ? "secure" : "secureConnect", () => {
      this.#secure = true;
      this.#events++;
    });
    this.socket.on("close", () => this.#events++);
  }

  /** True once the handshake completed. */
  get secure(): boolean {
    return this.#secure;
  }

  /** The first TLS error, if any. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Feeds TLS bytes from the peer and waits until the engine is idle. */
  async feed(records: Buffer): Promise<void> {
    if (records.length > 0) this.#wire.push(records);
    await this.settle();
  }

  /** Writes application data into the tunnel (client side, inner AVPs) and waits until idle. */
  async write(cleartext: Buffer): Promise<void> {
    this.socket.write(cleartext);
    await this.settle();
  }

  /** Waits until no TLS output or event appeared for a few event-loop turns (and no lookup the engine waits for is running). */
  async settle(): Promise<void> {
    let last = -1;
    let quiet = 0;
    const until = Date.now() + MAX_BUSY_MS;
    for (let i = 0; i < MAX_TURNS && quiet < QUIET_TURNS; i++) {
      await turn();
      while (this.#busy?.() && Date.now() < until) {
        quiet = 0;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const seen = this.#wire.writes + this.#events;
      if (seen === last) quiet++;
      else {
        quiet = 0;
        last = seen;
      }
    }
  }

  /** TLS bytes produced for the peer since the last call. */
  drain(): Buffer {
    const out = Buffer.concat(this.#wire.out);
    this.#wire.out = [];
    return out;
  }

  /** Application data received from the peer since the last call. */
  takeCleartext(): Buffer {
    const out = Buffer.concat(this.#clear);
    this.#clear = [];
    return out;
  }

  /** Keying material (RFC 5705 exporter, no context). */
  exportKey(label: string, length = 64): Buffer {
    // no context argument: RFC 5705 without context, as RFC 5216 / 5281 require (node's typings make it mandatory)
    const exporter = this.socket.exportKeyingMaterial as (length: number, label: string) => Buffer;
    return exporter.call(this.socket, length, label);
  }

  /** Frees the TLS state. */
  destroy(): void {
    this.socket.destroy();
    this.#wire.destroy();
  }
}
