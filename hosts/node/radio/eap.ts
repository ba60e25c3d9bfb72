/*
 * EAP framing shared by the simulated supplicant (eap-peer.ts) and test
 * responders: EAP packets (RFC 3748), EAP-TLS / EAP-TTLS fragments with the
 * L/M/S flags (RFC 5216 §3.1, RFC 5281 §9), a Duplex that carries TLS records
 * in memory, and a helper that waits for node:tls to finish reacting to input.
 */
import { Duplex } from "node:stream";

export const EAP_CODE = { request: 1, response: 2, success: 3, failure: 4 } as const;
export const EAP_TYPE = { identity: 1, notification: 2, nak: 3, tls: 13, ttls: 21 } as const;
/** EAP-TLS flags; EAP-TTLS uses the same bits and version 0 in the low three bits. */
export const TLS_FLAG = { length: 0x80, more: 0x40, start: 0x20 } as const;
/** Largest reassembled TLS message accepted from the other side (bounded input). */
export const MAX_TLS_MESSAGE = 64 * 1024;

export interface EapPacket {
  code: number;
  identifier: number;
  /** Request/Response only */
  type?: number;
  /** type-data (Request/Response), empty for Success/Failure */
  data: Uint8Array;
}

export class EapCodecError extends Error {
  override name = "EapCodecError";
}

export function encodeEap(packet: EapPacket): Uint8Array {
  const hasType = packet.code === EAP_CODE.request || packet.code === EAP_CODE.response;
  const length = 4 + (hasType ? 1 + packet.data.length : 0);
  const out = new Uint8Array(length);
  out[0] = packet.code;
  out[1] = packet.identifier;
  out[2] = length >> 8;
  out[3] = length & 0xff;
  if (hasType) {
    out[4] = packet.type ?? 0;
    out.set(packet.data, 5);
  }
  return out;
}

/** @throws EapCodecError for a short or badly framed packet */
export function decodeEap(bytes: Uint8Array): EapPacket {
  if (bytes.length < 4) throw new EapCodecError("EAP packet shorter than 4 bytes");
  const length = (bytes[2] << 8) | bytes[3];
  if (length < 4 || length > bytes.length) throw new EapCodecError(`bad EAP length ${length}`);
  const code = bytes[0];
  if (code < 1 || code > 4) throw new EapCodecError(`unknown EAP code ${code}`);
  if (code === EAP_CODE.request || code === EAP_CODE.response) {
    if (length < 5) throw new EapCodecError("EAP request/response without a type");
    return { code, identifier: bytes[1], type: bytes[4], data: bytes.slice(5, length) };
  }
  return { code, identifier: bytes[1], data: new Uint8Array(0) };
}

/** A short description for event logs ("Request/TTLS 1024B L M"). */
export function describeEap(bytes: Uint8Array): string {
  try {
    const packet = decodeEap(bytes);
    const code = ["", "Request", "Response", "Success", "Failure"][packet.code];
    if (packet.type === undefined) return code;
    const name = { 1: "Identity", 2: "Notification", 3: "Nak", 13: "TLS", 21: "TTLS" }[packet.type] ?? `type ${packet.type}`;
    if (packet.type === EAP_TYPE.tls || packet.type === EAP_TYPE.ttls) {
      const flags = packet.data[0] ?? 0;
      const marks = [flags & TLS_FLAG.start ? "S" : "", flags & TLS_FLAG.length ? "L" : "", flags & TLS_FLAG.more ? "M" : ""].filter(Boolean);
      const payload = Math.max(0, packet.data.length - 1 - (flags & TLS_FLAG.length ? 4 : 0));
      return `${code}/${name} ${payload === 0 && marks.length === 0 ? "ACK" : `${payload}B`}${marks.length ? " " + marks.join(" ") : ""}`;
    }
    return `${code}/${name}`;
  } catch {
    return `malformed EAP (${bytes.length}B)`;
  }
}

/** What one received EAP-TLS/TTLS type-data means for its receiver. */
export type TlsFragmentInput =
  | { kind: "start" }
  /** a fragment with M set: answer with an ACK */
  | { kind: "fragment" }
  /** an empty message: an ACK of our fragment (or a bare ACK) */
  | { kind: "empty" }
  /** the last fragment: the whole TLS message */
  | { kind: "message"; tls: Uint8Array };

/**
 * Reassembles the other side's fragments and fragments our TLS output into
 * type-data fields of at most `fragmentSize` TLS bytes each.
 */
export class TlsFragmenter {
  #incoming: Uint8Array[] = [];
  #incomingTotal: number | undefined;
  #incomingSize = 0;
  #outgoing: Uint8Array[] = [];

  constructor(readonly fragmentSize: number) {
    if (!Number.isInteger(fragmentSize) || fragmentSize < 16) throw new RangeError("fragmentSize must be an integer >= 16");
  }

