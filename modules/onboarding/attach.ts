/*
 * Device-side onboarding: the onboarding machine and OnboardingAttachment,
 * which runs it for the connection manager. It feeds the machine events from the
 * host's OnboardingPort (SoftAP + local HTTP service), the scheduler, the radio
 * and the manager, one at a time, and carries out the effects (SoftAP up and
 * down, answers, storing handed-over networks); the machine makes every decision.
 * The manager only constructs it, passes its radio through `network`, and binds
 * two functions; the attachment:
 * - watches the radio (a NetworkPort that forwards every call): each scan goes
 *   to the owner's scan list, each join outcome to the machine (JOINED / FAILED
 *   of a handed-over network; a join the manager abandons by leave() counts as
 *   ASSOCIATION-FAILED);
 * - watches the manager's status: ONLINE is told to the machine (an onboarding
 *   it started itself then ends), STOPPED stops it;
 * - starts onboarding by itself when the device holds no private network and
 *   has not been ONLINE for `onboardAfterMs` since it started (or since it was
 *   last ONLINE, or since the last window ended), never while ONLINE;
 * - `start()` is manager.startOnboarding(): the product's button (clears a lockout).
 * Handed-over networks are stored by the manager's own `storeNetworks` (the
 * same record, rules and move as a cloud hand-off).
 *
 * The onboarding sub-machine, `onboardingStep(state, event, ctx)`, returns the
 * next state and the effects for the host to carry out (docs/protocol.md 15.5).
 * No I/O, no timers: the attachment (or a test) feeds events and performs effects.
 *
 * - `start` opens the SoftAP and the local service for a bounded window; a
 *   start the product asks for (a button) also clears a lockout;
 * - `request` answers one HTTP request: /v1/info, the CPace handshake
 *   (/v1/start, /v1/confirm) and sealed calls (/v1/call: status, scan,
 *   networks, end), each strictly parsed, with replay refused (call numbers
 *   only grow) and failed handshakes counted: at MAX_FAILED_HANDSHAKES the
 *   device refuses handshakes until a button press or a power cycle;
 * - `networks` asks the host to store them (effect `store`, then `stored`), and
 *   waits for the join's outcome (`join`: joined, or failed with a reason), which the client
 *   reads with `status`; after JOINED the window lingers briefly, then closes;
 * - `tick` expires the window, a pending handshake and an idle session.
 * A bad request changes nothing but the failure count of an unconfirmed handshake.
 */
import { constantTimeEqual, utf8Encode } from "../bytes";
import { valid } from "../check";
import { isWcmError } from "../errors";
import { checkSsid } from "../hotspots";
import type {
  ClockPort, DigestPort, JoinRequest, LogPort, NetworkFailureReason, NetworkPort, RandomPort, ScanResult, ScheduledTask, SchedulerPort, SealPort,
} from "../ports";
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
  storing?: { id: number; n: number };
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
  /** a join's outcome: joined, or failed for `reason` */
  | { type: "join"; ssid: string; reason?: NetworkFailureReason }
  | { type: "online"; online: boolean };

/**
 * What the machine has its host do, in order, while it steps (the effects:
 * machine.ts onboardingStep records them as OnboardingEffect values).
 */
export interface OnboardingOutput {
  /** brings up the SoftAP `ssid` and the local service */
  open(ssid: string): void;
  /** takes both down */
  close(): void;
  /** answers request `id` */
  respond(id: number, status: number, body: Uint8Array): void;
  /** stores the networks of request `id`; the host then feeds `stored` */
  store(id: number, networks: OnboardNetwork[]): void;
  log(level: "info" | "warn", message: string): void;
}

/** The state at power-on: off, no failures. */
export const INITIAL_ONBOARDING: OnboardingState = { phase: "off", asked: false, until: 0, failures: 0, online: false, scan: [] };

const log = (out: OnboardingOutput, message: string, level: "info" | "warn" = "info") => out.log(level, `onboarding: ${message}`);

/** The sealed answer to call `n`. */
const answer = (out: OnboardingOutput, ctx: OnboardingContext, session: Session, id: number, n: number, response: CallResponse) =>
  out.respond(id, 200, encodeCallAnswer(n, sealCall(ctx.seal, session.keys, "s2c", session.sid, n, encodeCallResponse(response))));

