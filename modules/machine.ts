/*
 * The connection manager's behaviour as one transition function:
 * `step(machine, event) -> { state, effects }`.
 *
 * - Machine: all the manager's state, plain data (the status, the link and
 *   timer bookkeeping, the retry counter, and the parts' own states: the
 *   credential flow, the request channel, the network side, the cloud sync,
 *   each a section of pure helpers at the end of this file; one module, not
 *   five: each module carries its own import, export and name tables in the
 *   firmware's bytecode, about 2 KB for the four parts);
 * - Event (closed union): what happened (start, stop, a timer, a scan or join
 *   result, the link's ready / message / close, a failed flash write, the
 *   app's publish or subscribe), with the clock and fresh random bytes;
 * - Effect (closed union): what to do (report a status, log, arm or cancel a
 *   timer, connect / publish / subscribe / close the link, deliver an app
 *   message, scan / join / leave, store a record).
 * step never does I/O and never mutates its input; it computes only with the
 * deterministic parts of its context (digest, sealing arithmetic, the
 * temporary secret). manager.ts is the driver that runs the effects through the
 * ports and feeds their results back as events. docs/protocol.md 10.3 has the
 * transition table (test/core-machine.test.ts checks it against this code).
 *
 * A new state or event: add it to the unions below, to the `step` switch and
 * to the table's fixtures (test/support/transitions.ts); the table test names
 * every pair it does not know.
 */
import { constantTimeEqual, toBase64Url } from "./bytes";
import { isWcmError, WcmError } from "./errors";
import type { DeviceConfig } from "./config";
import { COUNTER_BLOCK, type StoredSecret } from "./credential-store";
import { deriveCloudLoginKey, deriveCommitProof, deriveHotspotPassword, deriveLoginProof, deriveWrapKey, unwrapSecret, type LoginKind } from "./derive";
import { DEFAULT_ANONYMOUS_IDENTITY, type HotspotSet } from "./hotspots";
import { candidateKey, clearNetworkBackoff, recordNetworkFailure, rescanDelay, selectNetwork, type BackoffTable, type Candidate, type PrivateNetwork } from "./network-selection";
import { applyNetworkChange, type StoredNetworks } from "./network-store";
import type { DigestPort, JoinRequest, LinkCloseInfo, LinkConnectOptions, LinkTls, NetworkFailure, ScanResult, SealPort, TemporarySecretPort } from "./ports";
import {
  CONNACK,
  decodeCloudMessage,
  decodeNetworkChange,
  encodeRequest,
  encodeStatus,
  formatLoginPassword,
  MAX_FAILURE_REPORTS,
  MAX_LOGIN_COUNTER,
  type CloudResponse,
  type CredentialLabel,
  type DeviceRequest,
  type DeviceState,
  type DeviceTopics,
  type NetworkFailureReport,
  type NetworkResult,
} from "./wire";
import { nextRetryDelay, type FailureClass, type RetryPolicy } from "./retry";
import { newSealSecretKey, openSealed, sealPublicKey, SEAL_VERSION, type SealPurpose } from "./seal";

export type { DeviceState } from "./wire";

/** Tuning; every field has a default. */
export interface ManagerOptions {
  retry?: RetryPolicy;
  /** how long to wait for a response before resending the request (default 5 s) */
  requestTimeoutMs?: number;
  /** sends of one request before the session is restarted (default 3) */
  requestAttempts?: number;
  /** how long a connect may take before it is abandoned (default 30 s) */
  connectTimeoutMs?: number;
  /**
   * say `hello` after each login and fetch hotspot profiles, network changes and
   * the time (default: true when ports.network is given, else false)
   */
  sync?: boolean;
  /** how long a scan may take before it counts as empty (default 15 s) */
  scanTimeoutMs?: number;
  /** how long a join may take before it counts as ASSOCIATION-FAILED (default 45 s) */
  joinTimeoutMs?: number;
  /** while ONLINE on a hotspot with private networks stored: least time between checks for them (default 60 s) */
  upgradeCheckMs?: number;
  /** with ports.onboarding: start onboarding after this long without ONLINE and with no private network stored (default 2 min; read by modules/onboarding/attach.ts) */
  onboardAfterMs?: number;
}

/** A failure the manager saw, as reported to the app and the cloud. */
export interface Failure {
  /** a stable upper-case code, e.g. NETWORK, BAD_CREDENTIALS, NOT_AUTHORIZED, SERVER_UNAVAILABLE, STORE_FAILED */
  reason: string;
  detail?: string;
  /** clock time of the failure */
  at: number;
}

/** A snapshot of the manager's state, delivered on every change. */
export interface ManagerStatus {
  state: DeviceState;
  credential: CredentialLabel;
  lastFailure?: Failure;
  /** consecutive failed attempts */
  attempt: number;
  /** when RETRY_WAIT or AUTH_FAILED: the delay before the next attempt */
  retryInMs?: number;
  /** with a NetworkPort: the network joined (from JOINING's success until it is left or lost) */
  network?: JoinedNetwork;
}

/** The manager's timers: one of each at most. */
export type TimerName = "retry" | "connect" | "request" | "radio" | "upgrade";
const BIT: Record<TimerName, number> = { retry: 1, connect: 2, request: 4, radio: 8, upgrade: 16 };

/** A record to store (credential-store.ts, network-store.ts). */
export type StoreRecord =
  | { rec: "ctr"; end: number }
  | { rec: "cred"; secret: StoredSecret }
  | { rec: "nets"; networks: StoredNetworks }
  | { rec: "hot"; set: HotspotSet }
  | { rec: "seal"; key: Uint8Array }
  | { rec: "floor"; seconds: number };

export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * What the driver does. Stores run first, in order; when one marked `must`
 * fails, the driver drops the whole step (its state and its other effects) and
 * steps `storeFailed` on the state before it; another store's failure is
 * stepped after the step's effects.
 */
export type Effect =
  | { t: "status"; status: ManagerStatus }
  | { t: "log"; level: LogLevel; msg: string }
  | { t: "arm"; timer: TimerName; ms: number }
  | { t: "cancel"; timer: TimerName }
  | { t: "connect"; link: number; options: LinkConnectOptions }
  | { t: "close" }
  | { t: "publish"; topic: string; payload: Uint8Array }
  | { t: "subscribe"; topic: string }
  | { t: "deliver"; topic: string; suffix: string; payload: Uint8Array }
  | { t: "scan"; gen: number }
  | { t: "join"; gen: number; request: JoinRequest }
  | { t: "leave" }
  | ({ t: "store"; must?: true } & StoreRecord);

