/*
 * Bulk registration benchmark (`npm run bench:bulk`; not part of npm test).
 *
 * Generates a secret-option registration bundle of N devices (default
 * 1,000,000; env WCM_BENCH_DEVICES) in a temporary directory, then times
 * CloudServices.importBundle into a fresh registry, in this process (what the
 * CLI does with no serve running): checksum, parse and validation, then the rows
 * in transactions of 2,000 (cloud/bundle.ts) with every secret sealed
 * (AES-256-GCM) and one audit record per device, pausing between them as long as
 * each held the write lock. Prints the phases and devices/s.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE_FORMAT, bundleSha256, checksumLine } from "../cloud/bundle";
import { Registry } from "../cloud/registry";
import { CloudServices } from "../cloud/services";

const n = Number(process.env.WCM_BENCH_DEVICES ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), "wcm-bench-bulk-"));
try {
  let t = performance.now();
  const secrets = randomBytes(32 * n);
  const lines = [JSON.stringify({ format: BUNDLE_FORMAT, version: 1, lot: "bench-lot", option: "secret", count: n })];
  for (let i = 0; i < n; i++) {
    lines.push(`{"deviceId":"bench-${String(i).padStart(7, "0")}","secretHex":"${secrets.subarray(32 * i, 32 * i + 32).toString("hex")}"}`);
  }
  const text = `${lines.join("\n")}\n`;
  writeFileSync(join(dir, "bundle.jsonl"), text, { mode: 0o600 });
  writeFileSync(join(dir, "bundle.jsonl.sha256"), checksumLine(bundleSha256(text), "bundle.jsonl"));
  console.log(`generated ${n} devices (${(text.length / 1048576).toFixed(0)} MiB) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // sealing alone, for reference
  const key = randomBytes(32);
  t = performance.now();
  const sample = Math.min(n, 200_000);
  for (let i = 0; i < sample; i++) {
    const c = createCipheriv("aes-256-gcm", key, randomBytes(12));
    c.setAAD(Buffer.from(`device:bench-${i}:secret:0`));
    Buffer.concat([c.update(secrets.subarray(0, 32)), c.final(), c.getAuthTag()]);
  }
  const sealUs = ((performance.now() - t) * 1000) / sample;
  console.log(`sealing alone: ${sealUs.toFixed(1)} µs/device (${((sealUs * n) / 1e6).toFixed(1)} s for ${n})`);

  const registry = await Registry.open(join(dir, "data"), new Uint8Array(randomBytes(32)));
  const services = new CloudServices(registry, "admin:bench");
  t = performance.now();
  const result = await services.importBundle({ bundle: readFileSync(join(dir, "bundle.jsonl")), checksum: readFileSync(join(dir, "bundle.jsonl.sha256"), "utf8") });
  const seconds = (performance.now() - t) / 1000;
  console.log(`imported ${result.imported} devices in ${seconds.toFixed(1)} s: ${Math.round(result.imported / seconds).toLocaleString("en")} devices/s`);
  t = performance.now();
  const again = await services.importBundle({ bundle: readFileSync(join(dir, "bundle.jsonl")), checksum: readFileSync(join(dir, "bundle.jsonl.sha256"), "utf8") });
  console.log(`second import: alreadyImported=${again.alreadyImported} in ${((performance.now() - t) / 1000).toFixed(1)} s; registry holds ${(await registry.countDevices())} devices`);
  await registry.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
