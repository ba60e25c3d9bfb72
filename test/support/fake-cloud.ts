/*
 * An in-memory stand-in for the wcm cloud, for unit tests of the core on Node
 * and on XS (it uses no Node API). It follows docs/protocol.md with the same
 * derive.ts and protocol.ts the real cloud uses, and delivers every event
 * through a SchedulerPort so a ManualTime drives it deterministically.
 *
 * Scriptable faults: drop the next N messages in either direction, refuse the
 * next connects with a CONNACK code, fail connects at the network level, and
 * lose the cloud's pending secret (a cloud that crashed before persisting it).
 */
import { constantTimeEqual } from "../../modules/bytes";
import {
  deriveCloudLoginKey,
  deriveCommitProof,
  deriveLoginProof,
  deriveTemporarySecret,
  deriveWrapKey,
  wrapSecret,
} from "../../modules/derive";
import type { CloudLink, CloudLinkFactory, DigestPort, LinkConnectOptions, LinkEvents, RandomPort, SchedulerPort } from "../../modules/ports";
import {
  CONNACK,
  decodeRequest,
  deviceTopics,
  encodeResponse,
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
      if (request.op === "issue") {
        if (session.kind !== "t" || !session.secret) {
          response = { v: 1, rid: request.rid, op: "issue", ok: false, reason: "NOTHING_TO_ISSUE" };
        } else {
          record.pending ??= { secret: this.random.bytes(32), generation: record.generation + 1, nonce: this.random.bytes(16) };
          const pending = record.pending;
          const wrapped = wrapSecret(this.digest, deriveWrapKey(this.digest, session.secret), session.deviceId, pending.nonce, pending.secret);
          response = { v: 1, rid: request.rid, op: "issue", ok: true, gen: pending.generation, nonce: pending.nonce, secret: wrapped.ciphertext, tag: wrapped.tag };
        }
      } else {
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
      }
    } catch {
      return;
    }
    this.#deliver(session, topics.response, encodeResponse(response));
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
