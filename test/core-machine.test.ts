/*
 * The state machine (modules/machine.ts) on its own: a recorded first boot
 * replays through `step` alone to the same effects, byte for byte; the
 * transition table in docs/protocol.md 10.3 is the one the code makes
 * (test/support/transitions.ts visits every state with every event variant);
 * ignored pairs change nothing, handled pairs report the state they end in.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { step, ENTROPY_BYTES } from "../modules/machine";
import { nobleDigest } from "../modules/noble-digest";
import { encode, recordFirstBoot, replay, type Recording } from "./support/recording";
import { renderTable, TABLE_BEGIN, TABLE_END, transitions, VARIANTS, type Row } from "./support/transitions";

describe("state machine (modules/machine.ts)", function () {
  this.timeout(60_000);
  let recording: Recording;
  let rows: Row[];

  before(() => {
    recording = recordFirstBoot(nobleDigest);
    rows = transitions(recording, nobleDigest, isDeepStrictEqual);
  });

  it("recordFirstBoot_WholeBoot_ScanJoinIssueCommitHelloConfig", () => {
    const kinds = recording.steps.flatMap((s) => s.effects.map((e) => e.t));
    for (const kind of ["scan", "join", "connect", "subscribe", "publish", "store", "status", "arm", "cancel"]) assert.ok(kinds.includes(kind as never), `no ${kind} effect recorded`);
    const stores = recording.steps.flatMap((s) => s.effects.filter((e) => e.t === "store").map((e) => (e as { rec: string }).rec));
    assert.deepEqual(stores, ["ctr", "cred", "cred", "seal", "floor", "hot"], "the flash writes of a first boot, in order");
    assert.ok(recording.steps.every((s) => s.kept), "no step was dropped");
  });

  it("replay_SameEventsThroughStepAlone_SameEffectsByteForByte", () => {
    const again = replay(recording, nobleDigest);
    assert.equal(again.effects.length, recording.steps.length);
    recording.steps.forEach((recorded, i) => assert.equal(encode(again.effects[i]), encode(recorded.effects), `step ${i} (${recorded.event.t})`));
    assert.equal(again.machine.status.state, "ONLINE");
    assert.equal(again.machine.status.credential, "permanent");
  });

  it("replay_ChangedEvent_DifferentEffects", () => {
    // the comparison can fail: another CONNACK at the login gives other effects
    const changed = structuredClone(recording) as Recording;
    const ready = changed.steps.findIndex((s) => s.event.t === "ready");
    changed.steps[ready] = { ...changed.steps[ready], event: { t: "closed", link: 1, info: { connackCode: 5, detail: "no" }, now: changed.steps[ready].event.now, rnd: changed.steps[ready].event.rnd } };
    const again = replay(changed, nobleDigest);
    assert.notEqual(encode(again.effects[ready]), encode(recording.steps[ready].effects));
    assert.equal(again.machine.status.state, "AUTH_FAILED");
  });

  it("step_DoesNotChangeItsInput", () => {
    const first = replay({ ...recording, steps: recording.steps.slice(0, 3) }, nobleDigest).machine;
    const copy = structuredClone({ ...first, ctx: undefined });
    const event = { ...recording.steps[3].event };
    step(first, event);
    assert.ok(isDeepStrictEqual({ ...first, ctx: undefined }, copy), "step mutated the machine it was given");
    assert.equal(event.rnd.length, ENTROPY_BYTES);
  });

  it("transitionTable_DocsProtocol10_3_MatchesCode", () => {
    const doc = readFileSync(new URL("../docs/protocol.md", import.meta.url), "utf8");
    const begin = doc.indexOf(TABLE_BEGIN);
    const end = doc.indexOf(TABLE_END);
    assert.ok(begin > 0 && end > begin, "docs/protocol.md has no generated transition table");
    assert.equal(doc.slice(begin + TABLE_BEGIN.length, end).trim(), renderTable(rows), "docs/protocol.md 10.3 differs from the code: run npm run docs:states and review the diff");
  });

  it("transitionTable_EveryStateMeetsEveryEvent", () => {
    assert.equal(rows.length, 8 * Object.values(VARIANTS).flat().length);
    assert.equal(new Set(rows.map((r) => `${r.state}|${r.event}`)).size, rows.length);
  });

  it("transitionTable_IgnoredPairs_NoEffectMachineUnchanged", () => {
    for (const row of rows.filter((r) => r.next === "ignored")) {
      assert.deepEqual(row.effects, [], `${row.state} / ${row.event}`);
      assert.ok(isDeepStrictEqual(row.before, row.after), `${row.state} / ${row.event} changed the machine`);
    }
    for (const row of rows.filter((r) => r.event === "scanned (stale)" || r.event === "message (stale response)")) {
      assert.equal(row.next, "ignored", `${row.state} / ${row.event} is stale and must be ignored`);
    }
  });

  it("transitionTable_HandledPairs_LastStatusReportIsTheNextState", () => {
    for (const row of rows.filter((r) => r.next !== "ignored")) {
      assert.equal(row.after.status.state, row.next);
      const reports = row.effects.filter((e) => e.t === "status");
      const last = reports[reports.length - 1];
      if (row.next !== row.state) assert.ok(last && last.t === "status" && last.status.state === row.next, `${row.state} / ${row.event}: moved to ${row.next} without reporting it`);
    }
  });

  it("transitionTable_StopFromAnywhere_StartOnlyWhenStopped", () => {
    for (const row of rows.filter((r) => r.event === "stop")) assert.equal(row.next, row.state === "STOPPED" ? "ignored" : "STOPPED", row.state);
    for (const row of rows.filter((r) => r.event === "start")) assert.equal(row.next === "ignored", row.state !== "STOPPED", row.state);
    for (const row of rows.filter((r) => r.next === "STOPPED" && r.state !== "STOPPED")) {
      assert.ok(!row.after.timers && !row.after.link, `${row.state}: stopped with timers ${row.after.timers} or a link`);
    }
  });
});
