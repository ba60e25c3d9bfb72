/*
 * The one credential decision of the cloud, asked by every front end (MQTT
 * CONNECT in mqtt-server.ts, RADIUS EAP in radius/session.ts), as EMQX's
 * authentication chain or FreeRADIUS's authorize/authenticate sections are:
 *
 * 1. the credential rules (rules.ts): every proof is verified first, and only
 *    a proven credential spends the per-device and per-lot login rates;
 * 2. lockouts per (device id, source): after `lockoutThreshold` counted
 *    refusals from one source, that pair's further refusals read LOCKED_OUT
 *    and are held `rejectDelayMs` (FreeRADIUS reject_delay). A proven
 *    credential is accepted from a locked pair too: knowing a device's id is
 *    never enough to keep it out;
 * 3. the refusal audit, throttled (RefusalAudit), one state for both front ends.
 *
 * One set of login limits and one RefusalAudit per cloud process, whatever the
 * front end. The limits live in this process's memory on SQLite and in the
 * database every node shares on PostgreSQL (cloud/shared-limits.ts); the
 * refusal audit throttle is per process (it bounds rows, it decides nothing).
 * Front ends never read registry rows for a credential: they ask here.
 * Asynchronous over the registry (SQLite or PostgreSQL, cloud/storage/).
 */
import type { CloudLog } from "../log";
import type { X509Certificate } from "node:crypto";
import type { DigestPort } from "../../modules/ports";
import { DEVICE_ID_PATTERN } from "../../modules/protocol";
import { certificateNames } from "../pki";
import { RefusalAudit, monotonicNow, type LoginLimits, type RefusalAuditLimits } from "../limits";
import { loginLimitsFor, type LoginLimitStore } from "../shared-limits";
import type { Registry } from "../registry";
import { checkDeviceCertificate } from "./certificate";
import type { AuthFailure } from "./failures";
import { resumedHotspotRules, type ResumedBinding } from "./resumed";
import { checkCertificate, fromKnownCa, hotspotRules, mqttRules, type Budget, type CredentialUsed, type MqttCredential, type RuleResult } from "./rules";

/** Which front end asks. */
export type FrontEnd = "mqtt" | "radius";

/** The credential a live MQTT session logged in with: a secret (`s`), the temporary secret (`t`) or a certificate. */
export type SessionCredential = "certificate" | "s" | "t";

/** What the cloud remembers about one authenticated MQTT session (in memory only). */
export interface Session {
  deviceId: string;
  credential: SessionCredential;
  /** the secret the session proved (s: active or just-committed secret; t: temporary secret) */
  loginSecret?: Uint8Array;
  /** generation of `loginSecret` (0 for the manufactured or temporary secret) */
  generation: number;
  /** the lot of a temporary session */
  lot?: string;
  /** SHA-256 fingerprint of the client certificate of a certificate session */
  certFingerprint?: string;
}

/** A refusal as every front end gets it. */
export interface Refusal {
  ok: false;
  deviceId: string | undefined;
  failure: AuthFailure;
  detail: string;
  /** ms the front end holds the refusal before sending it (0 unless the pair is locked out) */
  delayMs: number;
}

/** The outcome of an MQTT login. */
export type MqttDecision = { ok: true; session: Session } | Refusal;

/** The outcome of a hotspot (RADIUS) authentication. */
export type HotspotDecision = { ok: true; deviceId: string; credential: CredentialUsed; generation?: number; lot?: string } | Refusal;

/** An MQTT CONNECT and where it came from. */
export interface MqttAttempt extends MqttCredential {
  /** the client's address */
  source: string;
}

/** Options of the Authenticator. */
export interface AuthenticatorOptions {
  registry: Registry;
  digest: DigestPort;
  /** login rates and lockouts (defaults: cloud/limits.ts) */
  limits?: Partial<LoginLimits>;
  /** refusal audit throttle (defaults: cloud/limits.ts) */
  refusalAudit?: Partial<RefusalAuditLimits>;
  /** monotonic ms clock of the in-memory limiter and the refusal audit (default monotonicNow; tests may pin it) */
  now?: () => number;
  /** structured log lines (cloud/log.ts); none when undefined */
  log?: CloudLog;
}

/** Counters for operators and tests. */
export interface AuthStats {
  accepted: number;
  refused: number;
  /** refusals with RATE_LIMITED */
  rateLimited: number;
  /** lockouts of an (id, source) pair started */
  lockouts: number;
  /** refusals of a locked pair (LOCKED_OUT) */
  lockedRefusals: number;
  /** refusals written to the registry, and counted only */
  refusalsWritten: number;
  refusalsNotWritten: number;
}

/** The credential decision, with its limiter and audit state. */
export class Authenticator {
  readonly stats: AuthStats = { accepted: 0, refused: 0, rateLimited: 0, lockouts: 0, lockedRefusals: 0, refusalsWritten: 0, refusalsNotWritten: 0 };
  /** the login rates and lockouts: in memory (SQLite) or shared by every node (PostgreSQL) */
  readonly guard: LoginLimitStore;
  readonly refusals: RefusalAudit;
  readonly #registry: Registry;
  readonly #digest: DigestPort;
  readonly #now: () => number;
  readonly #log: CloudLog | undefined;

