/*
 * Process behaviour (issue 9 item 4): /healthz and /readyz without
 * credentials and giving nothing away (admin and ops listeners), graceful
 * shutdown that lets a request being answered finish before sessions end,
 * and `serve` as a process: one start-up line per listener with its address,
 * certificate names and expiry; SIGTERM drains and exits 0; a second SIGTERM
 * exits at once. Deadlines are generous: they separate "exits" from "hangs",
 * not fast from slow.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../cloud/cli";
import type { CloudResponse } from "../modules/protocol";
import { closed, exchange, loginPassword, mustConnect, newSecret, sleep, startTestCloud, type TestCloud } from "./cloud-helpers";

async function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: response.status, body: await response.text() };
}

describe("process behaviour: probes, drain, serve's start-up and signals (issue 9 item 4)", function () {
  this.timeout(120_000);

  describe("probes and drain (startCloud)", function () {
    let t: TestCloud;
    beforeEach(async () => {
      t = await startTestCloud({ httpPort: 0, opsPort: 0 });
    });
    afterEach(async () => t?.stop());

    it("probes_HealthzReadyz_NoCredentialNeeded_BodyGivesNothingAway", async () => {
      for (const port of [t.cloud.httpPort!, t.cloud.opsPort!]) {
        assert.deepEqual(await get(port, "/healthz"), { status: 200, body: '{"status":"ok"}' });
        assert.deepEqual(await get(port, "/readyz", { host: "10.9.9.9" }), { status: 200, body: '{"status":"ready"}' }, "any Host: probes use an address");
      }
      assert.equal((await get(t.cloud.httpPort!, "/v1/devices")).status, 401, "the rest of the admin API still needs the token");
      assert.equal((await get(t.cloud.opsPort!, "/v1/devices")).status, 404, "the ops listener serves nothing else");
      const post = await fetch(`http://127.0.0.1:${t.cloud.opsPort}/readyz`, { method: "POST", body: "x" });
      assert.equal(post.status, 405);
      assert.equal(await t.cloud.ready(), true);
    });

    it("shutdown_RequestBeingAnswered_FinishesBeforeTheSessionEnds_ReadyzGoes503", async () => {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "drain-1", secretHex: s.hex });
      const client = await mustConnect(t.cloud, { id: "drain-1", password: loginPassword("drain-1", s.bytes, "s", 1) });
      // an asynchronous registry answers later: hold the answer until shutdown has begun
      const issuance = t.cloud.issuance as unknown as { handleRequest: (...args: unknown[]) => unknown };
      const original = issuance.handleRequest.bind(issuance);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let arrived!: () => void;
      const arrival = new Promise<void>((resolve) => (arrived = resolve));
      issuance.handleRequest = (...args: unknown[]) => {
        arrived();
        return gate.then(() => original(...args));
      };
      const answer = exchange(client, "drain-1", { v: 1, rid: "held", op: "issue" }, 60_000);
      await arrival;
      const shutdown = t.cloud.shutdown(60_000);
      const opsPort = t.cloud.opsPort!;
      await sleep(100);
      assert.equal(await t.cloud.ready(), false, "not ready once draining");
      assert.equal((await get(opsPort, "/readyz")).status, 503);
      assert.equal(client.connected, true, "the session waits for its answer");
      release();
      const response: CloudResponse = await answer;
      assert.equal(response.rid, "held");
      await closed(client, 30_000);
      const report = await shutdown;
      assert.equal(report.inFlight, 1);
      assert.equal(report.connections, 1);
      assert.equal(report.destroyed, 0);
      await assert.rejects(get(opsPort, "/healthz"), "every listener is closed");
    });
  });

  describe("serve as a process", function () {
    let work: string;
    let env: NodeJS.ProcessEnv;
    let config: string;
    before(async () => {
      work = mkdtempSync(join(tmpdir(), "wcm-serve-"));
      env = { ...process.env, WCM_DATA: join(work, "data"), WCM_MASTER_KEY: randomBytes(32).toString("hex") };
      const quiet = { out: () => undefined, err: () => undefined };
      assert.equal(await runCli(["init"], env, quiet), 0);
      config = join(work, "wcm.yaml");
      // raw TCP connections that never start TLS stay for the whole drain bound
      writeFileSync(config, [
        "mqtt: { port: 0 }", "admin: { port: 0 }", "ops: { port: 0 }", "radius: { enabled: true, port: 0 }",
        "shutdown: { drainMs: 60000 }", "limits: { connections: { helloTimeoutMs: 600000 } }", "",
      ].join("\n"));
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    /** Starts serve; resolves once every listener line is out. */
    function serve(): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<{ code: number | null; at: number }>; mqttPort: number }> {
      const child = spawn(process.execPath, ["--import", "tsx", "cloud/cli.ts", "serve", "--config", config], { env, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      let stdout = "";
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on("exit", (code, signal) => resolve({ code: code ?? (signal ? -1 : null), at: performance.now() })));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`serve did not start in 60 s: ${stderr}`));
        }, 60_000);
        child.stdout!.on("data", (chunk: Buffer) => {
          stdout += chunk.toString();
          if (!stdout.includes("\n")) return;
          clearTimeout(timer);
          resolve({ child, stderr: () => stderr, exited, mqttPort: (JSON.parse(stdout.split("\n")[0]) as { mqttPort: number }).mqttPort });
        });
        void exited.then(({ code }) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
    }

    function idle(port: number): Promise<Socket> {
      return new Promise((resolve, reject) => {
        const socket = netConnect({ port, host: "127.0.0.1", allowHalfOpen: true }, () => resolve(socket));
        socket.on("error", reject);
      });
    }

    it("serve_StartUpLinePerListener_WithAddressCertNamesAndExpiry", async () => {
      const s = await serve();
      try {
        // JSON log lines (cloud/log.ts): one "listening" event per listener, its message the human line
        const events = s.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { event?: string; listener?: string; port?: number; msg: string; level: string });
        const listening = events.filter((e) => e.event === "listening");
        assert.deepEqual(listening.map((e) => e.listener), ["mqtt", "radius", "admin", "ops"]);
        assert.equal(listening[0].port, s.mqttPort);
        assert.ok(listening.every((e) => e.level === "info"));
        const lines = listening.map((e) => e.msg);
        assert.match(lines[0], new RegExp(`listening mqtt mqtts://127\\.0\\.0\\.1:${s.mqttPort} cert localhost names=localhost,127\\.0\\.0\\.1,[^ ]+ expires \\d{4}-\\d\\d-\\d\\dT[^ ]+Z issuer=`));
        assert.match(lines[1], /listening radius radius:\/\/127\.0\.0\.1:\d+ cert radius\.localhost names=radius\.localhost expires \d{4}-/);
        assert.match(lines[3], /listening ops http:\/\/127\.0\.0\.1:\d+ \(no TLS\)/);
      } finally {
        s.child.kill("SIGKILL");
        await s.exited;
      }
    });

    it("serve_Sigterm_DrainsAndExits0", async () => {
      const s = await serve();
      s.child.kill("SIGTERM");
      const { code } = await s.exited;
      assert.equal(code, 0, s.stderr());
      assert.match(s.stderr(), /SIGTERM: draining/);
      assert.match(s.stderr(), /stopped in \d+ ms: 0 requests finished, 0 connections closed \(0 cut at the bound\), registry closed/);
    });

    it("serve_SecondSigterm_ExitsAtOnceWhileTheFirstDrains", async () => {
      const s = await serve();
      const socket = await idle(s.mqttPort);
      s.child.kill("SIGTERM");
      const drainLine = Date.now();
      while (!s.stderr().includes("SIGTERM: draining") && Date.now() - drainLine < 30_000) await sleep(50);
      await sleep(500);
      assert.equal(s.child.exitCode, null, "the first SIGTERM waits for the open connection (bound 60 s)");
      const sent = performance.now();
      s.child.kill("SIGTERM");
      const { code, at } = await s.exited;
      socket.destroy();
      assert.equal(code, 1, s.stderr());
      assert.match(s.stderr(), /SIGTERM again: exiting at once/);
      assert.ok(at - sent < 30_000, "well before the 60 s drain bound");
    });
  });
});
