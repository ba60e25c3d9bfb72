/*
 * bench:login-limits: what holding the login limits in PostgreSQL (shared by
 * every node, cloud/shared-limits.ts) costs against this process's memory (the
 * SQLite default), per login decision, side by side in one run.
 *
 * A "login" is what cloud/auth does for a verified login (take a device token,
 * reset the pair); a "refusal" what it does for a refused one (is the pair
 * locked, count the failure). Both stores run the same sequence over the same
 * ids, in alternating rounds, at concurrency 1 and `--concurrency` (default 16).
 * PostgreSQL is a throwaway server on a unix socket (test/support/postgres.ts,
 * fsync off: the figure is the round trip and the statement, not the disk).
 *
 *   npm run bench:login-limits -- [--ops 2000] [--rounds 3] [--concurrency 16]
 */
import { loadavg } from "node:os";
import { PostgresStorage } from "../cloud/storage/postgres";
import { MemoryLoginLimits, SqlLoginLimits, type LoginLimitStore } from "../cloud/shared-limits";
import { createDatabase, postgresUnavailable, stopPostgres } from "../test/support/postgres";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const OPS = arg("ops", 2000);
const ROUNDS = arg("rounds", 3);
const CONCURRENCY = arg("concurrency", 16);
const LIMITS = { perDevice: { burst: 1e9, perSecond: 1e9 }, lockoutThreshold: 1e9 };

async function pass(store: LoginLimitStore, kind: "login" | "refusal", concurrency: number, tag: string): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < OPS; i = next++) {
      const id = `${tag}-${i % 500}`;
      const now = store.now();
      if (kind === "login") {
        await store.admitDevice(id, now);
        await store.succeeded(id, "192.0.2.1");
      } else {
        await store.lockedUntil(id, "192.0.2.1", now);
        await store.failed(id, "192.0.2.1", "BAD_PROOF", now);
      }
    }
  }));
  return Number(process.hrtime.bigint() - started) / 1e3 / OPS;
}

async function main(): Promise<void> {
  const why = postgresUnavailable();
  if (why) {
    console.log(`bench:login-limits skipped: ${why}`);
    return;
  }
  const storage = await PostgresStorage.connect(await createDatabase());
  try {
    const stores: Record<string, LoginLimitStore> = { memory: new MemoryLoginLimits(LIMITS), postgres: new SqlLoginLimits(storage, LIMITS) };
    console.log(`ops ${OPS} per pass, ${ROUNDS} rounds, load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    for (const kind of ["login", "refusal"] as const) {
      for (const concurrency of [1, CONCURRENCY]) {
        const us: Record<string, number[]> = { memory: [], postgres: [] };
        for (let round = 0; round < ROUNDS; round++) {
          const order = round % 2 === 0 ? ["memory", "postgres"] : ["postgres", "memory"];
          for (const name of order) us[name].push(await pass(stores[name], kind, concurrency, `${kind}${concurrency}r${round}`));
        }
        const fmt = (xs: number[]) => `${median(xs).toFixed(1)} us (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
        console.log(`${kind} c=${concurrency}: memory ${fmt(us.memory)}, postgres ${fmt(us.postgres)} per ${kind} (wall time / ops), ratio ${(median(us.postgres) / median(us.memory)).toFixed(0)}x`);
      }
    }
    console.log(`load average after ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  } finally {
    await storage.close();
    await stopPostgres();
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

void main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