  constructor(options: AuthenticatorOptions) {
    this.#registry = options.registry;
    this.#digest = options.digest;
    this.#now = options.now ?? monotonicNow;
    this.guard = loginLimitsFor(options.registry.storage, options.limits, this.#now, () => options.registry.now());
    this.refusals = new RefusalAudit(options.refusalAudit);
    this.#log = options.log;
  }

  /**
   * Decides an MQTT CONNECT. Writes the login counter (or the first-login row)
   * on success, the refusal (throttled) otherwise.
   * @example await auth.mqttLogin({ clientId: "lamp-1", username: "lamp-1", password, peerCertificate: undefined, source: "192.0.2.7" })
   */
  async mqttLogin(attempt: MqttAttempt): Promise<MqttDecision> {
    const result = await this.#decide("mqtt", attempt.source, (budget) => mqttRules(this.#registry, this.#digest, attempt, budget));
    if (!result.ok) return result;
    const credential: SessionCredential = result.used === "certificate" ? "certificate" : result.used === "temporary" ? "t" : "s";
    return {
      ok: true,
      session: { deviceId: result.deviceId, credential, loginSecret: result.secret, generation: result.generation, lot: result.lot, certFingerprint: result.certFingerprint },
    };
  }

  /**
   * Decides a hotspot password (EAP-TTLS/PAP inner login). Writes nothing but the refusal.
   * @param source - the NAS and the station, e.g. "ap-1/aa-bb-cc-dd-ee-ff"
   */
  async hotspotPassword(userName: string, password: Uint8Array, source: string): Promise<HotspotDecision> {
    const result = await this.#decide("radius", source, (budget) => hotspotRules(this.#registry, this.#digest, userName, password, budget));
    return result.ok ? { ok: true, deviceId: result.deviceId, credential: result.used, generation: result.generation, ...(result.lot ? { lot: result.lot } : {}) } : result;
  }

  /**
   * Decides a resumed EAP-TTLS session (no inner login arrives) from what its
   * full handshake proved, against the registry as it is now (resumed.ts).
   */
  async hotspotResumed(binding: ResumedBinding, source: string): Promise<HotspotDecision> {
    const result = await this.#decide("radius", source, (budget) => resumedHotspotRules(this.#registry, binding, budget));
    return result.ok ? { ok: true, deviceId: result.deviceId, credential: result.used, generation: result.generation, ...(result.lot ? { lot: result.lot } : {}) } : result;
  }

  /**
   * Decides an EAP-TLS client certificate. The device id is the EAP identity
   * when it names a registered device, else the certificate's CN.
   */
  async hotspotCertificate(identity: string, leaf: X509Certificate | undefined, source: string): Promise<HotspotDecision> {
    const result = await this.#decide("radius", source, async (budget): Promise<RuleResult> => {
      const registry = this.#registry;
      if (!leaf) {
        const named = DEVICE_ID_PATTERN.test(identity) ? identity : undefined;
        return { ok: false, deviceId: named, failure: "CERT_REQUIRED", detail: "no client certificate" };
      }
      let id = DEVICE_ID_PATTERN.test(identity) && (await registry.device(identity)) ? identity : certificateNames(leaf).commonName ?? "";
      if (!DEVICE_ID_PATTERN.test(id)) id = "";
      const row = id === "" ? undefined : (await registry.device(id));
      if (!row) {
        return (await fromKnownCa(registry, leaf))
          ? { ok: false, deviceId: id || undefined, failure: "UNKNOWN_DEVICE", detail: "certificate device not registered" }
          : { ok: false, deviceId: id || undefined, failure: "UNKNOWN_CA", detail: "certificate not issued by a registered CA" };
      }
      if (row.kind !== "certificate") {
        if (row.revoked) return { ok: false, deviceId: id, failure: "REVOKED", detail: "device revoked" };
        return { ok: false, deviceId: id, failure: "NOT_ALLOWED", detail: "not a certificate device: use EAP-TTLS" };
      }
      return (await checkCertificate(registry, row, leaf, budget, false));
    });
    return result.ok ? { ok: true, deviceId: result.deviceId, credential: result.used } : result;
  }

  /** The EAP method to offer first: EAP-TLS for a bare id registered as a certificate device, else TTLS. */
  async eapMethod(identity: string): Promise<"tls" | "ttls"> {
    return DEVICE_ID_PATTERN.test(identity) && (await this.#registry.device(identity))?.kind === "certificate" ? "tls" : "ttls";
  }

  /** Whether an authenticated session of `deviceId` may go on (false once the device is revoked or gone). */
  async sessionAllowed(deviceId: string): Promise<boolean> {
    const row = await this.#registry.deviceStanding(deviceId);
    return row !== undefined && !row.revoked;
  }

  /**
   * Whether the live certificate session of `deviceId` with client
   * certificate `leaf` may go on (false once the device, its CA or the
   * certificate is revoked, e.g. after `cert revoke` or a CRL import).
   */
  async certificateStillGood(deviceId: string, leaf: X509Certificate | undefined): Promise<boolean> {
    const row = await this.#registry.device(deviceId);
    return row !== undefined && !row.revoked && (await checkDeviceCertificate(this.#registry, row, leaf)).ok;
  }

  /** An operator unlocked `id`: forgets the failures and lockouts of every source. Returns whether one was locked. */
  async unlock(id: string): Promise<boolean> {
    return this.guard.unlock(id, this.guard.now());
  }

  /**
   * Writes one audit row with the refusals that were counted but not written
   * (login.refused-aggregate). The MQTT endpoint runs it every refusal window,
   * and with `all` at close: then every counted refusal is written.
   */
  async flushRefusalAudit(all = false): Promise<void> {
    const aggregate = this.refusals.takeAggregate(this.#now(), all);
    if (!aggregate) return;
    const parts = Object.entries(aggregate.byFailure).map(([failure, n]) => `${failure}=${n}`).join(" ");
    try {
      const registry = this.#registry;
      await registry.tx(() => registry.audit("auth", "login.refused-aggregate", null, `total=${aggregate.total} ${parts}`));
    } catch (error) {
      this.#log?.("error", `cannot write the refusal aggregate: ${(error as Error).message}`);
    }
  }

  async #decide(via: FrontEnd, source: string, rules: (budget: Budget) => Promise<RuleResult>): Promise<(RuleResult & { ok: true }) | Refusal> {
    const now = this.#now();
    const limitNow = this.guard.now();
    const budget: Budget = { device: (id) => this.guard.admitDevice(id, limitNow), lot: (lot) => this.guard.admitLot(lot, limitNow) };
    let result: RuleResult;
    try {
      result = await rules(budget);
    } catch (error) {
      this.#log?.("error", `credential decision failed internally: ${(error as Error).message}`);
      result = { ok: false, deviceId: undefined, failure: "INTERNAL", detail: "internal error" };
    }
    if (result.ok) {
      this.stats.accepted++;
      try {
        await this.guard.succeeded(result.deviceId, source);
      } catch (error) {
        this.#log?.("error", `cannot reset the login failures of ${result.deviceId}: ${(error as Error).message}`);
      }
      return result;
    }
    this.stats.refused++;
    if (result.failure === "RATE_LIMITED") this.stats.rateLimited++;
    const refusal: Refusal = { ok: false, deviceId: result.deviceId, failure: result.failure, detail: result.detail, delayMs: 0 };
    if (result.deviceId === undefined) return refusal;
    try {
      await this.#account(via, source, refusal, now, limitNow);
    } catch (error) {
      this.#log?.("error", `cannot record a login failure: ${(error as Error).message}`);
    }
    return refusal;
  }

  /** Counts a refusal of a well-formed id against its (id, source) pair, and writes it through the throttle. */
  async #account(via: FrontEnd, source: string, refusal: Refusal, now: number, limitNow: number): Promise<void> {
    const id = refusal.deviceId!;
    const registry = this.#registry;
    const lockedUntil = await this.guard.lockedUntil(id, source, limitNow);
    if (lockedUntil !== undefined && refusal.failure !== "RATE_LIMITED" && refusal.failure !== "CERT_REQUIRED") {
      this.stats.lockedRefusals++;
      refusal.detail = `${refusal.failure} from ${source}, which is locked out for this id for ${Math.ceil((lockedUntil - limitNow) / 1000)} s more`;
      refusal.failure = "LOCKED_OUT";
      refusal.delayMs = this.guard.limits.rejectDelayMs;
    } else {
      const outcome = await this.guard.failed(id, source, refusal.failure, limitNow);
      if (outcome.lockout) {
        this.stats.lockouts++;
        const until = registry.now() + (outcome.lockout.until - limitNow);
        const detail = `${this.guard.limits.lockoutThreshold} consecutive refused logins from ${source}, last ${refusal.failure}`;
        this.#log?.("warn", `attempts locked out: ${detail}`, { event: "auth.lockout", deviceId: id, source, via, until: new Date(until).toISOString() });
        if (this.refusals.admit(`${id}#lockout#${source}`, "LOCKOUT", now).write) {
          if (!(await registry.lockDevice(id, until, outcome.lockout.count, detail, via))) {
            await registry.tx(() => registry.audit(via, "login.lockout", id, `unregistered id until=${new Date(until).toISOString()} ${detail}`));
          }
        }
      }
    }
    const decision = this.refusals.admit(id, refusal.failure, now);
    if (decision.write) {
      this.stats.refusalsWritten++;
      await registry.recordFailure(id, refusal.failure, refusal.detail, via, decision.suppressed);
    } else {
      this.stats.refusalsNotWritten++;
    }
  }
}