/** The access points worth showing the owner: strongest per SSID, strongest first, bounded, the device's own SoftAP left out. */
function summarise(results: readonly ScanResult[], own: string): ScanEntry[] {
  const best = new Map<string, ScanEntry>();
  results.slice(0, 64).forEach((r) => {
    const ssid = r.ssid;
    const rssi = Math.max(-127, Math.min(0, Math.round(r.rssi)));
    const seen = best.get(ssid);
    if (ssid !== own && valid(ssid, checkSsid, "") && (!seen || seen.rssi < rssi)) best.set(ssid, { ssid, rssi, security: r.security });
  });
  return Array.from(best.values()).sort((a, b) => b.rssi - a.rssi).slice(0, MAX_SCAN_ENTRIES);
}

const close = (state: OnboardingState, out: OnboardingOutput, why: string): OnboardingState => {
  if (state.phase === "off") return state;
  out.close();
  log(out, `ended: ${why}`);
  return { ...INITIAL_ONBOARDING, failures: state.failures, online: state.online, scan: state.scan, result: state.result };
};

/** When the machine in `state` must be ticked next (undefined: no timer). */
export const onboardingWakeAt = (state: OnboardingState): number | undefined =>
  state.phase === "off" ? undefined : Math.min(state.until, state.pending?.until ?? Infinity, state.session?.until ?? Infinity);

const PATHS = ["/v1/info", "/v1/start", "/v1/confirm", "/v1/call"];

/**
 * One step of the onboarding machine: the next state (a new object when
 * anything changed), with the effects carried out through `out` on the way.
 * @example
 *   let s = INITIAL_ONBOARDING;
 *   s = reduceOnboarding(s, { type: "start", asked: true }, ctx, out);   // out.open("wcm-lamp-1")
 */
