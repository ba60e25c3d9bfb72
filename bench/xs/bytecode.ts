/*
 * Release XS bytecode of what wcm adds to the firmware, per module, as
 * `mcconfig -m -p lin` builds it: each module of the root manifest (`wcm/*`),
 * of hosts/moddable and hosts/lin (`wcm-host/*`) and main.ts is transpiled by
 * tsc as mcconfig's generated tsconfig does (target ES2025, module preserve) and
 * compiled by the SDK's xsc with mcconfig's release flags (`-c -e`, no `-d`).
 * Needs xsc on PATH (MODDABLE=/work/sdk/moddable: $MODDABLE/build/bin/lin/release);
 * `npm run check:moddable` measures the same from a real build.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import ts from "typescript";
import { ROOT } from "../../test/xs/bundle";

/** One compiled module. */
export interface ModuleSize {
  /** the module specifier, e.g. wcm/machine */
  name: string;
  group: "core" | "host" | "main";
  bytes: number;
}

/** [module specifier, TypeScript file] for each module a manifest maps (`path` relative to `root`). */
export function manifestModules(path: string, root = ROOT): [string, string][] {
  const manifest = JSON.parse(readFileSync(join(root, path), "utf8")) as { modules: Record<string, string> };
  return Object.entries(manifest.modules).map(([name, file]) => [name, join(root, dirname(path), `${file}.ts`)]);
}

/** True when the SDK's xsc runs. */
export function haveXsc(): boolean {
  return spawnSync("xsc", ["-v"], { encoding: "utf8" }).error === undefined;
}

/**
 * Compiles every module and returns its release bytecode size.
 * @throws Error when xsc fails on a module (with its message)
 */
export function releaseBytecode(): ModuleSize[] {
  const dir = mkdtempSync(join(tmpdir(), "wcm-xsb-"));
  try {
    const modules: [string, string, ModuleSize["group"]][] = [
      ...manifestModules("manifest.json").map(([name, file]) => [name === "*" ? "main" : name, file, name === "*" ? "main" : "core"] as [string, string, ModuleSize["group"]]),
      ...manifestModules("hosts/moddable/manifest.json").map(([name, file]) => [name, file, "host"] as [string, string, ModuleSize["group"]]),
      ...manifestModules("hosts/lin/manifest.json").map(([name, file]) => [name, file, "host"] as [string, string, ModuleSize["group"]]),
    ];
    return modules.map(([name, file, group]) => {
      const js = ts.transpileModule(readFileSync(file, "utf8"), {
        compilerOptions: { target: ts.ScriptTarget.ES2024 + 1 as ts.ScriptTarget, module: ts.ModuleKind.Preserve, verbatimModuleSyntax: false },
      }).outputText;
      const base = name.replace(/\W/g, "_");
      const source = join(dir, `${base}.js`);
      writeFileSync(source, js);
      const run = spawnSync("xsc", [source, "-c", "-e", "-o", dir, "-r", base], { encoding: "utf8" });
      if (run.status !== 0) throw new Error(`xsc ${name}: ${run.stdout}${run.stderr}`);
      return { name, group, bytes: statSync(join(dir, `${base}.xsb`)).size };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = releaseBytecode().sort((a, b) => b.bytes - a.bytes);
  for (const size of sizes) console.log(`${size.group.padEnd(5)} ${size.name.padEnd(28)} ${size.bytes}`);
  for (const group of ["core", "host", "main"] as const) console.log(`${group}: ${sizes.filter((s) => s.group === group).reduce((n, s) => n + s.bytes, 0)}`);
  console.log(`total: ${sizes.reduce((n, s) => n + s.bytes, 0)} (goal ${64 * 1024})`);
}
