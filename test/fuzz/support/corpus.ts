/*
 * The recorded seed corpus (test/fuzz/corpus/seeds.json, written by
 * `npm run fuzz -- --record`, see record.ts): base64 seeds per boundary, the
 * device's flash after its recorded boot, and the names the recording used.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** What record.ts writes. */
export interface Corpus {
  version: 1;
  /** boundary name -> base64 of each distinct recorded message */
  seeds: Record<string, string[]>;
  /** the recorded device's simulated flash: key -> base64 value */
  flash: Record<string, string>;
  /** the recorded device's id (its flash records and sealed messages name it) */
  deviceId: string;
  /** the NAS secret the recorded RADIUS requests are signed with */
  nasSecret: string;
}

/** Where the corpus lives. */
export const CORPUS_FILE = fileURLToPath(new URL("../corpus/seeds.json", import.meta.url));

/** Loads the committed corpus. */
export function loadCorpus(file = CORPUS_FILE): Corpus {
  return JSON.parse(readFileSync(file, "utf8")) as Corpus;
}

/** The seeds of one boundary as bytes (empty when none were recorded). */
export function seedBytes(corpus: Corpus, name: string): Uint8Array[] {
  return (corpus.seeds[name] ?? []).map((s) => new Uint8Array(Buffer.from(s, "base64")));
}
