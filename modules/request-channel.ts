/*
 * The request channel: the device's one outstanding request to the cloud.
 *
 * - makes request ids (9 random bytes, base64url);
 * - publishes a request on the device's request topic and resends it, with the
 *   same request id (every operation is idempotent), when no response came
 *   within the timeout; after the last send it gives up and says so;
 * - matches a response to the outstanding request by its request id and
 *   ignores stale or duplicate ones.
 * It does no I/O itself: it publishes over the session's CloudLink.
 */
import { toBase64Url } from "./bytes";
import type { CloudLink, RandomPort, ScheduledTask, SchedulerPort } from "./ports";
import { encodeRequest, type CloudResponse, type DeviceRequest } from "./protocol";

/** What the channel needs from the session that owns it. */
export interface RequestChannelHost {
  /** the session's link, or undefined while there is none (nothing is sent then) */
  link(): CloudLink | undefined;
  /** called once the request was sent `attempts` times without a response; `op` is its operation */
  exhausted(op: DeviceRequest["op"]): void;
}

interface PendingRequest {
  request: DeviceRequest;
  sends: number;
  timer?: ScheduledTask;
}

/**
 * Sends requests and resends them until their response arrives.
 * @example
 *   const channel = new RequestChannel(ports.scheduler, ports.random, topics.request, 5000, 3, host);
 *   channel.send({ v: 1, rid: channel.newRequestId(), op: "issue" });
 *   // later, for each response:  const request = channel.take(response);
 */
export class RequestChannel {
  readonly #scheduler: SchedulerPort;
  readonly #random: RandomPort;
  readonly #topic: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #host: RequestChannelHost;
  #pending: PendingRequest | undefined;

  /**
   * @param topic the device's request topic
   * @param timeoutMs how long to wait for a response before resending
   * @param attempts sends of one request before `host.exhausted` is called
   */
  constructor(scheduler: SchedulerPort, random: RandomPort, topic: string, timeoutMs: number, attempts: number, host: RequestChannelHost) {
    this.#scheduler = scheduler;
    this.#random = random;
    this.#topic = topic;
    this.#timeoutMs = timeoutMs;
    this.#attempts = attempts;
    this.#host = host;
  }

  /** True while a request waits for its response. */
  get busy(): boolean {
    return this.#pending !== undefined;
  }

  /** A fresh request id: 9 random bytes as base64url. */
  newRequestId(): string {
    return toBase64Url(this.#random.bytes(9));
  }

  /** Sends `request` now, replacing any outstanding one. */
  send(request: DeviceRequest): void {
    this.#pending?.timer?.cancel();
    this.#pending = { request, sends: 0 };
    this.#resend();
  }

  /**
   * Matches a response to the outstanding request.
   * @returns the request it answers (no longer outstanding), or undefined for a stale or duplicate response
   */
  take(response: CloudResponse): DeviceRequest | undefined {
    const pending = this.#pending;
    if (!pending || pending.request.rid !== response.rid) return undefined;
    pending.timer?.cancel();
    this.#pending = undefined;
    return pending.request;
  }

  /** Forgets the outstanding request (the session ended). */
  clear(): void {
    this.#pending?.timer?.cancel();
    this.#pending = undefined;
  }

  #resend(): void {
    const pending = this.#pending;
    const link = this.#host.link();
    if (!pending || !link) return;
    if (pending.sends >= this.#attempts) {
      this.#pending = undefined;
      this.#host.exhausted(pending.request.op);
      return;
    }
    pending.sends++;
    link.publish(this.#topic, encodeRequest(pending.request));
    pending.timer = this.#scheduler.after(this.#timeoutMs, () => {
      if (this.#pending === pending) this.#resend();
    });
  }
}