/** What happened, without the clock and randomness the driver adds. */
export type Input =
  | { t: "start" }
  | { t: "stop" }
  | { t: "timer"; timer: TimerName }
  | { t: "scanned"; gen: number; results: ScanResult[]; error?: string }
  | { t: "joined"; gen: number; ip: string; bssid: string }
  | { t: "joinFailed"; gen: number; failure: NetworkFailure }
  | { t: "lost"; gen: number; failure: NetworkFailure }
  | { t: "ready"; link: number }
  | { t: "message"; link: number; topic: string; payload: Uint8Array }
  | { t: "closed"; link: number; info: LinkCloseInfo }
  | { t: "storeFailed"; rec: StoreRecord["rec"]; must: boolean; code: string }
  | { t: "publish"; topic: string; payload: Uint8Array }
  | { t: "subscribe"; topic: string }
  /** private networks handed over locally (modules/onboarding: the owner's phone), to store as a cloud `set` is stored */
  | { t: "networks"; networks: PrivateNetwork[] };

/** An event: what happened, the monotonic clock, and ENTROPY_BYTES fresh random bytes. */
export type Event = Input & { now: number; rnd: Uint8Array };

/** Random bytes the driver gives each event (request ids, jitter, a new sealing key). */
export const ENTROPY_BYTES = 64;

/** What the machine computes with; fixed for a manager's life. */
export interface Context {
  readonly config: DeviceConfig;
  readonly options: Required<ManagerOptions>;
  readonly digest: DigestPort;
  readonly seal: SealPort;
  /** temporary devices: the temporary secret (derived, stored or in hardware) */
  readonly temporary?: TemporarySecretPort;
  /** true with a NetworkPort */
  readonly radio: boolean;
  readonly topics: DeviceTopics;
}

/** What flash held at boot (the driver reads it once). */
export interface Stored {
  secret?: StoredSecret;
  /** the login counter reservation's end */
  counter: number;
  hotspots?: HotspotSet;
  networks: StoredNetworks;
  sealKey?: Uint8Array;
  floor: number;
}

/** All of the manager's state. */
export interface Machine {
  readonly ctx: Context;
  readonly status: ManagerStatus;
  /** the current link's id (0: none), and the last id given */
  readonly link: number;
  readonly links: number;
  /** consecutive failures of one class */
  readonly fails: number;
  readonly failClass: FailureClass;
  /** armed timers (bits of BIT) */
  readonly timers: number;
  readonly cred: CredentialState;
  readonly req?: Outstanding;
  readonly net: NetState;
  readonly sync: SyncState;
  /** the app topics subscribed */
  readonly apps: readonly string[];
}

