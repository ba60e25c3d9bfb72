/*
 * Proves as much of the ESP32 build as can be proven without an Espressif toolchain:
 *   1. `mcconfig -m -p esp32` and `-p esp32/esp32c3` (-t build) generate each build (and, where
 *      ESP-IDF is installed with its tools, build it whole);
 *   2. the generated makefile's own module steps that need no Espressif toolchain run: tsc,
 *      xsc and xsid of every module, the ESP-IDF version check, xsl (which also runs the
 *      preloaded modules) and mcrez;
 *   3. every native C file under hosts/esp32 is in the generated build and compiles, with the
 *      include folders and defines that build's makefile gives module C files, for a 32-bit
 *      RISC-V target (ESP32-C3 class): Debian's riscv64-unknown-elf-gcc + picolibc,
 *      -march=rv32imc_zicsr_zifencei -mabi=ilp32, -Wall -Wextra -Werror, against a generated
 *      esp32c3 sdkconfig.h (see writeSdkconfig).
 * It prints a table of every step: passed, failed, or not run and why (no idf.py, no Xtensa
 * compiler). Exit 0 when nothing failed, 1 when a step failed, 2 when $MODDABLE or $IDF_PATH
 * is missing. It never downloads anything; the builds go to a temporary folder, removed at the
 * end (keep it with WCM_ESP32_KEEP=1).
 * Needs: $MODDABLE (SDK with its lin tools built), $IDF_PATH (ESP-IDF v6.0 sources, tagged),
 * python on PATH (the SDK's version check), riscv64-unknown-elf-gcc with picolibc for step 3.
 * Usage: tsx tools/check-esp32.ts
 *
 * The build reads provisioning/device.json; when there is none it writes a placeholder
 * without secrets (`{"config":{"wcm":{}}}`) and removes it at the end.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const MODDABLE = process.env.MODDABLE;
const IDF_PATH = process.env.IDF_PATH;
const BIN = MODDABLE ? join(MODDABLE, "build", "bin", "lin", "release") : "";
if (!MODDABLE || !existsSync(join(MODDABLE, "tools", "mcconfig.js")) || !existsSync(join(BIN, "mcconfig"))) {
  console.error("check-esp32: set MODDABLE to a Moddable SDK checkout with its lin tools built (build/bin/lin/release/mcconfig)");
  process.exit(2);
}
if (!IDF_PATH || !existsSync(join(IDF_PATH, "components", "esp_common", "include", "esp_idf_version.h"))) {
  console.error("check-esp32: set IDF_PATH to the ESP-IDF sources the SDK names (v6.0 for Moddable 8.2.3: components/ and tools/, with its git tags)");
  process.exit(2);
}
const ENV = { ...process.env, MODDABLE, IDF_PATH, PATH: `${BIN}:${join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` };
const PROVISIONING = join(ROOT, "provisioning", "device.json");
const HOST = join(ROOT, "hosts", "esp32");
const RISCV_CC = "riscv64-unknown-elf-gcc";
const RISCV_FLAGS = ["-march=rv32imc_zicsr_zifencei", "-mabi=ilp32", "--specs=picolibc.specs"];

type Status = "passed" | "failed" | "not run";
interface Step { build: string; step: string; status: Status; detail: string }
const steps: Step[] = [];

function record(build: string, step: string, status: Status, detail: string): void {
  steps.push({ build, step, status, detail });
  console.log(`${status === "passed" ? "PASS" : status === "failed" ? "FAIL" : "SKIP"} [${build}] ${step}: ${detail}`);
}

function run(command: string, args: string[], cwd = ROOT): { status: number | null; log: string } {
  const result = spawnSync("nice", [command, ...args], { cwd, env: ENV, encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: result.status, log: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

function onPath(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { env: ENV }).status === 0;
}

/** The lines of a log worth showing for a failure: errors first, at most `count`. */
function excerpt(log: string, count = 6): string {
  const lines = log.split("\n").map((line) => line.trim()).filter(Boolean);
  const errors = lines.filter((line) => /error|fail|no such file|not found/i.test(line));
  return (errors.length ? errors : lines.slice(-count)).slice(0, count).join(" | ");
}

function cFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return cFiles(path);
    return entry.name.endsWith(".c") ? [path] : [];
  }).sort();
}

/**
 * The error a C file's own manifest (manifest.json beside it) gives for `platform`,
 * when its platforms block refuses it (as Moddable's wifi manifest does for
 * unsupported platforms; hosts/esp32/hmac exists only on chips with an HMAC
 * peripheral). Matched as mcconfig matches: the full platform, then its prefix, then "...".
 */
