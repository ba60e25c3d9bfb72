/*
 * Storage lifecycle (issue 9 item 3): `backup` of a running cloud while
 * devices log in over MQTT/TLS (the CLI in its own process, as an operator
 * runs it), `restore` and its refusals (checksum, integrity, another master
 * key, a running serve, an existing registry), and `rekey`: a child process
 * SIGKILLed at every step of the re-sealing (WCM_TEST_REKEY_KILL_AT, one run
 * per step) leaves a registry that opens under exactly one of the two keys
 * with every secret intact, and a second run finishes the work.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../cloud/cli";
import { EXIT } from "../cloud/cli-kit";
import { isCloudError } from "../cloud/errors";
import { Registry } from "../cloud/registry";
import { fileSha256 } from "../cloud/storage/lifecycle";
import { end, loginPassword, mustConnect, startTestCloud, type TestCloud } from "./cloud-helpers";

const ROOT = new URL("..", import.meta.url).pathname;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

/** Runs the CLI in a child process (node + tsx), as an operator would. */
function cliChild(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> } {
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cloud/cli.ts"), ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  child.stderr!.on("data", (d: Buffer) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, out, err })));
  return { child, done };
}

const hex = (key: Uint8Array) => Buffer.from(key).toString("hex");

async function opens(dir: string, key: Uint8Array): Promise<Registry | undefined> {
  try {
    return await Registry.open(dir, key);
  } catch (error) {
    if (isCloudError(error, "MASTER_KEY_WRONG")) return undefined;
    throw error;
  }
}

