/*
 * The onboarding sub-machine: `step(state, event, ctx)` returns the next state
 * and the effects for the host to carry out (docs/protocol.md 15.5). No I/O,
 * no timers: the runner (runner.ts) or a test feeds events and performs effects.
 *
 * - `start` opens the SoftAP and the local service for a bounded window; a
 *   start the product asks for (a button) also clears a lockout;
 * - `request` answers one HTTP request: /v1/info, the CPace handshake
 *   (/v1/start, /v1/confirm) and sealed calls (/v1/call: status, scan,
 *   networks, end), each strictly parsed, with replay refused (call numbers
 *   only grow) and failed handshakes counted: at MAX_FAILED_HANDSHAKES the
 *   device refuses handshakes until a button press or a power cycle;
 * - `networks` asks the host to store them (effect `store`, then `stored`), and
 *   waits for the join's outcome (`joined` / `join-failed`), which the client
 *   reads with `status`; after JOINED the window lingers briefly, then closes;
 * - `tick` expires the window, a pending handshake and an idle session.
 * A bad request changes nothing but the failure count of an unconfirmed handshake.
 */
import { constantTimeEqual, utf8Encode } from "../bytes";
import { isWcmError } from "../errors";
import type { DigestPort, NetworkFailureReason, ScanResult, SealPort } from "../ports";
import { cpaceGenerator, cpaceKeys, cpaceShare, ONBOARD_PAKE, openCall, sealCall, type OnboardKeys } from "./cpace";
import {
  encodeCallAnswer, encodeCallResponse, encodeError, encodeInfo, encodeStartAnswer, MAX_SCAN_ENTRIES,
  parseCall, parseCallRequest, parseConfirm, parseStart, type CallResponse, type OnboardNetwork, type ScanEntry,
} from "./device-messages";
import { softApName } from "./device-label-code";

/** Failed or abandoned handshakes (since power-on or the last button press) before the device refuses more. */
export const MAX_FAILED_HANDSHAKES = 10;

/** Time bounds, milliseconds. */
export interface OnboardingTimes {
  /** how long the SoftAP stays up without success (default 15 min, as Matter's commissioning window) */
  windowMs: number;
  /** how long a started handshake waits for the client's confirmation (default 30 s) */
  handshakeMs: number;
  /** how long a session lives without a call (default 5 min) */
  sessionMs: number;
  /** after JOINED: how long the SoftAP stays for the client to read it (default 60 s) */
  lingerMs: number;
  /** after networks arrive: the least time left for the join (default 2 min) */
  joinMs: number;
}

export const DEFAULT_ONBOARDING_TIMES: OnboardingTimes = {
  windowMs: 15 * 60_000, handshakeMs: 30_000, sessionMs: 5 * 60_000, lingerMs: 60_000, joinMs: 2 * 60_000,
};

/** What the machine runs with (constant for a device). */
export interface OnboardingContext {
  digest: DigestPort;
  seal: SealPort;
  random: (length: number) => Uint8Array;
  now: number;
  deviceId: string;
  /** the 13 data characters of the label code (label-code.ts parseLabelCode) */
  code: string;
  times: OnboardingTimes;
}

interface Session {
  sid: Uint8Array;
  keys: OnboardKeys;
  /** the highest call number accepted (replay refusal) */
  lastN: number;
  until: number;
}

/** The machine's state. Treat as immutable: step() returns a new one. */
export interface OnboardingState {
  phase: "off" | "open" | "joining" | "joined";
  /** started by the product (manager.startOnboarding): may run while ONLINE */
  asked: boolean;
  /** when the window (or the linger after JOINED) ends */
  until: number;
  /** failed or abandoned handshakes since power-on or the last button press */
  failures: number;
  pending?: Session;
  session?: Session;
  /** the networks handed over, waiting for the join */
  target?: string[];
  result?: { state: "JOINED" | "FAILED"; ssid: string; reason?: string };
  /** a `networks` call waiting for the store: the request id and its call number */
  storing?: { id: number; n: number; count: number };
  online: boolean;
  scan: ScanEntry[];
}

/** A local HTTP request (the host bounds the body before it reads it). */
export interface LocalRequest { method: string; path: string; body: Uint8Array }