function chipRefusal(file: string, platform: string): string | undefined {
  const manifest = join(resolve(file, ".."), "manifest.json");
  if (!existsSync(manifest)) return undefined;
  const platforms = (JSON.parse(readFileSync(manifest, "utf8")) as { platforms?: Record<string, { error?: string }> }).platforms;
  if (!platforms) return undefined;
  const parts = platform.split("/");
  for (let n = parts.length; n > 0; n--) {
    const entry = platforms[parts.slice(0, n).join("/")];
    if (entry) return entry.error;
  }
  return platforms["..."]?.error;
}

/** Make variables of a generated makefile, printed by a one-rule makefile read after it. */
function makeVariables(makefile: string, scratch: string, names: string[]): Record<string, string> {
  const printer = join(scratch, "print-variables.mk");
  writeFileSync(printer, `wcm-print-variables:\n${names.map((name) => `\t@echo '${name}=$(${name})'`).join("\n")}\n`);
  const { status, log } = run("make", ["-s", "-f", makefile, "-f", printer, "wcm-print-variables"]);
  if (status !== 0) throw new Error(`make could not read ${makefile}: ${excerpt(log)}`);
  const values: Record<string, string> = {};
  for (const line of log.split("\n")) {
    const at = line.indexOf("=");
    if (at > 0 && names.includes(line.slice(0, at))) values[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return values;
}

/** The first unconditional `default` of a Kconfig symbol in ESP-IDF's components. */
function kconfigDefault(symbol: string): string {
  const files: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && depth < 3 && !entry.name.startsWith(".") && entry.name !== "test_apps") walk(join(dir, entry.name), depth + 1);
      else if (entry.isFile() && /^Kconfig(\.projbuild)?$/.test(entry.name)) files.push(join(dir, entry.name));
    }
  };
  walk(join(IDF_PATH!, "components"), 0);
  for (const file of files) {
    const lines = readFileSync(file, "utf8").split("\n");
    const start = lines.findIndex((line) => line.trim() === `config ${symbol}`);
    if (start < 0) continue;
    for (const line of lines.slice(start + 1)) {
      const trimmed = line.trim();
      if (/^(menu)?config\s/.test(trimmed) || trimmed === "endmenu" || trimmed === "endchoice") break;
      const value = trimmed.match(/^default\s+(\S+)$/)?.[1];
      if (value !== undefined) return value === "y" ? "1" : value;
    }
  }
  throw new Error(`no unconditional Kconfig default for ${symbol} in ${IDF_PATH}/components`);
}

/**
 * An esp32c3 sdkconfig.h: what kconfgen (idf.py reconfigure, not available without ESP-IDF's
 * Python environment) would write, limited to what the headers need. In order: the target
 * (what ESP-IDF's top-level Kconfig selects for esp32c3, which is not in components/), the
 * build's own sdkconfig (Moddable's sdkconfig.mc, which mcconfig wrote), and ESP-IDF Kconfig
 * defaults for the symbols the FreeRTOS headers require. The one change: picolibc in place of
 * Moddable's CONFIG_LIBC_NEWLIB, because Debian's RISC-V toolchain has picolibc's headers
 * (picolibc is ESP-IDF 6.0's own default libc).
 */
function writeSdkconfig(folder: string, sdkconfigMc: string): void {
  const lines = [
    "/* Generated by tools/check-esp32.ts for a compile check; not ESP-IDF's sdkconfig.h. */",
    "#pragma once",
    "/* target: esp32c3 (single core, RISC-V) */",
    "#define CONFIG_IDF_TARGET \"esp32c3\"",
    "#define CONFIG_IDF_TARGET_ESP32C3 1",
    "#define CONFIG_IDF_TARGET_ARCH_RISCV 1",
    "#define CONFIG_IDF_TARGET_ARCH \"riscv\"",
    "#define CONFIG_IDF_FIRMWARE_CHIP_ID 0x0005",
    "#define CONFIG_FREERTOS_UNICORE 1",
    "#define CONFIG_ESP_SYSTEM_SINGLE_CORE_MODE 1",
    "#define CONFIG_FREERTOS_NUMBER_OF_CORES 1",
    "/* libc: picolibc (Debian's toolchain) instead of the build's CONFIG_LIBC_NEWLIB */",
    "#define CONFIG_LIBC_PICOLIBC 1",
    "#define CONFIG_LIBC_PICOLIBC_NEWLIB_COMPATIBILITY 1",
    `/* from ${sdkconfigMc} */`,
  ];
  for (const line of readFileSync(sdkconfigMc, "utf8").split("\n")) {
    const match = line.match(/^CONFIG_([A-Z0-9_]+)=(.*)$/);
    if (!match || match[1] === "LIBC_NEWLIB" || match[2] === "n") continue;
    lines.push(`#define CONFIG_${match[1]} ${match[2] === "y" ? "1" : match[2]}`);
  }
  lines.push("/* ESP-IDF Kconfig defaults */");
  for (const symbol of ["FREERTOS_MAX_TASK_NAME_LEN", "FREERTOS_TASK_NOTIFICATION_ARRAY_ENTRIES"]) {
    lines.push(`#define CONFIG_${symbol} ${kconfigDefault(symbol)}`);
  }
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "sdkconfig.h"), `${lines.join("\n")}\n`);
}

