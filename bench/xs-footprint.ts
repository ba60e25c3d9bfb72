/*
 * `npm run bench:xs`: the core's footprint on Moddable's XS engine (xsnap).
 *
 * Compute: xsnap's meter (XS "meter index", roughly bytecode steps) of one crank.
 * Heap: XS slots allocated during the step, from the meter's currentHeapCount
 * after a gc() before it (no collection runs in a step: the worker's heap is
 * large), so garbage is included: an upper bound on the step's slot peak. A slot
 * is 16 bytes on ESP32 (32-bit) and 32 bytes in this 64-bit worker; figures use
 * 16. Chunk memory (string, array and ArrayBuffer bytes) is not in the meter;
 * the lin build's instrumentation gives slots and chunks of the real app
 * (tools/check-moddable-sim.ts). A "retained after gc()" figure was tried and
 * dropped: XS's post-collection count did not track objects kept alive here.
 * Size: the release XS bytecode of every module wcm adds to the firmware (core,
 * Moddable host adapters, main), compiled as `mcconfig -m -p lin` does
 * (bench/xs/bytecode.ts; needs the SDK's xsc on PATH), and the esbuild minified
 * bundle (modules/ + @noble/hashes) with its gzip size.
 * Goal: what wcm adds within 64 KB of flash; the manager within 32 KB of heap.
 */
import { gzipSync } from "node:zlib";
import { bundleForXs } from "../test/xs/bundle";
import { XsWorker } from "../test/xs/xsnap";
import { haveXsc, releaseBytecode } from "./xs/bytecode";

const ESP32_SLOT_BYTES = 16;
const FLASH_GOAL = 64 * 1024;
const HEAP_GOAL = 32 * 1024;

interface Row {
  step: string;
  compute: number;
  /** the device's own share of `compute`, for steps that split it (bench/xs/meter-split.ts) */
  deviceCompute?: number;
  allocatedBytes: number;
  note: string;
}

async function meterSteps(): Promise<Row[]> {
  const worker = new XsWorker("wcm-bench");
  try {
    const load = async (code: string) => (await worker.evaluate(code)).meter;
    const before = await load("gc();");
    const loaded = await load(await bundleForXs("bench/xs/bench-entry.ts"));
    const rows: Row[] = [{
      step: "load the bundle (core, pure-JS ports, fake cloud)",
      compute: loaded.compute,
      allocatedBytes: (loaded.currentHeapCount - before.currentHeapCount) * ESP32_SLOT_BYTES,
      note: "on a device the preloaded code lives in flash",
    }];
    const steps: [string, string][] = [
      ["baseline", "empty crank"],
      ["temporarySecret", "temporary-secret derivation"],
      ["loginProof", "login proof"],
      ["issuanceDeviceSide", "issuance exchange, device side"],
      ["sealKeyPair", "sealing key pair (first hello)"],
      ["openSealed", "open a sealed network change"],
      ["bootSecret", "boot to ONLINE, shared secret (fake cloud)"],
      ["bootTemporary", "boot to ONLINE, temporary -> permanent (fake cloud)"],
      ["firstBoot", "first boot on ESP32, device only (see below)"],
      ["onboardHandshake", "local onboarding: label-code handshake, device side"],
      ["onboardCalls", "local onboarding: scan + networks calls, device side"],
    ];
    await load("wcmBench.run('prepareSealed');");
    for (const [name, label] of steps) {
      await load("wcmBench.run('release'); gc();");
      const base = await load("gc();");
      const result = await worker.evaluate(`wcmBench.run(${JSON.stringify(name)});`);
      const text = result.commands.join(" ");
      const split = text.startsWith("{") ? JSON.parse(text) as { deviceSteps: number; note: string } : undefined;
      rows.push({
        step: label,
        compute: result.meter.compute,
        ...(split ? { deviceCompute: split.deviceSteps } : {}),
        allocatedBytes: (result.meter.currentHeapCount - base.currentHeapCount) * ESP32_SLOT_BYTES,
        note: split ? split.note : text,
      });
    }
    return rows;
  } finally {
    worker.close();
  }
}

