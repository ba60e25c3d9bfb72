/*
 * A throwaway PostgreSQL server for the tests, from the installed binaries
 * (Debian's postgresql package: /usr/lib/postgresql/<version>/bin).
 *
 * One server per test process, started on first use: initdb in a mkdtemp
 * folder, then postgres listening only on a unix socket in that folder
 * (listen_addresses empty: no TCP port to collide with), fsync off (the data
 * is thrown away). PostgreSQL refuses to run as root; when the tests run as
 * root (CI), the folder is given to the unprivileged user `nobody` and
 * initdb/postgres run under `runuser -u nobody`. Each caller gets a fresh
 * schema (createDatabase). The server is stopped (SIGINT to the postmaster by its pid file: fast shutdown)
 * and its folder removed after the last test, or killed at process exit.
 * When the binaries are missing, `postgresUnavailable()` says why and the
 * tests skip.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** The newest installed PostgreSQL bin folder (15 preferred), or undefined. */
function binDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres")) && existsSync(join(root, v, "bin", "initdb")));
  if (versions.length === 0) return undefined;
  const chosen = versions.includes("15") ? "15" : versions.sort((a, b) => Number(b) - Number(a))[0];
  return join(root, chosen, "bin");
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  if (process.env.WCM_TEST_NO_POSTGRES) return "WCM_TEST_NO_POSTGRES is set";
  if (!binDir()) return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres; apt-get install postgresql)";
  if (process.getuid?.() === 0 && !existsSync("/usr/sbin/runuser") && !existsSync("/sbin/runuser")) return "running as root without runuser (PostgreSQL refuses to run as root)";
  return undefined;
}

interface Server {
  dir: string;
  child: ChildProcess;
  /** the unix socket folder */
  socketDir: string;
  exited: Promise<void>;
}

let server: Promise<Server> | undefined;
let databases = 0;

/** initdb and postgres as this user, or as `nobody` when this is root. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ["runuser", ["-u", "nobody", "--", command, ...args]] : [command, args];
}

async function start(): Promise<Server> {
  const bin = binDir();
  if (!bin) throw new Error(postgresUnavailable());
  const dir = mkdtempSync(join(tmpdir(), "wcm-pg-"));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "nobody"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "nobody"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  const [initdb, initArgs] = asServerUser(join(bin, "initdb"), ["-D", data, "-U", "wcm", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  execFileSync(initdb, initArgs, { stdio: ["ignore", "ignore", "pipe"], cwd: dir });
  const [postgres, args] = asServerUser(join(bin, "postgres"), [
    "-D", data, "-k", dir, "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
    "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB", "-c", "log_min_messages=fatal",
  ]);
  const child = spawn(postgres, args, { stdio: ["ignore", "ignore", "pipe"], cwd: dir });
  let log = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // as root the child is runuser: the postmaster (its child) is signalled by the pid in its pid file
  const killAtExit = () => {
    const pid = postmasterPid(data);
    if (pid !== undefined) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    child.kill("SIGKILL");
  };
  process.once("exit", killAtExit);
  // ready when a connection is accepted (generous: a loaded CI machine)
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited at start: ${log}`);
    const client = new pg.Client({ host: dir, user: "wcm", database: "postgres" });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`postgres did not accept connections within 60 s: ${(error as Error).message} ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { dir, child, socketDir: dir, exited };
}

/** The postmaster's pid from `<data>/postmaster.pid`, if it is running. */
function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether process `pid` exists (and is not a zombie of ours). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** The URL of a database on the unix socket in `socketDir`. */
export function socketUrl(socketDir: string, database: string): string {
  return `postgres://wcm@${encodeURIComponent(socketDir)}/${database}`;
}

/**
 * A fresh, empty database on the shared throwaway server (started on first
 * use): a schema of its own in one database (creating a schema costs
 * milliseconds, a database hundreds), reached through the URL's search_path.
 * @returns its postgres:// URL (unix socket, user wcm, no password)
 */
export async function createDatabase(): Promise<string> {
  server ??= start();
  const { socketDir } = await server;
  const name = `wcm_${process.pid}_${++databases}`;
  const client = new pg.Client({ host: socketDir, user: "wcm", database: "postgres" });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${name}`);
  } finally {
    await client.end();
  }
  return `${socketUrl(socketDir, "postgres")}?options=${encodeURIComponent(`-c search_path=${name}`)}`;
}

/** Stops the server (if one was started) and removes its folder. */
export async function stopPostgres(): Promise<void> {
  const started = server;
  server = undefined;
  if (!started) return;
  let running: Server;
  try {
    running = await started;
  } catch {
    return;
  }
  // signal the postmaster itself: runuser (as root) may exit before it, which left postgres running without its folder
  const pid = postmasterPid(join(running.dir, "data"));
  const signal = (name: NodeJS.Signals) => {
    if (pid !== undefined) try { process.kill(pid, name); } catch { /* gone */ }
    running.child.kill(name);
  };
  signal("SIGINT");
  const deadline = Date.now() + 20_000;
  while (pid !== undefined && alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (pid !== undefined && alive(pid)) signal("SIGKILL");
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 5_000);
  await running.exited;
  clearTimeout(timer);
  rmSync(running.dir, { recursive: true, force: true });
}

// a root hook: mocha runs it after every test file
if (typeof after === "function") after(async function () {
  this.timeout(30_000);
  await stopPostgres();
});
