/*
 * The firmware manifests preload every wcm module they map. mcconfig (SDK 8.2,
 * tools/mcconfig.js filterPreload) matches a preload pattern with `*` against
 * JavaScript files only, so "wcm/*" preloaded none of the TypeScript modules:
 * each module's functions and tables were built in RAM at boot instead of
 * being linked into flash. Exact names match TypeScript files too, so every
 * wcm/* and wcm-host/* module is listed by name, in the same block (top
 * level or platform) that maps it, except the three host modules that import
 * "preference": the lin Preference reads its whole file into a static cache
 * when its module loads, so preloading it (through them) would freeze the
 * build machine's preferences of link time into the image (found by
 * check:moddable: the stored secret and the NVS identity read back stale).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Loaded at boot, not preloaded: they import "preference" (see above). */
const NOT_PRELOADED = ["wcm-host/ports", "wcm-host/time-floor", "wcm-host/factory-identity"];

const MANIFESTS = [
  "manifest.json",
  "hosts/moddable/manifest.json",
  "hosts/lin/manifest.json",
  "hosts/esp32/manifest.json",
  "hosts/esp32/eap/manifest.json",
  "hosts/esp32/hmac/manifest.json",
];

interface Block {
  modules?: Record<string, unknown>;
  preload?: string[];
  platforms?: Record<string, Block>;
}

/** [where, modules mapped, preload names] for a manifest's top level and each platform block. */
function blocks(path: string): [string, string[], string[]][] {
  const manifest = JSON.parse(readFileSync(join(ROOT, path), "utf8")) as Block;
  const all: [string, Block][] = [[path, manifest], ...Object.entries(manifest.platforms ?? {}).map(([name, block]) => [`${path} platform ${name}`, block] as [string, Block])];
  return all.map(([where, block]) => [where, Object.keys(block.modules ?? {}).filter((name) => name.startsWith("wcm")), block.preload ?? []]);
}

describe("firmware manifests", () => {
  it("preload_EveryWcmModuleByName", () => {
    let mapped = 0;
    const everyMapped = new Set(MANIFESTS.flatMap((path) => blocks(path).flatMap(([, modules]) => modules)));
    for (const path of MANIFESTS) {
      for (const [where, modules, preload] of blocks(path)) {
        mapped += modules.length;
        for (const name of modules) assert.equal(preload.includes(name), !NOT_PRELOADED.includes(name), `${where}: ${name} ${preload.includes(name) ? "is preloaded but imports preference" : "is mapped but not preloaded by name"}`);
        for (const pattern of preload) assert.ok(!pattern.includes("*"), `${where}: preload pattern ${pattern} (mcconfig matches * against .js files only)`);
        for (const name of preload.filter((p) => p.startsWith("wcm"))) assert.ok(everyMapped.has(name), `${where}: ${name} is preloaded but no manifest maps it`);
      }
    }
    assert.ok(mapped >= 25, `only ${mapped} wcm modules found in the manifests`);
  });
});
