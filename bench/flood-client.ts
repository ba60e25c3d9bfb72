/*
 * A flood of MQTT/TLS clients from chosen loopback source addresses, in its
 * own process (so its TLS work does not share the cloud's event loop). Used by
 * bench/id-attack.ts and test/abuse-id-attack.test.ts.
 *
 * Modes, each open-loop at `ratePerSecond` for `seconds`, spread round-robin
 * over `sources` (the client socket's localAddress; Linux routes 127/8 to lo):
 * - "bad-secret": CONNECT for `id` with a well-formed `s` password under a random secret;
 * - "no-cert": CONNECT for `id` without a client certificate (a certificate device's id).
 * Prints one JSON line with the outcome counts when every attempt has ended.
 * `--hold`: hold() keeps idle or trickling sockets open instead (item 3).
 */
import { randomBytes } from "node:crypto";
import { connect as netConnect, type Socket } from "node:net";
import { connect, type ConnectionOptions } from "node:tls";
import mqttPacket from "mqtt-packet";
import { deriveCloudLoginKey, deriveLoginProof } from "../modules/derive";
import { nobleDigest } from "../modules/noble-digest";
import { formatLoginPassword } from "../modules/protocol";

/** What the flood does. */
export interface FloodConfig {
  port: number;
  id: string;
  mode: "bad-secret" | "no-cert";
  ratePerSecond: number;
  seconds: number;
  sources: string[];
}

/** Outcome counts of a flood. */
export interface FloodResult {
  attempts: number;
  /** CONNACK return code -> count (0 would be an accepted login) */
  connack: Record<string, number>;
  /** closed before any CONNACK (refused at accept, TLS error, timeout) */
  closed: number;
  /** per source: attempts */
  perSource: Record<string, number>;
}

function attempt(config: FloodConfig, source: string, counter: number): Promise<number | "closed"> {
  return new Promise((resolve) => {
    let done = false;
    let buffered = Buffer.alloc(0);
    const socket = connect({ host: "127.0.0.1", port: config.port, localAddress: source, rejectUnauthorized: false, servername: "localhost" } as ConnectionOptions);
    const finish = (outcome: number | "closed") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish("closed"), 20_000);
    socket.on("secureConnect", () => {
      const password = config.mode === "bad-secret"
        ? Buffer.from(formatLoginPassword({ kind: "s", counter, proof: deriveLoginProof(nobleDigest, deriveCloudLoginKey(nobleDigest, randomBytes(32)), config.id, "s", counter) }))
        : undefined;
      socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 60, clientId: config.id, username: config.id, password }));
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 4 && buffered[0] === 0x20) finish(buffered[3]);
    });
    socket.on("error", () => finish("closed"));
    socket.on("close", () => finish("closed"));
  });
}

/** Runs a flood in this process. */
export async function flood(config: FloodConfig): Promise<FloodResult> {
  const result: FloodResult = { attempts: 0, connack: {}, closed: 0, perSource: {} };
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round(config.ratePerSecond * config.seconds);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / config.ratePerSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const source = config.sources[i % config.sources.length];
    result.attempts++;
    result.perSource[source] = (result.perSource[source] ?? 0) + 1;
    pending.push(attempt(config, source, 1 + i).then((outcome) => {
      if (outcome === "closed") result.closed++;
      else result.connack[outcome] = (result.connack[outcome] ?? 0) + 1;
    }));
  }
  await Promise.all(pending);
  return result;
}

/** Sockets that hold pre-CONNECT slots. */
export interface HoldConfig {
  port: number;
  sources: string[];
  /** sockets kept open per source */
  perSource: number;
  seconds: number;
  /** ms before a dropped socket is re-opened */
  reopenMs: number;
}

/** What the holder did. */
export interface HoldResult {
  opened: number;
  dropped: number;
}

/**
 * Keeps `perSource` sockets open from each source for `seconds`: sources of
 * even index stay silent (never a ClientHello), odd ones trickle one byte of
 * a TLS record header per second. Each dropped socket is re-opened.
 */
export async function hold(config: HoldConfig): Promise<HoldResult> {
  const result: HoldResult = { opened: 0, dropped: 0 };
  const stopAt = Date.now() + config.seconds * 1000;
  const sockets = new Set<Socket>();
  const open = (source: string, trickle: boolean): void => {
    if (Date.now() >= stopAt) return;
    result.opened++;
    const socket = netConnect({ host: "127.0.0.1", port: config.port, localAddress: source });
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    if (trickle) {
      const bytes = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
      let i = 0;
      timer = setInterval(() => socket.writable && socket.write(Buffer.from([bytes[i++ % bytes.length]])), 1000);
    }
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      sockets.delete(socket);
      if (Date.now() >= stopAt) return;
      result.dropped++;
      setTimeout(() => open(source, trickle), config.reopenMs);
    });
  };
  config.sources.forEach((source, s) => {
    for (let i = 0; i < config.perSource; i++) open(source, s % 2 === 1);
  });
  await new Promise((r) => setTimeout(r, config.seconds * 1000));
  for (const socket of sockets) socket.destroy();
  return result;
}

if (process.argv[2] === "--run") {
  flood(JSON.parse(process.argv[3]) as FloodConfig).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }, (error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}

if (process.argv[2] === "--hold") {
  hold(JSON.parse(process.argv[3]) as HoldConfig).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }, (error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
