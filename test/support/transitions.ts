/*
 * The transition table of modules/machine.ts, generated from the code: every
 * device state (a machine taken from a recorded first boot, or one step from
 * it) meets every event variant, and what `step` does is written down: the
 * next state and the effects, or "ignored" (no effect, machine unchanged).
 * docs/protocol.md 10.3 holds the rendered table; test/core-machine.test.ts
 * fails when the two differ (`npm run docs:states` rewrites it).
 * The Records below are keyed by the closed unions, so a new state or event
 * type does not compile until it has a fixture and a variant here.
 */
import { fromHex } from "../../modules/bytes";
import { ENTROPY_BYTES, step, type DeviceState, type Effect, type Event, type Input, type Machine } from "../../modules/machine";
import { encodeNotice, encodeResponse } from "../../modules/protocol";
import type { ScanResult } from "../../modules/ports";
import { bootOf, type Recording } from "./recording";

/** One event variant: a label and how to make it for a machine. */
interface Variant {
  label: string;
  make(m: Machine): Input;
}

const ZIPKEY_AP: ScanResult = { ssid: "ZipKey", bssid: "02:00:00:00:00:02", rssi: -60, channel: 6, security: "enterprise", roamingConsortium: ["5a03ba"] };

/** Every event type, with the variants the table shows. */
export const VARIANTS: Record<Input["t"], Variant[]> = {
  start: [{ label: "start", make: () => ({ t: "start" }) }],
  stop: [{ label: "stop", make: () => ({ t: "stop" }) }],
  timer: (["retry", "connect", "request", "radio", "upgrade"] as const).map((timer) => ({ label: `timer ${timer}`, make: () => ({ t: "timer", timer }) })),
  scanned: [
    { label: "scanned (a partner hotspot)", make: (m) => ({ t: "scanned", gen: m.net.gen, results: [ZIPKEY_AP] }) },
    { label: "scanned (stale)", make: (m) => ({ t: "scanned", gen: m.net.gen - 1, results: [ZIPKEY_AP] }) },
  ],
  joined: [{ label: "joined", make: (m) => ({ t: "joined", gen: m.net.gen, ip: "10.0.0.2", bssid: ZIPKEY_AP.bssid }) }],
  joinFailed: [{ label: "joinFailed (EAP-REJECTED)", make: (m) => ({ t: "joinFailed", gen: m.net.gen, failure: { reason: "EAP-REJECTED" } }) }],
  lost: [{ label: "lost", make: (m) => ({ t: "lost", gen: m.net.gen, failure: { reason: "CONNECTION-LOST" } }) }],
  ready: [{ label: "ready", make: (m) => ({ t: "ready", link: m.link }) }],
  message: [
    {
      label: "message (refusal of the outstanding request)",
      make: (m) => ({ t: "message", link: m.link, topic: m.ctx.topics.response, payload: encodeResponse({ v: 1, rid: m.req?.request.rid ?? "none", op: m.req?.request.op ?? "issue", ok: false, reason: "BAD_PROOF" }) }),
    },
    { label: "message (stale response)", make: (m) => ({ t: "message", link: m.link, topic: m.ctx.topics.response, payload: encodeResponse({ v: 1, rid: "stale", op: "config", ok: false, reason: "NOTHING_PENDING" }) }) },
    { label: "message (malformed)", make: (m) => ({ t: "message", link: m.link, topic: m.ctx.topics.response, payload: new Uint8Array([0x7b]) }) },
    { label: "message (notice config)", make: (m) => ({ t: "message", link: m.link, topic: m.ctx.topics.response, payload: encodeNotice({ v: 1, notice: "config" }) }) },
    { label: "message (app topic subscribed)", make: (m) => ({ t: "message", link: m.link, topic: `${m.ctx.topics.app}/led`, payload: new Uint8Array([1]) }) },
  ],
  closed: [
    { label: "closed (CONNACK 4)", make: (m) => ({ t: "closed", link: m.link, info: { connackCode: 4, detail: "refused" } }) },
    { label: "closed (CONNACK 3)", make: (m) => ({ t: "closed", link: m.link, info: { connackCode: 3, detail: "busy" } }) },
    { label: "closed (network)", make: (m) => ({ t: "closed", link: m.link, info: { detail: "reset" } }) },
  ],
  storeFailed: [
    { label: "storeFailed (a must store)", make: () => ({ t: "storeFailed", rec: "ctr", must: true, code: "STORE_FAILED" }) },
    { label: "storeFailed (the time floor)", make: () => ({ t: "storeFailed", rec: "floor", must: false, code: "STORE_FAILED" }) },
  ],
  publish: [{ label: "publish (app)", make: (m) => ({ t: "publish", topic: `${m.ctx.topics.app}/led`, payload: new Uint8Array([1]) }) }],
  subscribe: [{ label: "subscribe (app)", make: (m) => ({ t: "subscribe", topic: `${m.ctx.topics.app}/led` }) }],
  networks: [{ label: "networks (handed over locally)", make: () => ({ t: "networks", networks: [{ ssid: "Home", password: "right-password", priority: 5 }] }) }],
};

