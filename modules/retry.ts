/*
 * Reconnect timing as a pure function (the randomness is an argument).
 *
 * Network failures and an unavailable server back off exponentially from seconds;
 * authentication failures (the cloud refused the credential) back off from
 * minutes, because retrying them fast cannot help and looks like an attack.
 * A busy cloud (CONNACK 3, server unavailable: docs/protocol.md section 10)
 * is retried within a short window that widens linearly, with full jitter,
 * so a fleet refused together spreads out instead of waking in waves.
 * A session lost while ONLINE (the cloud was there a moment ago: a cloud
 * restart, a broker upgrade) is retried the same way ("lost": a short window,
 * full jitter) for its first attempts, then falls back to the network's
 * exponential back-off; the cloud's accept queue and busy answers, not the
 * device's back-off, pace a fleet that returns together.
 * A server's retry-after, when given, is honoured as a floor.
 */

/** Why the previous attempt failed, as far as retry timing is concerned. */
export type FailureClass = "network" | "server" | "auth" | "busy" | "lost";

/** Back-off bounds in milliseconds. */
export interface RetryPolicy {
  networkBaseMs: number;
  networkMaxMs: number;
  authBaseMs: number;
  authMaxMs: number;
  /** busy: the shortest wait (default 500 ms) */
  busyMinMs?: number;
  /** busy: the window width of the first retry, added again per further busy answer (default 4 s) */
  busyWindowMs?: number;
  /** busy: the widest window (default 20 s) */
  busyWindowMaxMs?: number;
  /** lost (network failures since an ONLINE session ended): the shortest wait (default 250 ms) */
  lostMinMs?: number;
  /** lost: the window width of the first retry, added again per further attempt (default 1 s) */
  lostWindowMs?: number;
  /** lost: the widest window (default 8 s) */
  lostWindowMaxMs?: number;
  /** lost: attempts retried within the window (default 15, about a minute); later ones are network attempts from the 4th on; 0: a lost session backs off exactly as a network failure (as before) */
  lostAttempts?: number;
}

/** Busy-window defaults: a retry in 0.5-4.5 s, then 0.5-8.5 s, ..., at most 0.5-20.5 s. */
export const DEFAULT_BUSY_RETRY = { busyMinMs: 500, busyWindowMs: 4000, busyWindowMaxMs: 20_000 } as const;

/** Lost-session defaults: a retry in 0.25-1.25 s, then 0.25-2.25 s, ..., at most 0.25-8.25 s, for 15 attempts (about 50 s on average). */
export const DEFAULT_LOST_RETRY = { lostMinMs: 250, lostWindowMs: 1000, lostWindowMaxMs: 8000, lostAttempts: 15 } as const;

/** The network attempt a "lost" streak continues as once its window attempts are spent (4: 4-8 s by default). */
export const LOST_THEN_NETWORK_ATTEMPT = 4;

/** Defaults: 1 s doubling to 2 min for the network, 1 min doubling to 1 h for authentication. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  networkBaseMs: 1000,
  networkMaxMs: 120_000,
  authBaseMs: 60_000,
  authMaxMs: 3_600_000,
};

/**
 * The delay before the next attempt.
 * @param failure - what kind of failure ended the previous attempt
 * @param attempt - consecutive failures of this kind so far, starting at 1
 * @param random01 - a uniform random number in [0, 1) (the jitter)
 * @param policy - bounds
 * @param retryAfterMs - a server-given minimum delay, if any
 * @returns milliseconds: for "busy", busyMinMs plus a random share of min(busyWindowMaxMs, busyWindowMs x attempt)
 *   ("full jitter" over a linearly widening window); for "lost", the same with the lost bounds for its first
 *   lostAttempts attempts, then the network delay of attempt (attempt - lostAttempts - 1 + LOST_THEN_NETWORK_ATTEMPT); otherwise half the capped exponential delay plus a random
 *   share of the other half ("equal jitter")
 * @example nextRetryDelay("network", 1, 0.5) === 750
 * @example nextRetryDelay("busy", 1, 0.5) === 2500
 * @example nextRetryDelay("lost", 1, 0.5) === 750
 */
export function nextRetryDelay(
  failure: FailureClass,
  attempt: number,
  random01: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  retryAfterMs = 0,
): number {
  const jitter = Number.isFinite(random01) ? Math.min(Math.max(random01, 0), 0.999999) : 0.5;
  const n = Number.isFinite(attempt) ? Math.min(Math.max(Math.floor(attempt), 1), 1_000_000) : 1;
  const windowed = (min: number, step: number, widest: number) =>
    Math.max(Math.floor(min + Math.min(widest, step * n) * jitter), Math.min(retryAfterMs, min + widest));
  if (failure === "busy") {
    return windowed(policy.busyMinMs ?? DEFAULT_BUSY_RETRY.busyMinMs, policy.busyWindowMs ?? DEFAULT_BUSY_RETRY.busyWindowMs, policy.busyWindowMaxMs ?? DEFAULT_BUSY_RETRY.busyWindowMaxMs);
  }
  if (failure === "lost") {
    const within = Math.max(0, Math.floor(policy.lostAttempts ?? DEFAULT_LOST_RETRY.lostAttempts));
    if (n <= within) {
      return windowed(policy.lostMinMs ?? DEFAULT_LOST_RETRY.lostMinMs, policy.lostWindowMs ?? DEFAULT_LOST_RETRY.lostWindowMs, policy.lostWindowMaxMs ?? DEFAULT_LOST_RETRY.lostWindowMaxMs);
    }
    // then (at once with lostAttempts 0) a network failure
    if (within !== 0) return nextRetryDelay("network", n - within - 1 + LOST_THEN_NETWORK_ATTEMPT, random01, policy, retryAfterMs);
  }
  const auth = failure === "auth";
  const max = auth ? policy.authMaxMs : policy.networkMaxMs;
  const capped = Math.min(max, (auth ? policy.authBaseMs : policy.networkBaseMs) * 2 ** Math.min(n - 1, 30));
  return Math.max(Math.floor(capped / 2 + (capped / 2) * jitter), Math.min(retryAfterMs, max));
}
