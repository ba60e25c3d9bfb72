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
import { toBase64Url } from "./bytes";
import type { CloudResponse, DeviceRequest } from "./wire";

/** The request waiting for its response, and how often it was sent. */
export interface Outstanding {
  readonly request: DeviceRequest;
  readonly sends: number;
}

/** A request id from 9 random bytes. @example requestId(random.bytes(9)) */
export function requestId(random9: Uint8Array): string {
  return toBase64Url(random9.subarray(0, 9));
}

/**
 * The next send of `pending`.
 * @returns the outstanding request after this send, or undefined when it was already sent `attempts` times (give up)
 */
export function nextSend(pending: Outstanding, attempts: number): Outstanding | undefined {
  return pending.sends >= attempts ? undefined : { request: pending.request, sends: pending.sends + 1 };
}

/** True when `response` answers `pending` (same request id). */
export function answers(pending: Outstanding | undefined, response: CloudResponse): pending is Outstanding {
  return pending !== undefined && pending.request.rid === response.rid;
}
