/*
 * `npm run docs:states`: rewrites the transition table in docs/protocol.md
 * (section 10.3) from modules/machine.ts (test/support/transitions.ts); the
 * test in test/core-machine.test.ts fails until the docs match the code.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { nobleDigest } from "../modules/noble-digest";
import { recordFirstBoot } from "../test/support/recording";
import { renderTable, TABLE_BEGIN, TABLE_END, transitions } from "../test/support/transitions";

const path = new URL("../docs/protocol.md", import.meta.url);
const doc = readFileSync(path, "utf8");
const begin = doc.indexOf(TABLE_BEGIN);
const end = doc.indexOf(TABLE_END);
if (begin < 0 || end < begin) throw new Error("docs/protocol.md: transition table markers not found");
const rows = transitions(recordFirstBoot(nobleDigest), nobleDigest, isDeepStrictEqual);
writeFileSync(path, `${doc.slice(0, begin + TABLE_BEGIN.length)}\n${renderTable(rows)}\n${doc.slice(end)}`);
console.log(`docs/protocol.md 10.3: ${rows.length} pairs, ${rows.filter((r) => r.next === "ignored").length} ignored`);