export function reduceOnboarding(state: OnboardingState, event: OnboardingEvent, ctx: OnboardingContext, out: OnboardingOutput): OnboardingState {
  const now = ctx.now;
  const times = ctx.times;
  const phase = state.phase;
  const failures = state.failures;
  switch (event.type) {
    case "start": {
      // off: not asked, until 0 (INITIAL_ONBOARDING)
      const asked = event.asked;
      const cleared = asked ? 0 : failures;
      const next = { ...state, asked: state.asked || asked, failures: cleared, until: Math.max(state.until, now + times.windowMs) };
      if (phase !== "off") return next;
      const ssid = softApName(ctx.deviceId);
      out.open(ssid);
      log(out, `SoftAP ${ssid} up${cleared >= MAX_FAILED_HANDSHAKES ? " (locked: press the button)" : ""}`);
      return { ...next, result: undefined, phase: "open" };
    }
    case "stop":
      return close(state, out, "stopped");
    case "tick": {
      if (phase === "off") return state;
      if (now >= state.until) return close(state, out, phase === "joined" ? "joined" : "window over");
      const pending = state.pending;
      const session = state.session;
      return { ...state, pending: pending && now < pending.until ? pending : undefined, session: session && now < session.until ? session : undefined };
    }
    case "scan":
      return { ...state, scan: summarise(event.results, softApName(ctx.deviceId)) };
    case "online": {
      const next = { ...state, online: event.online };
      // never onboarding while ONLINE unless the product asked: a hotspot or stored network came through
      return event.online && phase === "open" && !state.asked ? close(next, out, "online without it") : next;
    }
    case "join": {
      const ssid = event.ssid;
      const result = state.result;
      const reason = event.reason;
      const ok = !reason;
      // the join of a handed-over network, or (joined) a later retry of one that failed (the manager keeps trying it)
      if (!(phase === "joining" && state.target!.includes(ssid)) && !(ok && phase === "open" && result?.state === "FAILED" && result.ssid === ssid)) return state;
      log(out, `${ssid}: ${reason ?? "joined"}`, ok ? "info" : "warn");
      return {
        ...state, target: undefined, phase: ok ? "joined" : "open", result: { state: ok ? "JOINED" : "FAILED", ssid, reason },
        until: Math.min(state.until, ok ? now + times.lingerMs : Infinity),
      };
    }
    case "stored": {
      const storing = state.storing;
      const session = state.session;
      const ok = event.ok;
      if (!storing || storing.id !== event.id || !session) return state;
      answer(out, ctx, session, event.id, storing.n, ok ? { op: "networks", stored: state.target!.length } : { op: "status", state: "FAILED", reason: "STORE_FAILED", online: state.online });
      return { ...state, storing: undefined, ...(ok && { phase: "joining", until: Math.max(state.until, now + times.joinMs) }) };
    }
  }
  // a request of the local service
  const id = event.id;
  const req = event.request;
  const path = PATHS.indexOf(req.path);
  const method = path ? "POST" : "GET";
  const body = req.body;
  const fail = (status: number, code: string, detail: string) => (out.respond(id, status, encodeError(code, detail)), state);
  if (phase === "off") return fail(410, "CLOSED", "not onboarding");
  if (path < 0) return fail(404, "NOT_FOUND", "no such path");
  if (req.method !== method) return fail(405, "METHOD_NOT_ALLOWED", method);
  try {
    if (!path) return (out.respond(id, 200, encodeInfo(ctx.deviceId, ONBOARD_PAKE, failures >= MAX_FAILED_HANDSHAKES)), state);
    if (path === 1) {
      const m = parseStart(body);
      const sid = m.sid;
      if (failures >= MAX_FAILED_HANDSHAKES) return fail(423, "LOCKED", "too many failed attempts");
      // counted now, cleared by the confirmation: an attacker who never confirms spends an attempt too
      const mine = cpaceShare(ctx.seal, cpaceGenerator(ctx.digest, ctx.code, ctx.deviceId, sid), ctx.random);
      const keys = cpaceKeys(ctx.digest, ctx.seal, ctx.deviceId, sid, mine.scalar, m.a, mine.share, m.a);
      if (keys) out.respond(id, 200, encodeStartAnswer(mine.share, keys.deviceTag));
      else fail(400, "MESSAGE_INVALID", "a: not a P-256 share");
      return { ...state, failures: failures + 1, pending: keys && { sid, keys, lastN: 0, until: now + times.handshakeMs } };
    }
    if (path === 2) {
      const m = parseConfirm(body);
      const pending = state.pending;
      if (!pending || !constantTimeEqual(pending.sid, m.sid)) return fail(401, "NO_SESSION", "no such handshake");
      const ok = constantTimeEqual(pending.keys.clientTag, m.t);
      if (ok) {
        out.respond(id, 200, utf8Encode('{"v":1,"ok":true}'));
        log(out, "owner authenticated");
      } else {
        fail(403, "AUTH_FAILED", "wrong label code");
        log(out, `a handshake failed (${failures} of ${MAX_FAILED_HANDSHAKES})`, "warn");
      }
      return { ...state, pending: undefined, ...(ok && { session: { ...pending, until: now + times.sessionMs }, failures: 0 }) };
    }
    const m = parseCall(body);
    const n = m.n;
    const session = state.session;
    if (!session || !constantTimeEqual(session.sid, m.sid)) return fail(401, "NO_SESSION", "no such session");
    const plaintext = openCall(ctx.seal, session.keys, "c2s", session.sid, n, m.c);
    if (!plaintext) return fail(403, "AUTH_FAILED", "does not open");
    if (n <= session.lastN) return fail(409, "REPLAY", "call number used");
    if (state.storing) return fail(409, "BUSY", "storing");
    const call = parseCallRequest(plaintext);
    const live: Session = { ...session, lastN: n, until: now + times.sessionMs };
    const next: OnboardingState = { ...state, session: live };
    const op = call.op;
    if (op === "networks") {
      const networks = call.networks;
      out.store(id, networks);
      log(out, `${networks.length} network(s) handed over`);
      return { ...next, result: undefined, target: networks.map((x) => x.ssid), storing: { id, n } };
    }
    // status: JOINING while a join runs, else the last outcome, else WAITING (JSON leaves the undefined fields out)
    const r = phase === "joining" ? { state: "JOINING" as const, ssid: state.target![0] } : state.result ?? { state: "WAITING" as const };
    answer(out, ctx, live, id, n, op === "status" ? { op, ...r, online: state.online } : op === "scan" ? { op, networks: state.scan } : { op });
    return op === "end" ? close(next, out, "the owner's client ended it") : next;
  } catch (error) {
    // the parsers' MESSAGE_TOO_LARGE (413) or MESSAGE_INVALID (400)
    if (!isWcmError(error)) throw error;
    const code = error.code;
    return fail(code === "MESSAGE_TOO_LARGE" ? 413 : 400, code, error.message);
  }
}

