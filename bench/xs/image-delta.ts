/*
 * What wcm adds to the linked firmware image, not per module: the app built
 * twice with `mcconfig -m -p lin -t build` (release), once as it is and once
 * with every wcm module (the root manifest's wcm/* and main, hosts/moddable's
 * and hosts/lin's wcm-host/*) replaced by an empty module, same manifests and
 * SDK modules. The difference of the XS archive (mc.xs.c.o: text = bytecode
 * and key strings; data = the preloaded heap's slots and the key table, which
 * hold pointers) is what the firmware grows by. xsl links the modules'
 * symbols into one key table and preloads them (their functions and tables
 * become slots in flash), so this is the figure the per-module .xsb sum of
 * bench/xs/bytecode.ts stands for.
 *
 * lin slots are 32 B and pointers 8 B; an ESP32's are 16 B and 4 B, so the
 * ESP32 estimate is the text delta plus slots x 16 B plus keys x 4 B.
 * Each build starts from an empty build folder (xsl keeps the key list of a
 * previous build in mc.xsi). Takes a few minutes.
 * Needs $MODDABLE with the lin tools built, mcconfig and xsc on PATH.
 * Usage: tsx bench/xs/image-delta.ts
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../test/xs/bundle";
import { manifestModules, releaseBytecode } from "./bytecode";

const MANIFESTS = ["manifest.json", "hosts/moddable/manifest.json", "hosts/lin/manifest.json"];

/** One release build's XS archive. */
interface Archive {
  text: number;
  data: number;
  heapSlots: number;
  keys: number;
}

function wcmModuleFiles(tree: string): string[] {
  return MANIFESTS.flatMap((manifest) => manifestModules(manifest, tree).filter(([name]) => name === "*" || name.startsWith("wcm")).map(([, file]) => file));
}

/** Builds `tree` with mcconfig (which names the build folder after the tree's folder: `name`) and reads its XS archive. */
function build(tree: string, name: string): Archive {
  const buildDir = join(process.env.MODDABLE!, "build", "tmp", "lin", "mc", "release", name);
  rmSync(buildDir, { recursive: true, force: true });
  const env = { ...process.env, PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` };
  const run = spawnSync("mcconfig", ["-m", "-p", "lin", "-t", "build"], { cwd: tree, env, encoding: "utf8" });
  if (run.status !== 0 || /typescript compile failure/.test(run.stdout)) throw new Error(`mcconfig (${name}) failed:\n${`${run.stdout}${run.stderr}`.slice(-3000)}`);
  const [text, data] = execFileSync("size", [join(buildDir, "mc.xs.c.o")], { encoding: "utf8" }).split("\n")[1].trim().split(/\s+/).map(Number);
  const source = readFileSync(join(buildDir, "mc.xs.c"), "utf8");
  const count = (what: string) => Number(new RegExp(`#define mx${what}Count (\\d+)`).exec(source)![1]);
  rmSync(buildDir, { recursive: true, force: true });
  return { text, data, heapSlots: count("Heap"), keys: count("Keys") };
}

function copyTree(to: string): void {
  mkdirSync(to, { recursive: true });
  execFileSync("sh", ["-c", `git -C "${ROOT}" ls-files -z | xargs -0 tar -C "${ROOT}" -cf - | tar -C "${to}" -xf -`]);
  mkdirSync(join(to, "provisioning"), { recursive: true });
  // a shared-secret device; the config's size is the same in both builds
  writeFileSync(join(to, "provisioning", "device.json"), JSON.stringify({ config: { wcm: { deviceId: "image-0001", option: "secret", secret: "00", cloud: { host: "127.0.0.1", port: 8883, ca: "-" } } } }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.env.MODDABLE) throw new Error("set MODDABLE (an SDK with its lin tools built) and put its tools on PATH");
  const dir = mkdtempSync(join(tmpdir(), "wcm-image-"));
  try {
    const app = join(dir, "wcmimageapp");
    const base = join(dir, "wcmimagebase");
    copyTree(app);
    copyTree(base);
    for (const file of wcmModuleFiles(base)) writeFileSync(file, "export {};\n");
    const withWcm = build(app, "wcmimageapp");
    const without = build(base, "wcmimagebase");
    const text = withWcm.text - without.text;
    const data = withWcm.data - without.data;
    const slots = withWcm.heapSlots - without.heapSlots;
    const keys = withWcm.keys - without.keys;
    const perModule = releaseBytecode().reduce((n, m) => n + m.bytes, 0);
    console.log(`XS archive (mc.xs.c.o), release lin build, with wcm: text ${withWcm.text} data ${withWcm.data}; with empty wcm modules: text ${without.text} data ${without.data}`);
    console.log(`wcm adds on lin: ${text + data} B (text ${text}: bytecode and key strings; data ${data}: ${slots} preloaded heap slots x 32 B + ${keys} keys x 8 B)`);
    console.log(`ESP32 estimate (16 B slots, 4 B pointers): ${text + slots * 16 + keys * 4} B, against the goal of ${64 * 1024} B; per-module .xsb sum (bench/xs/bytecode.ts): ${perModule} B`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