/** Splits make's flag text into arguments, joining "-D NAME" pairs. */
function flags(text: string): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if ((words[i] === "-D" || words[i] === "-U") && i + 1 < words.length) out.push(`${words[i]}${words[++i]}`);
    else out.push(words[i]);
  }
  return out;
}

/** Builds one platform; `compile` says whether this build's C files are compiled here. */
function checkBuild(platform: string, out: string, compile: boolean): void {
  const build = platform;
  const mcconfig = run("mcconfig", ["-m", "-p", platform, "-t", "build", "-o", out]);
  const tmp = join(out, "tmp", "esp32", ...(platform.includes("/") ? [platform.split("/")[1]] : []), "release");
  const app = existsSync(tmp) ? readdirSync(tmp).find((name) => existsSync(join(tmp, name, "makefile"))) : undefined;
  if (!app) {
    record(build, "mcconfig: generate the build", "failed", excerpt(mcconfig.log));
    return;
  }
  const makefile = join(tmp, app, "makefile");
  const fullBuild = mcconfig.status === 0;
  const noExport = /export\.sh: No such file/.test(mcconfig.log);
  if (!fullBuild && !noExport) {
    record(build, "mcconfig -m", "failed", excerpt(mcconfig.log));
    return;
  }
  record(build, "mcconfig: generate the build", "passed", relative(out, makefile));

  const variables = makeVariables(makefile, out, ["CC", "TMP_DIR", "SDKCONFIG_H", "SDKCONFIG_FILE", "C_DEFINES", "C_INCLUDES", "C_FLAGS"]);
  const toolchain = [`${IDF_PATH}/export.sh`, "idf.py", variables.CC].filter((tool) => tool.startsWith("/") ? !existsSync(tool) : !onPath(tool));
  if (fullBuild) record(build, "ESP-IDF build: configure, compile, link (mcconfig -m)", "passed", `built in ${relative(out, tmp)}`);
  else record(build, "ESP-IDF build: configure, compile, link (mcconfig -m)", "not run", `absent: ${toolchain.join(", ") || "(see mcconfig output)"}`);

  const version = run("make", ["-f", makefile, "idfVersionCheck"]);
  record(build, "ESP-IDF version check (make idfVersionCheck)", version.status === 0 ? "passed" : "failed",
    version.status === 0 ? (version.log.split("\n").find((line) => /ESP-IDF/.test(line)) ?? "ok").trim() : excerpt(version.log));

  // tsc, xsc and xsid of every module: the makefile's MODULES list, nothing else
  const modulesMk = join(out, `modules-${app}.mk`);
  writeFileSync(modulesMk, "wcm-modules: $(MODULES)\n");
  const modules = run("make", ["-k", "-f", makefile, "-f", modulesMk, "wcm-modules"]);
  const count = (tool: string) => modules.log.split("\n").filter((line) => line.startsWith(`# ${tool} `)).length;
  const counts = `tsc ${count("tsc")} files, xsc ${count("xsc")} modules, xsid ${count("xsid")} files`;
  record(build, "modules: tsc, xsc, xsid (make MODULES)", modules.status === 0 ? "passed" : "failed",
    modules.status === 0 ? counts : `${counts}; ${excerpt(modules.log)}`);

  // xsl and mcrez: their rules depend on sdkconfig.h (made by idf.py), which they do not read
  const link = run("make", ["-f", makefile, "-o", variables.SDKCONFIG_H, join(variables.TMP_DIR, "mc.xs.c"), join(variables.TMP_DIR, "mc.resources.c")]);
  const linked = link.status === 0 && existsSync(join(variables.TMP_DIR, "mc.xs.h"));
  const summary = link.log.split("\n").find((line) => /instances/.test(line))?.replace(/^#+\s*/, "") ?? "";
  const warnings = link.log.split("\n").filter((line) => /warning/.test(line)).length;
  record(build, "xsl (links, runs preloads) + mcrez (make -o sdkconfig.h mc.xs.c mc.resources.c)", linked ? "passed" : "failed",
    linked ? `${summary}; ${warnings} warnings` : excerpt(link.log));

  const makefileText = readFileSync(makefile, "utf8");
  const sources: string[] = [];
  for (const file of cFiles(HOST)) {
    const refusal = chipRefusal(file, build);
    if (refusal !== undefined && !makefileText.includes(file)) {
      record(build, `C in the build: ${relative(ROOT, file)}`, "not run", `chip-specific, its manifest refuses ${build}: ${refusal.slice(0, 80)}`);
      continue;
    }
    sources.push(file);
    if (!makefileText.includes(file)) record(build, `C in the build: ${relative(ROOT, file)}`, "failed", "not in the generated makefile: no manifest lists it");
  }
  if (!compile) {
    record(build, `C compile of hosts/esp32 (${sources.length} files, Xtensa)`, fullBuild ? "passed" : "not run",
      fullBuild ? "compiled by mcconfig -m" : `${variables.CC} ${onPath(variables.CC) ? "is on PATH but mcconfig -m stopped before it" : "absent"}; the C files are compiled for the esp32c3 build below`);
    return;
  }
  if (!onPath(RISCV_CC)) {
    record(build, `C compile of hosts/esp32 (${sources.length} files, rv32)`, "not run", `${RISCV_CC} absent (Debian: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)`);
    return;
  }
  if (!linked) {
    record(build, `C compile of hosts/esp32 (${sources.length} files, rv32)`, "not run", "xsl failed: no generated mc.xs.h");
    return;
  }
  const stub = join(out, `sdkconfig-${app}`);
  writeSdkconfig(stub, variables.SDKCONFIG_FILE);
  const sdkconfigDir = resolve(variables.SDKCONFIG_H, "..");
  // the makefile's folders in its order, sdkconfig.h's folder swapped for the stub; SDK and
  // ESP-IDF folders as -isystem so that -Werror applies to this repository's code
  const includes = flags(variables.C_INCLUDES).flatMap((arg) => {
    if (!arg.startsWith("-I")) return [arg];
    const dir = resolve(arg.slice(2)) === sdkconfigDir ? stub : arg.slice(2);
    return dir.startsWith(ROOT + "/") ? [`-I${dir}`] : ["-isystem", dir];
  });
  // the makefile's defines, language and optimisation; its -Wno-* and -march are left out
  const defines = [...flags(variables.C_DEFINES), ...flags(variables.C_FLAGS).filter((arg) => /^-(D|U|std=|O|f)/.test(arg))];
  for (const file of sources) {
    const object = join(out, `${relative(HOST, file).replaceAll("/", "_")}.o`);
    const cc = run(RISCV_CC, [...RISCV_FLAGS, "-c", "-Wall", "-Wextra", "-Werror", ...defines, ...includes, file, "-o", object]);
    record(build, `C compile rv32: ${relative(ROOT, file)}`, cc.status === 0 ? "passed" : "failed",
      cc.status === 0 ? `${readFileSync(object).length} B object, no warning` : excerpt(cc.log, 8));
  }
}

function table(): string {
  const widths = [Math.max(...steps.map((s) => s.build.length)), Math.max(...steps.map((s) => s.step.length)), 7];
  const row = (cells: string[]) => cells.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell)).join("  ");
  return [row(["build", "step", "result", "detail"]), ...steps.map((s) => row([s.build, s.step, s.status, s.detail]))].join("\n");
}

function main(): void {
  const out = mkdtempSync(join(tmpdir(), "wcm-esp32-check-"));
  const placeholder = !existsSync(PROVISIONING);
  if (placeholder) {
    mkdirSync(join(ROOT, "provisioning"), { recursive: true });
    writeFileSync(PROVISIONING, JSON.stringify({ config: { wcm: {} } }, null, 2));
  }
  try {
    checkBuild("esp32", out, false);
    checkBuild("esp32/esp32c3", out, true);
  } catch (error) {
    record("-", "check", "failed", error instanceof Error ? error.message : String(error));
  } finally {
    if (placeholder) rmSync(PROVISIONING, { force: true });
    if (process.env.WCM_ESP32_KEEP) console.log(`builds kept in ${out}`);
    else rmSync(out, { recursive: true, force: true });
  }
  const failed = steps.filter((s) => s.status === "failed").length;
  const skipped = steps.filter((s) => s.status === "not run").length;
  console.log(`\n${table()}\n\n${steps.length - failed - skipped} passed, ${failed} failed, ${skipped} not run`);
  process.exit(failed ? 1 : 0);
}

main();
