/*
 * A small Node driver for @agoric/xsnap's `xsnap-worker` binary (Moddable's XS
 * engine, built by the package's postinstall), without SES lockdown: the
 * package's JS API needs @endo/init in the Node process, which would freeze
 * mocha's globals. The worker speaks netstrings on fds 3 (to XS) and 4 (from XS):
 *   "e<code>"  evaluate a script        -> ".<meter JSON>\x01<reply>" or "!<error>"
 *   "?<bytes>" from XS: issueCommand()  <- "/<reply bytes>"
 * XS globals there: print, issueCommand, setImmediate, gc, performance.now,
 * TextEncoder/TextDecoder; no setTimeout, console, Buffer or process.
 * Used by test/xs-core.test.ts and bench/xs-footprint.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";

/** Meter figures of one evaluation, as xsnap-worker reports them. */
export interface XsMeter {
  /** metered computation steps of the evaluation (XS "meter index") */
  compute: number;
  /** heap slots in use after the evaluation (a txSlot is 16 bytes on ESP32, 32 here) */
  currentHeapCount: number;
  /** bytes the machine has allocated for slots and chunks, all told (never shrinks) */
  allocate: number;
}

/** The result of one evaluation. */
export interface XsEvaluation {
  meter: XsMeter;
  /** what issueCommand() sent during the evaluation, decoded as UTF-8 text */
  commands: string[];
}

/** Where the release xsnap-worker binary is, or undefined when it was not built. */
export function xsnapWorkerPath(): string | undefined {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("@agoric/xsnap/package.json"));
  const platform = process.platform === "linux" ? "lin" : process.platform === "darwin" ? "mac" : undefined;
  if (!platform) return undefined;
  const bin = join(root, "xsnap-native", "xsnap", "build", "bin", platform, "release", "xsnap-worker");
  return existsSync(bin) ? bin : undefined;
}

/** One XS machine in a child process. */
export class XsWorker {
  readonly #child: ChildProcess;
  readonly #toXs: Writable;
  #buffer = Buffer.alloc(0);
  #stdout = "";
  #stderr = "";
  #commands: string[] = [];
  #waiting: { resolve: (value: XsEvaluation) => void; reject: (error: Error) => void } | undefined;
  #exited: string | undefined;

  /** Starts a worker; `name` appears in XS error messages. */
  constructor(name = "wcm-xs") {
    const bin = xsnapWorkerPath();
    if (!bin) throw new Error("xsnap-worker is not built: run npm install (the @agoric/xsnap postinstall builds it)");
    this.#child = spawn(bin, [name], { stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "ignore", "ignore", "ignore", "ignore"] });
    const stdio = this.#child.stdio as unknown as [null, Readable, Readable, Writable, Readable];
    this.#toXs = stdio[3];
    this.#toXs.on("error", () => {}); // reported through "exit"
    stdio[1].setEncoding("utf8").on("data", (text: string) => { this.#stdout += text; });
    stdio[2].setEncoding("utf8").on("data", (text: string) => { this.#stderr += text; });
    stdio[4].on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#child.on("exit", (code, signal) => {
      this.#exited = `xsnap-worker exited (${signal ?? `code ${code}`})${this.#stderr ? `: ${this.#stderr.trim().slice(0, 2000)}` : ""}`;
      this.#waiting?.reject(new Error(this.#exited));
      this.#waiting = undefined;
    });
  }

  /** Everything print() wrote so far. */
  get printed(): string {
    return this.#stdout;
  }

  /**
   * Evaluates a script (e.g. an esbuild IIFE bundle) and runs its promise jobs to idle.
   * @throws Error "Uncaught exception in XS: ..." when the script throws
   */
  evaluate(code: string): Promise<XsEvaluation> {
    if (this.#exited) return Promise.reject(new Error(this.#exited));
    if (this.#waiting) return Promise.reject(new Error("one evaluation at a time"));
    this.#commands = [];
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#write(Buffer.concat([Buffer.from("e"), Buffer.from(code, "utf8")]));
    });
  }

  /** Ends the worker. */
  close(): void {
    if (!this.#exited) this.#child.kill();
  }

  #write(payload: Buffer): void {
    this.#toXs.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(",")]));
  }

  #onData(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const colon = this.#buffer.indexOf(0x3a);
      if (colon < 0) return;
      const length = Number(this.#buffer.subarray(0, colon).toString("latin1"));
      if (!Number.isInteger(length)) throw new Error("xsnap protocol error: bad netstring");
      if (this.#buffer.length < colon + 1 + length + 1) return;
      const message = this.#buffer.subarray(colon + 1, colon + 1 + length);
      this.#buffer = this.#buffer.subarray(colon + 2 + length);
      this.#onMessage(Buffer.from(message));
    }
  }

  #onMessage(message: Buffer): void {
    const kind = String.fromCharCode(message[0]);
    if (kind === "?") {
      this.#commands.push(message.subarray(1).toString("utf8"));
      this.#write(Buffer.from("/"));
      return;
    }
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (!waiting) return;
    if (kind === "!") {
      waiting.reject(new Error(`Uncaught exception in XS: ${message.subarray(1).toString("utf8")}`));
    } else if (kind === ".") {
      const separator = message.indexOf(1, 1);
      const meter = separator > 0 ? JSON.parse(message.subarray(1, separator).toString("utf8")) as XsMeter : { compute: 0, currentHeapCount: 0, allocate: 0 };
      waiting.resolve({ meter, commands: this.#commands });
    } else {
      waiting.reject(new Error(`xsnap protocol error: unexpected message ${JSON.stringify(message.subarray(0, 40).toString("latin1"))}`));
    }
  }
}

/** Evaluates `code` in a fresh worker and ends it. */
export async function runInXs(code: string): Promise<XsEvaluation & { printed: string }> {
  const worker = new XsWorker();
  try {
    const result = await worker.evaluate(code);
    return { ...result, printed: worker.printed };
  } finally {
    worker.close();
  }
}
