/*
 * The reference cloud in one call: startCloud() opens the registry, makes the
 * server TLS identity on first start, and runs the MQTT/TLS endpoint (with the
 * issuance service), optionally the RADIUS server for hotspots (cloud/radius/)
 * and the admin HTTP API. Each listener has its own bind address (all default
 * to 127.0.0.1). The admin API always needs its token (admin-token.ts); bound
 * anywhere but loopback it also needs a name and TLS (admin-tls.ts). A
 * listener that cannot bind stops start-up with LISTEN_FAILED naming it.
 * With `redis` (config cluster.redis) the node's aedes and its notices go
 * through Redis, so several nodes serve one fleet (cloud/redis.ts).
 */
import type { CloudLog } from "./log";
import { randomBytes, X509Certificate } from "node:crypto";
import { join } from "node:path";
import { Authenticator } from "./auth/authenticator";
import { buildAdminApi, listenAdminApi, type AdminListener } from "./http-api";
import { adminToken } from "./admin-token";
import { adminTlsPlan, adminTlsMaterial, type AdminTlsOption } from "./admin-tls";
import { CloudError, isCloudError } from "./errors";
import { replaceOwnerOnlyFile } from "./owner-files";
import { IssuanceService } from "./issuance";
import { loadMasterKey } from "./master-key";
import { MqttServer, type AbuseLimits, type TlsSessionOptions } from "./mqtt-server";
import { nodeDigest } from "./node-digest";
import { createServerIdentity, privateKeyPem } from "./pki";
import { fileRadiusIdentity, radiusIdentity, RADIUS_SERVER_NAME } from "./radius/identity";
import { fileServerTls, issuedServerTls, RENEW_BEFORE_DAYS } from "./server-identity";
import { RadiusServer, type RadiusServerOptions } from "./radius/server";
import { Registry } from "./registry";
import { SqliteResumptionStore, resumptionKey } from "./tls-store-sqlite";
import { CloudServices } from "./services";
import { NetworkServices } from "./network-service";
import { listenOps, type OpsListener } from "./ops-listener";
import type { ReadinessProbe } from "./health";
import { CloudMetrics, countFromStats } from "./metrics";
import { StorageHotspotStore } from "./radius/storage-hotspot-store";
import type { Histogram } from "prom-client";
import type { SqlValue, Storage } from "./storage/store";
import { StorageTlsSessionStore, radiusSessionKey, radiusTicketKeys } from "./radius/tls-session-storage";
import type { Notice, NoticeBus } from "./notices";
import { openSharedEmitter, redisNoticeBus, type SharedEmitter } from "./redis";
import { AdminWorker } from "./admin-worker";

export { CloudError, isCloudError, CLOUD_ERROR_CODES, type CloudErrorCode } from "./errors";
export { CloudServices } from "./services";
export type { DeviceView, AuditRecord } from "./registry";
export type { ProductCaInfo, IssuedDeviceCertificate, ProvisioningKeyInfo, LotInfo, NasClientInfo } from "./services";
export { RADIUS_SERVER_NAME } from "./radius/identity";
export { RadiusServer } from "./radius/server";

/** Tunables of the RADIUS server (docs/radius.md); everything else comes from the cloud. */
export type RadiusTuning = Pick<RadiusServerOptions,
  "fragmentSize" | "maxReassembly" | "maxSessions" | "sessionIdleMs" | "nasRate" | "duplicateTtlMs" | "sessionTimeoutS" | "tlsSessions" | "hotspots"
  | "accountingPort" | "acctInterimIntervalS" | "dynamicAuthorization">;

