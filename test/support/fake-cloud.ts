/*
 * An in-memory stand-in for the wcm cloud, for unit tests of the core on Node
 * and on XS (it uses no Node API). It follows docs/protocol.md with the same
 * derive.ts and protocol.ts the real cloud uses, and delivers every event
 * through a SchedulerPort so a ManualTime drives it deterministically.
 *
 * Scriptable faults: drop the next N messages in either direction, refuse the
 * next connects with a CONNACK code, fail connects at the network level, and
 * lose the cloud's pending secret (a cloud that crashed before persisting it).
 *
 * Networks (docs/protocol.md 7.5-7.8): `hello`, `config`, `network` and
 * `network-result`; hotspot profile sets (setHotspots), private network changes
 * sealed to the device's key (setNetwork, forgetNetwork), the notices for both,
 * and hotspotPasswordOk() for a fake RADIUS server.
 */
import { constantTimeEqual } from "../../modules/bytes";
import {
  deriveCloudLoginKey,
  deriveCommitProof,
  deriveHotspotPassword,
  deriveLoginProof,
  deriveTemporarySecret,
  deriveWrapKey,
  wrapSecret,
} from "../../modules/derive";
import type { HotspotProfile, HotspotSet } from "../../modules/hotspots";
import { jsSeal } from "../../modules/js-seal";
import { newSealSecretKey } from "../../modules/seal";
import { sealTo } from "../../modules/seal-to";
import type { CloudLink, CloudLinkFactory, DigestPort, LinkConnectOptions, LinkEvents, RandomPort, SchedulerPort } from "../../modules/ports";
import {
  CONNACK,
  decodeRequest,
  deviceTopics,
  encodeNetworkChange,
  encodeNotice,
  encodeResponse,
  type CloudNotice,
  type DeviceRequest,
  type NetworkChange,
  type NetworkFailureReport,
  parseLoginPassword,
  parseTopic,
  type CloudResponse,
} from "../../modules/protocol";

interface DeviceRecord {
  secret?: Uint8Array;
  generation: number;
  pending?: { secret: Uint8Array; generation: number; nonce: Uint8Array };
  temporaryRetired: boolean;
  revoked: boolean;
  lastCounter: number;
  certificate: boolean;
  /** the device's sealing public key (from hello) */
  sealKey?: Uint8Array;
  networkSeq?: number;
  sealed?: { seq: number; blob: Uint8Array };
  /** every network-result received */
  networkResults?: Extract<DeviceRequest, { op: "network-result" }>[];
  /** every failure list received in a hello */
  networkFailures?: NetworkFailureReport[];
  /** the network the device said it is on */
  net?: { kind: string; ssid: string };
  /** the profile revision the device reported */
  rev?: number;
}

interface Session {
  deviceId: string;
  kind: "s" | "t" | "c";
  secret?: Uint8Array;
  events: LinkEvents;
  subscriptions: Set<string>;
  open: boolean;
}

/** The fake cloud. */
export class FakeCloud {
  readonly devices = new Map<string, DeviceRecord>();
  readonly provisioningKeys: { key: Uint8Array; allow?: string[] }[] = [];
  /** every request the cloud received, in order (op names) */
  readonly requests: string[] = [];
  readonly sessions: Session[] = [];
  #dropToCloud = 0;
  #dropToDevice = 0;
  #refuse: number[] = [];
  #networkFailures = 0;
  /** the hotspot profile set (revision 0 = none set) */
  hotspots: HotspotSet = { rev: 0, profiles: [] };
  /** the cloud's wall clock, Unix seconds, sent in hello */
  timeSeconds = 1_780_000_000;

  constructor(
    readonly digest: DigestPort,
    readonly random: RandomPort,
    readonly scheduler: SchedulerPort,
    readonly latencyMs = 10,
  ) {}

  registerSecret(deviceId: string, secret: Uint8Array): void {
    this.devices.set(deviceId, { secret, generation: 0, temporaryRetired: true, revoked: false, lastCounter: 0, certificate: false });
  }

  registerCertificate(deviceId: string): void {
    this.devices.set(deviceId, { generation: 0, temporaryRetired: true, revoked: false, lastCounter: 0, certificate: true });
  }

