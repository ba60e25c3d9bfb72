/*
 * The owner's side of local onboarding (docs/protocol.md 15): the CPace
 * handshake with the label code, then sealed calls (status, scan, networks,
 * end) with a call number that only grows. Portable: the CLI (tools/onboard),
 * the reference page (tools/onboard/page) and the demo use it over their own
 * HTTP transport; it never sends the code or a password in the clear.
 */
import { constantTimeEqual } from "../bytes";
import type { DigestPort, SealPort } from "../ports";
import { cpaceGenerator, cpaceKeys, cpaceShare, openCall, sealCall, SID_BYTES, type OnboardKeys } from "./cpace";
import { parseLabelCode } from "./label-code";
import {
  encodeCall, encodeCallRequest, encodeConfirm, encodeStart, parseCallAnswer, parseCallResponse, parseErrorAnswer, parseInfo,
  parseStartAnswer, type CallRequest, type CallResponse, type OnboardNetwork, type ScanEntry,
} from "./messages";

/** One HTTP exchange with the device's local service. */
export type LocalTransport = (method: "GET" | "POST", path: string, body?: Uint8Array) => Promise<{ status: number; body: Uint8Array }>;

/** A refusal or failure, with the device's error code (LOCKED, AUTH_FAILED, ...) or the client's own. */
export class OnboardError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(`${code}: ${message}`);
    this.name = "OnboardError";
    this.code = code;
  }
}

type StatusAnswer = Extract<CallResponse, { op: "status" }>;

/** A session with one device. */
export class OnboardingClient {
  readonly #send: LocalTransport;
  readonly #ports: { digest: DigestPort; seal: SealPort; random: (length: number) => Uint8Array };
  #session: { sid: Uint8Array; keys: OnboardKeys; n: number } | undefined;

  constructor(send: LocalTransport, ports: { digest: DigestPort; seal: SealPort; random: (length: number) => Uint8Array }) {
    this.#send = send;
    this.#ports = ports;
  }

  async #exchange(method: "GET" | "POST", path: string, body?: Uint8Array): Promise<Uint8Array> {
    const answer = await this.#send(method, path, body);
    if (answer.status !== 200) {
      const error = parseErrorAnswer(answer.body);
      throw new OnboardError(error?.error ?? `HTTP_${answer.status}`, error?.detail ?? "the device refused");
    }
    return answer.body;
  }

  /** The device's id and whether it is locked (GET /v1/info, not authenticated). */
  async info(): Promise<{ id: string; pake: string; locked: boolean }> {
    return parseInfo(await this.#exchange("GET", "/v1/info"));
  }

  /**
   * Runs the handshake with the code from the label.
   * @throws OnboardError CODE_INVALID (a typo: nothing sent), AUTH_FAILED (wrong code, or not
   *   the device it claims to be), LOCKED (too many failed attempts: press the device's button)
   */
  async authenticate(deviceId: string, labelCode: string): Promise<void> {
    let code: string;
    try {
      code = parseLabelCode(labelCode, "code", "MESSAGE_INVALID");
    } catch (error) {
      throw new OnboardError("CODE_INVALID", error instanceof Error ? error.message : "bad code");
    }
    const { digest, seal, random } = this.#ports;
    const sid = random(SID_BYTES);
    const mine = cpaceShare(seal, cpaceGenerator(digest, code, deviceId, sid), random);
    const answer = parseStartAnswer(await this.#exchange("POST", "/v1/start", encodeStart({ sid, a: mine.share })));
    const keys = cpaceKeys(digest, seal, deviceId, sid, mine.scalar, mine.share, answer.b, answer.b);
    if (!keys || !constantTimeEqual(keys.deviceTag, answer.t)) {
      throw new OnboardError("AUTH_FAILED", "wrong label code, or this is not that device");
    }
    await this.#exchange("POST", "/v1/confirm", encodeConfirm({ sid, t: keys.clientTag }));
    this.#session = { sid, keys, n: 0 };
  }

  async #call(request: CallRequest): Promise<CallResponse> {
    const session = this.#session;
    if (!session) throw new OnboardError("NO_SESSION", "authenticate first");
    const n = ++session.n;
    const c = sealCall(this.#ports.seal, session.keys, "c2s", session.sid, n, encodeCallRequest(request));
    const answer = parseCallAnswer(await this.#exchange("POST", "/v1/call", encodeCall({ sid: session.sid, n, c })));
    const plaintext = answer.n === n ? openCall(this.#ports.seal, session.keys, "s2c", session.sid, n, answer.c) : undefined;
    if (!plaintext) throw new OnboardError("AUTH_FAILED", "the answer does not open with the session's key");
    return parseCallResponse(plaintext);
  }

  /** Where onboarding is: WAITING, JOINING, JOINED or FAILED (with the reason). */
  async status(): Promise<StatusAnswer> {
    const answer = await this.#call({ op: "status" });
    if (answer.op !== "status") throw new OnboardError("PROTOCOL", "answer to status is not a status");
    return answer;
  }

  /** The networks the device hears, strongest first. */
  async scan(): Promise<ScanEntry[]> {
    const answer = await this.#call({ op: "scan" });
    if (answer.op !== "scan") throw new OnboardError("PROTOCOL", "answer to scan is not a scan");
    return answer.networks;
  }

  /** Hands over 1 to 4 networks; the device stores them and starts joining. */
  async sendNetworks(networks: OnboardNetwork[]): Promise<number> {
    const answer = await this.#call({ op: "networks", networks });
    if (answer.op === "status") throw new OnboardError(answer.reason ?? "FAILED", "the device could not store the networks");
    if (answer.op !== "networks") throw new OnboardError("PROTOCOL", "answer to networks is not networks");
    return answer.stored;
  }

  /** Ends onboarding on the device (it takes its SoftAP down). */
  async end(): Promise<void> {
    await this.#call({ op: "end" });
  }

  /**
   * Polls status until JOINED or FAILED.
   * @param sleep the host's delay (the portable core has no timers)
   * @throws OnboardError TIMEOUT after `attempts` polls
   */
  async waitForResult(sleep: (ms: number) => Promise<void>, attempts = 120, intervalMs = 500): Promise<StatusAnswer> {
    for (let i = 0; i < attempts; i++) {
      const status = await this.status();
      if (status.state === "JOINED" || status.state === "FAILED") return status;
      await sleep(intervalMs);
    }
    throw new OnboardError("TIMEOUT", "no result from the device");
  }
}
