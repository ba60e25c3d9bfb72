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
 */
import { randomBytes } from "node:crypto";
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

if (process.argv[2] === "--run") {
  flood(JSON.parse(process.argv[3]) as FloodConfig).then((result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }, (error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
}
