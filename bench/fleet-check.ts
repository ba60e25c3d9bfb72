/*
 * The registry's view of a fleet after a storm (bench/fleet-load.ts,
 * demo/cluster.ts): how many rows are still temporary, have two active
 * secrets, a pending secret left, a lockout, and the refusals by reason.
 * Read through the storage interface, so the same queries run on SQLite and
 * on PostgreSQL.
 */
import type { Storage } from "../cloud/storage/store";

/** The registry's view of the fleet after a run. */
export interface FleetCheck {
  devices: number;
  /** rows still on the temporary credential */
  temporary: number;
  /** permanent rows whose temporary credential is not retired (two active secrets) */
  twoActive: number;
  /** rows with a pending secret left */
  pending: number;
  revoked: number;
  lockedOut: number;
  /** rows whose last status report is ONLINE */
  online: number;
  /** refusals by reason over the whole run (audit), and lockouts */
  refusals: Record<string, number>;
}

/** Counts the registry's rows by what a finished first boot must leave. */
export async function fleetCheck(storage: Storage): Promise<FleetCheck> {
  const count = async (sql: string) => Number((await storage.get<{ n: number | string }>(sql))!.n);
  const refusals: Record<string, number> = {};
  for (const row of await storage.all<{ detail: string | null }>("SELECT detail FROM audit WHERE action = 'login.refused'")) {
    const reason = (row.detail ?? "?").split(":")[0];
    refusals[reason] = (refusals[reason] ?? 0) + 1;
  }
  return {
    devices: await count("SELECT COUNT(*) AS n FROM devices"),
    temporary: await count("SELECT COUNT(*) AS n FROM devices WHERE kind = 'temporary'"),
    twoActive: await count("SELECT COUNT(*) AS n FROM devices WHERE kind = 'secret' AND lot IS NOT NULL AND temp_retired = 0"),
    pending: await count("SELECT COUNT(*) AS n FROM devices WHERE pending_secret_enc IS NOT NULL"),
    revoked: await count("SELECT COUNT(*) AS n FROM devices WHERE revoked = 1"),
    lockedOut: await count("SELECT COUNT(*) AS n FROM devices WHERE lockouts > 0 OR last_failure = 'LOCKED_OUT'"),
    online: await count("SELECT COUNT(*) AS n FROM devices WHERE state = 'ONLINE'"),
    refusals,
  };
}
