/*
 * `npm run fuzz`: the long fuzz run (docs/fuzzing.md). Every decoder harness of
 * test/fuzz/support/harnesses.ts over the recorded corpus in a worker under a
 * hang watchdog, then (with --network) the network fuzz of a running cloud.
 * Prints inputs/s per harness and every finding; findings are written to
 * --findings (one .hex file per input, and findings.json); exits 1 when there
 * is any.
 *
 *   npm run fuzz                                  every harness, 50000 inputs each (1.1M in all)
 *   npm run fuzz -- --harness request,eap --count 200000 --seed 7
 *   npm run fuzz -- --network                     decoders, then the long network fuzz
 *   npm run fuzz -- --network-only --connections 3000 --datagrams 30000 --conversations 200
 *   npm run fuzz -- --xs 5000                     also the device decoders on XS (xsnap), 5000 inputs each
 *   npm run fuzz -- --record                      records test/fuzz/corpus/seeds.json again
 *   npm run fuzz -- --list
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { CORPUS_FILE, loadCorpus } from "../../test/fuzz/support/corpus";
import type { Finding, HarnessReport } from "../../test/fuzz/support/engine";
import { HARNESSES } from "../../test/fuzz/support/harnesses";
import { fuzzRunningCloud } from "../../test/fuzz/support/network";
import { runPooled } from "../../test/fuzz/support/pool";
import { fuzzOnXs, xsAvailable } from "../../test/fuzz/support/xs-fuzz";
import { recordCorpus } from "../../test/fuzz/support/record";

interface Args {
  harnesses: string[];
  count: number;
  seed: number;
  findings: string;
  network: boolean;
  decoders: boolean;
  connections: number;
  datagrams: number;
  conversations: number;
  hangMs: number;
  /** inputs per core harness on XS (0: no XS run) */
  xsCount: number;
}

const USAGE = `usage: npm run fuzz -- [--harness a,b] [--count N] [--seed S] [--findings DIR] [--hang-ms MS]
                     [--network | --network-only] [--connections N] [--datagrams N] [--conversations N]
                     [--xs N] [--record] [--list]`;