  /** @throws EapCodecError for a malformed or oversized fragment stream */
  receive(typeData: Uint8Array): TlsFragmentInput {
    if (typeData.length === 0) throw new EapCodecError("EAP-TLS data without flags");
    const flags = typeData[0];
    let at = 1;
    if (flags & TLS_FLAG.length) {
      if (typeData.length < 5) throw new EapCodecError("L flag without a length");
      const total = new DataView(typeData.buffer, typeData.byteOffset + 1, 4).getUint32(0);
      if (total > MAX_TLS_MESSAGE) throw new EapCodecError(`TLS message of ${total} bytes exceeds ${MAX_TLS_MESSAGE}`);
      if (this.#incoming.length === 0) this.#incomingTotal = total;
      at = 5;
    }
    const payload = typeData.subarray(at);
    if (flags & TLS_FLAG.start) {
      this.#reset();
      return { kind: "start" };
    }
    if (payload.length === 0 && !(flags & TLS_FLAG.more)) return { kind: "empty" };
    this.#incomingSize += payload.length;
    if (this.#incomingSize > (this.#incomingTotal ?? MAX_TLS_MESSAGE)) throw new EapCodecError("fragments exceed the announced TLS message length");
    this.#incoming.push(payload.slice());
    if (flags & TLS_FLAG.more) return { kind: "fragment" };
    const tls = new Uint8Array(Buffer.concat(this.#incoming));
    if (this.#incomingTotal !== undefined && tls.length !== this.#incomingTotal) throw new EapCodecError(`TLS message of ${tls.length} bytes, ${this.#incomingTotal} announced`);
    this.#reset();
    return { kind: "message", tls };
  }

  #reset(): void {
    this.#incoming = [];
    this.#incomingTotal = undefined;
    this.#incomingSize = 0;
  }

  /** Queues a TLS message to send; nextFragment() then yields its pieces. */
  queue(tls: Uint8Array): void {
    const size = this.fragmentSize;
    if (tls.length <= size) {
      this.#outgoing.push(Uint8Array.of(0, ...tls));
      return;
    }
    for (let at = 0; at < tls.length; at += size) {
      const first = at === 0;
      const more = at + size < tls.length;
      const chunk = tls.subarray(at, at + size);
      const head = first ? new Uint8Array(5) : new Uint8Array(1);
      head[0] = (first ? TLS_FLAG.length : 0) | (more ? TLS_FLAG.more : 0);
      if (first) new DataView(head.buffer).setUint32(1, tls.length);
      this.#outgoing.push(new Uint8Array(Buffer.concat([head, chunk])));
    }
  }

  /** Fragments still to send. */
  get pending(): number {
    return this.#outgoing.length;
  }

  /** The next fragment's type-data, or an ACK (flags 0, no data) when nothing is queued. */
  nextFragment(): Uint8Array {
    return this.#outgoing.shift() ?? Uint8Array.of(0);
  }
}

/** The Start message type-data a server sends first. */
export function tlsStart(): Uint8Array {
  return Uint8Array.of(TLS_FLAG.start);
}

/** An in-memory transport for node:tls: what TLS writes is collected, what the other side sent is fed in. */
export class TlsPipe extends Duplex {
  #out: Buffer[] = [];
  /** number of writes so far (settle() watches it) */
  writes = 0;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#out.push(chunk);
    this.writes++;
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    callback();
  }

  /** Delivers bytes from the other side to TLS. */
  feed(bytes: Uint8Array): void {
    this.push(Buffer.from(bytes));
  }

  /** Takes everything TLS wrote since the last takeOutput(). */
  takeOutput(): Uint8Array {
    const out = new Uint8Array(Buffer.concat(this.#out));
    this.#out = [];
    return out;
  }

  get buffered(): number {
    return this.#out.reduce((sum, chunk) => sum + chunk.length, 0);
  }
}

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Waits until node:tls has finished reacting to fed input: output has appeared
 * (or `done()` holds) and nothing more was written for a few event-loop turns;
 * gives up waiting for output after `idleTurns` quiet turns (a partial flight).
 */
export async function settle(pipe: TlsPipe, done: () => boolean, idleTurns = 40): Promise<void> {
  let last = pipe.writes;
  let quiet = 0;
  for (let turn = 0; turn < 10_000; turn++) {
    await immediate();
    if (pipe.writes !== last) {
      last = pipe.writes;
      quiet = 0;
      continue;
    }
    quiet++;
    const answered = pipe.buffered > 0 || done();
    if (answered && quiet >= 3) return;
    if (!answered && quiet >= idleTurns) return;
  }
}

/**
 * The EAP keying material: TLS exporter (RFC 5705) without a context, as
 * RFC 5216 §2.3 and RFC 5281 §8 define it (node's typings insist on a context).
 */
export function exportMsk(socket: { exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer }, label: "client EAP encryption" | "ttls keying material"): Uint8Array {
  return new Uint8Array(socket.exportKeyingMaterial(64, label));
}
