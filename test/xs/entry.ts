/*
 * What test/xs-core.test.ts runs inside XS (bundled by esbuild into one IIFE):
 * the derivation vectors and every portable device scenario, with the
 * @noble/hashes digest the core ships. Each outcome goes back to Node as one
 * JSON line through xsnap's issueCommand(); an exception in a check is caught and
 * reported with its message, one escaping the bundle fails the evaluation.
 */
import { nobleDigest } from "../../modules/noble-digest";
import { SCENARIOS as CORE_SCENARIOS } from "../support/scenarios";
import { ONBOARDING_SCENARIOS } from "../support/onboarding-scenarios";

const SCENARIOS = { ...CORE_SCENARIOS, ...ONBOARDING_SCENARIOS };
import { checkVectors } from "../support/vectors";
import { checkOnboardingVectors } from "../support/onboarding-vectors";
import { jsSeal } from "../../modules/js-seal";
import { decode, encode, replay, type Recording } from "../support/recording";

declare function issueCommand(message: ArrayBuffer): ArrayBuffer;
/** Recordings made on Node (test/support/recording.ts encode()), set by the test before the bundle runs. */
declare const WCM_RECORDINGS: string | undefined;

/** One line of the report. */
export interface XsReport {
  kind: "vector" | "scenario" | "replay" | "done";
  name: string;
  ok: boolean;
  detail?: string;
}

function report(line: XsReport): void {
  issueCommand(new TextEncoder().encode(JSON.stringify(line)).buffer as ArrayBuffer);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}${error.stack ? `\n${error.stack}` : ""}`;
  return String(error);
}

let count = 0;
for (const result of checkVectors(nobleDigest)) {
  count++;
  report(result.ok ? { kind: "vector", name: result.name, ok: true } : { kind: "vector", name: result.name, ok: false, detail: `got ${result.got}` });
}
for (const result of checkOnboardingVectors(nobleDigest, jsSeal)) {
  count++;
  report(result.ok ? { kind: "vector", name: result.name, ok: true } : { kind: "vector", name: result.name, ok: false, detail: `got ${result.got}` });
}
for (const [name, run] of Object.entries(SCENARIOS)) {
  count++;
  try {
    const value = run(nobleDigest);
    report({ kind: "scenario", name, ok: true, ...(value === undefined ? {} : { detail: String(value) }) });
  } catch (error) {
    report({ kind: "scenario", name, ok: false, detail: describe(error) });
  }
}
// Replays: the effects of stepping the recorded events on XS, in the same canonical text as on Node.
const recordings = typeof WCM_RECORDINGS === "string" ? decode<Recording[]>(WCM_RECORDINGS) : [];
for (const recording of recordings) {
  count++;
  try {
    report({ kind: "replay", name: recording.name, ok: true, detail: encode(replay(recording, nobleDigest).effects) });
  } catch (error) {
    report({ kind: "replay", name: recording.name, ok: false, detail: describe(error) });
  }
}
report({ kind: "done", name: "all", ok: true, detail: String(count) });
