/*
 * The registry backend the tests run on, chosen by the harness: a suite
 * wrapped in forEachBackend() runs once on SQLite and once on PostgreSQL (a
 * throwaway server, test/support/postgres.ts; skipped with the reason when
 * PostgreSQL is not installed). Inside it, startTestCloud() and
 * openTestRegistry() use the suite's backend, so the test bodies are the same
 * for both. A data directory keeps its database: a cloud restarted on the same
 * `dataDir` finds the registry it left, on either backend.
 */
import { Registry, type RegistryOptions } from "../../cloud/registry";
import { createDatabase, postgresUnavailable } from "./postgres";

/** A registry backend of the tests. */
export type BackendName = "sqlite" | "postgres";

let current: BackendName = "sqlite";
/** the PostgreSQL database of each data directory used on that backend */
const databases = new Map<string, string>();

/** The backend of the running suite (sqlite outside forEachBackend). */
export function currentBackend(): BackendName {
  return current;
}

/** The `database` option of startCloud for `dataDir` on the current backend (undefined: SQLite in dataDir). */
export async function backendDatabase(dataDir: string): Promise<string | undefined> {
  if (current !== "postgres") return undefined;
  let url = databases.get(dataDir);
  if (!url) {
    url = await createDatabase();
    databases.set(dataDir, url);
  }
  return url;
}

/** Opens the registry of `dataDir` on the current backend. */
export async function openTestRegistry(dataDir: string, masterKey: Uint8Array, options: RegistryOptions = {}): Promise<Registry> {
  const database = await backendDatabase(dataDir);
  return database === undefined ? Registry.open(dataDir, masterKey, options) : Registry.connect(database, masterKey, options);
}

/**
 * Declares the suite `title` once per backend ("title [sqlite]", "title [postgres]").
 * @example forEachBackend("cloud login", function () { it("...", async () => { const t = await startTestCloud(); ... }) })
 */
export function forEachBackend(title: string, body: (this: Mocha.Suite, backend: BackendName) => void): void {
  for (const backend of ["sqlite", "postgres"] as const) {
    describe(`${title} [${backend}]`, function () {
      before(function () {
        if (backend === "postgres") {
          const why = postgresUnavailable();
          if (why) {
            console.log(`      skipped on PostgreSQL: ${why}`);
            this.skip();
          }
        }
        current = backend;
      });
      after(() => {
        current = "sqlite";
      });
      body.call(this, backend);
    });
  }
}

/** The environment that points the CLI at `dataDir`'s registry on the current backend (WCM_DATABASE on PostgreSQL). */
export async function backendEnv(dataDir: string): Promise<Record<string, string>> {
  const database = await backendDatabase(dataDir);
  return database === undefined ? {} : { WCM_DATABASE: database };
}

/** Every table of the registry schema. */
const TABLES = ["meta", "server_tls", "product_cas", "devices", "provisioning_keys", "lot_devices", "audit", "revoked_certificates", "nas_clients", "hotspot_profiles", "hotspot_revision", "imported_bundles", "hotspot_devices", "hotspot_live", "radius_tls_sessions"];

/** Every value stored in every table of `registry`, as bytes (to look for a secret in clear on any backend). */
export async function storedBytes(registry: Registry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const table of TABLES) {
    for (const row of await registry.storage.all<Record<string, unknown>>(`SELECT * FROM ${table}`)) {
      for (const value of Object.values(row)) {
        if (Buffer.isBuffer(value)) parts.push(value);
        else if (value !== null && value !== undefined) parts.push(Buffer.from(String(value)));
      }
    }
  }
  return Buffer.concat(parts);
}
