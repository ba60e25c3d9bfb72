/*
 * Structured logs (cloud/log.ts, issue 9 item 5): JSON lines with levels, a
 * request id per admin request (also in X-Request-Id), the device id and
 * connection id on device events, and no object ever written.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type CloudLog, type LogFields } from "../cloud/log";
import { connectDevice, end, loginPassword, mustConnect, newSecret, startTestCloud } from "./cloud-helpers";

interface Line { level: string; time: string; msg: string; event?: string; [key: string]: unknown }

function lines(file: string): Line[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Line);
}

describe("logs: structured JSON lines (cloud/log.ts)", function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wcm-log-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("createLogger_LevelsAndFields_OneJsonObjectPerLine", () => {
    const file = join(dir, "wcm.log");
    const logger = createLogger({ level: "info", file });
    logger.log("debug", "not written", { event: "x" });
    logger.log("info", "written", { event: "test.one", deviceId: "dev-1", n: 3, ok: true, gone: undefined });
    logger.log("error", "also written");
    logger.close();
    const out = lines(file);
    assert.deepEqual(out.map((l) => [l.level, l.msg]), [["info", "written"], ["error", "also written"]]);
    assert.equal(out[0].event, "test.one");
    assert.equal(out[0].deviceId, "dev-1");
    assert.equal(out[0].n, 3);
    assert.equal("gone" in out[0], false);
    assert.match(out[0].time, /^\d{4}-\d\d-\d\dT/);
    assert.equal(statSync(file).mode & 0o077, 0, "the log file is owner-only");
  });

  it("createLogger_ObjectSmuggledPastTheTypes_NotLogged", () => {
    const file = join(dir, "wcm.log");
    const logger = createLogger({ level: "debug", file });
    const key = Buffer.from("00112233445566778899aabbccddeeff", "hex");
    logger.log("info", "smuggled", { key: key as unknown as string, row: { secret: "s3cr3t" } as unknown as string, long: "x".repeat(2000) } as LogFields);
    logger.close();
    const text = readFileSync(file, "utf8");
    assert.equal(text.includes("00112233"), false);
    assert.equal(text.includes("s3cr3t"), false);
    const [line] = lines(file);
    assert.equal(line.key, "[not logged]");
    assert.equal(line.row, "[not logged]");
    assert.ok((line.long as string).length <= 513);
  });

  it("cloud_DeviceEventsAndAdminRequests_CarryIds", async function () {
    const seen: { level: string; message: string; fields?: LogFields }[] = [];
    const log: CloudLog = (level, message, fields) => void seen.push({ level, message, fields });
    const t = await startTestCloud({ httpPort: 0, log });
    try {
      const s = newSecret();
      await t.cloud.services.registerSecretDevice({ deviceId: "log-dev-1", secretHex: s.hex });
      const client = await mustConnect(t.cloud, { id: "log-dev-1", password: loginPassword("log-dev-1", s.bytes, "s", 1) });
      const refused = await connectDevice(t.cloud, { id: "log-dev-1", password: loginPassword("log-dev-1", newSecret().bytes, "s", 2) });
      assert.ok(refused.error);
      const admin = t.cloud.admin!;
      const response = await fetch(`${admin.url}/v1/devices/log-dev-1`, { headers: { authorization: `Bearer ${admin.token}` } });
      assert.equal(response.status, 200);
      const requestId = response.headers.get("x-request-id");
      const denied = await fetch(`${admin.url}/v1/devices`, { headers: { authorization: "Bearer wrong" } });
      assert.equal(denied.status, 401);
      await end(client);
      const accepted = seen.find((e) => e.fields?.event === "mqtt.login");
      assert.equal(accepted?.fields?.deviceId, "log-dev-1");
      assert.match(String(accepted?.fields?.conn), /^c\d+$/);
      const refusal = seen.find((e) => e.fields?.event === "mqtt.refused");
      assert.equal(refusal?.fields?.deviceId, "log-dev-1");
      assert.match(String(refusal?.fields?.reason), /^[A-Z_]+$/);
      assert.notEqual(refusal?.fields?.conn, accepted?.fields?.conn, "each connection has its own id");
      const request = seen.find((e) => e.fields?.event === "admin.request" && e.fields.status === 200);
      assert.match(requestId ?? "", /^[0-9a-f-]{36}$/);
      assert.equal(request?.fields?.reqId, requestId);
      assert.equal(request?.fields?.path, "/v1/devices/log-dev-1");
      const deniedLine = seen.find((e) => e.fields?.event === "admin.request" && e.fields.status === 401);
      assert.equal(deniedLine?.level, "warn");
      assert.equal(typeof deniedLine?.fields?.reqId, "string");
      for (const e of seen) for (const value of Object.values(e.fields ?? {})) assert.ok(value === null || typeof value !== "object", "fields are flat");
    } finally {
      await t.stop();
    }
  });
});