/** Options of startCloud. */
export interface StartCloudOptions {
  /** directory of the registry (created, mode 0700); with `database`, of the server CA file and the admin token only */
  dataDir: string;
  /**
   * a PostgreSQL registry shared by several cloud nodes (`postgres://user@host:port/db`);
   * default: SQLite in `dataDir` (cloud/storage/)
   */
  database?: string;
  /** the 32-byte master key; else `masterKeyFile`, else env WCM_MASTER_KEY */
  masterKey?: Uint8Array;
  masterKeyFile?: string;
  /** bind address of the MQTT/TLS listener (default 127.0.0.1) */
  mqttHost?: string;
  /** MQTT/TLS port (default 8883; 0 = ephemeral) */
  mqttPort?: number;
  /** bind address of the admin HTTP API (default 127.0.0.1); any other needs `adminName` and TLS */
  adminHost?: string;
  /** admin HTTP port (0 = ephemeral; undefined = no HTTP API) */
  httpPort?: number;
  /** the name clients reach the admin API by: its Host header and certificate name (required on a non-loopback adminHost) */
  adminName?: string;
  /**
   * TLS of the admin API: "issue" (a certificate for adminName from the server CA, made at each start),
   * `{ certFile, keyFile }` (the operator's PEM chain and key), or false (plain HTTP: loopback only).
   * Default: false on loopback, "issue" otherwise.
   */
  adminTls?: AdminTlsOption;
  /** the operator's admin token file (owner-only); default `<dataDir>/admin-token`, made on first start */
  adminTokenFile?: string;
  /** bind address of the RADIUS listener (default 127.0.0.1) */
  radiusHost?: string;
  /** RADIUS UDP port (undefined = no RADIUS server; 0 = ephemeral) */
  radiusPort?: number;
  /** RADIUS limits and fragment size */
  radius?: RadiusTuning;
  /** ms a connection may take to complete TLS and CONNECT (default 10000) */
  connectTimeoutMs?: number;
  /** most simultaneous MQTT/TLS connections (default 10000) */
  maxConnections?: number;
  /** login rates, lockout, unauthenticated-connection caps, refusal audit throttle (defaults: cloud/limits.ts) */
  limits?: AbuseLimits;
  /**
   * TLS session resumption of the MQTT endpoint (default: SqliteResumptionStore in the data folder, 10000 sessions,
   * 1 h, ticket keys rotated every 24 h, all surviving a restart; cloud/tls-sessions.ts, cloud/tls-store-sqlite.ts)
   */
  tlsSessions?: TlsSessionOptions;
  /** DNS names and IP addresses the server certificate names (default localhost, 127.0.0.1, ::1); the cloud's CA issues it */
  serverNames?: string[];
  /** DNS names and IP addresses in the RADIUS server certificate the cloud's CA issues (default [RADIUS_SERVER_NAME]; the first is the name devices validate) */
  radiusNames?: string[];
  /** the operator's RADIUS chain (PEM, leaf first) and key file, instead of one from the cloud's CA; re-read by reloadTls() */
  radiusCertFile?: string;
  radiusKeyFile?: string;
  /** the operator's server chain (PEM, leaf first) and key file, instead of a certificate from the cloud's CA; re-read by reloadTls() */
  serverCertFile?: string;
  serverKeyFile?: string;
  /** bind address of the ops listener: /metrics, /healthz, /readyz without credentials (default 127.0.0.1) */
  opsHost?: string;
  /** ops HTTP port (0 = ephemeral; undefined = no ops listener) */
  opsPort?: number;
  /** the metrics registry (default: a new one, with the process metrics when an ops listener is asked for) */
  metrics?: CloudMetrics;
  /** the other processes of this cloud (cloud/notices.ts): revocations, rotations and network changes reach their sessions too */
  notices?: NoticeBus;
  /**
   * Redis shared by the cloud's nodes (`redis://host:port`, cloud/redis.ts): every node's aedes
   * publishes through it, and notices travel on it instead of `notices`. Default: none (this process only).
   */
  redis?: string;
  /** structured log lines (cloud/log.ts); none when undefined */
  log?: CloudLog;
}

