/*
 * Liveness and readiness for orchestrators and load balancers, answered
 * without credentials and giving nothing away.
 *
 * `GET /healthz`: 200 `{"status":"ok"}` while the process serves HTTP at all.
 * `GET /readyz`: 200 `{"status":"ready"}` when the registry answers a read and
 * every device listener is listening; else 503 `{"status":"not ready"}` (also
 * while the cloud drains on SIGTERM, so a balancer stops sending devices).
 * Neither says why, which listeners exist, versions, counts or names. Both are
 * served on the admin listener ahead of its guard (no token, any Host: probes
 * use an address) and on the ops listener (cloud/ops-listener.ts) beside /metrics.
 */

/** What readiness asks. */
export interface ReadinessProbe {
  /** true when the registry answers and the listeners are up */
  ready(): Promise<boolean>;
}

/** The paths this module answers. */
export const HEALTH_PATHS = ["/healthz", "/readyz"] as const;

/** The status and body of a probe request, or undefined when `path` is not a probe. */
export async function probeResponse(method: string, url: string, probe: ReadinessProbe): Promise<{ status: number; body: { status: string } } | undefined> {
  const path = url.split("?")[0];
  if (!(HEALTH_PATHS as readonly string[]).includes(path)) return undefined;
  if (method !== "GET" && method !== "HEAD") return { status: 405, body: { status: "method not allowed" } };
  if (path === "/healthz") return { status: 200, body: { status: "ok" } };
  let ready = false;
  try {
    ready = await probe.ready();
  } catch {
    ready = false;
  }
  return ready ? { status: 200, body: { status: "ready" } } : { status: 503, body: { status: "not ready" } };
}
