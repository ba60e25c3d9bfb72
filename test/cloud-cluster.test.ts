/*
 * `serve --workers 2` (cloud/cluster.ts): two worker processes share the
 * MQTT/TLS port on one data folder; the lead alone has the admin API; a
 * revocation through it closes the device's session whichever worker holds
 * it (notices relayed by the primary); SIGTERM stops the primary and every
 * worker. Asserts behaviour only: deadlines are generous.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import type { MqttClient } from "mqtt";
import { parseNotice } from "../cloud/notices";
import type { Cloud } from "../cloud/index";
import { closed, end, loginPassword, mustConnect, newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

interface Summary {
  mqttPort: number;
  adminUrl: string;
  adminTokenFile: string;
  serverCa: string;
  workers: number;
}

describe("cloud cluster: serve --workers 2", function () {
  this.timeout(180_000);
  let t: TestCloud;
  let serve: ChildProcess | undefined;
  let summary: Summary;
  let stderr = "";
  const devices = Array.from({ length: 6 }, (_, i) => ({ id: `cl-${i}`, secret: newSecret() }));

  before(async function () {
    t = await startTestCloud();
    for (const d of devices) await t.cloud.services.registerSecretDevice({ deviceId: d.id, secretHex: d.secret.hex });
    await t.cloud.close();
    const child = spawn(process.execPath, ["--import", "tsx", "cloud/cli.ts", "serve", "--workers", "2", "--mqtt-port", "0", "--http-port", "0", "--ops-port", "0"], {
      env: { ...process.env, WCM_DATA: t.dataDir, WCM_MASTER_KEY: Buffer.from(t.masterKey).toString("hex") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    serve = child;
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    summary = await new Promise<Summary>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`serve printed no summary in 150 s; stderr: ${stderr}`)), 150_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line && out.includes("\n")) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as Summary);
        }
      });
      child.once("exit", (code) => reject(new Error(`serve exited ${code}; stderr: ${stderr}`)));
    });
  });

  after(async function () {
    if (serve && serve.exitCode === null) {
      serve.kill("SIGKILL");
      await new Promise((resolve) => serve!.once("exit", resolve));
    }
    await t.stop();
  });

  it("serve_TwoWorkers_SummaryOnceWithTheLeadsListeners", function () {
    assert.equal(summary.workers, 2);
    assert.ok(summary.mqttPort > 0);
    assert.match(summary.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("revoke_ThroughTheLeadsAdminApi_ClosesEverySessionOnEitherWorker", async function () {
    const target = { mqttPort: summary.mqttPort, serverCaPem: readFileSync(summary.serverCa, "utf8"), serverName: "localhost" } as Cloud;
    const clients: MqttClient[] = [];
    try {
      // six sessions: the primary hands connections to the workers in turn, so both hold some
      for (const d of devices) clients.push(await mustConnect(target, { id: d.id, password: loginPassword(d.id, d.secret.bytes, "s", 1) }));
      const token = readFileSync(summary.adminTokenFile, "utf8").trim();
      const allClosed = Promise.all(clients.map((c) => closed(c, 60_000)));
      for (const d of devices) {
        const response = await fetch(`${summary.adminUrl}/v1/devices/${d.id}/revoke`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
        assert.equal(response.status, 200, await response.text());
      }
      await allClosed;
    } finally {
      for (const c of clients) await end(c);
    }
  });

  it("sigterm_StopsThePrimaryAndEveryWorker", async function () {
    const child = serve!;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    // the workers were the primary's children: none still listens
    const target = { mqttPort: summary.mqttPort, serverCaPem: readFileSync(summary.serverCa, "utf8"), serverName: "localhost" } as Cloud;
    await assert.rejects(mustConnect(target, { id: devices[0].id, password: "x" }));
  });
});

describe("cloud notices: parseNotice", function () {
  it("parseNotice_WellFormed_Returned", function () {
    assert.deepEqual(parseNotice({ kind: "disconnect", deviceId: "d-1" }), { kind: "disconnect", deviceId: "d-1" });
    assert.deepEqual(parseNotice({ kind: "ca-revoked", caName: "ca" }), { kind: "ca-revoked", caName: "ca" });
    assert.deepEqual(parseNotice({ kind: "hotspots" }), { kind: "hotspots" });
  });

  it("parseNotice_Malformed_Undefined", function () {
    for (const bad of [null, [], "disconnect", { kind: "drop-table" }, { kind: "disconnect" }, { kind: "disconnect", deviceId: "" },
      { kind: "disconnect", deviceId: "x".repeat(129) }, { kind: "disconnect", deviceId: "d", extra: 1 }, { kind: "hotspots", deviceId: "d" },
      { kind: "ca-revoked", caName: 5 }]) {
      assert.equal(parseNotice(bad), undefined, JSON.stringify(bad));
    }
  });
});