/** Events the host feeds the machine. */
export type OnboardingEvent =
  | { type: "start"; asked: boolean }
  | { type: "stop" }
  | { type: "tick" }
  | { type: "request"; id: number; request: LocalRequest }
  | { type: "stored"; id: number; ok: boolean }
  | { type: "scan"; results: readonly ScanResult[] }
  | { type: "joined"; ssid: string }
  | { type: "join-failed"; ssid: string; reason: NetworkFailureReason }
  | { type: "online"; online: boolean };

/** Effects for the host. */
export type OnboardingEffect =
  | { type: "ap-open"; ssid: string }
  | { type: "ap-close" }
  | { type: "respond"; id: number; status: number; body: Uint8Array }
  | { type: "store"; id: number; networks: OnboardNetwork[] }
  | { type: "log"; level: "info" | "warn"; message: string };

/** What one step returns: the next state, the effects, and when to tick next (undefined: no timer). */
export interface OnboardingStep {
  state: OnboardingState;
  effects: OnboardingEffect[];
  wakeAt?: number;
}

/** The state at power-on: off, no failures. */
export const INITIAL_ONBOARDING: OnboardingState = { phase: "off", asked: false, until: 0, failures: 0, online: false, scan: [] };

const ERROR_STATUS: Record<string, number> = {
  MESSAGE_INVALID: 400, MESSAGE_TOO_LARGE: 413, NOT_FOUND: 404, METHOD_NOT_ALLOWED: 405, LOCKED: 423,
  AUTH_FAILED: 403, NO_SESSION: 401, REPLAY: 409, BUSY: 409, CLOSED: 410, STORE_FAILED: 500,
};

function error(id: number, code: string, detail: string): OnboardingEffect {
  return { type: "respond", id, status: ERROR_STATUS[code] ?? 400, body: encodeError(code, detail) };
}

/** The access points worth showing the owner: strongest per SSID, strongest first, bounded. */
function summarise(results: readonly ScanResult[]): ScanEntry[] {
  const best = new Map<string, ScanEntry>();
  for (const r of results.slice(0, 64)) {
    if (typeof r.ssid !== "string" || r.ssid === "" || utf8Encode(r.ssid).length > 32 || /[\x00-\x1f\x7f]/.test(r.ssid)) continue;
    const rssi = Math.max(-127, Math.min(0, Math.round(r.rssi)));
    const seen = best.get(r.ssid);
    if (!seen || seen.rssi < rssi) best.set(r.ssid, { ssid: r.ssid, rssi, security: r.security });
  }
  return [...best.values()].sort((a, b) => b.rssi - a.rssi).slice(0, MAX_SCAN_ENTRIES);
}

function wakeAt(state: OnboardingState): number | undefined {
  if (state.phase === "off") return undefined;
  let at = state.until;
  if (state.pending) at = Math.min(at, state.pending.until);
  if (state.session) at = Math.min(at, state.session.until);
  return at;
}

function close(state: OnboardingState, effects: OnboardingEffect[], why: string): OnboardingState {
  if (state.phase === "off") return state;
  effects.push({ type: "ap-close" }, { type: "log", level: "info", message: `onboarding ended: ${why}` });
  return { ...INITIAL_ONBOARDING, failures: state.failures, online: state.online, scan: state.scan, ...(state.result ? { result: state.result } : {}) };
}

function statusOf(state: OnboardingState): CallResponse {
  const online = state.online;
  if (state.phase === "joining") return { op: "status", state: "JOINING", ...(state.target ? { ssid: state.target[0] } : {}), online };
  if (state.result) return { op: "status", state: state.result.state, ssid: state.result.ssid, ...(state.result.reason ? { reason: state.result.reason } : {}), online };
  return { op: "status", state: "WAITING", online };
}

/**
 * One step of the onboarding machine.
 * @example
 *   let s = INITIAL_ONBOARDING;
 *   ({ state: s, effects } = onboardingStep(s, { type: "start", asked: true }, ctx));   // [ap-open wcm-lamp-1]
 */
export function onboardingStep(state: OnboardingState, event: OnboardingEvent, ctx: OnboardingContext): OnboardingStep {
  const effects: OnboardingEffect[] = [];
  const next = reduce(state, event, ctx, effects);
  return { state: next, effects, wakeAt: wakeAt(next) };
}