  addProvisioningKey(key: Uint8Array, allow?: string[]): void {
    this.provisioningKeys.push(allow ? { key, allow } : { key });
  }

  /** Drops the next `count` messages travelling cloud-ward or device-ward. */
  drop(direction: "toCloud" | "toDevice", count: number): void {
    if (direction === "toCloud") this.#dropToCloud = count;
    else this.#dropToDevice = count;
  }

  /** Refuses the next connects with these CONNACK codes, one each. */
  refuseNext(...codes: number[]): void {
    this.#refuse.push(...codes);
  }

  /** Makes the next `count` connects fail before CONNACK (network down). */
  failNetwork(count: number): void {
    this.#networkFailures = count;
  }

  /** Forgets a device's pending secret, as a cloud that crashed before storing it would. */
  losePending(deviceId: string): void {
    const record = this.devices.get(deviceId);
    if (record) delete record.pending;
  }

  /** Closes every open session (a cloud restart). */
  dropAllSessions(): void {
    for (const session of this.sessions) this.#close(session, "cloud restarted");
  }

  /** Replaces the hotspot profile set (revision + 1) and tells live sessions. */
  setHotspots(profiles: HotspotProfile[]): number {
    this.hotspots = { rev: this.hotspots.rev + 1, profiles };
    for (const session of this.sessions) if (session.open) this.#notice(session, "config");
    return this.hotspots.rev;
  }

  /** Seals a private network to the device's key (it must have said hello) and tells it. Returns the change's seq. */
  setNetwork(deviceId: string, network: { ssid: string; password: string; priority: number }): number {
    return this.#change(deviceId, (seq) => ({ seq, action: "set", ...network }));
  }

  /** Seals a "forget" for `ssid` and tells the device. */
  forgetNetwork(deviceId: string, ssid: string): number {
    return this.#change(deviceId, (seq) => ({ seq, action: "forget", ssid }));
  }