/** One listener as start-up reports it. */
export interface ListenerInfo {
  name: "mqtt" | "radius" | "admin" | "ops";
  /** mqtts (TCP), radius (UDP), https or http */
  protocol: "mqtts" | "radius" | "https" | "http";
  host: string;
  port: number;
  /** the certificate it presents (RADIUS: in EAP), undefined for plain HTTP */
  certificate?: { subject: string; names: string[]; notAfter: string; issuer: string };
}

/** What drain-and-close did (Cloud.shutdown). */
export interface ShutdownReport {
  /** ms from the call to the registry closed */
  ms: number;
  /** issuance requests still being answered when draining began (each was let finish) */
  inFlight: number;
  /** MQTT connections open when draining began, and those destroyed at the bound (not ended cleanly) */
  connections: number;
  destroyed: number;
}

/** The running admin API and how to reach it. */
export interface AdminEndpoint {
  port: number;
  /** the name to send in Host (and to check in the certificate) */
  name: string;
  /** e.g. `http://127.0.0.1:8080` or `https://admin.example.com:8443` */
  url: string;
  /** the bearer token every request needs */
  token: string;
  /** the file the token is in */
  tokenFile: string;
  /** served over TLS */
  tls: boolean;
  /** the CA of an issued admin certificate (the server CA); undefined for plain HTTP or the operator's certificate */
  caPem: string | undefined;
}

/** A running cloud. */
export interface Cloud {
  mqttPort: number;
  /** undefined when no HTTP API was asked for */
  httpPort: number | undefined;
  /** the admin API (address, token), undefined when none was asked for */
  admin: AdminEndpoint | undefined;
  /** undefined when no RADIUS server was asked for */
  radiusPort: number | undefined;
  /** the trust anchor devices need for the MQTT endpoint and the RADIUS server (PEM) */
  serverCaPem: string;
  /** the first name in the server certificate (what devices put in `serverName`) */
  serverName: string;
  /** every name in the server certificate */
  serverNames: string[];
  /**
   * Re-reads the server certificate (SIGHUP): the operator's files, or the cloud's
   * own certificate (re-issued when `renew`); new handshakes use it, open sessions stay.
   */
  reloadTls(renew?: boolean): Promise<ListenerInfo>;
  /** the name in the RADIUS server's certificate, which devices validate */
  radiusServerName: string;
  /** the RADIUS server (stats), when running */
  radius: RadiusServer | undefined;
  /** the admin service layer (actor "admin:api" in the audit log) */
  services: CloudServices;
  /** the registry (tests, tools) */
  registry: Registry;
  /** the MQTT endpoint (stats, disconnect) */
  mqtt: MqttServer;
  /** the credential decision of every front end (lockouts, login rates, refusal audit) */
  auth: Authenticator;
  /** the issuance service (stats) */
  issuance: IssuanceService;
  /** hotspot profiles and devices' private networks (actor "admin:api") */
  network: NetworkServices;
  /** every listener with its address and certificate (start-up prints one line each) */
  listeners: ListenerInfo[];
  /** the cloud's Prometheus metrics (served on the ops listener's /metrics) */
  metrics: CloudMetrics;
  /** the ops listener's port, undefined when none was asked for */
  opsPort: number | undefined;
  /** readiness: the registry answers and every device listener is up (false once shutdown() began) */
  ready(): Promise<boolean>;
  /**
   * Graceful stop (SIGTERM): refuses new connections, lets requests being
   * answered finish, ends every session, closes the registry. Waits at most
   * `boundMs` (default 10000) for the device connections, then destroys what is left.
   */
  shutdown(boundMs?: number): Promise<ShutdownReport>;
  /** Stops every endpoint at once and closes the registry. */
  close(): Promise<void>;
}

