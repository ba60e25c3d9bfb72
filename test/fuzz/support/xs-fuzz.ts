/*
 * Runs core-fuzz.ts inside XS (@agoric/xsnap): bundles it with the recorded
 * seeds and the digest the core ships, and returns the per-harness reports.
 */
import { bundleForXs } from "../../xs/bundle";
import { runInXs, xsnapWorkerPath } from "../../xs/xsnap";
import type { Corpus } from "./corpus";
import type { CoreReport } from "./core-fuzz";
import { coreSeeds } from "./harnesses";

/** True when the xsnap-worker binary exists. */
export function xsAvailable(): boolean {
  return xsnapWorkerPath() !== undefined;
}

/** Fuzzes the core decoders on XS: `count` inputs per harness, `seed` for the PRNG. */
export async function fuzzOnXs(corpus: Corpus, count: number, seed: number): Promise<{ reports: CoreReport[]; ms: number }> {
  const source = `
    import { nobleDigest } from "./modules/noble-digest";
    import { runCoreFuzz } from "./test/fuzz/support/core-fuzz";
    declare function issueCommand(message: ArrayBuffer): ArrayBuffer;
    const reports = runCoreFuzz(nobleDigest, ${JSON.stringify(corpus.deviceId)}, ${JSON.stringify(coreSeeds(corpus))}, ${count}, ${seed});
    issueCommand(new TextEncoder().encode(JSON.stringify(reports)).buffer as ArrayBuffer);
  `;
  const code = await bundleForXs({ source });
  const started = performance.now();
  const run = await runInXs(code);
  return { reports: JSON.parse(run.commands[0]) as CoreReport[], ms: performance.now() - started };
}
