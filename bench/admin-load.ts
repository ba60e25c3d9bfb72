/*
 * Admin bulk work against device logins (`npm run bench:admin-load`; issue 9 item 6).
 *
 * The cloud runs in a child process (bench/cloud-child.ts, admin HTTP API on
 * an ephemeral loopback port) with 1,000 secret devices (WCM_BENCH_RECONNECT);
 * this process keeps them reconnecting continuously (TLS 1.2 + MQTT CONNECT +
 * CONNACK, then DISCONNECT, 50 at a time, passes of 2 s), first alone for
 * WCM_BENCH_BASELINE_S seconds (default 20), then while a secret-option
 * manufacturing bundle of WCM_BENCH_IMPORT devices (default 1,000,000, the
 * issue's figure) is POSTed to the admin API (POST /v1/bundles/import, which
 * the cloud hands to its admin worker thread: cloud/admin-worker.ts). Prints
 * login p50/p99 during the import beside the same without it, their ratio
 * against the goal (p99 within 2x), the spread of the per-pass p99, failures,
 * the import's duration and the load average.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { loadavg } from "node:os";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_FORMAT, bundleSha256, checksumLine } from "../cloud/bundle";
import { CloudChild, connectPass, makeDevices } from "./connect-bench";

const reconnecting = Number(process.env.WCM_BENCH_RECONNECT ?? 1000);
const importing = Number(process.env.WCM_BENCH_IMPORT ?? 1_000_000);
const baselineS = Number(process.env.WCM_BENCH_BASELINE_S ?? 20);
const CONCURRENCY = 50;
const PASS_MS = 2000;

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const ms = (v: number) => `${v.toFixed(0)} ms`;

/** POSTs the bundle to the admin API; resolves with the status and JSON answer once the import is done. */
function postBundle(admin: { url: string; token: string }, sha256: string, body: Buffer): Promise<{ status: number; body: { imported?: number; error?: unknown } }> {
  const url = new URL(`/v1/bundles/import?sha256=${sha256}`, admin.url.replace("//localhost:", "//127.0.0.1:"));
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { host: url.host, authorization: `Bearer ${admin.token}`, "content-type": "application/x-ndjson", "content-length": String(body.length) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as { imported?: number } }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const dir = mkdtempSync(join(tmpdir(), "wcm-bench-admin-"));
const child = new CloudChild();
try {
  const { devices, csv } = makeDevices(reconnecting);
  const started = await child.request({ cmd: "start", dataDir: join(dir, "data"), csv, admin: true }, 600_000);
  if (started.cmd !== "start" || !started.admin) throw new Error("cloud child did not start with its admin API");
  const { port, caPem, admin } = started;

  let t = performance.now();
  const secrets = randomBytes(32 * importing);
  const lines = [JSON.stringify({ format: BUNDLE_FORMAT, version: 1, lot: "bench-lot", option: "secret", count: importing })];
  for (let i = 0; i < importing; i++) lines.push(`{"deviceId":"bulk-${String(i).padStart(7, "0")}","secretHex":"${secrets.subarray(32 * i, 32 * i + 32).toString("hex")}"}`);
  const text = Buffer.from(`${lines.join("\n")}\n`);
  lines.length = 0;
  const bundleFile = join(dir, "bundle.jsonl");
  writeFileSync(bundleFile, text, { mode: 0o600 });
  const sha256 = bundleSha256(text);
  writeFileSync(`${bundleFile}.sha256`, checksumLine(sha256, "bundle.jsonl"));
  console.log(`cloud up with ${started.imported} devices; bundle of ${importing} devices (${(text.length / 1048576).toFixed(0)} MiB) made in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  let counter = 0;
  /** passes until `until()` says stop; per-pass p99 kept for the spread */
  async function phase(until: () => boolean) {
    const latencies: number[] = [];
    const passP99: number[] = [];
    let failed = 0;
    let first: string | undefined;
    while (!until()) {
      const pass = await connectPass(port, caPem, "TLSv1.2", devices, ++counter, CONCURRENCY, PASS_MS);
      latencies.push(...pass.latencyMs);
      if (pass.latencyMs.length) passP99.push(pct([...pass.latencyMs].sort((a, b) => a - b), 99));
      failed += pass.failed;
      first ??= pass.firstFailure;
    }
    latencies.sort((a, b) => a - b);
    return { n: latencies.length, p50: pct(latencies, 50), p99: pct(latencies, 99), max: latencies[latencies.length - 1] ?? NaN, passP99, failed, first };
  }

  // warm-up pass (TLS session caches, JIT), not counted
  await connectPass(port, caPem, "TLSv1.2", devices, ++counter, CONCURRENCY, PASS_MS);
  const load0 = loadavg()[0];
  const baseEnd = performance.now() + baselineS * 1000;
  const base = await phase(() => performance.now() > baseEnd);
  const load1 = loadavg()[0];

  let importDone = false;
  t = performance.now();
  const importing$ = postBundle(admin, sha256, text).finally(() => {
    importDone = true;
  });
  const during = await phase(() => importDone);
  const answer = await importing$;
  const importMs = performance.now() - t;
  const load2 = loadavg()[0];

  const spread = (list: number[]) => (list.length ? `${ms(Math.min(...list))}..${ms(Math.max(...list))} over ${list.length} passes with logins` : "no pass with a login");
  console.log(`\n${reconnecting} devices reconnecting (TLS 1.2 + MQTT CONNECT/CONNACK, ${CONCURRENCY} at a time), logins:`);
  console.log(`  without import: n=${base.n} p50 ${ms(base.p50)} p99 ${ms(base.p99)} max ${ms(base.max)}; per-pass p99 ${spread(base.passP99)}; failed ${base.failed}${base.first ? ` (${base.first})` : ""}`);
  console.log(`  during import:  n=${during.n} p50 ${ms(during.p50)} p99 ${ms(during.p99)} max ${ms(during.max)}; per-pass p99 ${spread(during.passP99)}; failed ${during.failed}${during.first ? ` (${during.first})` : ""}`);
  console.log(`  ratio during/without: p50 ${(during.p50 / base.p50).toFixed(2)}x, p99 ${(during.p99 / base.p99).toFixed(2)}x (goal: p99 within 2x: ${during.p99 <= 2 * base.p99 ? "met" : "NOT met"})`);
  console.log(`import over the admin API (POST /v1/bundles/import, the cloud's admin worker thread): HTTP ${answer.status}, ${answer.body.imported ?? "?"} devices${answer.body.error ? ` ${JSON.stringify(answer.body.error)}` : ""}, ${(importMs / 1000).toFixed(1)} s`);
  console.log(`load average (1 min): ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} after the baseline, ${load2.toFixed(2)} after the import (2 cores)`);
} finally {
  await child.close();
  rmSync(dir, { recursive: true, force: true });
}