/** Default wait before the manager starts onboarding by itself (2 min without ONLINE and with no private network). */
export const DEFAULT_ONBOARD_AFTER_MS = 120_000;

/**
 * The host's SoftAP and local HTTP service (Node: hosts/node/onboarding-softap.ts;
 * Moddable: hosts/lin/network.ts, hosts/esp32/onboarding.ts). The host bounds
 * each body to MAX_LOCAL_BODY bytes (answering 413 itself beyond) before calling `handler`.
 */
export interface OnboardingPort {
  /** Brings up the SoftAP `ssid` (open: the PAKE, not WPA2, protects it) and the service. */
  open(ssid: string, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void;
  /** Takes both down; idempotent. */
  close(): void;
}

/** What onboarding needs from its owner (the connection manager). */
export interface OnboardingHost {
  /**
   * Stores the handed-over networks in the device's network store (the same
   * crash-safe record as a cloud hand-off) and lets the manager join them.
   * @throws on a store failure (nothing is then changed)
   */
  storeNetworks(networks: OnboardNetwork[]): void;
}

/** What the attachment needs from the manager, bound after the manager is built. */
export interface OnboardingBinding extends OnboardingHost {
  /** the private networks stored */
  networks(): readonly { ssid: string }[];
}

/** The status fields the attachment reads. */
export interface StatusView { state: string }

/** The ports the attachment runs with. */
export type RunnerPorts = { digest: DigestPort; seal: SealPort; random: RandomPort; clock: ClockPort; scheduler: SchedulerPort; log?: LogPort };

/** Device-side onboarding for one manager: the machine's runner, fed by the manager's radio and status. */
export class OnboardingAttachment {
  // fields are `declare`d and set in the constructor, TypeScript-private: on XS a class field
  // definition or a #private name costs ~40 B of bytecode each, a constructor assignment ~8
  /** the manager's radio, watched */
  declare readonly network: NetworkPort;
  /** the machine's state */
  protected declare current: OnboardingState;
  /** who stores handed-over networks (bound to the manager) */
  protected declare host: OnboardingBinding | undefined;
  private declare readonly ports: RunnerPorts;
  private declare readonly ctx: OnboardingContext;
  /** the machine's effects, carried out as it steps */
  private declare readonly output: OnboardingOutput;
  private declare readonly afterMs: number;
  private declare timer: ScheduledTask | undefined;
  private declare trigger: ScheduledTask | undefined;
  private declare queue: OnboardingEvent[];
  /** the manager's last state */
  private declare seen: string;

