/*
 * Admin bulk work against device logins (`npm run bench:admin-load`; issue 9 item 6).
 *
 * The cloud runs in a child process (bench/cloud-child.ts) with 1,000 secret
 * devices (WCM_BENCH_RECONNECT); this process keeps them reconnecting
 * continuously (TLS 1.2 + MQTT CONNECT + CONNACK, then DISCONNECT, 50 at a
 * time, passes of 2 s), first alone for WCM_BENCH_BASELINE_S seconds (default
 * 20), then while a secret-option manufacturing bundle of WCM_BENCH_IMPORT
 * devices (default 100,000; the issue's goal is 1,000,000) is imported in the
 * cloud process through CloudServices.importBundle, the call the admin import
 * makes, on the cloud's event loop. Prints login p50/p99 during the import
 * beside the same without it (goal: p99 within 2x), the spread of the per-pass
 * p99, failures, and the load average.
 */
import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_FORMAT, bundleSha256, checksumLine } from "../cloud/bundle";
import { CloudChild, connectPass, makeDevices } from "./connect-bench";

const reconnecting = Number(process.env.WCM_BENCH_RECONNECT ?? 1000);
const importing = Number(process.env.WCM_BENCH_IMPORT ?? 100_000);
const baselineS = Number(process.env.WCM_BENCH_BASELINE_S ?? 20);
const CONCURRENCY = 50;
const PASS_MS = 2000;

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const ms = (v: number) => `${v.toFixed(0)} ms`;

const dir = mkdtempSync(join(tmpdir(), "wcm-bench-admin-"));
const child = new CloudChild();
try {
  const { devices, csv } = makeDevices(reconnecting);
  const started = await child.request({ cmd: "start", dataDir: join(dir, "data"), csv }, 600_000);
  if (started.cmd !== "start") throw new Error("cloud child did not start");
  const { port, caPem } = started;

  let t = performance.now();
  const secrets = randomBytes(32 * importing);
  const lines = [JSON.stringify({ format: BUNDLE_FORMAT, version: 1, lot: "bench-lot", option: "secret", count: importing })];
  for (let i = 0; i < importing; i++) lines.push(`{"deviceId":"bulk-${String(i).padStart(7, "0")}","secretHex":"${secrets.subarray(32 * i, 32 * i + 32).toString("hex")}"}`);
  const text = `${lines.join("\n")}\n`;
  const bundleFile = join(dir, "bundle.jsonl");
  writeFileSync(bundleFile, text, { mode: 0o600 });
  writeFileSync(`${bundleFile}.sha256`, checksumLine(bundleSha256(text), "bundle.jsonl"));
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
  let importReply: { imported: number; ms: number } | undefined;
  t = performance.now();
  const importing$ = child.request({ cmd: "import-bundle", bundleFile, checksumFile: `${bundleFile}.sha256` }, 3_600_000).then((reply) => {
    importDone = true;
    if (reply.cmd === "import-bundle") importReply = { imported: reply.imported, ms: reply.ms };
  });
  const during = await phase(() => importDone);
  await importing$;
  const load2 = loadavg()[0];

  const spread = (list: number[]) => (list.length ? `${ms(Math.min(...list))}..${ms(Math.max(...list))} over ${list.length} passes with logins` : "no pass with a login");
  console.log(`\n${reconnecting} devices reconnecting (TLS 1.2 + MQTT CONNECT/CONNACK, ${CONCURRENCY} at a time), logins:`);
  console.log(`  without import: n=${base.n} p50 ${ms(base.p50)} p99 ${ms(base.p99)} max ${ms(base.max)}; per-pass p99 ${spread(base.passP99)}; failed ${base.failed}${base.first ? ` (${base.first})` : ""}`);
  console.log(`  during import:  n=${during.n} p50 ${ms(during.p50)} p99 ${ms(during.p99)} max ${ms(during.max)}; per-pass p99 ${spread(during.passP99)}; failed ${during.failed}${during.first ? ` (${during.first})` : ""}`);
  console.log(`  ratio during/without: p50 ${(during.p50 / base.p50).toFixed(2)}x, p99 ${(during.p99 / base.p99).toFixed(2)}x (goal: p99 within 2x: ${during.p99 <= 2 * base.p99 ? "met" : "NOT met"})`);
  console.log(`import of ${importReply?.imported ?? "?"} devices on the cloud's event loop: ${((importReply?.ms ?? performance.now() - t) / 1000).toFixed(1)} s`);
  console.log(`load average (1 min): ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} after the baseline, ${load2.toFixed(2)} after the import (2 cores)`);
} finally {
  await child.close();
  rmSync(dir, { recursive: true, force: true });
}