  #change(deviceId: string, make: (seq: number) => NetworkChange): number {
    const record = this.devices.get(deviceId);
    if (!record?.sealKey) throw new Error(`${deviceId} has no sealing key yet`);
    const seq = (record.networkSeq ?? 0) + 1;
    record.networkSeq = seq;
    record.sealed = { seq, blob: sealTo(this.digest, jsSeal, record.sealKey, deviceId, encodeNetworkChange(make(seq)), newSealSecretKey((n) => this.random.bytes(n)), "network") };
    for (const session of this.sessions) if (session.open && session.deviceId === deviceId) this.#notice(session, "network");
    return seq;
  }

  /**
   * What a RADIUS server backed by this cloud answers for an EAP-TTLS/PAP
   * login: the password must be the hotspot password of the device's active
   * secret, or of its temporary secret while that is live.
   */
  hotspotPasswordOk(deviceId: string, password: string): boolean {
    const record = this.devices.get(deviceId);
    if (record?.revoked) return false;
    const secrets: Uint8Array[] = [];
    if (record?.secret) secrets.push(record.secret);
    if (record?.pending) secrets.push(record.pending.secret);
    const key = this.#temporaryKey(deviceId);
    if (key && !record?.temporaryRetired) secrets.push(deriveTemporarySecret(this.digest, key, deviceId));
    return secrets.some((secret) => deriveHotspotPassword(this.digest, secret, deviceId) === password);
  }

  /** What such a RADIUS server answers for an EAP-TLS login (the fake trusts any registered certificate device). */
  certificateOk(deviceId: string): boolean {
    const record = this.devices.get(deviceId);
    return !!record?.certificate && !record.revoked;
  }

  #notice(session: Session, notice: CloudNotice["notice"]): void {
    this.#deliver(session, deviceTopics(session.deviceId).response, encodeNotice({ v: 1, notice }));
  }

  /** How many secrets would let `deviceId` log in now (must never exceed 1). */
  activeSecretCount(deviceId: string): number {
    const record = this.devices.get(deviceId);
    if (!record) return 0;
    let count = record.secret ? 1 : 0;
    if (!record.temporaryRetired && this.#temporaryKey(deviceId)) count++;
    return count;
  }

  /** The CloudLinkFactory devices use to reach this cloud. */
  linkFactory(): CloudLinkFactory {
    return () => this.#newLink();
  }

  #later(callback: () => void): void {
    this.scheduler.after(this.latencyMs, callback);
  }

  #newLink(): CloudLink {
    let session: Session | undefined;
    return {
      connect: (options, events) => {
        this.#later(() => {
          this.#accept(options, events, (accepted) => { session = accepted; });
        });
      },
      publish: (topic, payload) => {
        const current = session;
        if (!current?.open) return;
        if (this.#dropToCloud > 0) {
          this.#dropToCloud--;
          return;
        }
        const copy = payload.slice();
        this.#later(() => current.open && this.#onPublish(current, topic, copy));
      },
      subscribe: (topic) => {
        const current = session;
        if (!current?.open) return;
        const parsed = parseTopic(topic);
        if (parsed && parsed.deviceId === current.deviceId && (parsed.kind === "res" || parsed.kind === "app")) current.subscriptions.add(topic);
      },
      close: () => {
        if (session) this.#close(session, "closed by device");
      },
    };
  }

  #accept(options: LinkConnectOptions, events: LinkEvents, bind: (session: Session) => void): void {
    if (this.#networkFailures > 0) {
      this.#networkFailures--;
      events.onClose({ detail: "network unreachable" });
      return;
    }
    const forced = this.#refuse.shift();
    const refused: { code: number; kind?: string; secret?: Uint8Array } = forced !== undefined ? { code: forced } : this.#authenticate(options);
    if (refused.code !== CONNACK.accepted) {
      events.onClose({ connackCode: refused.code, detail: "connection refused" });
      return;
    }
    const session: Session = {
      deviceId: options.clientId,
      kind: refused.kind as "s" | "t" | "c",
      ...(refused.secret ? { secret: refused.secret } : {}),
      events,
      subscriptions: new Set(),
      open: true,
    };
    this.sessions.push(session);
    bind(session);
    events.onReady();
  }

  #authenticate(options: LinkConnectOptions): { code: number; kind?: string; secret?: Uint8Array } {
    const deviceId = options.clientId;
    if (options.username !== deviceId) return { code: CONNACK.badCredentials };
    let record = this.devices.get(deviceId);
    if (record?.revoked) return { code: CONNACK.notAuthorized };
    if (options.password === undefined) {
      return record?.certificate && options.tls.certificate ? { code: 0, kind: "c" } : { code: CONNACK.badCredentials };
    }
    let login;
    try {
      login = parseLoginPassword(options.password);
    } catch {
      return { code: CONNACK.badCredentials };
    }
    let secret: Uint8Array | undefined;
    let commitsPending = false;
    if (login.kind === "t") {
      const key = this.#temporaryKey(deviceId);
      if (!key) return { code: CONNACK.notAuthorized };
      if (record?.temporaryRetired) return { code: CONNACK.notAuthorized };
      secret = deriveTemporarySecret(this.digest, key, deviceId);
    } else {
      if (!record) return { code: CONNACK.badCredentials };
      if (record.secret && this.#proofMatches(record.secret, deviceId, login)) secret = record.secret;
      else if (record.pending && this.#proofMatches(record.pending.secret, deviceId, login)) {
        secret = record.pending.secret;
        commitsPending = true;
      } else return { code: CONNACK.badCredentials };
    }
    if (!this.#proofMatches(secret, deviceId, login)) return { code: CONNACK.badCredentials };
    const counterRecord = record ?? { lastCounter: 0 };
    if (login.counter <= counterRecord.lastCounter) return { code: CONNACK.badCredentials };
    if (!record) {
      record = { generation: 0, temporaryRetired: false, revoked: false, lastCounter: 0, certificate: false };
      this.devices.set(deviceId, record);
    }
    record.lastCounter = login.counter;
    if (commitsPending) this.#commit(record);
    return { code: 0, kind: login.kind, secret };
  }

  #proofMatches(secret: Uint8Array, deviceId: string, login: { kind: "s" | "t"; counter: number; proof: Uint8Array }): boolean {
    const expected = deriveLoginProof(this.digest, deriveCloudLoginKey(this.digest, secret), deviceId, login.kind, login.counter);
    return constantTimeEqual(expected, login.proof);
  }

  #temporaryKey(deviceId: string): Uint8Array | undefined {
    return this.provisioningKeys.find((entry) => !entry.allow || entry.allow.includes(deviceId))?.key;
  }

  #commit(record: DeviceRecord): void {
    const pending = record.pending as NonNullable<DeviceRecord["pending"]>;
    record.secret = pending.secret;
    record.generation = pending.generation;
    record.temporaryRetired = true;
    delete record.pending;
  }

  #onPublish(session: Session, topic: string, payload: Uint8Array): void {
    const topics = deviceTopics(session.deviceId);
    if (topic !== topics.request) return;
    const record = this.devices.get(session.deviceId) as DeviceRecord;
    let response: CloudResponse;
    try {
      const request = decodeRequest(payload);
      this.requests.push(request.op);
      if (request.op === "hello" || request.op === "config" || request.op === "network" || request.op === "network-result") {
        response = this.#networkRequest(record, request);
      } else if (request.op === "issue") {
        if (session.kind !== "t" || !session.secret) {
          response = { v: 1, rid: request.rid, op: "issue", ok: false, reason: "NOTHING_TO_ISSUE" };
        } else {
          record.pending ??= { secret: this.random.bytes(32), generation: record.generation + 1, nonce: this.random.bytes(16) };
          const pending = record.pending;
          const wrapped = wrapSecret(this.digest, deriveWrapKey(this.digest, session.secret), session.deviceId, pending.nonce, pending.secret);
          response = { v: 1, rid: request.rid, op: "issue", ok: true, gen: pending.generation, nonce: pending.nonce, secret: wrapped.ciphertext, tag: wrapped.tag };
        }
      } else if (request.op === "commit") {
        const pending = record.pending;
        if (pending && pending.generation === request.gen
          && constantTimeEqual(deriveCommitProof(this.digest, pending.secret, session.deviceId, request.gen), request.proof)) {
          this.#commit(record);
          response = { v: 1, rid: request.rid, op: "commit", ok: true, gen: request.gen };
        } else if (!pending && record.secret && record.generation === request.gen
          && constantTimeEqual(deriveCommitProof(this.digest, record.secret, session.deviceId, request.gen), request.proof)) {
          response = { v: 1, rid: request.rid, op: "commit", ok: true, gen: request.gen };
        } else {
          response = { v: 1, rid: request.rid, op: "commit", ok: false, reason: "BAD_PROOF" };
        }
      } else {
        return;
      }
    } catch {
      return;
    }
    this.#deliver(session, topics.response, encodeResponse(response));
  }

  #networkRequest(record: DeviceRecord, request: Extract<DeviceRequest, { op: "hello" | "config" | "network" | "network-result" }>): CloudResponse {
    const rid = request.rid;
    switch (request.op) {
      case "hello":
        if (record.sealKey && !constantTimeEqual(record.sealKey, request.key)) delete record.sealed; // sealed to a key the device lost
        record.sealKey = request.key;
        record.rev = request.rev;
        if (request.net) record.net = request.net;
        else delete record.net;
        if (request.failures) (record.networkFailures ??= []).push(...request.failures);
        return { v: 1, rid, op: "hello", ok: true, time: this.timeSeconds, rev: this.hotspots.rev, network: record.sealed !== undefined };
      case "config":
        return { v: 1, rid, op: "config", ok: true, rev: this.hotspots.rev, hotspots: this.hotspots.profiles };
      case "network":
        if (!record.sealed) return { v: 1, rid, op: "network", ok: false, reason: "NOTHING_PENDING" };
        return { v: 1, rid, op: "network", ok: true, seq: record.sealed.seq, sealed: record.sealed.blob };
      case "network-result":
        (record.networkResults ??= []).push(request);
        if (record.sealed?.seq === request.seq) delete record.sealed;
        return { v: 1, rid, op: "network-result", ok: true, seq: request.seq };
    }
  }

  #deliver(session: Session, topic: string, payload: Uint8Array): void {
    if (!session.subscriptions.has(topic)) return;
    if (this.#dropToDevice > 0) {
      this.#dropToDevice--;
      return;
    }
    this.#later(() => session.open && session.events.onMessage(topic, payload));
  }

  #close(session: Session, detail: string): void {
    if (!session.open) return;
    session.open = false;
    const events = session.events;
    this.#later(() => events.onClose({ detail }));
  }
}