/** The cloud's own metrics read at scrape time (cloud/README.md, Metrics, lists them). */
function instrument(metrics: CloudMetrics, parts: { mqtt: MqttServer; radius: RadiusServer | undefined; registry: Registry; listeners: ListenerInfo[]; issuance: IssuanceService }): void {
  const { mqtt, radius, registry, listeners } = parts;
  metrics.gauge("wcm_mqtt_sessions", "authenticated live MQTT sessions", [], (g) => g.set(mqtt.liveSessions));
  metrics.gauge("wcm_mqtt_preauth_connections", "connections accepted that have not logged in yet", [], (g) => g.set(mqtt.unauthenticatedConnections));
  countFromStats(metrics, "wcm_tls_handshakes_total", "MQTT TLS handshakes: full, resumed, failed", ["result"], () => [
    [{ result: "full" }, mqtt.stats.tlsFull], [{ result: "resumed" }, mqtt.stats.tlsResumed], [{ result: "failed" }, mqtt.stats.tlsErrors],
  ]);
  countFromStats(metrics, "wcm_issuance_malformed_total", "requests and status reports on a device's topics that did not decode", ["topic"], () => [
    [{ topic: "request" }, parts.issuance.stats.badRequests], [{ topic: "status" }, parts.issuance.stats.badStatus],
  ]);
  if (radius) {
    countFromStats(metrics, "wcm_radius_decisions_total", "RADIUS Access-Accepts and Access-Rejects by EAP method (tls, ttls; none before one was chosen), rejects by reason", ["decision", "method", "reason"], () =>
      Object.entries(radius.stats.decisions).map(([key, n]): [Record<string, string>, number] => {
        const [decision, method, reason] = key.split(" ");
        return [{ decision, method, reason: reason === "-" ? "" : reason }, n];
      }));
    metrics.gauge("wcm_radius_hotspot_sessions", "live hotspot sessions (RADIUS accounting) per NAS client", ["nas"], async (g) => {
      g.reset();
      for (const [nas, n] of Object.entries(await radius.liveSessionsPerNas())) g.set({ nas }, n);
    });
    countFromStats(metrics, "wcm_radius_dropped_total", "RADIUS packets dropped, by why", ["why"], () => [
      [{ why: "malformed" }, radius.stats.malformed], [{ why: "unknown_client" }, radius.stats.unknownClient], [{ why: "bad_authenticator" }, radius.stats.badAuthenticator],
      [{ why: "duplicate" }, radius.stats.duplicates], [{ why: "stale_eap" }, radius.stats.staleEap], [{ why: "error" }, radius.stats.errors],
    ]);
  }
  const query = metrics.histogram("wcm_registry_query_seconds", "seconds of each registry query by op (get, all, run; probe: the scrape's own one-row read)", ["op"]);
  timeQueries(registry, query);
  metrics.gauge("wcm_registry_up", "1 when the registry answered the scrape's read", [], async (g) => {
    const end = query.startTimer({ op: "probe" });
    try {
      await registry.serverTls("ca");
      g.set(1);
    } catch {
      g.set(0);
    } finally {
      end();
    }
  });
  metrics.gauge("wcm_certificate_expiry_timestamp_seconds", "notAfter of each listener's certificate, Unix seconds", ["listener", "subject"], (g) => {
    g.reset();
    for (const l of listeners) if (l.certificate) g.set({ listener: l.name, subject: l.certificate.subject }, Date.parse(l.certificate.notAfter) / 1000);
  });
}

/**
 * Times every query of the registry's storage (get, all, run) into `histogram`, by op.
 * The storage object itself is kept (its class is what tools test for); only its three
 * query methods are wrapped, once.
 */
function timeQueries(registry: Registry, histogram: Histogram<string>): void {
  const storage = registry.storage as Storage & { [TIMED]?: true };
  if (storage[TIMED]) return;
  storage[TIMED] = true;
  for (const op of ["get", "all", "run"] as const) {
    const query = storage[op].bind(storage) as (sql: string, args?: readonly SqlValue[]) => Promise<unknown>;
    Object.defineProperty(storage, op, {
      configurable: true,
      value: async (sql: string, args?: readonly SqlValue[]) => {
        const end = histogram.startTimer({ op });
        try {
          return await query(sql, args);
        } finally {
          end();
        }
      },
    });
  }
}
const TIMED = Symbol("wcm.timedQueries");

