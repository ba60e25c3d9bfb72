/*
 * Fragmentation and reassembly of TLS data carried in EAP-TLS / EAP-TTLS
 * (RFC 5216 section 2.1.5): an outgoing TLS flight is cut into fragments of
 * at most `fragmentSize` bytes (the first with L and the total length, all
 * but the last with M); incoming fragments are collected up to a bound
 * (exceed it, or send more than announced, and reassembly fails).
 */
import { EapCodecError, TLS_FLAG, type TlsFrame } from "./eap";

/** A reassembled TLS message would exceed the bound (the server rejects with TOO_LARGE). */
export class ReassemblyTooLarge extends EapCodecError {
  constructor(message: string) {
    super(message);
    this.name = "ReassemblyTooLarge";
  }
}

/** Cuts outgoing TLS bytes into frames; the caller sends one per EAP request. */
export class FragmentSender {
  #data: Buffer = Buffer.alloc(0);
  #offset = 0;

  /** @param fragmentSize - most TLS bytes per EAP message */
  constructor(readonly fragmentSize: number, readonly version: number) {}

  /** Queues a TLS flight (replaces nothing: call only when idle). */
  load(data: Buffer): void {
    this.#data = data;
    this.#offset = 0;
  }

  /** True while bytes of the loaded flight remain unsent. */
  get pending(): boolean {
    return this.#offset < this.#data.length;
  }

  /** The next frame (one fragment, or the whole flight when it fits). Call only while pending. */
  next(): TlsFrame {
    const first = this.#offset === 0;
    const fragmented = this.#data.length > this.fragmentSize;
    const end = Math.min(this.#data.length, this.#offset + this.fragmentSize);
    const fragment = this.#data.subarray(this.#offset, end);
    this.#offset = end;
    const more = end < this.#data.length;
    return {
      flags: more ? TLS_FLAG.more : 0,
      version: this.version,
      totalLength: first && fragmented ? this.#data.length : undefined,
      fragment,
    };
  }
}

/** Collects incoming fragments into one TLS message, bounded. */
export class FragmentReceiver {
  #parts: Buffer[] = [];
  #size = 0;
  #announced: number | undefined;

  /** @param maxSize - the most bytes one reassembled message may have */
  constructor(readonly maxSize: number) {}

  /** True while fragments have been received and the last had M set. */
  get active(): boolean {
    return this.#parts.length > 0;
  }

  /**
   * Adds a frame. Returns the whole message when this frame completes it,
   * or undefined when more fragments are expected (ACK them).
   * @throws ReassemblyTooLarge when the announced or received size exceeds the bound; EapCodecError when more than announced arrives
   */
  add(frame: TlsFrame): Buffer | undefined {
    if (frame.totalLength !== undefined && (this.#announced === undefined || !this.active)) {
      if (frame.totalLength > this.maxSize) throw new ReassemblyTooLarge(`announced TLS message of ${frame.totalLength} bytes exceeds ${this.maxSize}`);
      this.#announced = frame.totalLength;
    }
    this.#size += frame.fragment.length;
    if (this.#size > this.maxSize) throw new ReassemblyTooLarge(`TLS message exceeds ${this.maxSize} bytes`);
    if (this.#announced !== undefined && this.#size > this.#announced) throw new EapCodecError("more TLS bytes than the announced length");
    this.#parts.push(frame.fragment);
    if (frame.flags & TLS_FLAG.more) return undefined;
    const whole = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#size = 0;
    this.#announced = undefined;
    return whole;
  }
}
