/*
 * The issuance service: answers `issue` and `commit` requests and stores
 * `status` reports, for one authenticated session at a time.
 *
 * Sans I/O: mqtt-server.ts hands it the session and the payload and publishes
 * the response it returns. Wire formats come from protocol.ts, key material
 * from derive.ts. The rule it keeps: the registry never holds two active
 * secrets for a device; an issued secret is pending (not active) until the
 * device proves it holds it, and the commit swaps it in one transaction.
 */
import { concatBytes, constantTimeEqual } from "../modules/bytes";
import { deriveCommitProof, deriveWrapKey, wrapSecret } from "../modules/derive";
import { isWcmError } from "../modules/errors";
import type { DigestPort } from "../modules/ports";
import {
  decodeRequest, decodeStatus, peekRequestId, MAX_MESSAGE_BYTES,
  type CloudResponse, type DeviceRequest, type ReasonCode,
} from "../modules/protocol";
import type { Session } from "./auth/authenticator";
import { isCurrentSealKey, sealForDevice } from "./device-seal";
import { DeviceNetworkService, isNetworkRequest } from "./network-service";
import type { DeviceRow, Registry } from "./registry";

/** The request id used to answer a request whose own id could not be read. */
export const UNKNOWN_RID = "-";

/** Counters of what the service refused or ignored (for operators and tests). */
export interface IssuanceStats {
  badRequests: number;
  badStatus: number;
  issued: number;
  committed: number;
}

function peekOp(payload: Uint8Array): string {
  if (payload.length > MAX_MESSAGE_BYTES) return "unknown";
  try {
    const value = JSON.parse(Buffer.from(payload).toString("utf8")) as { op?: unknown };
    return typeof value?.op === "string" && /^[a-z-]{1,16}$/.test(value.op) ? value.op : "unknown";
  } catch {
    return "unknown";
  }
}

/** The issuance service. */
export class IssuanceService {
  readonly stats: IssuanceStats = { badRequests: 0, badStatus: 0, issued: 0, committed: 0 };
  /** hello, config, network and network-result (cloud/network-service.ts) */
  readonly network: DeviceNetworkService;

  constructor(
    private readonly registry: Registry,
    private readonly digest: DigestPort,
    private readonly random: (length: number) => Uint8Array,
  ) {
    this.network = new DeviceNetworkService(registry);
  }

  /**
   * Handles one payload from the session's request topic.
   * @returns the response to publish on the device's response topic (always one)
   */
  async handleRequest(session: Session, payload: Uint8Array): Promise<CloudResponse> {
    let request: DeviceRequest;
    try {
      request = decodeRequest(payload);
    } catch (error) {
      this.stats.badRequests++;
      const rid = peekRequestId(payload) ?? UNKNOWN_RID;
      const op = peekOp(payload);
      if (isWcmError(error, "MESSAGE_TOO_LARGE")) return this.refuse(rid, op, "TOO_LARGE", `larger than ${MAX_MESSAGE_BYTES} bytes`);
      if (isWcmError(error) && error.field === "request.op") return this.refuse(rid, op, "UNKNOWN_OP", "unknown operation");
      return this.refuse(rid, op, "BAD_REQUEST", isWcmError(error) ? error.message : "malformed request");
    }
    try {
      if (isNetworkRequest(request)) return await this.network.handle(session, request);
      return request.op === "issue" ? (await this.issue(session, request.rid)) : (await this.commit(session, request.rid, request.gen, request.proof));
    } catch {
      return this.refuse(request.rid, request.op, "INTERNAL", "internal error");
    }
  }

  /** Handles one payload from the session's status topic; returns false (and counts it) when it is malformed. */
  async handleStatus(session: Session, payload: Uint8Array): Promise<boolean> {
    try {
      const status = decodeStatus(payload);
      await this.registry.storeStatus(session.deviceId, status.state, status.credential, status.lastFailure);
      return true;
    } catch {
      this.stats.badStatus++;
      return false;
    }
  }

  private refuse(rid: string, op: string, reason: ReasonCode, detail?: string): CloudResponse {
    return { v: 1, rid, op, ok: false, reason, ...(detail !== undefined ? { detail } : {}) };
  }