/** The names, subject, issuer and expiry of a PEM certificate (the first of a chain). */
export function certificateInfo(pem: string): ListenerInfo["certificate"] {
  const cert = new X509Certificate(pem);
  const names = (cert.subjectAltName ?? "").split(",").map((n) => n.trim().replace(/^(DNS|IP Address):/, "")).filter(Boolean);
  const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1];
  return { subject: cn ?? cert.subject, names: names.length > 0 ? names : cn ? [cn] : [], notAfter: new Date(cert.validTo).toISOString(), issuer: /CN=([^\n,]+)/.exec(cert.issuer)?.[1] ?? cert.issuer };
}

/**
 * Starts the cloud.
 * @throws CloudError MASTER_KEY_MISSING / MASTER_KEY_INVALID / MASTER_KEY_WRONG before anything listens
 * @example const cloud = await startCloud({ dataDir, masterKey, mqttPort: 0, httpPort: 0 });
 */
/** Runs `start`, turning a bind failure into LISTEN_FAILED naming the listener and address. */
async function bind<T>(listener: string, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (isCloudError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? "ERROR";
    const why: Record<string, string> = { EADDRINUSE: "the port is in use", EACCES: "permission denied", EADDRNOTAVAIL: "no such local address", ENOTFOUND: "unknown host" };
    throw new CloudError("LISTEN_FAILED", `the ${listener} listener cannot bind ${host.includes(":") ? `[${host}]` : host}:${port}: ${why[code] ?? (error as Error).message} (${code})`);
  }
}

