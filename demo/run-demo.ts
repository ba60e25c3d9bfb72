/*
 * `npm start`: the whole loop on one machine.
 *
 * Starts the reference cloud on loopback in a temporary directory (MQTT/TLS,
 * RADIUS, admin API), provisions three devices (one per option: certificate,
 * shared secret, temporary credentials) and runs them in the Node simulator
 * host; a fourth device (temporary credentials) has a simulated radio: it joins
 * the partner hotspot "ZipKey" (WPA2-Enterprise, EAP-TTLS against the cloud's
 * RADIUS server, a walled garden that reaches only the cloud), becomes
 * PERMANENT, receives its owner's Wi-Fi from the operator (sealed to the
 * device's key) and moves to it. A fifth device (shared secret, with a label
 * code) has no hotspot in range: after 1 s without a network it opens local
 * onboarding (SoftAP wcm-demo-home-0001 and its HTTP service on loopback); the
 * demo's owner client (modules/onboarding/client.ts, as `npm run onboard`
 * does) finds the SoftAP on that air, proves the label code, picks Home-5G
 * from the device's scan and hands it over; the device joins it and goes
 * ONLINE. Each device's state is shown live, one line per device. Exits 0 when
 * all are ONLINE (the radio devices on the owner's network, the cloud holding
 * JOINED), 1 on a timeout.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startCloud } from "../cloud/index";
import { createLogger, type LogLevel } from "../cloud/log";
import type { ManagerStatus } from "../modules/manager";
import { createNodeDevice } from "../hosts/node/device";
import { SimulatedAir, SimulatedRadio } from "../hosts/node/radio/index";
import { StatusBoard } from "./status-board";
import { nobleDigest } from "../modules/noble-digest";
import { OnboardingClient } from "../modules/onboarding/client";
import { newLabelCode, softApName } from "../modules/onboarding/label-code";
import { nodeSeal } from "../hosts/node/node-seal";
import { NodeSoftAp, softApUrl } from "../hosts/node/onboarding-softap";
import { httpTransport } from "../tools/onboard/cli";

const TIMEOUT_MS = 60_000;

async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), "wcm-demo-"));
  const started = performance.now();
  // env WCM_LOG_FILE: the cloud's JSON log lines go there (at WCM_LOG_LEVEL, default info); stdout stays the board
  const logger = process.env.WCM_LOG_FILE ? createLogger({ level: (process.env.WCM_LOG_LEVEL ?? "info") as LogLevel, file: process.env.WCM_LOG_FILE }) : undefined;
  const cloud = await startCloud({ dataDir, masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, httpPort: 0, radiusPort: 0, log: logger?.log });
  const board = new StatusBoard(process.stdout);
  board.note(`cloud: MQTT/TLS 127.0.0.1:${cloud.mqttPort}, RADIUS 127.0.0.1:${cloud.radiusPort}, admin API ${cloud.admin!.url} (token in ${cloud.admin!.tokenFile}), data in ${dataDir}`);

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

  // The air around the fourth device: a partner hotspot and its owner's Wi-Fi.
  const nasSecret = randomBytes(24).toString("base64url");
  await services.addNasClient({ name: "zipkey-ap", address: "127.0.0.1", secret: nasSecret });
  const air = new SimulatedAir();
  air.addAccessPoint({
    ssid: "ZipKey", security: "enterprise", roamingConsortium: ["5a03ba"], rssi: -55,
    internet: "walled-garden", walledGarden: [{ host: "127.0.0.1", port: cloud.mqttPort }],
    radius: { host: "127.0.0.1", port: cloud.radiusPort as number, secret: nasSecret },
  });
  const homePassword = randomBytes(12).toString("base64url");
  air.addAccessPoint({ ssid: "Home-5G", security: "psk", password: homePassword, rssi: -65, internet: "full" });
  const hotspotLot = await services.createProvisioningKey({ lot: "demo-lot-2", allowlist: ["demo-radio-0001"] });
  const radioDevice = createNodeDevice({
    deviceId: "demo-radio-0001", option: "temporary", provisioningKey: hotspotLot.provisioningKeyHex, cloud: cloudConfig,
    hotspots: [{ name: "zipkey", roamingConsortium: ["5a03ba"], radius: { serverName: cloud.radiusServerName, ca: cloud.serverCaPem } }],
  }, { flashFile: join(dataDir, "demo-radio-0001.flash.json"), radio: new SimulatedRadio(air) });
  devices.push(radioDevice);

  // The fifth device, in another home: no hotspot in range, only its owner's Home-5G.
  const homeSecret = randomBytes(32).toString("hex");
  await services.registerSecretDevice({ deviceId: "demo-home-0001", secretHex: homeSecret });
  const homeAir = new SimulatedAir();
  homeAir.addAccessPoint({ ssid: "Home-5G", security: "psk", password: homePassword, rssi: -58, internet: "full" });
  const labelCode = newLabelCode((n) => new Uint8Array(randomBytes(n)));
  const homeDevice = createNodeDevice(
    { deviceId: "demo-home-0001", option: "secret", secret: homeSecret, cloud: cloudConfig, labelCode },
    { flashFile: join(dataDir, "demo-home-0001.flash.json"), radio: new SimulatedRadio(homeAir), onboarding: new NodeSoftAp(homeAir), manager: { onboardAfterMs: 1000 } },
  );
  devices.push(homeDevice);
  board.note("devices: one per provisioning option, each with its own simulated flash; demo-radio-0001 and demo-home-0001 have a Wi-Fi radio");
  board.note("air: ZipKey (partner hotspot, WPA2-Enterprise, walled garden) and Home-5G (the owner's WPA2-PSK network)");
  board.note(`air of demo-home-0001: Home-5G only (no hotspot); its label says ${softApName("demo-home-0001")} and a setup code`);

  const unsubscribers: (() => void)[] = [];
  const done = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), TIMEOUT_MS);
    let handedOff = false;
    let joinedReported = false;
    let onboarding = false;
    let ownerSawJoined = false;
    const check = () => {
      const all = devices.map((d) => d.manager.status);
      const radio = all[3];
      const home = all[4];
      if (!onboarding && softApUrl(homeAir, softApName("demo-home-0001"))) {
        onboarding = true;
        void onboard();
      }
      if (!handedOff && radio.state === "ONLINE" && radio.credential === "permanent" && radio.network?.kind === "hotspot") {
        handedOff = true;
        void handOff();
      }
      const finished = all.every((s) => s.state === "ONLINE") && all[2].credential === "permanent"
        && radio.credential === "permanent" && radio.network?.ssid === "Home-5G" && joinedReported && ownerSawJoined
        && home.network?.kind === "private" && home.network.ssid === "Home-5G";
      if (finished) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    // The operator gives the device its owner's network once the device has sent
    // its sealing key (in its first hello); the cloud stores it sealed to that key.
    const handOff = async () => {
      for (let i = 0; i < 100 && !(await services.getDevice({ deviceId: "demo-radio-0001" })).network.sealingKey; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await cloud.network.setDeviceNetwork({ deviceId: "demo-radio-0001", ssid: "Home-5G", password: homePassword, priority: 80 });
      board.event("operator: set demo-radio-0001's private network Home-5G (sealed to the device's key)");
      for (let i = 0; i < 500; i++) {
        const result = (await services.getDevice({ deviceId: "demo-radio-0001" })).network.lastResult;
        if (result?.result === "JOINED") {
          board.event(`cloud: demo-radio-0001 reported ${result.result} Home-5G`);
          joinedReported = true;
          check();
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    // The owner of demo-home-0001: the phone joins its SoftAP, the code from the label, Home-5G from its scan.
    const onboard = async () => {
      const ssid = softApName("demo-home-0001");
      board.event(`owner: phone joined ${ssid}; entering the setup code from the label`);
      const client = new OnboardingClient(httpTransport(softApUrl(homeAir, ssid)!), { digest: nobleDigest, seal: nodeSeal, random: (n) => new Uint8Array(randomBytes(n)) });
      try {
        await client.authenticate("demo-home-0001", labelCode);
        const heard = await client.scan();
        board.event(`owner: code accepted (CPace); the device hears ${heard.map((n) => n.ssid).join(", ")}`);
        await client.sendNetworks([{ ssid: "Home-5G", password: homePassword, priority: 50 }]);
        board.event("owner: handed over Home-5G (sealed in the PAKE session)");
        const result = await client.waitForResult((ms) => new Promise((r) => setTimeout(r, ms)), 200, 100);
        board.event(`owner: the device says ${result.state} ${result.ssid ?? ""}`);
        // the demo ends (and the SoftAP with it) only once the owner's client has read the outcome
        ownerSawJoined = result.state === "JOINED";
        check();
      } catch (error) {
        board.event(`owner: onboarding failed: ${error instanceof Error ? error.message : String(error)}`);
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
  const settled = () => rows.every((row) => row.state === "ONLINE")
    && rows.find((row) => row.deviceId === "demo-radio-0001")?.network.on?.ssid === "Home-5G"
    && rows.find((row) => row.deviceId === "demo-home-0001")?.network.on?.ssid === "Home-5G";
  for (let i = 0; ok && i < 40 && !settled(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    rows = await services.listDevices();
  }
  console.log(ok ? `\nall devices ONLINE in ${seconds} s; the cloud's registry now says:` : `\ntimed out after ${TIMEOUT_MS / 1000} s; the cloud's registry says:`);
  for (const row of rows) {
    const on = row.network.on ? `  on ${row.network.on.kind} ${row.network.on.ssid}` : "";
    console.log(`  ${row.deviceId.padEnd(18)} ${String(row.credential ?? row.kind).padEnd(11)} ${String(row.state ?? "-").padEnd(8)} generation ${row.generation}${on}`);
  }
  for (const { manager } of devices) manager.stop();
  await cloud.close();
  logger?.close();
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