async function sizes(): Promise<{ name: string; minified: number; gzip: number }[]> {
  const entries: [string, string][] = [
    ["manager + config + noble digest (pure-JS hosts)", `export { ConnectionManager } from "./modules/manager"; export { validateConfig } from "./modules/config"; export { nobleDigest } from "./modules/noble-digest";`],
    ["manager + config (main.ts: native Digest)", `export { ConnectionManager } from "./modules/manager"; export { validateConfig } from "./modules/config";`],
    ["@noble/hashes sha256 + hmac alone", `export { nobleDigest } from "./modules/noble-digest";`],
  ];
  const out = [];
  for (const [name, source] of entries) {
    const code = await bundleForXs({ source }, { minify: true, format: "esm" });
    out.push({ name, minified: Buffer.byteLength(code), gzip: gzipSync(code, { level: 9 }).length });
  }
  // local onboarding's share: the same main.ts bundle with modules/onboarding/attach.ts replaced by an empty class
  const stubbed = await bundleForXs({ source: entries[1][1] }, {
    minify: true, format: "esm",
    plugins: [{
      name: "no-onboarding",
      setup(build) {
        build.onResolve({ filter: /onboarding\/attach$/ }, () => ({ path: "attach-stub", namespace: "stub" }));
        build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "export class OnboardingAttachment {}", loader: "ts" }));
      },
    }],
  });
  out.push({ name: "the same without local onboarding (attach.ts stubbed)", minified: Buffer.byteLength(stubbed), gzip: gzipSync(stubbed, { level: 9 }).length });
  return out;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

const rows = await meterSteps();
const sizeRows = await sizes();
console.log("wcm core on XS (xsnap-worker, XS 13): compute = XS meter steps of the step, with the pure-JS ports (@noble); device compute = the core's share when");
console.log("the digest and SealPort are native, as on Moddable (bench/xs/meter-split.ts); heap = XS slots allocated in the step x 16 B (ESP32 slot size), garbage included\n");
console.log(table(["step", "compute", "device compute", "heap (slots allocated)", "note"], rows.map((row) => [row.step, String(row.compute), row.deviceCompute === undefined ? "" : String(row.deviceCompute), kb(row.allocatedBytes), row.note])));
const first = rows.find((row) => row.step.startsWith("first boot"));
if (first?.deviceCompute !== undefined) {
  console.log(`\nfirst boot on ESP32 (power-on to PERMANENT and ONLINE, then the first hello and profile fetch): device compute ${first.deviceCompute} XS meter steps.`);
  console.log("  Counted: the core's JavaScript only, as on a board; not counted: the fake cloud, radio, flash, clock, and what the board does natively");
  console.log("  (SHA-256 under the JavaScript HMAC of hosts/moddable/ports.ts; the SealPort's key agreement and cipher when it is native). bench/xs/device-model.ts.");
}
console.log("\nshipped size of the core (esbuild, ES2022, minified)\n");
console.log(table(["bundle", "minified", "gzip"], sizeRows.map((row) => [row.name, kb(row.minified), kb(row.gzip)])));
if (haveXsc()) {
  const modules = releaseBytecode();
  const sum = (group?: string) => modules.filter((m) => !group || m.group === group).reduce((n, m) => n + m.bytes, 0);
  console.log("\nrelease XS bytecode of what wcm adds to the firmware, per module (tsc + xsc -c -e, as mcconfig -m -p lin builds it)\n");
  console.log(table(["module", "group", "bytes"], modules.sort((a, b) => b.bytes - a.bytes).map((m) => [m.name, m.group, m.bytes.toLocaleString("en-US")])));
  const total = sum();
  console.log(`\ngoal: firmware bytecode <= ${FLASH_GOAL.toLocaleString("en-US")} B: ${total <= FLASH_GOAL ? "met" : "NOT met"}: ${total.toLocaleString("en-US")} B = core ${sum("core").toLocaleString("en-US")} + host ${sum("host").toLocaleString("en-US")} + main ${sum("main").toLocaleString("en-US")}`);
} else {
  console.log("\nrelease XS bytecode: not measured (no xsc on PATH: PATH=$MODDABLE/build/bin/lin/release:$PATH)");
}
const boot = rows.find((row) => row.step.startsWith("boot to ONLINE, temporary"));
if (boot) console.log(`\ngoal: heap <= ${kb(HEAP_GOAL)}: ${boot.allocatedBytes <= HEAP_GOAL ? "met" : "not shown by this bound"} (${kb(boot.allocatedBytes)} of slots allocated by a whole temporary boot, garbage and fake cloud included; chunks not counted; the live heap after a full GC is measured on the Moddable simulator by npm run check:moddable: docs/moddable.md)`);
