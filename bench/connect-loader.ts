/*
 * Load generator processes for the connect benchmarks (bench:peers,
 * bench:sizing): `Loader` forks this file; the child holds its slice of the
 * devices and runs one connectPass (bench/connect-bench.ts: a fresh TLS
 * handshake, CONNECT, accepted CONNACK, DISCONNECT per device) per request,
 * against the wcm cloud or mosquitto, and sends back its figures.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connectPass, wcmPassword, type BenchDevice, type ConnectPass, type PasswordOf } from "./connect-bench";
import type { TlsVersion } from "./online-bench";

/** The password mosquitto's password file holds for a device (the first 16 bytes of its login key, hex). */
export const mosquittoPassword: PasswordOf = (device) => Buffer.from(device.loginKey).toString("hex").slice(0, 32);

interface LoaderInit {
  devices: { deviceId: string; loginKey: string }[];
}

/** One pass of a loader: every device of its slice connects once. */
export interface LoaderPass {
  port: number;
  caPem: string;
  tls: TlsVersion;
  /** the login counter every device uses in this pass */
  counter: number;
  concurrency: number;
  /** whose passwords: the wcm login proof or mosquitto's password file */
  kind: "wcm" | "mosquitto";
  /** the whole pass's deadline */
  timeoutMs: number;
}

/** A loader child process: its slice of the devices, one pass per request. */
export class Loader {
  readonly child: ChildProcess;
  #waiting: ((reply: ConnectPass) => void)[] = [];

  constructor(devices: BenchDevice[]) {
    this.child = fork(fileURLToPath(import.meta.url), ["--connect-loader"], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (reply: ConnectPass) => this.#waiting.shift()?.(reply));
    const init: LoaderInit = { devices: devices.map((d) => ({ deviceId: d.deviceId, loginKey: Buffer.from(d.loginKey).toString("hex") })) };
    this.child.send(init);
  }

  /** Runs one pass in the child and resolves with its figures. */
  pass(job: LoaderPass): Promise<ConnectPass> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.child.send(job);
    });
  }

  close(): void {
    this.child.disconnect();
  }
}

function loaderMain(): void {
  let devices: BenchDevice[] = [];
  process.on("message", (message: LoaderInit | LoaderPass) => {
    if ("devices" in message) {
      devices = message.devices.map((d) => ({ deviceId: d.deviceId, loginKey: new Uint8Array(Buffer.from(d.loginKey, "hex")) }));
      return;
    }
    const passwordOf = message.kind === "wcm" ? wcmPassword : mosquittoPassword;
    void connectPass(message.port, message.caPem, message.tls, devices, message.counter, message.concurrency, message.timeoutMs, passwordOf)
      .then((result) => process.send?.(result));
  });
  process.on("disconnect", () => process.exit(0));
}

if (process.argv.includes("--connect-loader")) loaderMain();