function reduce(state: OnboardingState, event: OnboardingEvent, ctx: OnboardingContext, effects: OnboardingEffect[]): OnboardingState {
  const now = ctx.now;
  switch (event.type) {
    case "start": {
      const failures = event.asked ? 0 : state.failures;
      if (state.phase !== "off") return { ...state, asked: state.asked || event.asked, failures, until: Math.max(state.until, now + ctx.times.windowMs) };
      const ssid = softApName(ctx.deviceId);
      effects.push({ type: "ap-open", ssid }, { type: "log", level: "info", message: `onboarding: SoftAP ${ssid} for ${Math.round(ctx.times.windowMs / 1000)} s${failures >= MAX_FAILED_HANDSHAKES ? " (locked: press the button)" : ""}` });
      return { ...state, result: undefined, phase: "open", asked: event.asked, until: now + ctx.times.windowMs, failures };
    }
    case "stop":
      return close(state, effects, "stopped");
    case "tick": {
      if (state.phase === "off") return state;
      if (now >= state.until) return close(state, effects, state.phase === "joined" ? "joined" : "window over");
      let next = state;
      if (next.pending && now >= next.pending.until) next = { ...next, pending: undefined };
      if (next.session && now >= next.session.until) next = { ...next, session: undefined };
      return next;
    }
    case "scan":
      return { ...state, scan: summarise(event.results) };
    case "online": {
      const next = { ...state, online: event.online };
      // never onboarding while ONLINE unless the product asked: a hotspot or stored network came through
      if (event.online && state.phase === "open" && !state.asked) return close(next, effects, "online without it");
      return next;
    }
    case "joined": {
      // the join of a handed-over network, or a later retry of one that failed (the manager keeps trying it)
      const retried = state.phase === "open" && state.result?.state === "FAILED" && state.result.ssid === event.ssid;
      if (!retried && (state.phase !== "joining" || !state.target?.includes(event.ssid))) return state;
      effects.push({ type: "log", level: "info", message: `onboarding: joined ${event.ssid}` });
      return { ...state, phase: "joined", target: undefined, result: { state: "JOINED", ssid: event.ssid }, until: Math.min(state.until, now + ctx.times.lingerMs) };
    }
    case "join-failed":
      if (state.phase !== "joining" || !state.target?.includes(event.ssid)) return state;
      effects.push({ type: "log", level: "warn", message: `onboarding: ${event.ssid} failed: ${event.reason}` });
      return { ...state, phase: "open", target: undefined, result: { state: "FAILED", ssid: event.ssid, reason: event.reason } };
    case "stored": {
      const storing = state.storing;
      if (!storing || storing.id !== event.id || !state.session) return state;
      const rest = { ...state, storing: undefined };
      if (!event.ok) {
        effects.push(answer(ctx, state.session, event.id, storing.n, { op: "status", state: "FAILED", reason: "STORE_FAILED", online: state.online }));
        return rest;
      }
      effects.push(answer(ctx, state.session, event.id, storing.n, { op: "networks", stored: storing.count }));
      return { ...rest, phase: "joining", until: Math.max(state.until, now + ctx.times.joinMs) };
    }
    case "request":
      return request(state, event.id, event.request, ctx, effects);
  }
}

function answer(ctx: OnboardingContext, session: Session, id: number, n: number, response: CallResponse): OnboardingEffect {
  return { type: "respond", id, status: 200, body: encodeCallAnswer(n, sealCall(ctx.seal, session.keys, "s2c", session.sid, n, encodeCallResponse(response))) };
}

function request(state: OnboardingState, id: number, req: LocalRequest, ctx: OnboardingContext, effects: OnboardingEffect[]): OnboardingState {
  const route = `${req.method} ${req.path}`;
  if (state.phase === "off") {
    effects.push(error(id, "CLOSED", "onboarding is not running"));
    return state;
  }
  if (!["/v1/info", "/v1/start", "/v1/confirm", "/v1/call"].includes(req.path)) {
    effects.push(error(id, "NOT_FOUND", "no such path"));
    return state;
  }
  if (route !== "GET /v1/info" && req.method !== "POST") {
    effects.push(error(id, "METHOD_NOT_ALLOWED", "use POST"));
    return state;
  }
  try {
    switch (route) {
      case "GET /v1/info":
        effects.push({ type: "respond", id, status: 200, body: encodeInfo(ctx.deviceId, ONBOARD_PAKE, state.failures >= MAX_FAILED_HANDSHAKES) });
        return state;
      case "POST /v1/start":
        return start(state, id, req.body, ctx, effects);
      case "POST /v1/confirm":
        return confirm(state, id, req.body, ctx, effects);
      default:
        return call(state, id, req.body, ctx, effects);
    }
  } catch (caught) {
    if (!isWcmError(caught)) throw caught;
    effects.push(error(id, caught.code === "MESSAGE_TOO_LARGE" ? "MESSAGE_TOO_LARGE" : "MESSAGE_INVALID", caught.message));
    return state;
  }
}