function parseArgs(argv: string[]): Args | "list" | "record" {
  const args: Args = {
    harnesses: HARNESSES.map((h) => h.name), count: 50_000, seed: 1, findings: "fuzz-findings", network: false, decoders: true,
    connections: 2000, datagrams: 20_000, conversations: 100, hangMs: 10_000, xsCount: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const number = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a whole number\n${USAGE}`);
      return n;
    };
    if (flag === "--list") return "list";
    if (flag === "--record") return "record";
    if (flag === "--harness") {
      args.harnesses = value().split(",");
      for (const name of args.harnesses) if (!HARNESSES.some((h) => h.name === name)) throw new Error(`no harness ${name} (--list)`);
    } else if (flag === "--count") args.count = number();
    else if (flag === "--seed") args.seed = number();
    else if (flag === "--findings") args.findings = value();
    else if (flag === "--hang-ms") args.hangMs = number();
    else if (flag === "--network") args.network = true;
    else if (flag === "--network-only") {
      args.network = true;
      args.decoders = false;
    } else if (flag === "--connections") args.connections = number();
    else if (flag === "--datagrams") args.datagrams = number();
    else if (flag === "--conversations") args.conversations = number();
    else if (flag === "--xs") args.xsCount = number();
    else if (flag === "--help" || flag === "-h") throw new Error(USAGE);
    else throw new Error(`unknown option ${flag}\n${USAGE}`);
  }
  return args;
}

const pad = (text: string | number, width: number) => String(text).padStart(width);

function row(r: HarnessReport): string {
  const rate = r.ms > 0 ? Math.round((r.inputs / r.ms) * 1000) : 0;
  return `${r.harness.padEnd(17)}${pad(r.seeds, 6)}${pad(r.inputs, 9)}${pad(r.accepted, 9)}${pad(r.refused, 9)}${pad(rate, 9)}${pad(r.slowestMs.toFixed(1), 9)}${pad((r.heapGrowthBytes / 1024).toFixed(0), 9)}${pad(r.findings.length, 9)}`;
}

async function main(): Promise<number> {
  const parsed = parseArgs(process.argv.slice(2));
  if (parsed === "list") {
    for (const h of HARNESSES) console.log(`${h.name.padEnd(17)} ${h.target}`);
    return 0;
  }
  if (parsed === "record") {
    const corpus = await recordCorpus();
    writeFileSync(CORPUS_FILE, `${JSON.stringify(corpus, null, 1)}\n`);
    const counts = Object.entries(corpus.seeds).map(([name, list]) => `${name} ${list.length}`).join(", ");
    console.log(`recorded ${CORPUS_FILE}: ${counts}; flash records ${Object.keys(corpus.flash).length}`);
    return 0;
  }
  const args = parsed;
  const findings: Finding[] = [];
  const networkFindings: string[] = [];
  const load = () => loadavg().map((n) => n.toFixed(1)).join(" ");
  console.log(`fuzz: seed ${args.seed}, load average ${load()}`);
  if (args.decoders) {
    console.log(`${"harness".padEnd(17)}${pad("seeds", 6)}${pad("inputs", 9)}${pad("accepted", 9)}${pad("refused", 9)}${pad("inputs/s", 9)}${pad("max ms", 9)}${pad("heap KiB", 9)}${pad("findings", 9)}`);
    const started = performance.now();
    const reports = await runPooled({
      harnesses: args.harnesses, count: args.count, seed: args.seed, hangMs: args.hangMs,
      onReport: (r) => {
        console.log(row(r));
        for (const f of r.findings) console.log(`  ${f.kind}: ${f.detail} (${f.inputHex.length / 2} bytes)`);
      },
    });
    const total = reports.reduce((n, r) => n + r.inputs, 0);
    const seconds = (performance.now() - started) / 1000;
    console.log(`total: ${total} inputs in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} inputs/s including worker start), ${reports.reduce((n, r) => n + r.findings.length, 0)} findings, load average ${load()}`);
    for (const r of reports) findings.push(...r.findings);
  }
  if (args.xsCount > 0) {
    if (!xsAvailable()) throw new Error("--xs: xsnap-worker is not built (npm install builds it)");
    const { reports, ms } = await fuzzOnXs(loadCorpus(), args.xsCount, args.seed);
    const total = reports.reduce((n, r) => n + r.inputs, 0);
    console.log(`xs: ${reports.length} core harnesses on XS, ${total} inputs in ${(ms / 1000).toFixed(1)} s (${Math.round(total / (ms / 1000))} inputs/s)`);
    for (const r of reports) {
      console.log(`  ${r.harness.padEnd(17)}${pad(r.inputs, 8)}${pad(r.accepted, 9)}${pad(r.refused, 9)}${pad(r.crashes.length, 4)}`);
      for (const c of r.crashes) {
        console.log(`    crash: ${c.detail}`);
        findings.push({ harness: `xs:${r.harness}`, kind: "crash", detail: c.detail, inputHex: c.inputHex });
      }
    }
  }
  if (args.network) {
    console.log(`network: ${args.connections} MQTT connections, ${args.datagrams} RADIUS datagrams, ${args.conversations} mutated EAP-TTLS conversations`);
    const report = await fuzzRunningCloud({
      corpus: loadCorpus(), seed: args.seed, connections: args.connections, datagrams: args.datagrams, conversations: args.conversations,
      progress: (line) => console.log(`  ${line}`),
    });
    const seconds = report.ms / 1000;
    console.log(`  mqtt: ${report.mqtt.connections} connections (${Object.entries(report.mqtt.byState).map(([s, n]) => `${s} ${n}`).join(", ")}), ${report.mqtt.packets} packets, ${report.mqtt.bytes} bytes; closed by the cloud ${report.mqtt.closedByServer}; fuzz logins accepted ${report.mqtt.connacks["0"] ?? 0}`);
    console.log(`  radius: ${report.radius.datagrams} datagrams (${report.radius.resigned} re-signed, ${report.radius.answered} answered${report.findings.some((f) => f.includes("not signed")) ? "" : ", every answer signed"}), ${report.radius.conversations} conversations; ${report.radius.sessions} half-open EAP sessions held afterwards`);
    console.log(`  afterwards: genuine device login + response ${report.genuine.mqttMs.toFixed(0)} ms, genuine EAP-TTLS ${report.genuine.radiusMs.toFixed(0)} ms`);
    console.log(`  heap + external after GC: ${(report.heap.beforeBytes / 1048576).toFixed(1)} MiB before, ${(report.heap.afterBytes / 1048576).toFixed(1)} MiB after`);
    console.log(`  ${seconds.toFixed(1)} s, ${(report.mqtt.connections / seconds).toFixed(1)} connections/s, ${report.findings.length} findings`);
    for (const line of report.findings) console.log(`  finding: ${line}`);
    networkFindings.push(...report.findings);
  }
  if (findings.length > 0 || networkFindings.length > 0) {
    mkdirSync(args.findings, { recursive: true });
    findings.forEach((f, i) => {
      if (f.inputHex) writeFileSync(join(args.findings, `${f.harness}-${f.kind}-${i}.hex`), `${f.inputHex}\n`);
    });
    writeFileSync(join(args.findings, "findings.json"), `${JSON.stringify({ seed: args.seed, findings, network: networkFindings }, null, 1)}\n`);
    console.log(`findings written to ${args.findings}/`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (error: Error) => {
  console.error(error.message);
  process.exit(2);
});