/** The machine at power-on: STOPPED. */
export function boot(ctx: Context, stored: Stored, nowMs: number): Machine {
  const config = ctx.config;
  const secret = stored.secret;
  // the stored hotspot profiles, or the firmware's when newer
  const built = config.hotspots;
  const kept = stored.hotspots;
  const hotspots = kept && (!built || kept.rev >= built.rev) ? kept : built ?? { rev: 0, profiles: [] };
  const cred: Mutable<CredentialState> = { next: stored.counter, upTo: stored.counter };
  if (secret) cred.stored = secret;
  const sync: Mutable<SyncState> = {
    hotspots, networks: stored.networks.networks, seq: stored.networks.seq, results: [], wants: [],
    wall: wallStart(nowMs, Math.max(config.buildTime ?? 0, stored.floor)),
  };
  if (stored.sealKey) sync.key = { secret: stored.sealKey };
  return {
    ctx,
    // the label before the first login: "permanent" once an issued secret is stored
    status: { state: "STOPPED", credential: config.option === "certificate" ? "certificate" : secret ? "permanent" : config.option, attempt: 0 },
    link: 0, links: 0, fails: 0, failClass: "network", timers: 0,
    cred,
    net: { backoff: {}, scan: [], empty: 0, gen: 0, reports: [] },
    sync,
    apps: [],
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** The machine being built: its own copies of the parts' states, changed in place (the step's input is never changed). */
type Draft = Omit<Mutable<Machine>, "cred" | "net" | "sync"> & { net: Mutable<NetState>; sync: Mutable<SyncState>; cred: Mutable<CredentialState> };

/** One step in progress: the machine being built, with the effects so far, the event and how much of its randomness is used (dropped at the step's end). */
type X = Draft & {
  fx: Effect[];
  e: Event;
  r: number;
};

/**
 * The transition function.
 * @returns the next machine (a new object; `machine` is not changed) and the effects to run, in order
 * @example
 *   let m = boot(ctx, stored, clock.now());
 *   ({ state: m, effects } = step(m, { t: "start", now: clock.now(), rnd: random.bytes(ENTROPY_BYTES) }));
 */
export function step(machine: Machine, event: Event): { state: Machine; effects: Effect[] } {
  const m: X = { ...machine, cred: { ...machine.cred }, net: { ...machine.net }, sync: { ...machine.sync }, fx: [], e: event, r: 0 };
  const net = m.net;
  const state = m.status.state;
  const e = event;
  // a scan or join result of an older radio generation, an event of a closed link: stale
  if (!(("gen" in e && e.gen !== net.gen) || ("link" in e && (e.link !== m.link || !m.link)))) switch (e.t) {
    case "start":
      if (state === "STOPPED") {
        m.fails = 0;
        m.failClass = "network";
        attempt(m);
      }
      break;
    case "stop":
      if (state !== "STOPPED") {
        cancel(m, "retry");
        leave(m);
        setStatus(m, { state: "STOPPED" });
      }
      break;
    case "timer": {
      const timer = e.timer;
      if (!disarm(m, timer)) break;
      if (timer === "retry") attempt(m);
      else if (timer === "connect") fail(m, m.failClass === "lost" ? "lost" : "network", "CONNECT_TIMEOUT");
      else if (timer === "request") resend(m);
      else if (timer === "upgrade") {
        if (state === "ONLINE" && net.joined) {
          net.upgrading = true;
          emit(m, { t: "scan", gen: net.gen });
        }
      } else if (state === "SCANNING") scanned(m, []);
      else if (state === "JOINING") joinFailed(m, { reason: "ASSOCIATION-FAILED", detail: "join timed out" }, true);
      break;
    }
    case "scanned":
      if (e.error) log(m, "warn", "scan failed: " + e.error);
      if (net.upgrading) {
        // the upgrade check's scan (ONLINE on a hotspot): a stored private network in range is joined
        net.upgrading = false;
        if (state !== "ONLINE" || !net.joined) break;
        const candidate = selectNetwork(e.results, m.sync.networks, [], net.backoff, e.now).candidate;
        if (!candidate) scheduleUpgradeCheck(m);
        else {
          log(m, "info", `private network ${candidate.ssid} in range: leaving the hotspot`);
          leave(m);
          net.scan = e.results.slice(0, 64);
          join(m, candidate);
        }
      }
      else if (state === "SCANNING") scanned(m, e.results);
      break;
    case "joined": {
      const target = net.target;
      if (state !== "JOINING" || !target) break;
      cancel(m, "radio");
      const joined = { ...target, bssid: e.bssid || target.bssid };
      net.joined = joined;
      net.target = undefined;
      log(m, "info", `joined ${joined.kind} network ${joined.ssid} (${e.ip})`);
      // how the network shows in the status
      const shown: JoinedNetwork = { kind: joined.kind, ssid: joined.ssid, bssid: joined.bssid };
      if (joined.kind === "hotspot") shown.profile = joined.profile.name;
      setStatus(m, { network: shown });
      connect(m);
      break;
    }
    case "joinFailed":
      if (state === "JOINING") joinFailed(m, e.failure);
      break;
    case "lost": {
      const joined = net.joined;
      if (!joined || state === "STOPPED") break;
      net.joined = undefined;
      net.upgrading = false;
      // (the radio's timer is not armed while a network is joined)
      radio(m);
      cancel(m, "upgrade");
      dropLink(m);
      netFailure(m, joined, failureOf(e.failure.reason || "CONNECTION-LOST", e.failure.detail));
      setStatus(m, { network: undefined });
      m.fails = 0;
      scheduleRetry(m, nextRetryDelay("network", countFailure(m, "network"), random01(m), m.ctx.options.retry));
      break;
    }
    case "ready":
      if (state !== "CONNECTING") break;
      cancel(m, "connect");
      [m.ctx.topics.response].concat(m.apps).forEach((topic) => emit(m, { t: "subscribe", topic }));
      // an unconfirmed issued secret the cloud accepted is marked confirmed
      if (unconfirmed(m.cred)) confirm(m, m.cred.stored);
      if ((m.cred.active as ActiveCredential).label === "temporary") {
        setStatus(m, { state: "ISSUING" });
        send(m, { op: "issue" });
      } else goOnline(m);
      break;
    case "message":
      message(m, e.topic, e.payload);
      break;
    case "closed": {
      const code = e.info.connackCode;
      const detail = e.info.detail;
      m.link = 0;
      if (code === CONNACK.badCredentials || code === CONNACK.notAuthorized) {
        const reason = code === CONNACK.badCredentials ? "BAD_CREDENTIALS" : "NOT_AUTHORIZED";
        // an unconfirmed issued secret refused: the cloud never saw its proof (it lost the pending one), so the credential it replaces is still the live one: try that once
        if (!unconfirmed(m.cred) || m.ctx.config.option === "certificate") fail(m, "auth", reason, detail);
        else {
          m.cred.fallback = true;
          dropLink(m);
          recordFailure(m, reason, "unconfirmed issued secret refused; falling back to the credential it replaces");
          scheduleRetry(m, 0);
        }
      }
      // "cloud busy" (docs/protocol.md section 10): a short jittered window, not the network's exponential back-off
      else if (code === CONNACK.serverUnavailable) fail(m, "busy", "SERVER_UNAVAILABLE", detail);
      // a network failure since an ONLINE session ended (the cloud was there a moment ago: a restart): "lost", a short window
      else if (state === "ONLINE") fail(m, "lost", "CONNECTION_LOST", detail);
      else fail(m, m.failClass === "lost" ? "lost" : "network", "NETWORK", detail);
      break;
    }
    case "storeFailed": {
      // `must` (stepped on the state before the step that asked for it): the attempt ends with STORE_FAILED; otherwise only noted
      const cred = m.cred;
      const sync = m.sync;
      if (e.must) {
        if (state === "JOINING") leave(m);
        fail(m, "network", "STORE_FAILED", e.code);
      } else if (e.rec === "cred") {
        // Not fatal: an unconfirmed secret is confirmed again at the next login.
        cred.stored = cred.undo ?? cred.stored;
        cred.undo = undefined;
        log(m, "warn", "could not mark the issued secret confirmed; will retry at next login");
      } else if (e.rec === "hot") {
        log(m, "warn", `could not store hotspot profiles rev ${sync.hotspots.rev} (${e.code})`);
      } else {
        sync.wall = { ...sync.wall, saved: sync.wall.bootFloor };
        log(m, "warn", "could not persist the time floor");
      }
      break;
    }
    case "subscribe":
    case "publish":
      // a subscription is kept for the next sessions; both are sent now when ONLINE
      if (e.t === "subscribe" && !m.apps.includes(e.topic)) m.apps = m.apps.concat(e.topic);
      if (state === "ONLINE" && m.link) emit(m, e.t === "publish" ? { t: "publish", topic: e.topic, payload: e.payload } : { t: "subscribe", topic: e.topic });
      break;
    case "networks": {
      // stored like a cloud `set` (same record and rules, the change sequence kept), their failures forgotten; then move to them
      applyChanges(m, e.networks.map((n) => ({ ...n, action: "set" })), m.sync.seq);
      if (state !== "STOPPED") moveNetwork(m);
      break;
    }
  }
  const effects = m.fx;
  const done: Partial<X> = m;
  delete done.fx;
  delete done.e;
  delete done.r;
  return { state: m, effects };
}

// ---------------------------------------------------------------- effects and status

function emit(m: X, effect: Effect): void {
  m.fx.push(effect);
}

function log(m: X, level: LogLevel, msg: string): void {
  emit(m, { t: "log", level, msg });
}

function arm(m: X, timer: TimerName, ms: number): void {
  m.timers |= BIT[timer];
  emit(m, { t: "arm", timer, ms });
}

/** Marks `timer` not armed; true when it was. */
function disarm(m: X, timer: TimerName): boolean {
  const armed = m.timers & BIT[timer];
  m.timers ^= armed;
  return !!armed;
}

function cancel(m: X, timer: TimerName): void {
  if (disarm(m, timer)) emit(m, { t: "cancel", timer });
}

function store(m: X, record: StoreRecord, must?: true): void {
  emit(m, must ? { t: "store", must, ...record } : { t: "store", ...record });
}

/** Random bytes of the event, each used once. */
function take(m: X, n: number): Uint8Array {
  if (m.r + n > m.e.rnd.length) throw new WcmError("STATE_INVALID", "event randomness used up", "rnd");
  m.r += n;
  return m.e.rnd.subarray(m.r - n, m.r);
}

function random01(m: X): number {
  const b = take(m, 4);
  return (((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3]) / 2 ** 32;
}

/**
 * Applies a status change and reports it. A new state drops the retry delay (only
 * scheduleRetry gives one); a network given as undefined is dropped.
 */
function setStatus(m: X, change: Partial<ManagerStatus>): void {
  const next = { ...m.status, ...change };
  if (change.state && change.retryInMs === undefined) delete next.retryInMs;
  if (!next.network) delete next.network;
  m.status = next;
  emit(m, { t: "status", status: next });
}

/** `text`, and `: detail` when there is one. */
function withDetail(text: string, detail?: string): string {
  return detail ? text + ": " + detail : text;
}

/** A failure's reason, and its detail when there is one. */
function failureOf<R extends string>(reason: R, detail?: string): { reason: R; detail?: string } {
  return detail ? { reason, detail } : { reason };
}

/** Notes a failure in the status and the log, without ending anything (no status report). */
function recordFailure(m: X, reason: string, detail?: string): void {
  const failure: Failure = { reason, at: m.e.now };
  if (detail) failure.detail = detail.slice(0, 200);
  m.status = { ...m.status, lastFailure: failure };
  log(m, "warn", withDetail(reason, detail));
}

// ---------------------------------------------------------------- connecting

/** The next attempt: join a network first when there is a radio and none is joined. */
function attempt(m: X): void {
  if (m.ctx.radio && !m.net.joined) scan(m);
  else connect(m);
}

/**
 * `compute(a, b)`, or undefined once the attempt failed for it: KEY_UNAVAILABLE (the
 * temporary secret cannot be computed) as an auth failure; with `join`, any
 * other error as STORE_FAILED (else it is thrown on).
 */
function guarded<A, B, T>(m: X, compute: (a: A, b: B) => T, a: A, b: B, join?: boolean): T | undefined {
  try {
    return compute(a, b);
  } catch (error) {
    if (isWcmError(error, "KEY_UNAVAILABLE")) fail(m, "auth", "KEY_UNAVAILABLE", error.message);
    else if (join) fail(m, "network", "STORE_FAILED", isWcmError(error) ? error.code : "join");
    else throw error;
  }
}

/** Logs in to the cloud over a new link. */
function connect(m: X): void {
  const ctx = m.ctx;
  const config = ctx.config;
  const cred = m.cred;
  const active = guarded(m, chooseCredential, ctx, cred);
  if (!active) return;
  cred.active = active;
  cred.fallback = false;
  let password;
  const secret = active.secret;
  if (secret) {
    // a counter-based proof (no clock needed)
    const kind = active.kind as LoginKind;
    const counter = cred.next;
    if (counter >= MAX_LOGIN_COUNTER) {
      fail(m, "network", "STORE_FAILED", "STORE_LIMIT");
      return;
    }
    // counters are reserved in blocks; a block's end is stored before the password that uses it leaves the device
    if (counter >= cred.upTo) store(m, { rec: "ctr", end: cred.upTo = Math.min(counter + COUNTER_BLOCK, MAX_LOGIN_COUNTER) }, true);
    cred.next = counter + 1;
    password = formatLoginPassword({ kind, counter, proof: deriveLoginProof(ctx.digest, deriveCloudLoginKey(ctx.digest, secret), config.deviceId, kind, counter) });
  }
  setStatus(m, { state: "CONNECTING", credential: active.label });
  m.link = m.links = m.links + 1;
  arm(m, "connect", ctx.options.connectTimeoutMs);
  const cloud = config.cloud;
  const tls: LinkTls = { ca: cloud.ca, serverName: cloud.serverName };
  if (config.option === "certificate") {
    tls.certificate = config.certificate;
    tls.privateKey = config.privateKey;
  }
  const options: Partial<LinkConnectOptions> = { host: cloud.host, port: cloud.port, clientId: config.deviceId, username: config.deviceId };
  if (password) options.password = password;
  options.keepAliveSeconds = cloud.keepAliveSeconds;
  options.tls = tls;
  emit(m, { t: "connect", link: m.link, options: options as LinkConnectOptions });
}


function goOnline(m: X): void {
  const net = m.net;
  m.fails = 0;
  m.failClass = "network";
  m.sync.wants = [];
  setStatus(m, { state: "ONLINE", attempt: 0 });
  const joined = net.joined;
  if (joined) {
    // the joined network works: clear its back-off, settle a hand-off (JOINED or FAILED)
    const handoff = net.handoff;
    net.backoff = clearNetworkBackoff(net.backoff, joined.key);
    const settled: PendingResult | undefined = handoff && (isPrivate(joined, handoff.ssid)
      ? { seq: handoff.seq, result: "JOINED" }
      : handoff.failure && { seq: handoff.seq, result: "FAILED", failure: handoff.failure });
    if (settled) {
      net.handoff = undefined;
      queueResult(m, settled);
    }
    scheduleUpgradeCheck(m);
  }
  // (encodeStatus takes the failure's reason and detail)
  emit(m, { t: "publish", topic: m.ctx.topics.status, payload: encodeStatus({ v: 1, state: "ONLINE", credential: m.status.credential, lastFailure: m.status.lastFailure }) });
  if (m.ctx.options.sync) {
    want(m, "hello");
    if (m.sync.results.length) want(m, "result");
  }
  pump(m);
}

/** True when `c` is the private network `ssid`. */
function isPrivate(c: { kind: string; ssid: string }, ssid: string): boolean {
  return c.kind === "private" && c.ssid === ssid;
}

// ---------------------------------------------------------------- requests

/** A request without its version and request id (send adds them). */
type Unsent = DeviceRequest extends infer R ? (R extends DeviceRequest ? Omit<R, "v" | "rid"> : never) : never;

/** Sends `request` now (with a new request id), replacing any outstanding one. */
function send(m: X, request: Unsent): void {
  cancel(m, "request");
  m.req = { request: { v: 1, rid: toBase64Url(take(m, 9)), ...request } as DeviceRequest, sends: 0 };
  resend(m);
}

/** Sends the outstanding request (again: the same request id, every operation is idempotent), or gives up after requestAttempts sends. */
function resend(m: X): void {
  const req = m.req;
  if (!req || !m.link) return;
  const request = req.request;
  if (req.sends >= m.ctx.options.requestAttempts) return fail(m, "network", "REQUEST_TIMEOUT", request.op);
  m.req = { request, sends: req.sends + 1 };
  emit(m, { t: "publish", topic: m.ctx.topics.request, payload: encodeRequest(request) });
  arm(m, "request", m.ctx.options.requestTimeoutMs);
}

/** Sends the next wanted background request, when ONLINE and none is outstanding. */
function pump(m: X): void {
  const sync = m.sync;
  while (m.status.state === "ONLINE" && m.link && !m.req && sync.wants.length) {
    const what = sync.wants[0];
    sync.wants = sync.wants.slice(1);
    if (what === "rotate") {
      // The cloud holds a rotated secret for this device: fetch it (only with a shared or issued secret).
      if (m.cred.active?.kind === "s") send(m, { op: "issue" });
    } else if (what === "hello") {
      const joined = m.net.joined;
      const reports = m.net.reports.slice(0, MAX_FAILURE_REPORTS);
      const hello: Unsent = { op: "hello", rev: sync.hotspots.rev, key: (sealKey(m, true) as SealKeyPair).public, seal: SEAL_VERSION };
      if (joined) hello.net = { kind: joined.kind, ssid: joined.ssid };
      if (reports.length) hello.failures = reports;
      send(m, hello);
    } else if (what === "result") {
      const results = sync.results;
      if (!results.length) continue;
      if (results.length > 1) want(m, "result");
      // the oldest pending result (a failure has its reason and, when there is one, its detail)
      const result = results[0];
      send(m, { op: "network-result", seq: result.seq, result: result.result, ...result.failure });
    } else {
      send(m, { op: what });
    }
  }
}

type SealKeyPair = { secret: Uint8Array; public: Uint8Array };

/**
 * The device's sealing key pair: the stored one, or with `make` a new one (stored before
 * its public half is ever sent: a failed write just makes a new pair next time).
 */
function sealKey(m: X, make: boolean): SealKeyPair | undefined {
  const sync = m.sync;
  let key = sync.key;
  if (!key) {
    if (!make) return undefined;
    key = { secret: newSealSecretKey((n) => take(m, n)) };
    store(m, { rec: "seal", key: key.secret }, true);
  }
  if (!key.public) key = { secret: key.secret, public: sealPublicKey(m.ctx.seal, key.secret) };
  sync.key = key;
  return key as SealKeyPair;
}

/** Opens `sealed` with the device's key (and reads it with `read`); undefined when it does not open or read. */
function open<T = Uint8Array>(m: X, sealed: Uint8Array, purpose: SealPurpose, read?: (plain: Uint8Array) => T): T | undefined {
  const ctx = m.ctx;
  try {
    const key = sealKey(m, false);
    const plain = key && openSealed(ctx.digest, ctx.seal, key.secret, key.public, ctx.config.deviceId, sealed, purpose);
    return plain && (read ? read(plain) : plain as T);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- messages

function message(m: X, topic: string, payload: Uint8Array): void {
  const sync = m.sync;
  const topics = m.ctx.topics;
  if (topic !== topics.response) {
    if (m.apps.includes(topic)) emit(m, { t: "deliver", topic, suffix: topic.slice(topics.app.length + 1), payload });
    return;
  }
  let msg;
  try {
    msg = decodeCloudMessage(payload);
  } catch (error) {
    log(m, "warn", `ignored a malformed response (${isWcmError(error) ? error.message : "error"})`);
    return;
  }
  if ("notice" in msg) {
    // `rotate` always; the others only when synchronising
    if (msg.notice === "rotate" || m.ctx.options.sync) want(m, msg.notice);
    return pump(m);
  }
  const req = m.req;
  if (!req || req.request.rid !== msg.rid) return; // stale or duplicate: ignore
  const request = req.request;
  const op = request.op;
  m.req = undefined;
  cancel(m, "request");
  if (!msg.ok) {
    // issue and commit: a refusal ends the attempt
    if (op === "issue" || op === "commit") return fail(m, "server", "REFUSED_" + msg.reason, msg.detail);
    // Background requests (the sync's): a refusal leaves the session as it is.
    log(m, msg.reason === "NOTHING_PENDING" ? "debug" : "warn", `${op} refused: ${msg.reason}`);
    if (request.op === "network-result") dropResult(m, request.seq);
  } else if (msg.op !== op) {
    return fail(m, "server", "PROTOCOL_VIOLATION", "response does not match request");
  } else if (msg.op === "issue") {
    // unwrap, store, then prove possession (`commit`)
    const ctx = m.ctx;
    const digest = ctx.digest;
    const cred = m.cred;
    const active = cred.active as ActiveCredential;
    const gen = msg.gen;
    let wrapped = msg as { nonce: Uint8Array; secret: Uint8Array; tag: Uint8Array };
    if ("sealed" in msg) {
      // A rotation sealed to this device's key: the current secret alone does not open it (9.5).
      const opened = open(m, msg.sealed, "rotation");
      if (!opened || opened.length !== 80) return fail(m, "server", "BAD_WRAP", "rotated secret does not open with this device's sealing key");
      wrapped = { nonce: opened.subarray(0, 16), secret: opened.subarray(16, 48), tag: opened.subarray(48) };
    }
    const deviceId = ctx.config.deviceId;
    const secret = unwrapSecret(digest, deriveWrapKey(digest, active.secret as Uint8Array), deviceId, wrapped.nonce, { ciphertext: wrapped.secret, tag: wrapped.tag });
    if (!secret) return fail(m, "server", "BAD_WRAP", "issued secret failed its integrity check");
    const record: StoredSecret = { deviceId, secret, generation: gen, confirmed: false };
    // a rotation of an issued secret: keep the one it replaces until the commit is confirmed
    if (active.label === "permanent" && cred.stored) record.previous = { secret: active.secret as Uint8Array, generation: cred.stored.generation };
    // Stored before the proof is sent: the cloud retires the replaced secret only after the proof.
    store(m, { rec: "cred", secret: record }, true);
    cred.stored = record;
    send(m, { op: "commit", gen, proof: deriveCommitProof(digest, secret, deviceId, gen) });
    return;
  } else if (msg.op === "commit") {
    // the issued secret of that generation is the device's credential now: ONLINE as PERMANENT
    const generation = msg.gen;
    const stored = m.cred.stored;
    if (!stored || stored.generation !== generation) return fail(m, "server", "PROTOCOL_VIOLATION", "commit of an unknown generation");
    confirm(m, stored);
    // (the stored issued secret now)
    m.cred.active = chooseCredential(m.ctx, m.cred);
    setStatus(m, { credential: "permanent" });
    goOnline(m);
    return log(m, "info", `secret generation ${generation} committed`);
  } else if (msg.op === "hello") {
    // The cloud has them: drop the reports it acknowledged (new ones may have been added since).
    const sent = (request as Extract<DeviceRequest, { op: "hello" }>).failures ?? [];
    m.net.reports = m.net.reports.filter((r) => !sent.includes(r));
    // the cloud's time; a newer profile set and a waiting network change are wanted
    const seen = wallObserve(sync.wall, msg.time, m.e.now);
    sync.wall = seen.wall;
    if (msg.rev > 0 && msg.rev !== sync.hotspots.rev) want(m, "config");
    if (msg.network) want(m, "network");
    if (seen.save !== undefined) store(m, { rec: "floor", seconds: seen.save });
  } else if (msg.op === "config") {
    if (msg.rev !== sync.hotspots.rev) {
      const set: HotspotSet = { rev: msg.rev, profiles: msg.hotspots };
      store(m, { rec: "hot", set });
      sync.hotspots = set;
      log(m, "info", `hotspot profiles rev ${set.rev}: ${set.profiles.length} profile(s)`);
    }
  } else if (msg.op === "network") {
    // a sealed private network change: store it, then hand off (or report)
    const change = open(m, msg.sealed, "network", decodeNetworkChange);
    const seq = msg.seq;
    if (!change || change.seq !== seq) {
      log(m, "warn", `network change ${seq} does not open with this device's key`);
      queueResult(m, { seq, result: "UNREADABLE" });
    } else {
      const ssid = change.ssid;
      const joined = m.net.joined;
      const onIt = !!joined && isPrivate(joined, ssid);
      // not fresh: applied before (its result was lost): report again, or try it again
      const fresh = seq > sync.seq;
      if (fresh) {
        // Nothing applied, nothing reported if this write fails: the cloud keeps the change and the next session fetches it again.
        applyChanges(m, [change], seq);
        log(m, "info", `network change ${seq}: ${change.action} a private network`);
      }
      if (change.action === "forget") {
        queueResult(m, { seq, result: "FORGOTTEN" });
        if (fresh && onIt) moveNetwork(m);
      } else if (!fresh && onIt) {
        queueResult(m, { seq, result: "JOINED" });
      } else if (!m.ctx.radio) {
        // the hand-off's outcome is reported once known
        queueResult(m, { seq, result: "FAILED", failure: { reason: "NETWORK-NOT-FOUND", detail: "no radio" } });
      } else {
        m.net.handoff = { seq, ssid };
        moveNetwork(m);
      }
    }
  } else {
    dropResult(m, msg.seq);
  }
  pump(m);
}




/** Leaves the current network and selects again from a fresh scan. */
function moveNetwork(m: X): void {
  leave(m);
  m.fails = 0;
  m.failClass = "network";
  scan(m);
}

// ---------------------------------------------------------------- the radio

/** A new radio generation (the results of older ones are stale), the radio's timer cancelled. */
function radio(m: X): void {
  m.net.gen++;
  cancel(m, "radio");
}

function scan(m: X): void {
  const net = m.net;
  net.upgrading = false;
  setStatus(m, { state: "SCANNING", network: undefined });
  radio(m);
  arm(m, "radio", m.ctx.options.scanTimeoutMs);
  emit(m, { t: "scan", gen: net.gen });
}

function scanned(m: X, results: readonly ScanResult[]): void {
  m.net.scan = results.slice(0, 64);
  radio(m);
  chooseNetwork(m);
}

/** The join of the target failed (with `timedOut`, its timer ran out: the radio is told to stop). */
function joinFailed(m: X, failure: NetworkFailure, timedOut?: boolean): void {
  if (timedOut) emit(m, { t: "leave" });
  radio(m);
  netFailure(m, m.net.target as Candidate, failure);
  chooseNetwork(m);
}

/** Joins the best candidate of the last scan, or waits and rescans. */
function chooseNetwork(m: X): void {
  const net = m.net;
  const networks = m.sync.networks;
  const profiles = m.sync.hotspots.profiles;
  // stored private networks first, then hotspot profiles (network-selection.ts)
  const selection = selectNetwork(net.scan, networks, profiles, net.backoff, m.e.now);
  const ranked = selection.ranked;
  const handoff = net.handoff;
  if (handoff && !handoff.failure && !ranked.some((c) => isPrivate(c, handoff.ssid)) && networks.some((n) => n.ssid === handoff.ssid)) {
    // the (stored) network handed off to is not in range
    netFailure(m, { kind: "private", key: candidateKey("private", handoff.ssid), ssid: handoff.ssid }, { reason: "NETWORK-NOT-FOUND" });
  }
  const candidate = selection.candidate;
  if (candidate) {
    net.empty = 0;
    return join(m, candidate);
  }
  let delay = Math.max(1000, selection.waitMs ?? 0);
  if (!ranked.length) {
    recordFailure(m, "NETWORK-NOT-FOUND", networks.length + profiles.length ? "no known network in range" : "no network configured");
    delay = rescanDelay(++net.empty, random01(m));
  }
  countFailure(m, "network");
  scheduleRetry(m, delay);
}

function join(m: X, candidate: Candidate): void {
  const ctx = m.ctx;
  const net = m.net;
  net.gen++;
  net.target = candidate;
  setStatus(m, { state: "JOINING", network: undefined });
  const request = guarded(m, joinRequest, m, candidate, true);
  if (!request) return;
  cancel(m, "radio");
  arm(m, "radio", ctx.options.joinTimeoutMs);
  emit(m, { t: "join", gen: net.gen, request });
}

/** A network's failure, as netFailure needs it. */
type Failed = Pick<Candidate, "kind" | "key" | "ssid">;

/** Records a failure of `candidate`: its back-off, the report for the cloud's next `hello` (repeats folded), a hand-off's outcome; noted in the status. */
function netFailure(m: X, candidate: Failed, f: NetworkFailure): void {
  const net = m.net;
  const kind = candidate.kind;
  const ssid = candidate.ssid;
  const reason = f.reason;
  const detail = f.detail?.slice(0, 64);
  net.backoff = recordNetworkFailure(net.backoff, candidate.key, f, m.e.now, random01(m));
  const reports = net.reports.slice();
  const last = reports[reports.length - 1];
  let n = 1;
  if (last && last.kind === kind && last.ssid === ssid && last.reason === reason && last.detail === detail) {
    // the same failure again: one report, counted
    reports.pop();
    n = Math.min(last.n + 1, 9999);
  }
  reports.push({ kind, ssid, ...failureOf(reason, detail), n });
  net.reports = reports.slice(-MAX_FAILURE_REPORTS);
  const handoff = net.handoff;
  if (handoff && isPrivate(candidate, handoff.ssid)) net.handoff = { ...handoff, failure: failureOf(reason, detail) };
  recordFailure(m, reason, withDetail(kind + " " + ssid, detail));
}

/** While on a hotspot with private networks stored, checks now and then whether one can be joined again. */
function scheduleUpgradeCheck(m: X): void {
  const net = m.net;
  const networks = m.sync.networks;
  const now = m.e.now;
  cancel(m, "upgrade");
  if (net.joined?.kind !== "hotspot" || !networks.length) return;
  // the soonest a stored private network's back-off ends
  let until = Infinity;
  networks.forEach((n) => until = Math.min(until, net.backoff[candidateKey("private", n.ssid)]?.until ?? now));
  arm(m, "upgrade", Math.max(m.ctx.options.upgradeCheckMs, until - now));
}


/** Closes the cloud session (if any), leaves the current network (if any), stops the radio's timers and clears the status's network. */
function leave(m: X): void {
  const net = m.net;
  dropLink(m);
  net.upgrading = false;
  radio(m);
  cancel(m, "upgrade");
  if (!m.ctx.radio) return;
  net.joined = undefined;
  emit(m, { t: "leave" });
  if (m.status.network) setStatus(m, { network: undefined });
}

// ---------------------------------------------------------------- failures


/** A failure that ends the attempt: back off and retry (or, unreachable over a joined network, try the next one). */
function fail(m: X, cls: FailureClass, reason: string, detail?: string): void {
  const wasOnline = m.status.state === "ONLINE";
  dropLink(m);
  const joined = m.net.joined;
  recordFailure(m, reason, detail);
  if (joined && !wasOnline && (reason === "NETWORK" || reason === "CONNECT_TIMEOUT")) {
    // The network is up but the cloud is not reachable over it: try the next network.
    leave(m);
    netFailure(m, joined, { reason: "INTERNET-NOT-REACHABLE", detail: withDetail(reason, detail) });
    return chooseNetwork(m);
  }
  if (wasOnline) m.fails = 0;
  scheduleRetry(m, nextRetryDelay(cls, countFailure(m, cls), random01(m), m.ctx.options.retry), cls === "auth");
}

/** One more failure of class `cls` (the count restarts when the class changes); returns the count. */
function countFailure(m: X, cls: FailureClass): number {
  m.fails = m.failClass === cls ? m.fails + 1 : 1;
  m.failClass = cls;
  return m.fails;
}

/** RETRY_WAIT (with `auth`: AUTH_FAILED) until the retry timer fires after `delay` ms. */
function scheduleRetry(m: X, delay: number, auth?: boolean): void {
  cancel(m, "retry");
  setStatus(m, { state: auth ? "AUTH_FAILED" : "RETRY_WAIT", attempt: m.fails, retryInMs: delay });
  arm(m, "retry", delay);
}

/** Closes the cloud session, if any, and forgets its outstanding request. */
function dropLink(m: X): void {
  m.req = undefined;
  cancel(m, "request");
  cancel(m, "connect");
  if (m.link) emit(m, { t: "close" });
  m.link = 0;
}


// ---------------------------------------------------------------- the credential flow (was credential-flow.ts)

/*
 * The credential flow, as pure functions over CredentialState: which secret the
 * device logs in with, and how it gets a permanent one.
 *
 * - picks the credential: certificate, the stored issued secret, the configured
 *   shared secret, or the temporary secret (temporary-secret.ts: stored, from
 *   hardware, or derived from the provisioning key); once, after the cloud
 *   refused an unconfirmed issued secret, the credential it replaces;
 * - makes the login password: a counter-based proof (no clock needed); the
 *   counters are reserved in blocks, and a block's end is stored before any
 *   counter in it is used (the caller stores it first: `reserve`);
 * - issuance and rotation: unwraps the issued secret, returns what to store
 *   (keeping the secret it replaces until the commit) and the commit proof,
 *   and marks it confirmed once the cloud has it.
 * No I/O: what to store is returned; the state machine makes it an effect.
 */
/** The credential of the current (or next) session. */
export interface ActiveCredential {
  label: CredentialLabel;
  /** the login proof's kind: "s" for a shared or issued secret, "t" for the temporary one */
  kind?: LoginKind;
  secret?: Uint8Array;
}

/** What the flow keeps between events. */
export interface CredentialState {
  /** the issued secret as stored */
  readonly stored?: StoredSecret;
  /** the credential of the last login */
  readonly active?: ActiveCredential;
  /** try the credential an unconfirmed issued secret replaces, at the next login */
  readonly fallback?: boolean;
  /** the next login counter, and the end of the stored reservation */
  readonly next: number;
  readonly upTo: number;
  /** while a "confirmed" write is out: the record it replaces (restored if the write fails) */
  readonly undo?: StoredSecret;
}

/** What the flow computes with (deterministic). */
export interface CredentialContext {
  readonly config: DeviceConfig;
  readonly digest: DigestPort;
  /** the temporary secret (temporary devices only) */
  readonly temporary?: TemporarySecretPort;
}

/**
 * The credential to log in with now.
 * @throws WcmError KEY_UNAVAILABLE when the temporary secret cannot be computed
 */
function chooseCredential(ctx: CredentialContext, state: CredentialState): ActiveCredential {
  const config = ctx.config;
  const option = config.option;
  if (option === "certificate") return { label: option };
  const stored = state.stored;
  // the issued secret, or once refused unconfirmed: the one it replaces (if any)
  const issued = stored && (state.fallback ? stored.previous?.secret : stored.secret);
  if (issued) return { label: "permanent", kind: "s", secret: issued };
  if (option === "secret") return { label: option, kind: "s", secret: config.secret };
  return { label: option, kind: "t", secret: (ctx.temporary as TemporarySecretPort).temporarySecret(config.deviceId) };
}

/** True when the active credential is the stored issued secret and the cloud has not confirmed it. */
function unconfirmed(state: Mutable<CredentialState>): state is Mutable<CredentialState> & { stored: StoredSecret } {
  const stored = state.stored;
  const active = state.active;
  return !!stored && !stored.confirmed && active?.label === "permanent" && !!active.secret && constantTimeEqual(active.secret, stored.secret);
}

/** Stores the record that marks `stored` confirmed (the record it replaces kept as `undo` until the write is known). */
function confirm(m: X, stored: StoredSecret): void {
  const record: StoredSecret = { deviceId: stored.deviceId, secret: stored.secret, generation: stored.generation, confirmed: true };
  store(m, { rec: "cred", secret: record });
  m.cred.undo = m.cred.stored;
  m.cred.stored = record;
}

// ---------------------------------------------------------------- the request channel (was request-channel.ts)

/*
 * The request channel, as pure functions: the device's one outstanding request.
 *
 * - request ids: 9 random bytes (given by the caller), base64url;
 * - a request is sent, and resent with the same request id (every operation is
 *   idempotent) each time the response timeout passes, up to `attempts` sends;
 * - a response matches the outstanding request by its request id; stale or
 *   duplicate ones match nothing.
 * The state machine (machine.ts) holds the Outstanding value and turns these
 * answers into publish and timer effects.
 */
/** The request waiting for its response, and how often it was sent. */
export interface Outstanding {
  readonly request: DeviceRequest;
  readonly sends: number;
}


// ---------------------------------------------------------------- the network side (was network-driver.ts)

/*
 * The network side of the state machine, as pure functions over NetState.
 *
 * - choose: picks a network from the last scan (network-selection.ts: stored
 *   private networks, then hotspot profiles), or says how long to wait before
 *   the next scan when nothing can be joined;
 * - joinRequest: what to ask the radio for (EAP-TTLS/PAP with the derived
 *   hotspot password, EAP-TLS, or the private network's password);
 * - failure: records a network's failure: its back-off, the report for the
 *   cloud's next `hello` (repeats folded), the outcome of a hand-off;
 * - online: a joined network works: clears its back-off, settles a hand-off
 *   (JOINED or FAILED); upgradeDelay: on a hotspot, when to look for a stored
 *   private network again.
 * No I/O: machine.ts turns the answers into scan, join and leave effects.
 */
/** The network the manager is on (with a NetworkPort). */
export interface JoinedNetwork {
  kind: "private" | "hotspot";
  ssid: string;
  bssid: string;
  /** the hotspot profile's name */
  profile?: string;
}

/** The outcome of a private-network change, to be reported to the cloud (`network-result`). */
export interface PendingResult {
  seq: number;
  result: NetworkResult;
  failure?: NetworkFailure;
}

/** What the network side keeps between events. */
export interface NetState {
  readonly backoff: BackoffTable;
  /** the last scan (at most 64 access points) */
  readonly scan: readonly ScanResult[];
  /** scans in a row that found nothing to join */
  readonly empty: number;
  /** the network joined */
  readonly joined?: Candidate;
  /** the network being joined */
  readonly target?: Candidate;
  /** radio generation: a scan or join result of an older one is stale */
  readonly gen: number;
  /** failure reports not yet acknowledged by the cloud, oldest first */
  readonly reports: readonly NetworkFailureReport[];
  /** a private network the cloud handed off to, until its outcome is known */
  readonly handoff?: { readonly seq: number; readonly ssid: string; readonly failure?: NetworkFailure };
  /** an upgrade-check scan (while ONLINE on a hotspot) is out */
  readonly upgrading?: boolean;
}

/**
 * What to ask the radio for: the private network's password, or the device's own credential at a hotspot
 * (the login credential's secret makes the hotspot password: may throw KEY_UNAVAILABLE).
 */
function joinRequest(m: X, candidate: Candidate): JoinRequest {
  const ctx = m.ctx;
  const config = ctx.config;
  const request: Record<string, unknown> = { security: "enterprise", ssid: candidate.ssid };
  if (candidate.bssid) request.bssid = candidate.bssid;
  if (candidate.kind === "private") {
    const password = candidate.network.password;
    // "" for an open network
    request.security = password ? "psk" : "open";
    if (password) request.password = password;
  } else {
    const profile = candidate.profile;
    const identity = config.deviceId;
    if (config.option === "certificate") {
      request.method = "tls";
      request.identity = identity;
      request.certificate = config.certificate;
      request.privateKey = config.privateKey;
    } else {
      request.method = "ttls-pap";
      request.identity = identity;
      request.anonymousIdentity = profile.anonymousIdentity ?? DEFAULT_ANONYMOUS_IDENTITY;
      request.password = deriveHotspotPassword(ctx.digest, chooseCredential(ctx, m.cred).secret as Uint8Array, identity);
    }
    request.server = { ca: profile.radius.ca, serverName: profile.radius.serverName };
  }
  return request as unknown as JoinRequest;
}


/**
 * Applies private network changes (stored before they are used, with the last change's
 * sequence `seq`); a network added, changed or forgotten has its back-off and its reports cleared.
 */
function applyChanges(m: X, changes: Parameters<typeof applyNetworkChange>[1][], seq: number): void {
  const net = m.net;
  const sync = m.sync;
  let networks = sync.networks.slice();
  changes.forEach((change) => {
    const ssid = change.ssid;
    networks = applyNetworkChange(networks, change);
    net.backoff = clearNetworkBackoff(net.backoff, candidateKey("private", ssid));
    net.reports = net.reports.filter((r) => !isPrivate(r, ssid));
  });
  store(m, { rec: "nets", networks: { networks, seq } }, true);
  sync.networks = networks;
  sync.seq = seq;
}

// ---------------------------------------------------------------- the cloud sync (was cloud-sync.ts)

/*
 * The cloud sync, as pure functions over SyncState: what the device and the
 * cloud exchange once logged in.
 *
 * - holds what is persisted for networks (network-store.ts): the hotspot
 *   profile set, the private networks with their change sequence, the sealing
 *   key pair, and the wall clock's floor (wall-clock.ts);
 * - after a login the device says `hello`, takes the cloud's time, fetches a
 *   newer hotspot profile set (`config`) and sealed private network changes
 *   (`network`) and reports a hand-off's outcome (`network-result`);
 * - queues these background requests (`wants`) and the cloud's notices
 *   (including `rotate`); machine.ts sends them one at a time when the session
 *   is free, and turns what is to be stored into store effects.
 */
/** A background request the sync wants to send. */
export type Want = "hello" | "config" | "network" | "rotate" | "result";

/** What the sync keeps between events. */
export interface SyncState {
  readonly hotspots: HotspotSet;
  readonly networks: readonly PrivateNetwork[];
  /** the last private network change applied */
  readonly seq: number;
  /** the sealing key pair (public half computed at first use) */
  readonly key?: { readonly secret: Uint8Array; readonly public?: Uint8Array };
  /** hand-off results not yet acknowledged (at most 4) */
  readonly results: readonly PendingResult[];
  readonly wants: readonly Want[];
  readonly wall: WallState;
}

/** Adds `what` to the wanted requests (once). */
function want(m: X, what: Want): void {
  const sync = m.sync;
  if (!sync.wants.includes(what)) m.sync.wants = sync.wants.concat(what);
}

/** Queues a hand-off result for the cloud (one per change, the newest four). */
function queueResult(m: X, result: PendingResult): void {
  dropResult(m, result.seq);
  m.sync.results = m.sync.results.concat(result).slice(-4);
  want(m, "result");
}

/** Drops the result of change `seq` (acknowledged or refused). */
function dropResult(m: X, seq: number): void {
  m.sync.results = m.sync.results.filter((r) => r.seq !== seq);
}

// ---------------------------------------------------------------- the wall clock (also modules/wall-clock.ts for the Node side)

/*
 * A wall-clock estimate that does not trust the host's clock, as pure functions
 * over plain data (the state machine holds a WallState).
 *
 * Devices have no battery-backed clock and hotspots may block NTP, yet TLS
 * checks certificate dates. The estimate is a lower bound built from a time
 * floor (the firmware's build time, raised to the newest time the cloud ever
 * told the device, persisted in flash) plus the monotonic time since boot,
 * and, once the cloud told the time in this boot (`hello`), that time plus the
 * monotonic time since. It never goes backwards and never uses the ClockPort
 * as wall time (the caller passes its monotonic milliseconds in).
 */
/** Persist the floor again only when the cloud's time moved it by at least this much (flash wear). */
export const FLOOR_SAVE_STEP_SECONDS = 3600;

/** The estimate's data. */
export interface WallState {
  /** monotonic ms at boot */
  readonly bootMs: number;
  /** the floor at boot: a lower bound of the wall time at bootMs */
  readonly bootFloor: number;
  /** the newest floor (Unix seconds) */
  readonly floor: number;
  /** the newest floor persisted */
  readonly saved: number;
  /** the cloud's time and the monotonic ms when it was told, once told in this boot */
  readonly sync?: { readonly seconds: number; readonly atMs: number };
}

/**
 * @param nowMs - the monotonic clock at boot
 * @param floorSeconds - max(build time, persisted floor), Unix seconds
 */
export function wallStart(nowMs: number, floorSeconds: number): WallState {
  const floor = Math.max(0, Math.floor(floorSeconds));
  return { bootMs: nowMs, bootFloor: floor, floor, saved: floor };
}

/** The estimate at monotonic `nowMs`, Unix seconds (integer). */
export function wallNow(wall: WallState, nowMs: number): number {
  const fromFloor = wall.bootFloor + (nowMs - wall.bootMs) / 1000;
  const fromSync = wall.sync ? wall.sync.seconds + (nowMs - wall.sync.atMs) / 1000 : 0;
  return Math.floor(Math.max(fromFloor, fromSync));
}

/**
 * Takes the time the cloud sent. A time below the estimate only counts as a
 * sync point for the future (the estimate never goes back).
 * @returns the new state, and `save`: the floor to persist now (absent when no flash write is due)
 */
export function wallObserve(wall: WallState, cloudSeconds: number, nowMs: number): { wall: WallState; save?: number } {
  if (!Number.isFinite(cloudSeconds) || cloudSeconds < 0) return { wall };
  const cloud = Math.floor(cloudSeconds);
  const saved = wall.saved;
  const floor = Math.max(cloud, wall.floor);
  const next: Mutable<WallState> = { ...wall, floor, sync: { seconds: Math.max(cloud, wallNow(wall, nowMs)), atMs: nowMs } };
  if (floor < saved + FLOOR_SAVE_STEP_SECONDS && (saved || !floor)) return { wall: next };
  next.saved = floor;
  return { wall: next, save: floor };
}
