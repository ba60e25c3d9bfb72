/*
 * `npm start`: the whole loop on one machine.
 *
 * Starts the reference cloud on loopback in a temporary directory, provisions
 * three devices (one per option: certificate, shared secret, temporary
 * credentials), runs them in the Node simulator host, and shows each one's
 * state live, one line per device, until every device is ONLINE and the
 * temporary one is PERMANENT. Exits 0 then, 1 on a timeout.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startCloud } from "../cloud/index";
import type { ManagerStatus } from "../modules/manager";
import { createNodeDevice } from "../hosts/node/device";
import { StatusBoard } from "./status-board";

const TIMEOUT_MS = 60_000;

async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-demo-"));
  const started = performance.now();
  const cloud = await startCloud({ dataDir, masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, httpPort: 0 });
  const board = new StatusBoard(process.stdout);
  board.note(`cloud: MQTT/TLS on 127.0.0.1:${cloud.mqttPort}, admin API on 127.0.0.1:${cloud.httpPort}, data in ${dataDir}`);

  const services = cloud.services;
  const ca = await services.createProductCa({ name: "demo-products" });
  const certDevice = await services.issueDeviceCertificate({ caName: ca.name, deviceId: "demo-cert-0001", keyType: "rsa" });
  await services.registerCertificateDevice({ deviceId: "demo-cert-0001", certificatePem: certDevice.certificatePem });
  const secret = randomBytes(32).toString("hex");
  await services.registerSecretDevice({ deviceId: "demo-secret-0001", secretHex: secret });
  const lot = await services.createProvisioningKey({ lot: "demo-lot-1", allowlist: ["demo-temp-0001"] });

  const cloudConfig = { host: "127.0.0.1", port: cloud.mqttPort, ca: cloud.serverCaPem, serverName: cloud.serverName };
  const configs = [
    { deviceId: "demo-cert-0001", option: "certificate", certificate: certDevice.certificatePem, privateKey: certDevice.privateKeyPem, cloud: cloudConfig },
    { deviceId: "demo-secret-0001", option: "secret", secret, cloud: cloudConfig },
    { deviceId: "demo-temp-0001", option: "temporary", provisioningKey: lot.provisioningKeyHex, cloud: cloudConfig },
  ];
  const devices = configs.map((config) => createNodeDevice(config, { flashFile: join(dataDir, `${config.deviceId}.flash.json`) }));
  board.note("devices: one per provisioning option, each with its own simulated flash");

  const unsubscribers: (() => void)[] = [];
  const done = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), TIMEOUT_MS);
    const check = () => {
      const all = devices.map((d) => d.manager.status);
      const finished = all.every((s) => s.state === "ONLINE") && all[2].credential === "permanent";
      if (finished) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    for (const { manager } of devices) {
      board.add(manager.deviceId, manager.status);
      unsubscribers.push(manager.onStatus((status: ManagerStatus) => {
        board.update(manager.deviceId, status);
        check();
      }));
    }
  });
  for (const { manager } of devices) manager.start();
  const ok = await done;
  for (const unsubscribe of unsubscribers) unsubscribe();
  board.finish();

  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  // Status reports are fire-and-forget (QoS 0): give the last ones a moment to land.
  let rows = await services.listDevices();
  for (let i = 0; ok && i < 20 && rows.some((row) => row.state !== "ONLINE"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    rows = await services.listDevices();
  }
  console.log(ok ? `\nall devices ONLINE in ${seconds} s; the cloud's registry now says:` : `\ntimed out after ${TIMEOUT_MS / 1000} s; the cloud's registry says:`);
  for (const row of rows) {
    console.log(`  ${row.deviceId.padEnd(18)} ${String(row.credential ?? row.kind).padEnd(11)} ${String(row.state ?? "-").padEnd(8)} generation ${row.generation}`);
  }
  for (const { manager } of devices) manager.stop();
  await cloud.close();
  rmSync(dataDir, { recursive: true, force: true });
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