export async function startCloud(options: StartCloudOptions): Promise<Cloud> {
  const log = options.log;
  const adminHost = options.adminHost ?? "127.0.0.1";
  const tlsPlan = options.httpPort === undefined ? undefined : adminTlsPlan(adminHost, options.adminName, options.adminTls);
  const masterKey = loadMasterKey({ masterKey: options.masterKey, masterKeyFile: options.masterKeyFile });
  let registry: Registry;
  try {
    registry = await Registry.at(options.database !== undefined ? { database: options.database } : { dataDir: options.dataDir }, masterKey);
  } catch (error) {
    masterKey.fill(0);
    throw error;
  }
  const ownStore = options.tlsSessions?.enabled === false || options.tlsSessions?.store ? undefined : await (async () => {
    const key = resumptionKey(masterKey);
    try {
      return SqliteResumptionStore.open(options.dataDir, key);
    } catch (error) {
      await registry.close();
      masterKey.fill(0);
      throw error;
    } finally {
      key.fill(0);
    }
  })();
  // the RADIUS server's TLS sessions in the registry's storage (restart-proof, shared by nodes on PostgreSQL) and ticket keys every node derives alike
  const radiusResumption = options.radiusPort === undefined || options.radius?.tlsSessions?.enabled === false || options.radius?.tlsSessions?.store
    ? undefined
    : (() => {
      const key = radiusSessionKey(masterKey);
      try {
        return { store: new StorageTlsSessionStore(registry.storage, key), ticketKeys: radiusTicketKeys(masterKey) };
      } finally {
        key.fill(0);
      }
    })();
  // bulk imports run in a worker thread with its own registry connection (cloud/admin-worker.ts); it keeps a copy of the key
  const bulk = new AdminWorker({ location: options.database !== undefined ? { database: options.database } : { dataDir: options.dataDir }, masterKey });
  masterKey.fill(0);
  const tlsSessions = ownStore ? { ...options.tlsSessions, store: ownStore } : options.tlsSessions;
  let mqtt: MqttServer | undefined;
  let http: AdminListener | undefined;
  let radius: RadiusServer | undefined;
  let ops: OpsListener | undefined;
  let radiusCertPem: string | undefined;
  let mq: SharedEmitter | undefined;
  try {
    // across nodes: aedes's messages and the notices through Redis (else: the cluster's IPC bus, or none)
    mq = options.redis === undefined ? undefined : await openSharedEmitter(options.redis, { log: options.log });
    const bus = mq ? await redisNoticeBus(mq) : options.notices;
    const serverTls = async (renew = false) => options.serverCertFile !== undefined && options.serverKeyFile !== undefined
      ? fileServerTls(options.serverCertFile, options.serverKeyFile)
      : issuedServerTls(registry, options.serverNames, renew);
    const identity = await serverTls();
    if ("renewalBlocked" in identity && identity.renewalBlocked) {
      options.log?.("warn", `the MQTT server certificate expires within ${RENEW_BEFORE_DAYS} days and the server CA's key is offline: server-cert renew --ca-key <file>, then SIGHUP`);
    }
    replaceOwnerOnlyFile(join(options.dataDir, "server-ca.pem"), identity.caPem);
    const token = tlsPlan && adminToken(options.dataDir, options.adminTokenFile);
    const adminTls = tlsPlan && await adminTlsMaterial(registry, tlsPlan);
    const issuance = new IssuanceService(registry, nodeDigest, (n) => new Uint8Array(randomBytes(n)));
    const auth = new Authenticator({
      registry, digest: nodeDigest, limits: options.limits?.login, refusalAudit: options.limits?.refusalAudit, log: options.log,
    });
    const metrics = options.metrics ?? new CloudMetrics({ process: options.opsPort !== undefined });
    const mqttHost = options.mqttHost ?? "127.0.0.1";
    const mqttPort = options.mqttPort ?? 8883;
    mqtt = await bind("MQTT/TLS", mqttHost, mqttPort, () => MqttServer.start({
      registry, digest: nodeDigest, issuance, host: mqttHost, port: mqttPort, auth,
      certPem: identity.certPem, keyPem: identity.keyPem, connectTimeoutMs: options.connectTimeoutMs,
      maxConnections: options.maxConnections, limits: options.limits, log: options.log, tlsSessions, metrics, mq,
    }));
    const live = mqtt;
    let closed = false;
    let stopping = false;
    const probe: ReadinessProbe = {
      async ready() {
        if (stopping || closed || !live.listening) return false;
        await registry.serverTls("ca");
        return true;
      },
    };
    // what this process decides about a device reaches its session here and, through the bus, on every other process
    const apply = (notice: Notice): void => {
      switch (notice.kind) {
        case "disconnect":
          live.disconnect(notice.deviceId);
          break;
        case "rotation":
          live.notifyRotation(notice.deviceId);
          break;
        case "network":
          live.notifyNetwork(notice.deviceId);
          break;
        case "unlock":
          void auth.unlock(notice.deviceId).catch(() => undefined);
          break;
        case "ca-revoked":
          void live.disconnectWhere(async (id) => (await registry.device(id))?.ca_name === notice.caName);
          break;
        case "certificates":
          void live.recheckCertificates();
          break;
        case "hotspots":
          live.notifyConfig();
          break;
      }
    };
    const emit = (notice: Notice): void => {
      apply(notice);
      bus?.publish(notice);
    };
    bus?.subscribe(apply);
    const network = new NetworkServices(registry, "admin:api", {
      hotspotsChanged: () => emit({ kind: "hotspots" }),
      networkChanged: (id) => emit({ kind: "network", deviceId: id }),
    });
    const services = new CloudServices(registry, "admin:api", {
      // every revocation also ends the device's live hotspot sessions (Disconnect-Request, RFC 5176), sent once, from this process
      deviceRevoked: (id) => {
        log?.("info", "device revoked: its sessions are closed", { event: "device.revoked", deviceId: id });
        emit({ kind: "disconnect", deviceId: id });
        void radius?.disconnectDevice(id, "device revoked");
      },
      secretRotated: (id) => {
        log?.("info", "secret rotation started", { event: "rotation.started", deviceId: id });
        emit({ kind: "rotation", deviceId: id });
      },
      caRevoked: (name) => {
        log?.("info", "product CA revoked", { event: "ca.revoked", ca: name });
        emit({ kind: "ca-revoked", caName: name });
        void radius?.disconnectWhere(async (id) => (await registry.device(id))?.ca_name === name, `CA ${name} revoked`);
      },
      certificatesRevoked: () => {
        emit({ kind: "certificates" });
        void radius?.recheckCertificates("certificate revoked");
      },
      // retiring a lot closes nothing: a temporary session already open may finish its issuance
      lotKeyRevoked: (lot, temporaryIds) => {
        log?.("info", "lot key revoked", { event: "lot.key_revoked", lot, sessions: temporaryIds.length });
        for (const id of temporaryIds) emit({ kind: "disconnect", deviceId: id });
        void radius?.disconnectLot(lot, temporaryIds, `lot ${lot} key revoked`);
      },
      lotRevoked: (lot, deviceIds) => {
        log?.("info", "lot revoked", { event: "lot.revoked", lot, devices: deviceIds.length });
        for (const id of deviceIds) emit({ kind: "disconnect", deviceId: id });
        void radius?.disconnectLot(lot, deviceIds, `lot ${lot} revoked`);
      },
      deviceUnlocked: (id) => {
        bus?.publish({ kind: "unlock", deviceId: id });
        return auth.unlock(id);
      },
      hotspotStatus: async (id) => radius?.hotspots.status(id),
      disconnectHotspot: async (id, reason) => radius ? radius.disconnectDevice(id, reason) : [],
      bulkImport: (actor, bundle, checksum) => bulk.importBundle(actor, bundle, checksum),
      bulkImportCsv: (actor, csv, caName, lot) => bulk.importCsv(actor, csv, caName, lot),
    });
    const radiusTls = async () => options.radiusCertFile !== undefined && options.radiusKeyFile !== undefined
      ? fileRadiusIdentity(options.radiusCertFile, options.radiusKeyFile)
      : radiusIdentity(registry, options.radiusNames);
    let radiusName = options.radiusNames?.[0] ?? RADIUS_SERVER_NAME;
    if (options.radiusPort !== undefined) {
      const tls = await radiusTls();
      radiusCertPem = tls.certPem;
      radiusName = tls.names[0] ?? radiusName;
      const radiusHost = options.radiusHost ?? "127.0.0.1";
      const started = new RadiusServer({
        // accounting state in the registry's storage (restart-proof; shared by the nodes on PostgreSQL) unless the caller gives a store
        hotspots: new StorageHotspotStore(registry.storage),
        ...options.radius, registry, digest: nodeDigest, auth, certPem: tls.certPem, keyPem: tls.keyPem,
        ...(radiusResumption ? { tlsSessions: { ...radiusResumption, ...options.radius?.tlsSessions } } : {}),
        host: radiusHost, port: options.radiusPort, log: options.log,
      });
      radius = started;
      await bind("RADIUS", radiusHost, options.radiusPort, () => started.start());
    }
    const radiusServer = radius;
    let admin: AdminEndpoint | undefined;
    if (options.httpPort !== undefined && tlsPlan && token && adminTls !== undefined) {
      const api = buildAdminApi(services.as("admin:http"), {
        token: token.token, network: network.as("admin:http"), names: tlsPlan.names, scheme: adminTls ? "https" : "http", probe, log: options.log,
      });
      const httpPort = options.httpPort;
      http = await bind("admin HTTP", adminHost, httpPort, () => listenAdminApi(api, { host: adminHost, port: httpPort, tls: adminTls || undefined }));
      admin = {
        port: http.port, name: tlsPlan.name, url: `${adminTls ? "https" : "http"}://${tlsPlan.name}:${http.port}`,
        token: token.token, tokenFile: token.file, tls: Boolean(adminTls), caPem: adminTls ? adminTls.caPem : undefined,
      };
    }
    const httpListener = http;
    if (options.opsPort !== undefined) {
      const opsHost = options.opsHost ?? "127.0.0.1";
      const opsPort = options.opsPort;
      ops = await bind("ops HTTP", opsHost, opsPort, () => listenOps({ host: opsHost, port: opsPort, probe, metrics: () => metrics.render() }));
    }
    const opsListener = ops;
    const listeners: ListenerInfo[] = [
      { name: "mqtt", protocol: "mqtts", host: mqttHost, port: mqtt.port, certificate: certificateInfo(identity.certPem) },
    ];
    if (radiusServer) listeners.push({ name: "radius", protocol: "radius", host: options.radiusHost ?? "127.0.0.1", port: radiusServer.port, certificate: radiusCertPem ? certificateInfo(radiusCertPem) : undefined });
    if (httpListener) listeners.push({ name: "admin", protocol: adminTls ? "https" : "http", host: adminHost, port: httpListener.port, certificate: adminTls ? certificateInfo(adminTls.certPem) : undefined });
    if (opsListener) listeners.push({ name: "ops", protocol: "http", host: options.opsHost ?? "127.0.0.1", port: opsListener.port });
    instrument(metrics, { mqtt: live, radius: radiusServer, registry, listeners, issuance });
    const closeAll = async () => {
      closed = true;
      await httpListener?.close();
      await opsListener?.close();
      await radiusServer?.close();
      await live.close();
      await bulk.close();
      ownStore?.close();
      await registry.close();
    };
    return {
      mqttPort: mqtt.port,
      httpPort: http?.port,
      admin,
      radiusPort: radiusServer?.port,
      serverCaPem: identity.caPem,
      serverName: identity.names[0] ?? "localhost",
      serverNames: identity.names,
      async reloadTls(renew = false) {
        const next = await serverTls(renew);
        live.setCertificate(next.certPem, next.keyPem);
        listeners[0] = { ...listeners[0], certificate: certificateInfo(next.certPem) };
        replaceOwnerOnlyFile(join(options.dataDir, "server-ca.pem"), next.caPem);
        if (radiusServer) {
          // the RADIUS certificate too: the operator's files again, or the registry's (re-issued when due)
          const radiusNext = await radiusTls();
          radiusServer.replaceIdentity(radiusNext.certPem, radiusNext.keyPem);
          const at = listeners.findIndex((l) => l.name === "radius");
          if (at >= 0) listeners[at] = { ...listeners[at]!, certificate: certificateInfo(radiusNext.certPem) };
        }
        return listeners[0];
      },
      radiusServerName: radiusName,
      radius: radiusServer,
      services,
      registry,
      mqtt,
      auth,
      issuance,
      network,
      listeners,
      metrics,
      opsPort: opsListener?.port,
      ready: () => probe.ready(),
      async shutdown(boundMs = 10_000) {
        const started = Date.now();
        if (closed || stopping) return { ms: 0, inFlight: 0, connections: 0, destroyed: 0 };
        stopping = true;
        // the admin API and RADIUS first: no new operator work, no new EAP session
        await httpListener?.close();
        await radiusServer?.close();
        log?.("info", "shutdown: draining device connections", { event: "shutdown.drain", boundMs, sessions: live.liveSessions });
        const drained = await live.drain(boundMs);
        closed = true;
        await opsListener?.close();
        // a bundle import still running stops (half written, finished by importing the same bundle again: cloud/bundle.ts)
        await bulk.close();
        ownStore?.close();
        await registry.close();
        log?.("info", "shutdown: registry closed", { event: "shutdown.done", ms: Date.now() - started, ...drained });
        return { ms: Date.now() - started, ...drained };
      },
      async close() {
        if (closed) return;
        await closeAll();
      },
    };
  } catch (error) {
    await http?.close();
    await ops?.close();
    await radius?.close();
    await mqtt?.close();
    // the broker closes its emitter; one opened before the broker started is closed here
    if (mq && !mqtt) await new Promise<void>((resolve) => mq!.close(() => resolve()));
    ownStore?.close();
    await bulk.close();
    await registry.close();
    throw error;
  }
}
