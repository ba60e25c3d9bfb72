/*
 * The parent's side of bench/fleet-child.ts: forks the cloud child, sends it
 * one request at a time and waits for its reply (with a deadline), reads its
 * stats, kills it or closes it. Used by bench:fleet and bench:sizing.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FleetChildRequest, FleetChildStats } from "./fleet-child";

/** The cloud in a child process (bench/fleet-child.ts). */
export class FleetChild {
  readonly child: ChildProcess;
  /** resolves with the exit code when the child has exited */
  readonly exited: Promise<number | null>;
  #waiting: ((reply: Record<string, unknown>) => void)[] = [];

  /** @param nodeFlags - Node flags of the cloud process, e.g. `--expose-gc` */
  constructor(nodeFlags: string[] = []) {
    this.child = fork(fileURLToPath(new URL("./fleet-child.ts", import.meta.url)), [], { execArgv: ["--import", "tsx", ...nodeFlags], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (reply: Record<string, unknown>) => this.#waiting.shift()?.(reply));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  /**
   * Sends one request and waits for its reply.
   * @throws Error when the child answers `error` or does not answer within `timeoutMs`
   */
  request<T>(message: FleetChildRequest, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cloud child: no reply to ${message.cmd}`)), timeoutMs);
      this.#waiting.push((reply) => {
        clearTimeout(timer);
        if (reply.cmd === "error") reject(new Error(`cloud child: ${String(reply.message)}`));
        else resolve(reply as T);
      });
      this.child.send(message);
    });
  }

  /** The cloud's figures; `full` adds the ones that cost a registry scan or a GC. */
  async stats(full = false): Promise<FleetChildStats> {
    return (await this.request<{ stats: FleetChildStats }>({ cmd: "stats", full })).stats;
  }

  /** SIGKILL; resolves with the exit code. */
  kill(): Promise<number | null> {
    this.child.kill("SIGKILL");
    return this.exited;
  }

  /** Asks the cloud to close, then kills it if it has not exited 5 s later. */
  async close(): Promise<void> {
    try {
      if (this.child.connected) await this.request({ cmd: "close" }, 20_000);
    } catch {
      // killed below
    }
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}