describe("storage lifecycle: backup, restore, rekey (issue 9 item 3)", function () {
  this.timeout(600_000);
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), "wcm-lifecycle-"));
    chmodSync(work, 0o700);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  describe("backup while devices log in", () => {
    let t: TestCloud;
    const secrets = new Map<string, Uint8Array>();
    const counters = new Map<string, number>();
    before(async () => {
      t = await startTestCloud();
      for (let i = 0; i < 12; i++) {
        const id = `bk-${i}`;
        const secret = new Uint8Array(randomBytes(32));
        secrets.set(id, secret);
        counters.set(id, 0);
        await t.cloud.services.registerSecretDevice({ deviceId: id, secretHex: hex(secret) });
      }
    });
    after(async () => t?.stop());

    it("backup_ServingCloud_DevicesLoggingIn_ConsistentCopyWithChecksum_RestoreOpensEverySecret", async () => {
      const env = { WCM_MASTER_KEY: hex(t.masterKey), WCM_DATA: t.dataDir };
      const target = join(work, "during.sqlite");
      const failures: string[] = [];
      let running = true;
      let backupStarted = 0;
      let backupEnded = Infinity;
      let during = 0;
      // four devices at a time log in, hold the session an instant, and log out, until the backup is done
      const loop = async (lane: number) => {
        for (let round = 0; running; round++) {
          const id = `bk-${(lane + round * 4) % 12}`;
          const counter = counters.get(id)! + 1;
          counters.set(id, counter);
          try {
            const client = await mustConnect(t.cloud, { id, password: loginPassword(id, secrets.get(id)!, "s", counter) });
            const at = Date.now();
            if (at > backupStarted && at < backupEnded && backupStarted > 0) during++;
            await end(client);
          } catch (error) {
            failures.push(`${id}: ${(error as Error).message}`);
          }
        }
      };
      const lanes = [0, 1, 2, 3].map(loop);
      while (counters.get("bk-3")! < 1) await new Promise((r) => setTimeout(r, 20));
      backupStarted = Date.now();
      const { done } = cliChild(["backup", target], env);
      const result = await done;
      backupEnded = Date.now();
      // the backup's own process is done; let one more round of logins end, then stop
      running = false;
      await Promise.all(lanes);
      assert.equal(result.code, EXIT.OK, result.err);
      assert.deepEqual(failures, [], "every login during the backup succeeded");
      assert.ok(during > 0, "logins completed while the backup process ran");
      const report = JSON.parse(result.out) as { sha256: string; devices: number; schemaVersion: number; checksumFile: string };
      assert.equal(report.devices, 12);
      // the checksum file is sha256sum's format and matches the copy
      assert.equal(readFileSync(`${target}.sha256`, "utf8"), `${report.sha256}  during.sqlite\n`);
      assert.equal(fileSha256(target), report.sha256);
      // restored elsewhere it opens under the key, with every device and secret, counters no later than the live ones
      const restored = join(work, "restored");
      const c = capture();
      assert.equal(await runCli(["restore", target, "--data", restored], env, c.io), EXIT.OK, c.err.join("\n"));
      const registry = await Registry.open(restored, t.masterKey);
      try {
        for (const [id, secret] of secrets) {
          const row = (await registry.device(id))!;
          assert.deepEqual(registry.activeSecret(row), secret, id);
          const live = (await t.cloud.registry.device(id))!;
          assert.ok(row.last_counter <= live.last_counter, `${id} counter`);
        }
        assert.equal((await registry.auditLog(1, undefined, { action: "registry.restore" })).length, 1);
      } finally {
        await registry.close();
      }
    });
  });

  describe("restore refusals", () => {
    let source: string;
    let key: Uint8Array;
    let backup: string;
    before(async () => {
      source = join(work, "src");
      key = new Uint8Array(randomBytes(32));
      const env = { WCM_MASTER_KEY: hex(key), WCM_DATA: source };
      const c = capture();
      assert.equal(await runCli(["init"], env, c.io), EXIT.OK, c.err.join("\n"));
      writeFileSync(join(work, "s.hex"), randomBytes(32).toString("hex"));
      assert.equal(await runCli(["device", "add-secret", "r-1", "--secret-file", join(work, "s.hex")], env, c.io), EXIT.OK, c.err.join("\n"));
      backup = join(work, "r.sqlite");
      assert.equal(await runCli(["backup", backup], env, c.io), EXIT.OK, c.err.join("\n"));
      assert.equal(await runCli(["backup", backup], env, capture().io), EXIT.REFUSED, "a backup never overwrites");
    });

    it("restore_TamperedBackup_BackupInvalid_NothingRestored", async () => {
      const tampered = join(work, "tampered.sqlite");
      const bytes = readFileSync(backup);
      bytes[bytes.length - 100] ^= 0x01;
      writeFileSync(tampered, bytes);
      cpSync(`${backup}.sha256`, `${tampered}.sha256`);
      const target = join(work, "t1");
      const c = capture();
      assert.equal(await runCli(["restore", tampered, "--data", target, "--json"], { WCM_MASTER_KEY: hex(key) }, c.io), EXIT.REFUSED);
      assert.equal(JSON.parse(c.out[0]).error.code, "BACKUP_INVALID");
      assert.ok(!existsSync(join(target, "registry.sqlite")));
      assert.deepEqual(existsSync(target) ? readdirSync(target) : [], []);
    });

    it("restore_AnotherMasterKey_MasterKeyWrong_NothingRestored", async () => {
      const target = join(work, "t2");
      const c = capture();
      assert.equal(await runCli(["restore", backup, "--data", target], { WCM_MASTER_KEY: randomBytes(32).toString("hex") }, c.io), EXIT.REFUSED);
      assert.match(c.err.join("\n"), /^error MASTER_KEY_WRONG: the backup is sealed under another master key \(fingerprint [0-9a-f]{16}\) than this one/);
      assert.deepEqual(existsSync(target) ? readdirSync(target) : [], []);
    });

    it("restore_MissingChecksumFile_FileUnreadable_Exit2", async () => {
      const lone = join(work, "lone.sqlite");
      cpSync(backup, lone);
      const c = capture();
      assert.equal(await runCli(["restore", lone, "--data", join(work, "t3")], { WCM_MASTER_KEY: hex(key) }, c.io), EXIT.USAGE);
      assert.match(c.err.join("\n"), /FILE_UNREADABLE: cannot read the checksum file .*lone\.sqlite\.sha256/);
    });

    it("restore_OverARegistry_NeedsReplace_KeepsTheOldOneAside", async () => {
      const target = join(work, "t4");
      const env = { WCM_MASTER_KEY: hex(key) };
      assert.equal(await runCli(["restore", backup, "--data", target], env, capture().io), EXIT.OK);
      const c = capture();
      assert.equal(await runCli(["restore", backup, "--data", target], env, c.io), EXIT.REFUSED);
      assert.match(c.err.join("\n"), /give --replace/);
      assert.equal(await runCli(["restore", backup, "--data", target, "--replace"], env, capture().io), EXIT.OK);
      assert.equal(readdirSync(target).filter((f) => f.startsWith("registry.sqlite.replaced-")).length, 1);
    });

    it("restoreAndRekey_ServeRunning_RegistryInUse", async () => {
      const target = join(work, "t5");
      const env = { WCM_MASTER_KEY: hex(key) };
      assert.equal(await runCli(["restore", backup, "--data", target], env, capture().io), EXIT.OK);
      // a live process named in serve.pid (a stand-in: serve writes its own pid there at start)
      const sleeper = spawn("sleep", ["30"]);
      try {
        writeFileSync(join(target, "serve.pid"), `${sleeper.pid}\n`);
        const c = capture();
        assert.equal(await runCli(["restore", backup, "--data", target, "--replace"], env, c.io), EXIT.REFUSED);
        assert.match(c.err.join("\n"), /REGISTRY_IN_USE: serve \(pid \d+/);
        writeFileSync(join(work, "k2.hex"), randomBytes(32).toString("hex"), { mode: 0o600 });
        const r = capture();
        assert.equal(await runCli(["rekey", "--data", target, "--new-master-key-file", join(work, "k2.hex")], env, r.io), EXIT.REFUSED);
        assert.match(r.err.join("\n"), /REGISTRY_IN_USE/);
      } finally {
        sleeper.kill("SIGKILL");
      }
    });
  });

  describe("rekey", () => {
    let base: string;
    const oldKey = new Uint8Array(randomBytes(32));
    const newKey = new Uint8Array(randomBytes(32));
    let newKeyFile: string;
    const expected = new Map<string, Buffer>();

    /** Every secret of the registry under `key`, opened. */
    async function secretsOf(registry: Registry): Promise<Map<string, Buffer>> {
      const got = new Map<string, Buffer>();
      for (const id of ["k-1", "k-2"]) {
        const row = (await registry.device(id))!;
        got.set(`device:${id}`, Buffer.from(registry.activeSecret(row)!));
        if (row.pending_secret_enc) got.set(`pending:${id}`, Buffer.from(registry.pendingSecret(row)!));
      }
      got.set("lot:lot-k", Buffer.from(registry.lotKey((await registry.lot("lot-k"))!)));
      got.set("nas:ap-k", Buffer.from(registry.nasSecret((await registry.nasClient("ap-k"))!)));
      got.set("server_tls:server", Buffer.from((await registry.serverTls("server"))!.keyDer));
      got.set("ca:ca-k", Buffer.from(registry.caKey((await registry.ca("ca-k"))!)!));
      return got;
    }

    before(async () => {
      base = join(work, "rekey-base");
      const registry = await Registry.open(base, oldKey);
      try {
        for (const id of ["k-1", "k-2"]) await registry.insertSecretDevice(id, new Uint8Array(randomBytes(32)), "test");
        assert.equal(await registry.storePending("k-2", new Uint8Array(randomBytes(32)), 1, new Uint8Array(16), "test"), true);
        await registry.insertLot("lot-k", new Uint8Array(randomBytes(32)), undefined, "test");
        await registry.insertNasClient("ap-k", "10.0.0.9", new Uint8Array(randomBytes(16)), "test");
        await registry.storeServerTls("server", "pem", new Uint8Array(randomBytes(64)));
        await registry.insertCa("ca-k", "pem", "aa".repeat(32), new Uint8Array(randomBytes(64)), "test");
        for (const [name, value] of await secretsOf(registry)) expected.set(name, value);
      } finally {
        await registry.close();
      }
      newKeyFile = join(work, "new.key");
      writeFileSync(newKeyFile, `${hex(newKey)}\n`, { mode: 0o600 });
    });

    it("rekey_SigkillAtEveryStep_OpensUnderExactlyOneKey_EverySecretIntact_RerunFinishes", async () => {
      // 7 sealed values (2 secrets, 1 pending, lot, NAS, server TLS, CA), then "commit" (inside the
      // transaction) and "committed": steps 1..8 die before the commit, step 9 after it
      const steps = expected.size + 2;
      for (let step = 1; step <= steps + 1; step++) {
        const dir = join(work, `rekey-${step}`);
        cpSync(base, dir, { recursive: true });
        const env = { WCM_MASTER_KEY: hex(oldKey), WCM_DATA: dir, WCM_TEST_REKEY_KILL_AT: String(step) };
        const { done } = cliChild(["rekey", "--new-master-key-file", newKeyFile], env);
        const result = await done;
        if (step <= steps) assert.equal(result.signal, "SIGKILL", `step ${step}: ${result.err}`);
        else assert.equal(result.code, EXIT.OK, `past the last step the rekey completes: ${result.err}`);
        const underOld = await opens(dir, oldKey);
        const underNew = await opens(dir, newKey);
        try {
          assert.ok((underOld === undefined) !== (underNew === undefined), `step ${step}: opens under exactly one key`);
          assert.equal(underNew !== undefined, step >= steps, `step ${step}: under the new key only once committed`);
          assert.deepEqual(await secretsOf((underOld ?? underNew)!), expected, `step ${step}: every secret intact`);
        } finally {
          await underOld?.close();
          await underNew?.close();
        }
        // the operator runs it again: it finishes (or finds it done), and every secret opens under the new key
        const c = capture();
        assert.equal(await runCli(["rekey", "--new-master-key-file", newKeyFile, "--data", dir], { WCM_MASTER_KEY: hex(oldKey) }, c.io), EXIT.OK, c.err.join("\n"));
        assert.equal(JSON.parse(c.out[0]).alreadyDone, step >= steps);
        assert.equal(await opens(dir, oldKey), undefined);
        const after = (await opens(dir, newKey))!;
        try {
          assert.deepEqual(await secretsOf(after), expected);
          assert.equal((await after.auditLog(5, undefined, { action: "registry.rekey" })).length, 1);
        } finally {
          await after.close();
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("open_AfterRekey_WithTheOldKey_NamesBothFingerprints", async () => {
      const dir = join(work, "rekey-msg");
      cpSync(base, dir, { recursive: true });
      assert.equal(await runCli(["rekey", "--new-master-key-file", newKeyFile, "--data", dir], { WCM_MASTER_KEY: hex(oldKey) }, capture().io), EXIT.OK);
      const c = capture();
      assert.equal(await runCli(["device", "list", "--data", dir], { WCM_MASTER_KEY: hex(oldKey) }, c.io), EXIT.REFUSED);
      assert.match(c.err.join("\n"), /MASTER_KEY_WRONG: the registry is sealed under another master key \(fingerprint [0-9a-f]{16}\) than this one \(fingerprint [0-9a-f]{16}\)/);
      // the same key twice is refused
      writeFileSync(join(work, "old.key"), hex(oldKey), { mode: 0o600 });
      const same = capture();
      assert.equal(await runCli(["rekey", "--new-master-key-file", newKeyFile, "--data", dir], { WCM_MASTER_KEY: hex(newKey) }, same.io), EXIT.REFUSED);
      assert.match(same.err.join("\n"), /the new master key is the key in use/);
    });
  });
});
