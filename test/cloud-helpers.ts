/*
 * Helpers for the cloud tests: a cloud in a temporary directory, device logins
 * computed with derive.ts + protocol.ts, and MQTT.js clients as devices.
 * Nothing here prints a secret.
 */
import { createLogger, type CloudLog, type Logger, type LogLevel } from "../cloud/log";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import { startCloud, type Cloud, type StartCloudOptions } from "../cloud/index";
import { backendDatabase } from "./support/backends";
import { recordSecret } from "./support/secret-tap";
import { buildAdminApi, type AdminApi, type AdminApiOptions, type AdminRequest } from "../cloud/http-api";
import type { CloudServices } from "../cloud/services";
import { deriveCloudLoginKey, deriveLoginProof, deriveTemporarySecret, type LoginKind } from "../modules/derive";
import { nobleDigest } from "../modules/noble-digest";
import { decodeCloudMessage, deviceTopics, encodeRequest, formatLoginPassword, type CloudResponse, type DeviceRequest } from "../modules/protocol";

export const digest = nobleDigest;

/** A started cloud and its temporary data directory (removed by stop()). */
export interface TestCloud {
  cloud: Cloud;
  dataDir: string;
  masterKey: Uint8Array;
  stop(): Promise<void>;
}

/** Starts a cloud on ephemeral ports in a fresh directory. */
let suiteLogger: Logger | undefined;

/**
 * The log of every test cloud when env WCM_TEST_LOG_FILE names a file (the suite's root hook,
 * test/support/log-scan-hooks.ts, sets it for every mocha run: debug unless WCM_TEST_LOG_LEVEL says otherwise); else none.
 */
export function suiteLog(): CloudLog | undefined {
  const file = process.env.WCM_TEST_LOG_FILE;
  if (!file) return undefined;
  suiteLogger ??= createLogger({ level: (process.env.WCM_TEST_LOG_LEVEL ?? "debug") as LogLevel, file, name: "test" });
  return suiteLogger.log;
}

export async function startTestCloud(options: Partial<StartCloudOptions> = {}): Promise<TestCloud> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "wcm-cloud-test-"));
  const masterKey = options.masterKey ?? new Uint8Array(randomBytes(32));
  let cloud: Cloud;
  try {
    // the suite's backend (test/support/backends.ts): SQLite in dataDir, or a PostgreSQL database kept per dataDir
    const database = options.database ?? await backendDatabase(dataDir);
    cloud = await startCloud({ dataDir, masterKey: Uint8Array.from(masterKey), mqttPort: 0, log: suiteLog(), ...options, ...(database === undefined ? {} : { database }) });
  } catch (error) {
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    cloud, dataDir, masterKey,
    async stop() {
      await cloud.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The token of admin APIs built by testAdminApi(). */
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123456789";

/** Adds the admin's Host and bearer token to requests that do not set them (as an operator's client does). */
export function withAdminHeaders(api: AdminApi, token: string, host = "127.0.0.1"): AdminApi {
  return {
    ...api,
    inject: (request: AdminRequest) => api.inject({ ...request, headers: { host, authorization: `Bearer ${token}`, ...request.headers } }),
  };
}

/** An admin API over `services` (token TEST_ADMIN_TOKEN, loopback names) whose inject() sends an operator's headers. */
export function testAdminApi(services: CloudServices, options: Partial<AdminApiOptions> = {}): AdminApi {
  return withAdminHeaders(buildAdminApi(services, { token: TEST_ADMIN_TOKEN, ...options }), options.token ?? TEST_ADMIN_TOKEN);
}

/** The MQTT password of a secret-based login. */
export function loginPassword(id: string, secret: Uint8Array, kind: LoginKind, counter: number): string {
  const proof = deriveLoginProof(digest, deriveCloudLoginKey(digest, secret), id, kind, counter);
  return formatLoginPassword({ kind, counter, proof });
}

/** The temporary secret of `id` under a provisioning key given as hex. */
export function temporarySecret(provisioningKeyHex: string, id: string): Uint8Array {
  const secret = deriveTemporarySecret(digest, Uint8Array.from(Buffer.from(provisioningKeyHex, "hex")), id);
  recordSecret(secret);
  return secret;
}

/** How a test device connects. */
export interface DeviceLogin {
  id: string;
  password?: string;
  cert?: string;
  key?: string;
  username?: string;
}

/** The outcome of a connection attempt: a client, or the CONNACK code / error that refused it. */
export type ConnectOutcome = { client: MqttClient; code?: undefined; error?: undefined } | { client?: undefined; code: number | undefined; error: Error };

/** Connects as a device with MQTT 3.1.1 over TLS, without reconnecting. */
export function connectDevice(cloud: Cloud, login: DeviceLogin, tls: Record<string, unknown> = {}): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${cloud.mqttPort}`, {
      clientId: login.id, username: login.username ?? login.id, password: login.password,
      ca: cloud.serverCaPem, servername: cloud.serverName, cert: login.cert, key: login.key,
      protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clean: true, ...tls,
    });
    let settled = false;
    client.once("connect", () => {
      settled = true;
      resolve({ client });
    });
    client.once("error", (error: Error & { code?: number | string }) => {
      if (settled) return;
      settled = true;
      client.end(true);
      resolve({ code: typeof error.code === "number" ? error.code : undefined, error });
    });
    client.once("close", () => {
      if (settled) return;
      settled = true;
      resolve({ code: undefined, error: new Error("closed before CONNACK") });
    });
  });
}

/** Connects and asserts success. */
export async function mustConnect(cloud: Cloud, login: DeviceLogin, tls: Record<string, unknown> = {}): Promise<MqttClient> {
  const outcome = await connectDevice(cloud, login, tls);
  if (!outcome.client) throw new Error(`expected ${login.id} to connect, got ${outcome.code ?? outcome.error.message}`);
  return outcome.client;
}

/** Subscribes to the device's response topic (once) and sends a request; resolves with the next response. */
export async function exchange(client: MqttClient, id: string, payload: Uint8Array | DeviceRequest, timeoutMs = 3000): Promise<CloudResponse> {
  const topics = deviceTopics(id);
  await client.subscribeAsync(topics.response, { qos: 0 });
  const bytes = payload instanceof Uint8Array ? payload : encodeRequest(payload);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("message", onMessage);
      reject(new Error("no response"));
    }, timeoutMs);
    const onMessage = (topic: string, message: Buffer) => {
      if (topic !== topics.response) return;
      const decoded = decodeCloudMessage(new Uint8Array(message));
      if ("notice" in decoded) return; // unsolicited notices are not the answer
      clearTimeout(timer);
      client.off("message", onMessage);
      resolve(decoded);
    };
    client.on("message", onMessage);
    client.publish(topics.request, Buffer.from(bytes), { qos: 0 });
  });
}

/** Ends a client and waits for the close. */
export async function end(client: MqttClient | undefined): Promise<void> {
  if (client && !client.disconnected) await client.endAsync(true);
}

/** Resolves when `client` closes (or rejects after `timeoutMs`). */
export function closed(client: MqttClient, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (client.disconnected) return resolve();
    const timer = setTimeout(() => reject(new Error("still connected")), timeoutMs);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A fresh random secret of `length` bytes, as bytes and hex. */
export function newSecret(length = 32): { bytes: Uint8Array; hex: string } {
  const bytes = new Uint8Array(randomBytes(length));
  return { bytes, hex: Buffer.from(bytes).toString("hex") };
}

/** Waits `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