function start(state: OnboardingState, id: number, body: Uint8Array, ctx: OnboardingContext, effects: OnboardingEffect[]): OnboardingState {
  const message = parseStart(body);
  if (state.failures >= MAX_FAILED_HANDSHAKES) {
    effects.push(error(id, "LOCKED", "too many failed attempts: press the device's button or power-cycle it"));
    return state;
  }
  // counted now, cleared by the confirmation: an attacker who never confirms spends an attempt too
  const failures = state.failures + 1;
  const generator = cpaceGenerator(ctx.digest, ctx.code, ctx.deviceId, message.sid);
  const mine = cpaceShare(ctx.seal, generator, ctx.random);
  const keys = cpaceKeys(ctx.digest, ctx.seal, ctx.deviceId, message.sid, mine.scalar, message.a, mine.share, message.a);
  if (!keys) {
    effects.push(error(id, "MESSAGE_INVALID", "a: not a P-256 share"));
    return { ...state, failures, pending: undefined };
  }
  effects.push({ type: "respond", id, status: 200, body: encodeStartAnswer(mine.share, keys.deviceTag) });
  return { ...state, failures, pending: { sid: message.sid, keys, lastN: 0, until: ctx.now + ctx.times.handshakeMs } };
}

function confirm(state: OnboardingState, id: number, body: Uint8Array, ctx: OnboardingContext, effects: OnboardingEffect[]): OnboardingState {
  const message = parseConfirm(body);
  const pending = state.pending;
  if (!pending || !constantTimeEqual(pending.sid, message.sid)) {
    effects.push(error(id, "NO_SESSION", "no handshake with this sid is waiting"));
    return state;
  }
  if (!constantTimeEqual(pending.keys.clientTag, message.t)) {
    effects.push(error(id, "AUTH_FAILED", "wrong label code"), { type: "log", level: "warn", message: `onboarding: a handshake failed (${state.failures} of ${MAX_FAILED_HANDSHAKES})` });
    return { ...state, pending: undefined };
  }
  effects.push({ type: "respond", id, status: 200, body: utf8Encode('{"v":1,"ok":true}') }, { type: "log", level: "info", message: "onboarding: owner authenticated" });
  return { ...state, pending: undefined, session: { ...pending, until: ctx.now + ctx.times.sessionMs }, failures: 0 };
}

function call(state: OnboardingState, id: number, body: Uint8Array, ctx: OnboardingContext, effects: OnboardingEffect[]): OnboardingState {
  const message = parseCall(body);
  const session = state.session;
  if (!session || !constantTimeEqual(session.sid, message.sid)) {
    effects.push(error(id, "NO_SESSION", "no session with this sid"));
    return state;
  }
  const plaintext = openCall(ctx.seal, session.keys, "c2s", session.sid, message.n, message.c);
  if (!plaintext) {
    effects.push(error(id, "AUTH_FAILED", "the call does not open with the session's key"));
    return state;
  }
  if (message.n <= session.lastN) {
    effects.push(error(id, "REPLAY", "call number already used"));
    return state;
  }
  if (state.storing) {
    effects.push(error(id, "BUSY", "networks are being stored"));
    return state;
  }
  const request = parseCallRequest(plaintext);
  const live: Session = { ...session, lastN: message.n, until: ctx.now + ctx.times.sessionMs };
  const next: OnboardingState = { ...state, session: live };
  switch (request.op) {
    case "status":
      effects.push(answer(ctx, live, id, message.n, statusOf(state)));
      return next;
    case "scan":
      effects.push(answer(ctx, live, id, message.n, { op: "scan", networks: state.scan }));
      return next;
    case "end":
      effects.push(answer(ctx, live, id, message.n, { op: "end" }));
      return close(next, effects, "the owner's client ended it");
    case "networks": {
      effects.push({ type: "store", id, networks: request.networks }, { type: "log", level: "info", message: `onboarding: ${request.networks.length} network(s) handed over` });
      return { ...next, result: undefined, target: request.networks.map((n) => n.ssid), storing: { id, n: message.n, count: request.networks.length } };
    }
  }
}
