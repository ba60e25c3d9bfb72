/*
 * A throwaway Redis server for the tests and demos, from the installed
 * binary (Debian's redis-server package).
 *
 * startRedis() runs redis-server on a free loopback port with its working
 * folder in a mkdtemp folder, no persistence (no RDB, no AOF) and no
 * protected-mode surprises (bound to 127.0.0.1 only); it resolves once the
 * server answers PING. stop() ends it (SIGTERM, then SIGKILL) and removes the
 * folder; a server still running at process exit is killed. When the binary
 * is missing, `redisUnavailable()` says why and the tests skip.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running throwaway Redis. */
export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  url: string;
  port: number;
  child: ChildProcess;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

function redisBinary(): string | undefined {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"]).toString().trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Why Redis tests cannot run here, or undefined when they can. */
export function redisUnavailable(): string | undefined {
  if (process.env.WCM_TEST_NO_REDIS) return "WCM_TEST_NO_REDIS is set";
  if (!redisBinary()) return "redis-server is not installed (apt-get install redis-server)";
  return undefined;
}

/** A loopback port free at the time of asking. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True once a PING on `port` is answered +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

/**
 * Starts a throwaway redis-server (a free port, tried again on a collision).
 * @throws Error when the binary is missing or the server does not answer within 30 s
 */
export async function startRedis(): Promise<TestRedis> {
  const binary = redisBinary();
  if (!binary) throw new Error(redisUnavailable());
  for (let attempt = 0; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), "wcm-redis-"));
    const port = await freePort();
    const child = spawn(binary, [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
      "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
    ], { stdio: ["ignore", "ignore", "pipe"], cwd: dir });
    let log = "";
    child.stderr?.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const killAtExit = () => child.kill("SIGKILL");
    process.once("exit", killAtExit);
    const stop = async () => {
      process.off("exit", killAtExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 30_000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await ping(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (up) return { url: `redis://127.0.0.1:${port}`, port, child, stop };
    await stop();
    if (attempt >= 2) throw new Error(`redis-server did not answer on port ${port}: ${log}`);
  }
}
