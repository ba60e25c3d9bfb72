/*
 * Benchmark 1: time to ONLINE per provisioning option, through a delay proxy.
 *
 * The cloud runs in this process on loopback (temp dir, ephemeral port); one
 * device per option is provisioned per run (fresh ids and a fresh in-memory
 * flash every run: a login counter restarting at 1 would be a replay), and
 * each device runs alone through its own delay proxy, so the proxy's counts
 * are that run's. The floor is the protocol's minimum: TCP (1 RTT) + TLS
 * (2 RTT for 1.2, 1 for 1.3) + MQTT CONNECT/CONNACK (1) + for temporary
 * credentials issue (1) + commit (1).
 */
import type { AbuseLimits } from "../cloud/mqtt-server";
import { randomBytes } from "node:crypto";
import net from "node:net";
import tls from "node:tls";
import type { Cloud } from "../cloud/index";
import { createNodeDevice } from "../hosts/node/device";
import { createMqttLink } from "../hosts/node/mqtt-link";
import type { ManagerStatus } from "../modules/manager";
import { startDelayProxy, type DelayProxy } from "./delay-proxy";

export type Option = "certificate" | "secret" | "temporary";
export type TlsVersion = "TLSv1.2" | "TLSv1.3";

/** One measured run. */
export interface OnlineRun {
  ok: boolean;
  /** ms from manager.start() to the first ONLINE status */
  onlineMs: number;
  /** ms from manager.start() to the credential becoming permanent (temporary option) */
  permanentMs?: number;
  /** round trips (summed over connections) when ONLINE was reported */
  roundTrips: number;
  /** TLS sessions (proxy connections) used until ONLINE */
  sessions: number;
  /** state changes, ms after start */
  timeline: { at: number; state: string; credential: string }[];
  failure?: string;
}

/** The protocol floor in round trips. */
export function floorRoundTrips(option: Option, tls: TlsVersion): number {
  return 1 + (tls === "TLSv1.2" ? 2 : 1) + 1 + (option === "temporary" ? 2 : 0);
}

/** The devices a benchmark needs, provisioned in the cloud up front. */
export interface Provisioned {
  certificate: { deviceId: string; certificate: string; privateKey: string };
  secrets: Map<string, string>;
  provisioningKeyHex: string;
}

/** Device ids for run `i` of an option and TLS version (every run needs fresh ids but the certificate device). */
export function deviceIdFor(option: Option, tls: TlsVersion, i: number): string {
  if (option === "certificate") return "bench-cert-1";
  return `bench-${option === "secret" ? "sec" : "tmp"}-${tls === "TLSv1.2" ? "12" : "13"}-${i}`;
}

/** Provisions the devices of runs 0..`count`-1 per option and TLS version. */
export async function provision(cloud: Cloud, count: number): Promise<Provisioned> {
  const services = cloud.services;
  const ca = await services.createProductCa({ name: "bench-products" });
  const cert = await services.issueDeviceCertificate({ caName: ca.name, deviceId: "bench-cert-1", keyType: "rsa" });
  await services.registerCertificateDevice({ deviceId: "bench-cert-1", certificatePem: cert.certificatePem });
  const secrets = new Map<string, string>();
  const temporaryIds: string[] = [];
  for (const tls of ["TLSv1.2", "TLSv1.3"] as const) {
    for (let i = 0; i < count; i++) {
      const secretId = deviceIdFor("secret", tls, i);
      const secret = randomBytes(32).toString("hex");
      secrets.set(secretId, secret);
      await services.registerSecretDevice({ deviceId: secretId, secretHex: secret });
      temporaryIds.push(deviceIdFor("temporary", tls, i));
    }
  }
  const lot = await services.createProvisioningKey({ lot: "bench-lot", allowlist: temporaryIds });
  return {
    certificate: { deviceId: "bench-cert-1", certificate: cert.certificatePem, privateKey: cert.privateKeyPem },
    secrets,
    provisioningKeyHex: lot.provisioningKeyHex,
  };
}

/** Runs one device alone through a fresh delay proxy until ONLINE (and PERMANENT), or `timeoutMs`. */
export async function runOnce(
  cloud: Cloud,
  provisioned: Provisioned,
  option: Option,
  tls: TlsVersion,
  i: number,
  oneWayMs: number,
  timeoutMs: number,
): Promise<OnlineRun> {
  const proxy: DelayProxy = await startDelayProxy(cloud.mqttPort, oneWayMs);
  const deviceId = deviceIdFor(option, tls, i);
  const cloudConfig = { host: "127.0.0.1", port: proxy.port, ca: cloud.serverCaPem, serverName: cloud.serverName };
  const config =
    option === "certificate"
      ? { deviceId, option, certificate: provisioned.certificate.certificate, privateKey: provisioned.certificate.privateKey, cloud: cloudConfig }
      : option === "secret"
        ? { deviceId, option, secret: provisioned.secrets.get(deviceId), cloud: cloudConfig }
        : { deviceId, option, provisioningKey: provisioned.provisioningKeyHex, cloud: cloudConfig };
  // no flashFile: a fresh in-memory flash for every run
  const { manager } = createNodeDevice(config, { link: () => createMqttLink({ maxTlsVersion: tls, connectTimeoutMs: timeoutMs }) });
  const timeline: OnlineRun["timeline"] = [];
  const started = performance.now();
  const result = await new Promise<OnlineRun>((resolve) => {
    let permanentMs: number | undefined;
    const timer = setTimeout(() => {
      done = true;
      const last = manager.status;
      resolve({
        ok: false, onlineMs: NaN, roundTrips: sum(proxy.roundTrips()), sessions: proxy.connections(), timeline,
        failure: `timed out in ${last.state}${last.lastFailure ? ` (${last.lastFailure.reason}${last.lastFailure.detail ? `: ${last.lastFailure.detail}` : ""})` : ""}`,
      });
    }, timeoutMs);
    let done = false;
    manager.onStatus((status: ManagerStatus) => {
      if (done) return;
      const at = performance.now() - started;
      const previous = timeline[timeline.length - 1];
      if (!previous || previous.state !== status.state || previous.credential !== status.credential) {
        timeline.push({ at, state: status.state, credential: status.credential });
      }
      if (status.credential === "permanent" && permanentMs === undefined) permanentMs = at;
      if (status.state === "ONLINE") {
        done = true;
        clearTimeout(timer);
        const trips = sum(proxy.roundTrips());
        resolve({
          ok: option !== "temporary" || status.credential === "permanent",
          onlineMs: at,
          ...(permanentMs !== undefined ? { permanentMs } : {}),
          roundTrips: trips,
          sessions: proxy.connections(),
          timeline,
          ...(option === "temporary" && status.credential !== "permanent" ? { failure: `ONLINE as ${status.credential}` } : {}),
        });
      }
    });
    manager.start();
  });
  manager.stop();
  await proxy.close();
  return result;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Abuse limits opened wide for the benchmarks of the protocol and of the cloud's
 * capacity: every connection comes from 127.0.0.1 and a device logs in once per
 * run, which the production limits (cloud/limits.ts) would rightly pace.
 * bench/fleet-load.ts measures the cloud with its production limits.
 */
export const BENCH_LIMITS: AbuseLimits = {
  login: { perDevice: { burst: 1e9, perSecond: 1e9 }, perLot: { burst: 1e9, perSecond: 1e9 } },
  connections: {
    unauthenticatedPerSource: 100_000, unauthenticatedTotal: 100_000,
    newPerSource: { burst: 1e9, perSecond: 1e9 }, newTotal: { burst: 1e9, perSecond: 1e9 },
  },
};
