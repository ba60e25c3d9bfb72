/*
 * Files and process: the master key file and the data folder are refused when
 * group or others may read or write them; everything the cloud creates
 * (folder, registry with -wal/-shm, admin token, server CA) is owner-only even
 * under umask 000; `serve` exits non-zero at once, naming the listener and the
 * port, when a port is taken.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { loadMasterKey } from "../cloud/master-key";
import { Registry } from "../cloud/registry";
import { startCloud } from "../cloud/index";
import { startTestCloud, type TestCloud } from "./cloud-helpers";

const posix = process.platform !== "win32";
const mode = (path: string) => statSync(path).mode & 0o777;

describe("cloud files and process (modes, serve bind failures)", function () {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "wcm-files-"));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  before(function () {
    if (!posix) this.skip();
  });

  it("loadMasterKey_KeyFileOpenToGroupOrOthers_FileInsecureNamingFix", function () {
    const dir = tempDir();
    const hex = randomBytes(32).toString("hex");
    const file = join(dir, "master.key");
    writeFileSync(file, `${hex}\n`);
    for (const open of [0o644, 0o640, 0o604, 0o620, 0o602, 0o666]) {
      chmodSync(file, open);
      assert.throws(() => loadMasterKey({ masterKeyFile: file, env: {} }), (error: Error & { code?: string }) => {
        assert.equal(error.code, "FILE_INSECURE");
        assert.ok(error.message.includes(`chmod 600 ${file}`), error.message);
        assert.equal(error.message.includes(hex), false);
        return true;
      });
    }
    for (const closed of [0o600, 0o400]) {
      chmodSync(file, closed);
      assert.equal(Buffer.from(loadMasterKey({ masterKeyFile: file, env: {} })).toString("hex"), hex);
    }
  });

  it("Registry_open_DataFolderOpenToGroupOrOthers_FileInsecure_NothingCreated", async function () {
    const parent = tempDir();
    for (const open of [0o777, 0o755, 0o750, 0o701]) {
      const dir = join(parent, `data-${open.toString(8)}`);
      mkdirSync(dir);
      chmodSync(dir, open);
      await assert.rejects(() => Registry.open(dir, new Uint8Array(32)), (error: Error & { code?: string }) => {
        assert.equal(error.code, "FILE_INSECURE");
        assert.ok(error.message.includes(`chmod 700 ${dir}`), error.message);
        return true;
      });
      assert.equal(existsSync(join(dir, "registry.sqlite")), false);
    }
  });

  it("Registry_open_RegistryFileOpenToOthers_FileInsecure", async function () {
    const dir = join(tempDir(), "data");
    await (await Registry.open(dir, new Uint8Array(32))).close();
    chmodSync(join(dir, "registry.sqlite"), 0o644);
    await assert.rejects(() => Registry.open(dir, new Uint8Array(32)), { code: "FILE_INSECURE" });
  });

  it("startCloud_UnderUmask000_EveryFileOwnerOnly", async function () {
    const dir = join(tempDir(), "nested", "data");
    const saved = process.umask(0);
    try {
      const cloud = await startCloud({ dataDir: dir, masterKey: new Uint8Array(randomBytes(32)), mqttPort: 0, httpPort: 0 });
      try {
        await cloud.services.registerSecretDevice({ deviceId: "umask-1", secretHex: randomBytes(32).toString("hex") });
        assert.equal(mode(dir), 0o700);
        assert.equal(mode(join(dir, "..")), 0o700, "missing parents are made 0700 too");
        for (const name of ["registry.sqlite", "registry.sqlite-wal", "registry.sqlite-shm", "admin-token", "server-ca.pem"]) {
          assert.equal(mode(join(dir, name)).toString(8), "600", name);
        }
      } finally {
        await cloud.close();
      }
    } finally {
      process.umask(saved);
    }
  });

  describe("serve with a port taken", function () {
    let t: TestCloud;
    before(async function () {
      t = await startTestCloud({ httpPort: 0, radiusPort: 0 });
    });
    after(async () => t?.stop());

    /** Runs `serve` on the test cloud's data; resolves with its exit code, stderr and the ms from the error line to the exit. */
    function serve(args: string[]): Promise<{ code: number | null; stderr: string; exitAfterErrorMs: number }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "cloud/cli.ts", "serve", ...args], {
          env: { ...process.env, WCM_DATA: t.dataDir, WCM_MASTER_KEY: Buffer.from(t.masterKey).toString("hex") },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stderr = "";
        let errorAt: number | undefined;
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`serve still running 15 s after start; stderr: ${stderr}`));
        }, 15_000);
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
          if (errorAt === undefined && stderr.includes("error ")) errorAt = performance.now();
        });
        child.on("exit", (code) => {
          clearTimeout(timer);
          resolve({ code, stderr, exitAfterErrorMs: performance.now() - (errorAt ?? performance.now()) });
        });
      });
    }

    const cases: [string, () => string[], string, () => number][] = [
      ["MQTT/TLS", () => ["--mqtt-port", String(t.cloud.mqttPort), "--http-port", "0"], "MQTT/TLS", () => t.cloud.mqttPort],
      ["RADIUS", () => ["--mqtt-port", "0", "--http-port", "0", "--radius-port", String(t.cloud.radiusPort)], "RADIUS", () => t.cloud.radiusPort!],
      ["admin HTTP", () => ["--mqtt-port", "0", "--http-port", String(t.cloud.httpPort)], "admin HTTP", () => t.cloud.httpPort!],
    ];
    for (const [name, args, listener, port] of cases) {
      it(`serve_${name.replace(/[^A-Za-z]/g, "")}PortTaken_ExitsNonZeroNamingListenerAndPort`, async function () {
        const result = await serve(args());
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stderr, new RegExp(`error LISTEN_FAILED: the ${listener} listener cannot bind 127\\.0\\.0\\.1:${port()}: the port is in use \\(EADDRINUSE\\)`));
        assert.ok(result.exitAfterErrorMs < 5000, `exited ${result.exitAfterErrorMs.toFixed(0)} ms after the error`);
      });
    }
  });
});
