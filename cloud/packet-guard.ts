/*
 * A size guard in front of the MQTT parser.
 *
 * mqtt-packet buffers a whole packet before aedes sees it, whatever length the
 * fixed header announces (up to 256 MiB). GuardedConnection reads the fixed
 * header of every packet as bytes arrive and destroys the connection as soon as
 * one announces more than `maxPacketBytes`, so a client cannot make the broker
 * buffer more than that. It is the duplex aedes handles; `socket` is the TLS
 * socket underneath (client certificate, cipher).
 *
 * Writes: mqtt-packet writes one packet as several small chunks (fixed header,
 * length, topic, payload) inside cork()/uncork(); _writev hands them to the
 * TLS socket as one write, so a packet is one TLS record and one send, not
 * one per chunk (each costs the cloud an encryption and a syscall, and the
 * device a record to decrypt).
 */
import { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";

/** Incremental reader of MQTT fixed headers (type byte, then 1-4 byte remaining length). */
export class PacketSizeScanner {
  private state: "type" | "length" | "body" = "type";
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Feeds bytes; returns false as soon as a packet is too large or its length malformed. */
  feed(chunk: Uint8Array): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === "type") {
        i++;
        this.state = "length";
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else if (this.state === "length") {
        const byte = chunk[i++];
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (this.length > this.maxPacketBytes) return false;
        if (byte & 0x80) {
          if (this.lengthBytes === 4) return false; // [MQTT-2.2.3] at most four bytes
        } else if (this.length === 0) {
          this.state = "type";
        } else {
          this.state = "body";
          this.remaining = this.length;
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        i += take;
        this.remaining -= take;
        if (this.remaining === 0) this.state = "type";
      }
    }
    return true;
  }
}

/** The TLS socket wrapped with a packet size bound. */
export class GuardedConnection extends Duplex {
  readonly socket: TLSSocket;
  private readonly scanner: PacketSizeScanner;
  /** set when the guard cut the connection */
  oversized = false;

  constructor(socket: TLSSocket, maxPacketBytes: number) {
    super();
    this.socket = socket;
    this.scanner = new PacketSizeScanner(maxPacketBytes);
    socket.on("data", (chunk: Buffer) => {
      if (!this.scanner.feed(chunk)) {
        this.oversized = true;
        socket.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("close", () => this.destroy());
    socket.on("error", () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.socket.destroyed) return callback(new Error("socket closed"));
    this.socket.write(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void {
    if (this.socket.destroyed) return callback(new Error("socket closed"));
    this.socket.write(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