  /**
   * The secret whose wrap key protects an issued secret for this session, or a
   * refusal. Temporary sessions: the temporary secret, while the device is
   * still temporary. Secret sessions: the active secret the session proved
   * (rotation), while it is still the active one.
   */
  private async wrappingSecret(session: Session, row: DeviceRow): Promise<Uint8Array | ReasonCode> {
    if (row.revoked || !session.loginSecret) return "NOTHING_TO_ISSUE";
    if (session.credential === "t") {
      if (row.kind !== "temporary") return "NOTHING_TO_ISSUE";
      const lot = row.lot === null ? undefined : (await this.registry.lot(row.lot));
      // a retired key lets an open session finish; a revoked one does not
      if (!lot || lot.revoked) return "NOTHING_TO_ISSUE";
      return session.loginSecret;
    }
    if (session.credential === "s" && row.kind === "secret" && row.generation === session.generation) return session.loginSecret;
    return "NOTHING_TO_ISSUE";
  }

  private async issue(session: Session, rid: string): Promise<CloudResponse> {
    const id = session.deviceId;
    let row = await this.registry.device(id);
    if (!row) return this.refuse(rid, "issue", "NOTHING_TO_ISSUE");
    const wrapping = await this.wrappingSecret(session, row);
    if (typeof wrapping === "string") return this.refuse(rid, "issue", wrapping);
    if (row.pending_secret_enc === null) {
      // Only temporary sessions create a pending secret here; a rotation (admin) creates it for secret devices.
      if (session.credential !== "t") return this.refuse(rid, "issue", "NOTHING_TO_ISSUE");
      const stored = await this.registry.storePending(id, this.random(32), row.generation + 1, this.random(16), "issuance");
      if (stored) this.stats.issued++;
      row = (await this.registry.device(id))!;
    }
    const secret = this.registry.pendingSecret(row);
    if (!secret || row.pending_generation === null || row.pending_nonce === null) return this.refuse(rid, "issue", "INTERNAL");
    const nonce = Uint8Array.from(row.pending_nonce);
    const wrapped = wrapSecret(this.digest, deriveWrapKey(this.digest, wrapping), id, nonce, secret);
    // A rotation to a device with a registered format-3 key is also sealed to
    // that key: a leaked copy of the current secret alone does not open it (docs/protocol.md 9.5).
    const key = session.credential === "s" ? (await this.network.net.columns(id))?.seal_key : null;
    if (key && isCurrentSealKey(key)) {
      const sealed = sealForDevice(Uint8Array.from(key), id, concatBytes(nonce, wrapped.ciphertext, wrapped.tag), "rotation");
      return { v: 1, rid, op: "issue", ok: true, gen: row.pending_generation, sealed };
    }
    return { v: 1, rid, op: "issue", ok: true, gen: row.pending_generation, nonce, secret: wrapped.ciphertext, tag: wrapped.tag };
  }

  private async commit(session: Session, rid: string, gen: number, proof: Uint8Array): Promise<CloudResponse> {
    const id = session.deviceId;
    const row = await this.registry.device(id);
    if (!row || row.revoked) return this.refuse(rid, "commit", "BAD_PROOF");
    const pending = this.registry.pendingSecret(row);
    if (pending && row.pending_generation === gen) {
      if (!constantTimeEqual(deriveCommitProof(this.digest, pending, id, gen), proof)) return this.refuse(rid, "commit", "BAD_PROOF");
      if ((await this.registry.commitPending(id, gen, "issuance"))) {
        this.stats.committed++;
        return { v: 1, rid, op: "commit", ok: true, gen };
      }
      return await this.commitAgain(rid, id, gen, proof);
    }
    return await this.commitAgain(rid, id, gen, proof);
  }

  /** Idempotent commit: the generation is already active and the proof verifies against it. */
  private async commitAgain(rid: string, id: string, gen: number, proof: Uint8Array): Promise<CloudResponse> {
    const row = await this.registry.device(id);
    if (!row || row.kind !== "secret" || row.generation !== gen) return this.refuse(rid, "commit", "GENERATION_MISMATCH");
    const active = this.registry.activeSecret(row);
    if (!active || !constantTimeEqual(deriveCommitProof(this.digest, active, id, gen), proof)) return this.refuse(rid, "commit", "BAD_PROOF");
    return { v: 1, rid, op: "commit", ok: true, gen };
  }
}
