/*
 * Cross-node delivery through Redis (config `cluster.redis`): the aedes
 * brokers of several cloud nodes share one message emitter, mqemitter-redis
 * (Redis PUBLISH/SUBSCRIBE, one channel per subscribed topic), so a message
 * published on any node (a response, a notice, the product's own
 * `wcm/v1/<id>/app/<suffix>` messages) reaches the subscriber's session on
 * whichever node holds it; and aedes's own `$SYS/<broker>/new/clients`
 * messages close a device's older session on another node when it logs in
 * again elsewhere ([MQTT-3.1.4-2] across nodes). The operator notices
 * (cloud/notices.ts: revoke, rotate, network change, unlock ...) travel on
 * the same emitter, on one topic (`$wcm/notices`) that no device can
 * subscribe to (the ACL allows only its own topics, and `#` never matches a
 * `$` topic), each tagged with the sending node's random id so a node drops
 * its own. Everything read back from Redis is validated (parseNotice, a size
 * bound) before it is applied.
 *
 * Redis pub/sub is not stored: a node that is down when a message is sent
 * never sees it. That is what QoS 0 and clean sessions mean here anyway; the
 * registry in PostgreSQL is the truth every node reads again at the next login.
 * Pub/sub channels ignore the database number: give each cluster its own Redis.
 */
import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import MQEmitterRedis from "mqemitter-redis";
import { CloudError } from "./errors";
import { parseNotice, type Notice, type NoticeBus } from "./notices";

/** The emitter aedes takes as `mq` (mqemitter-redis's instance, with the members its typings leave out). */
export type SharedEmitter = ReturnType<typeof MQEmitterRedis> & {
  /** connection events and errors */
  state: EventEmitter;
  subConn: Redis;
  pubConn: Redis;
};

/** The topic notices travel on between nodes. */
export const NOTICE_TOPIC = "$wcm/notices";

/** Most bytes of one notice message read from Redis. */
const MAX_NOTICE_BYTES = 1024;

/** Most characters of a Redis URL. */
const MAX_URL = 1024;

/**
 * The checked form of a `cluster.redis` URL: `redis://host:port[/db]` or
 * `rediss://` (TLS). A password in the URL is refused (it would show in argv,
 * config dumps and logs): give it in env WCM_REDIS_PASSWORD.
 * @throws CloudError CONFIG_INVALID naming what is wrong (never the password)
 */
export function checkRedisUrl(url: string): string {
  if (url.length > MAX_URL) throw new CloudError("CONFIG_INVALID", `cluster.redis: longer than ${MAX_URL} characters`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CloudError("CONFIG_INVALID", "cluster.redis: not a URL (redis://host:port)");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") throw new CloudError("CONFIG_INVALID", "cluster.redis: the scheme must be redis:// or rediss://");
  if (parsed.password !== "") throw new CloudError("CONFIG_INVALID", "cluster.redis: a password in the URL is refused; give it in env WCM_REDIS_PASSWORD");
  if (parsed.hostname === "") throw new CloudError("CONFIG_INVALID", "cluster.redis: no host");
  return url;
}

/**
 * Connects the shared emitter to Redis; resolves once both of its
 * connections (publish, subscribe) are up.
 * @throws CloudError REDIS_UNAVAILABLE when Redis does not answer within `timeoutMs`
 */
export async function openSharedEmitter(url: string, options: { timeoutMs?: number; log?: (level: "warn", message: string) => void } = {}): Promise<SharedEmitter> {
  checkRedisUrl(url);
  const password = process.env.WCM_REDIS_PASSWORD;
  const parsed = new URL(url);
  const db = parsed.pathname.replace(/^\//, "");
  const emitter = <SharedEmitter>MQEmitterRedis({
    host: parsed.hostname.replace(/^\[|\]$/g, ""), port: parsed.port === "" ? 6379 : Number(parsed.port),
    ...(db !== "" && /^[0-9]{1,2}$/.test(db) ? { db: Number(db) } : {}),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(password ? { password } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: { servername: parsed.hostname } } : {}),
    // a node that loses Redis keeps retrying (at most every 2 s); it does not crash
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  });
  const { host } = new URL(url);
  let lastError: string | undefined;
  // "ready", not "connect": ioredis's ready check (INFO) must be answered before the first SUBSCRIBE,
  // or the subscriber connection refuses it ("Connection in subscriber mode")
  const connections = [emitter.subConn, emitter.pubConn];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CloudError("REDIS_UNAVAILABLE", `Redis at ${host} did not answer within ${options.timeoutMs ?? 10_000} ms${lastError ? `: ${lastError}` : ""}`)), options.timeoutMs ?? 10_000);
    const check = () => {
      if (connections.every((c) => c.status === "ready")) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const c of connections) c.once("ready", check);
    check();
  });
  emitter.state.on("error", (error: Error) => {
    lastError = error.message;
    options.log?.("warn", `Redis at ${host}: ${error.message}`);
  });
  try {
    await ready;
  } catch (error) {
    await new Promise<void>((resolve) => emitter.close(() => resolve()));
    throw error;
  }
  return emitter;
}

/**
 * The notice bus of a node over the shared emitter: publish() sends to every
 * other node, subscribe() hears every other node (this node's own are dropped).
 * Resolves once Redis has confirmed the subscription, so no notice sent after
 * start-up is missed.
 */
export async function redisNoticeBus(emitter: SharedEmitter, nodeId: string = randomBytes(8).toString("hex")): Promise<NoticeBus> {
  const handlers: ((notice: Notice) => void)[] = [];
  await new Promise<void>((resolve) => emitter.on(NOTICE_TOPIC, (message: { topic: string; payload?: unknown }, done: () => void) => {
    done();
    const payload = message.payload;
    if (!(payload instanceof Uint8Array) || payload.length > MAX_NOTICE_BYTES) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(payload).toString("utf8"));
    } catch {
      return;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || Object.keys(parsed).length !== 2) return;
    const { from, notice } = parsed as { from?: unknown; notice?: unknown };
    if (from === nodeId) return;
    const checked = parseNotice(notice);
    if (checked) for (const handler of handlers) handler(checked);
  }, () => resolve()));
  return {
    publish(notice: Notice) {
      emitter.emit({ topic: NOTICE_TOPIC, payload: Buffer.from(JSON.stringify({ from: nodeId, notice })) }, () => undefined);
    },
    subscribe(handler: (notice: Notice) => void) {
      handlers.push(handler);
    },
  };
}