  /** @param setup.code the label code's 13 data characters (parseLabelCode) */
  constructor(
    ports: RunnerPorts & { network: NetworkPort; onboarding: OnboardingPort },
    setup: { deviceId: string; code: string; afterMs?: number; times?: Partial<OnboardingTimes> },
  ) {
    this.current = INITIAL_ONBOARDING;
    this.ports = ports;
    this.queue = [];
    this.afterMs = setup.afterMs ?? DEFAULT_ONBOARD_AFTER_MS;
    this.seen = "STOPPED";
    // digest, seal, deviceId and code as they are (the other fields go along unread)
    this.ctx = { ...ports, ...setup, random: (n) => ports.random.bytes(n), now: 0, times: { ...DEFAULT_ONBOARDING_TIMES, ...setup.times } };
    const port = ports.onboarding;
    const log = ports.log ?? (() => {});
    const replies = new Map<number, (status: number, body: Uint8Array) => void>();
    let nextId = 1;
    this.output = {
      open: (ssid) => port.open(ssid, (request, respond) => {
        const id = nextId++;
        replies.set(id, respond);
        this.feed({ type: "request", id, request });
      }),
      close: () => {
        port.close();
        replies.forEach((respond) => respond(410, new Uint8Array(0)));
        replies.clear();
      },
      respond: (id, status, body) => {
        const respond = replies.get(id);
        replies.delete(id);
        if (respond) respond(status, body);
      },
      store: (id, networks) => {
        let ok = true;
        try {
          this.host!.storeNetworks(networks);
        } catch (error) {
          ok = false;
          log("warn", `onboarding: storing networks failed: ${error instanceof Error ? error.message : "error"}`);
        }
        // (queued: the machine finishes this step first)
        this.feed({ type: "stored", id, ok });
      },
      log,
    };
    const radio = ports.network;
    let pending: string | undefined;
    // forwards everything and tells the machine what it sees
    const outcome = (ssid: string, reason?: NetworkFailureReason) => {
      if (pending === ssid) pending = undefined;
      this.feed({ type: "join", ssid, reason });
    };
    this.network = {
      scan: (done) => radio.scan((results) => {
        this.feed({ type: "scan", results });
        done(results);
      }),
      join: (request: JoinRequest, events) => {
        const ssid = (pending = request.ssid);
        // (the manager's callbacks are arrow functions: onLost goes through as it is)
        radio.join(request, {
          ...events,
          onJoined: (info) => (outcome(ssid), events.onJoined(info)),
          onFailed: (failure) => (outcome(ssid, failure.reason), events.onFailed(failure)),
        });
      },
      leave: () => {
        const abandoned = pending;
        pending = undefined;
        radio.leave();
        if (abandoned !== undefined) outcome(abandoned, "ASSOCIATION-FAILED");
      },
    };
  }

  /** Binds the manager's functions (once, right after the manager is built). */
  bind(binding: OnboardingBinding): void {
    this.host = binding;
  }

  /** manager.startOnboarding(): opens onboarding now (even while ONLINE); `asked` (a button, the product) clears a lockout. */
  start(asked = true): void {
    this.disarm();
    this.feed({ type: "start", asked });
  }

  /** Every status change of the manager. */
  status(status: StatusView): void {
    const was = this.seen;
    const state = (this.seen = status.state);
    const online = state === "ONLINE";
    if (state === "STOPPED") {
      this.disarm();
      return this.feed({ type: "stop" });
    }
    if (online !== this.current.online) this.feed({ type: "online", online });
    if (online) this.disarm();
    else if (was === "STOPPED" || was === "ONLINE") this.arm();
  }

  /** One event at a time: an event raised while an effect runs (a synchronous join, a store) waits its turn. */
  protected feed(event: OnboardingEvent): void {
    const queue = this.queue;
    if (queue.push(event) > 1) return;
    try {
      for (let next: OnboardingEvent | undefined = event; next; queue.shift(), next = queue[0]) this.step(next);
    } finally {
      this.queue = [];
    }
  }

  private step(event: OnboardingEvent): void {
    const ports = this.ports;
    const ctx = this.ctx;
    ctx.now = ports.clock.now();
    const state = (this.current = reduceOnboarding(this.current, event, ctx, this.output));
    const wakeAt = onboardingWakeAt(state);
    this.timer?.cancel();
    this.timer = wakeAt === undefined ? undefined : ports.scheduler.after(Math.max(0, wakeAt - ports.clock.now()), () => {
      this.timer = undefined;
      this.feed({ type: "tick" });
    });
    // not running: arm the automatic start
    if (state.phase === "off") this.arm();
  }

  private disarm(): void {
    this.trigger?.cancel();
    this.trigger = undefined;
  }

  /** Starts the wait before an automatic onboarding (when none waits and none runs). */
  private arm(): void {
    const idle = () => this.current.phase === "off" && this.seen !== "STOPPED" && this.seen !== "ONLINE";
    if (this.trigger || !idle()) return;
    this.trigger = this.ports.scheduler.after(this.afterMs, () => {
      this.trigger = undefined;
      if (!idle()) return;
      if (this.host?.networks().length) this.arm();
      else this.start(false);
    });
  }
}
