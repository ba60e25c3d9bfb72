/*
 * The reference cloud in one call: startCloud() opens the registry, makes the
 * server TLS identity on first start, and runs the MQTT/TLS endpoint (with the
 * issuance service), optionally the RADIUS server for hotspots (cloud/radius/)
 * and the admin HTTP API on loopback.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LogPort } from "../modules/ports";
import { Authenticator } from "./auth/authenticator";
import { buildAdminApi, listenAdminApi, type AdminListener } from "./http-api";
import { IssuanceService } from "./issuance";
import { loadMasterKey } from "./master-key";
import { MqttServer, type AbuseLimits } from "./mqtt-server";
import { nodeDigest } from "./node-digest";
import { createServerIdentity, privateKeyPem } from "./pki";
import { radiusIdentity, RADIUS_SERVER_NAME } from "./radius/identity";
import { RadiusServer, type RadiusServerOptions } from "./radius/server";
import { Registry } from "./registry";
import { CloudServices } from "./services";
import { NetworkServices } from "./network-service";

export { CloudError, isCloudError, CLOUD_ERROR_CODES, type CloudErrorCode } from "./errors";
export { CloudServices } from "./services";
export type { DeviceView, AuditRecord } from "./registry";
export type { ProductCaInfo, IssuedDeviceCertificate, ProvisioningKeyInfo, LotInfo, NasClientInfo } from "./services";
export { RADIUS_SERVER_NAME } from "./radius/identity";
export { RadiusServer } from "./radius/server";

/** Tunables of the RADIUS server (docs/radius.md); everything else comes from the cloud. */
export type RadiusTuning = Pick<RadiusServerOptions,
  "fragmentSize" | "maxReassembly" | "maxSessions" | "sessionIdleMs" | "nasRate" | "duplicateTtlMs" | "sessionTimeoutS">;

/** Options of startCloud. */
export interface StartCloudOptions {
  /** directory of the registry (created, mode 0700) */
  dataDir: string;
  /** the 32-byte master key; else `masterKeyFile`, else env WCM_MASTER_KEY */
  masterKey?: Uint8Array;
  masterKeyFile?: string;
  /** listen address of both endpoints (default 127.0.0.1) */
  host?: string;
  /** MQTT/TLS port (default 8883; 0 = ephemeral) */
  mqttPort?: number;
  /** admin HTTP port (0 = ephemeral; undefined = no HTTP API) */
  httpPort?: number;
  /** when set, the HTTP API requires `Authorization: Bearer <adminToken>` */
  adminToken?: string;
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
  log?: LogPort;
}

/** A running cloud. */
export interface Cloud {
  mqttPort: number;
  /** undefined when no HTTP API was asked for */
  httpPort: number | undefined;
  /** undefined when no RADIUS server was asked for */
  radiusPort: number | undefined;
  /** the trust anchor devices need for the MQTT endpoint and the RADIUS server (PEM) */
  serverCaPem: string;
  /** the name in the server certificate */
  serverName: "localhost";
  /** the name in the RADIUS server's certificate, which devices validate */
  radiusServerName: typeof RADIUS_SERVER_NAME;
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
  /** Stops both endpoints and closes the registry. */
  close(): Promise<void>;
}

/** Returns the server CA and certificate, making them on first start. */
async function serverIdentity(registry: Registry): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  let ca = registry.serverTls("ca");
  let server = registry.serverTls("server");
  if (!ca || !server) {
    const identity = await createServerIdentity();
    registry.tx(() => {
      registry.storeServerTls("ca", identity.caCertPem, identity.caKeyDer);
      registry.storeServerTls("server", identity.certPem, identity.keyDer);
      registry.audit("cloud", "server-tls.create");
    });
    ca = registry.serverTls("ca")!;
    server = registry.serverTls("server")!;
  }
  return { caPem: ca.certPem, certPem: server.certPem, keyPem: privateKeyPem(server.keyDer) };
}

/**
 * Starts the cloud.
 * @throws CloudError MASTER_KEY_MISSING / MASTER_KEY_INVALID / MASTER_KEY_WRONG before anything listens
 * @example const cloud = await startCloud({ dataDir, masterKey, mqttPort: 0, httpPort: 0 });
 */
export async function startCloud(options: StartCloudOptions): Promise<Cloud> {
  const masterKey = loadMasterKey({ masterKey: options.masterKey, masterKeyFile: options.masterKeyFile });
  const registry = Registry.open(options.dataDir, masterKey);
  masterKey.fill(0);
  let mqtt: MqttServer | undefined;
  let http: AdminListener | undefined;
  let radius: RadiusServer | undefined;
  try {
    const identity = await serverIdentity(registry);
    writeFileSync(join(options.dataDir, "server-ca.pem"), identity.caPem);
    const issuance = new IssuanceService(registry, nodeDigest, (n) => new Uint8Array(randomBytes(n)));
    const host = options.host ?? "127.0.0.1";
    const auth = new Authenticator({
      registry, digest: nodeDigest, limits: options.limits?.login, refusalAudit: options.limits?.refusalAudit, log: options.log,
    });
    mqtt = await MqttServer.start({
      registry, digest: nodeDigest, issuance, host, port: options.mqttPort ?? 8883, auth,
      certPem: identity.certPem, keyPem: identity.keyPem, connectTimeoutMs: options.connectTimeoutMs,
      maxConnections: options.maxConnections, limits: options.limits, log: options.log,
    });
    const live = mqtt;
    const network = new NetworkServices(registry, "admin:api", {
      hotspotsChanged: () => live.notifyConfig(),
      networkChanged: (id) => live.notifyNetwork(id),
    });
    const services = new CloudServices(registry, "admin:api", {
      deviceRevoked: (id) => live.disconnect(id),
      secretRotated: (id) => live.notifyRotation(id),
      caRevoked: (name) => live.disconnectWhere((id) => registry.device(id)?.ca_name === name),
      certificatesRevoked: () => void live.recheckCertificates(),
      // retiring a lot closes nothing: a temporary session already open may finish its issuance
      lotKeyRevoked: (_lot, temporaryIds) => {
        for (const id of temporaryIds) live.disconnect(id);
      },
      lotRevoked: (_lot, deviceIds) => {
        for (const id of deviceIds) live.disconnect(id);
      },
      deviceUnlocked: (id) => auth.unlock(id),
    });
    if (options.radiusPort !== undefined) {
      const tls = await radiusIdentity(registry);
      radius = new RadiusServer({
        ...options.radius, registry, digest: nodeDigest, auth, certPem: tls.certPem, keyPem: tls.keyPem,
        host, port: options.radiusPort, log: options.log,
      });
      await radius.start();
    }
    const radiusServer = radius;
    if (options.httpPort !== undefined) {
      http = await listenAdminApi(buildAdminApi(services.as("admin:http"), { token: options.adminToken, network: network.as("admin:http") }), { host, port: options.httpPort });
    }
    const httpListener = http;
    let closed = false;
    return {
      mqttPort: mqtt.port,
      httpPort: http?.port,
      radiusPort: radiusServer?.port,
      serverCaPem: identity.caPem,
      serverName: "localhost",
      radiusServerName: RADIUS_SERVER_NAME,
      radius: radiusServer,
      services,
      registry,
      mqtt,
      auth,
      issuance,
      network,
      async close() {
        if (closed) return;
        closed = true;
        await httpListener?.close();
        await radiusServer?.close();
        await live.close();
        registry.close();
      },
    };
  } catch (error) {
    await http?.close();
    await radius?.close();
    await mqtt?.close();
    registry.close();
    throw error;
  }
}