const STATES: DeviceState[] = ["STOPPED", "SCANNING", "JOINING", "CONNECTING", "ISSUING", "ONLINE", "RETRY_WAIT", "AUTH_FAILED"];

function event(input: Input, now: number): Event {
  return { ...input, now, rnd: fromHex("5a".repeat(ENTROPY_BYTES)) } as Event;
}

/**
 * A machine in every state: the first machine of each state in the recorded
 * boot (with the app topic "led" subscribed), and for the failure states the
 * CONNECTING one after a refused (CONNACK 4) or a failed (network) connect.
 */
export function fixtures(recording: Recording, digest: Parameters<typeof bootOf>[1]): { machines: Record<DeviceState, Machine>; now: number } {
  let m = step(bootOf(recording, digest), event({ t: "subscribe", topic: "wcm/v1/dev-rec/app/led" }, recording.bootMs)).state;
  const found: Partial<Record<DeviceState, Machine>> = { STOPPED: m };
  let now = recording.bootMs;
  for (const recorded of recording.steps) {
    const next = step(m, recorded.event);
    now = recorded.event.now;
    if (!recorded.kept) continue;
    m = next.state;
    found[m.status.state] ??= m;
  }
  const connecting = found.CONNECTING as Machine;
  found.AUTH_FAILED = step(connecting, event(VARIANTS.closed[0].make(connecting), now)).state;
  found.RETRY_WAIT = step(connecting, event(VARIANTS.closed[2].make(connecting), now)).state;
  for (const state of STATES) if (found[state]?.status.state !== state) throw new Error(`no fixture in ${state}`);
  return { machines: found as Record<DeviceState, Machine>, now: now + 1 };
}

/** How an effect shows in the table. */
function effectLabel(effect: Effect): string {
  switch (effect.t) {
    case "status": return `status(${effect.status.state})`;
    case "arm": case "cancel": return `${effect.t}(${effect.timer})`;
    case "store": return `store(${effect.rec}${effect.must ? ", must" : ""})`;
    case "log": return `log(${effect.level})`;
    default: return effect.t;
  }
}

/** One (state, event) pair and what step did with it. */
export interface Row {
  state: DeviceState;
  event: string;
  before: Machine;
  after: Machine;
  effects: Effect[];
  /** the next state, or "ignored" */
  next: string;
  summary: string;
}

/** Steps every variant in every state. `ignored(before, after)` decides whether the machine is unchanged. */
export function transitions(recording: Recording, digest: Parameters<typeof bootOf>[1], unchanged: (a: Machine, b: Machine) => boolean): Row[] {
  const { machines, now } = fixtures(recording, digest);
  const rows: Row[] = [];
  for (const state of STATES) {
    const before = machines[state];
    for (const variants of Object.values(VARIANTS)) {
      for (const variant of variants) {
        const result = step(before, event(variant.make(before), now));
        const ignored = result.effects.length === 0 && unchanged(before, result.state);
        rows.push({
          state, event: variant.label, before, after: result.state, effects: result.effects,
          next: ignored ? "ignored" : result.state.status.state,
          summary: result.effects.map(effectLabel).join(", "),
        });
      }
    }
  }
  return rows;
}

/** The markdown table of docs/protocol.md 10.3 (handled pairs one per row; ignored ones listed per state). */
export function renderTable(rows: Row[]): string {
  const lines = ["| state | event | next state | effects, in order |", "|---|---|---|---|"];
  for (const state of STATES) {
    const mine = rows.filter((row) => row.state === state);
    for (const row of mine.filter((r) => r.next !== "ignored")) {
      lines.push(`| \`${state}\` | ${row.event} | ${row.next === state ? "(same)" : `\`${row.next}\``} | ${row.summary || "(none: state data only)"} |`);
    }
    lines.push(`| \`${state}\` | ignored: ${mine.filter((r) => r.next === "ignored").map((r) => r.event).join("; ")} | | |`);
  }
  return lines.join("\n");
}

/** The markers around the generated table in docs/protocol.md. */
export const TABLE_BEGIN = "<!-- transition table: generated by `npm run docs:states` from modules/machine.ts; do not edit by hand -->";
export const TABLE_END = "<!-- end of transition table -->";
