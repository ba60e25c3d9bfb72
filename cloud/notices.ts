/*
 * Operator notices between cloud processes: what a node's services decide
 * about a device (revoked, rotated, network changed, unlocked; a CA or
 * certificates revoked; hotspots changed) must reach the live session on
 * whichever process holds it. startCloud applies each notice to its own
 * sessions and publishes it on a NoticeBus; notices arriving from the bus are
 * applied, never republished. Buses: cloud/cluster.ts (worker processes of one
 * machine, relayed by the primary over IPC) and cloud/redis.ts (nodes sharing a
 * Redis: `cluster.redis`, which then replaces the IPC bus). parseNotice
 * validates what crosses a process boundary.
 */

/** One notice. */
export type Notice =
  | { kind: "disconnect"; deviceId: string }
  | { kind: "rotation"; deviceId: string }
  | { kind: "network"; deviceId: string }
  | { kind: "unlock"; deviceId: string }
  | { kind: "ca-revoked"; caName: string }
  | { kind: "certificates" }
  | { kind: "hotspots" };

/** Where notices go to and come from the other processes. */
export interface NoticeBus {
  /** Sends a notice to every other process (not back to this one). */
  publish(notice: Notice): void;
  /** Calls `handler` with each notice another process published. */
  subscribe(handler: (notice: Notice) => void): void;
}

const MAX_NAME = 128;
const DEVICE_KINDS = new Set(["disconnect", "rotation", "network", "unlock"]);

const isName = (value: unknown): value is string => typeof value === "string" && value.length > 0 && value.length <= MAX_NAME;

/**
 * The notice in `value` (e.g. an IPC message), or undefined when it is not a
 * well-formed one (unknown kind, missing or oversized name, extra fields).
 */
export function parseNotice(value: unknown): Notice | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (typeof record.kind !== "string") return undefined;
  if (DEVICE_KINDS.has(record.kind)) {
    return keys.length === 2 && isName(record.deviceId) ? { kind: record.kind as "disconnect", deviceId: record.deviceId } : undefined;
  }
  if (record.kind === "ca-revoked") return keys.length === 2 && isName(record.caName) ? { kind: "ca-revoked", caName: record.caName } : undefined;
  if (record.kind === "certificates" || record.kind === "hotspots") return keys.length === 1 ? { kind: record.kind } : undefined;
  return undefined;
}
