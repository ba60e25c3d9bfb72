/*
 * The TLS resumption store that survives a restart (cloud/tls-store-sqlite.ts,
 * issue 15 item 3): after a cloud restart on the same data folder a TLS 1.2
 * session id and a TLS 1.3 ticket still resume; the file is owner-only and
 * holds no session or ticket key in the clear; rows do not open under another
 * key; a SIGKILL loses nothing written; ticket keys rotate by period (a
 * ticket of the period before does not resume, one of the current period
 * does, across a restart); the session bound holds.
 */
import { strict as assert } from "node:assert";
import { fork } from "node:child_process";
import { constants, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import mqtt from "mqtt";
import { SqliteResumptionStore, resumptionKey } from "../cloud/tls-store-sqlite";
import { loginPassword, newSecret, startTestCloud, type TestCloud } from "./cloud-helpers";

type Version = "TLSv1.2" | "TLSv1.3";

interface Attempt {
  code: number | undefined;
  reused: boolean;
  session: Buffer | undefined;
}

/** One MQTT connect; TLS 1.2 without the SessionTicket extension (as Moddable), TLS 1.3 with tickets. */
function attempt(t: TestCloud, id: string, password: string, version: Version, session: Buffer | undefined): Promise<Attempt> {
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${t.cloud.mqttPort}`, {
      clientId: id, username: id, password, ca: t.cloud.serverCaPem, servername: t.cloud.serverName,
      protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 15_000,
      maxVersion: version, minVersion: version, ...(version === "TLSv1.2" ? { secureOptions: constants.SSL_OP_NO_TICKET } : {}),
      ...(session ? { session } : {}),
    } as mqtt.IClientOptions);
    const stream = client.stream as TLSSocket;
    let reused = false;
    let latest: Buffer | undefined;
    stream.once("secureConnect", () => (reused = stream.isSessionReused()));
    stream.on("session", (s: Buffer) => (latest = s));
    let settled = false;
    const settle = (code: number | undefined) => {
      if (settled) return;
      settled = true;
      // TLS 1.3 tickets may follow CONNACK by a moment
      setTimeout(() => {
        client.end(true);
        resolve({ code, reused, session: latest });
      }, 100);
    };
    client.once("connect", () => settle(0));
    client.once("error", (error: Error & { code?: unknown }) => settle(typeof error.code === "number" ? error.code : undefined));
    client.once("close", () => settle(undefined));
  });
}

function filesOf(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith("tls-sessions.sqlite")).map((f) => readFileSync(join(dir, f))));
}

describe("cloud TLS resumption store: survives a restart (issue 15)", function () {
  this.timeout(90_000);
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "wcm-tls-store-"));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
    it(`${version}: a session of the cloud before a restart resumes on the restarted cloud (same data folder), and logs in`, async () => {
      const dataDir = tempDir();
      const masterKey = new Uint8Array(randomBytes(32));
      const secret = newSecret();
      let counter = 1;
      const first = await startTestCloud({ dataDir, masterKey });
      let session: Buffer | undefined;
      try {
        await first.cloud.services.registerSecretDevice({ deviceId: "keep-1", secretHex: secret.hex });
        const full = await attempt(first, "keep-1", loginPassword("keep-1", secret.bytes, "s", counter++), version, undefined);
        assert.equal(full.code, 0);
        assert.equal(full.reused, false);
        session = full.session;
        assert.ok(session, "the client got a session");
      } finally {
        await first.cloud.close();
      }
      const second = await startTestCloud({ dataDir, masterKey });
      try {
        const again = await attempt(second, "keep-1", loginPassword("keep-1", secret.bytes, "s", counter++), version, session);
        assert.equal(again.code, 0, "logged in");
        assert.equal(again.reused, true, "resumed across the restart");
        assert.equal(second.cloud.mqtt.stats.tlsResumed, 1);
        assert.equal(second.cloud.mqtt.stats.tlsFull, 0);
      } finally {
        await second.stop();
      }
    });
  }

  it("the store file is owner-only and holds no session or ticket key in the clear; another key opens nothing", async () => {
    const dir = tempDir();
    const key = resumptionKey(new Uint8Array(randomBytes(32)));
    const store = SqliteResumptionStore.open(dir, key);
    const id = randomBytes(32);
    const session = Buffer.concat([Buffer.from("SESSION-MASTER-SECRET-"), randomBytes(64)]);
    const ticketKeys = randomBytes(48);
    await store.set(id, session, 60_000);
    assert.deepEqual(Buffer.from((await store.get(id))!), session);
    assert.deepEqual(Buffer.from(await store.ticketKeys(7, () => ticketKeys)), ticketKeys);
    assert.deepEqual(Buffer.from(await store.ticketKeys(7, () => randomBytes(48))), ticketKeys, "get-or-create: the stored keys");
    const bytes = filesOf(dir);
    assert.equal(bytes.indexOf(session.subarray(22, 54)), -1, "the session is sealed");
    assert.equal(bytes.indexOf(ticketKeys.subarray(0, 32)), -1, "the ticket keys are sealed");
    assert.equal(bytes.indexOf(id), -1, "session ids are stored as a MAC");
    if (process.platform !== "win32") assert.equal(statSync(join(dir, "tls-sessions.sqlite")).mode & 0o077, 0);
    store.close();
    const other = SqliteResumptionStore.open(dir, resumptionKey(new Uint8Array(randomBytes(32))));
    assert.equal(await other.get(id), undefined, "another key: a miss, not an error");
    const fresh = randomBytes(48);
    assert.deepEqual(Buffer.from(await other.ticketKeys(7, () => fresh)), fresh, "unreadable keys are replaced");
    other.close();
  });

  it("a SIGKILL after a write loses nothing: the session and the ticket keys are there on reopening", async () => {
    const dir = tempDir();
    const key = resumptionKey(new Uint8Array(randomBytes(32)));
    const id = randomBytes(16);
    const session = randomBytes(300);
    const ticketKeys = randomBytes(48);
    const child = fork(join(import.meta.dirname, "support", "tls-store-writer.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.once("message", () => resolve());
        child.once("exit", () => reject(new Error("writer exited early")));
        child.send({ dataDir: dir, keyHex: Buffer.from(key).toString("hex"), idHex: id.toString("hex"), sessionHex: session.toString("hex"), period: 3, ticketKeysHex: ticketKeys.toString("hex") });
      });
    } finally {
      child.kill("SIGKILL");
      await exited;
    }
    const store = SqliteResumptionStore.open(dir, key);
    assert.deepEqual(Buffer.from((await store.get(id))!), session);
    assert.deepEqual(Buffer.from(await store.ticketKeys(3, () => randomBytes(48))), ticketKeys);
    store.close();
  });

  it("ticket keys rotate by period: a TLS 1.3 ticket of the period before is not resumed, one of this period is, across a restart", async () => {
    const dataDir = tempDir();
    const masterKey = new Uint8Array(randomBytes(32));
    const secret = newSecret();
    let counter = 1;
    let clock = 10 * 3_600_000 + 1000;
    const tlsSessions = { wallClock: () => clock, ticketKeyRotationS: 3600 };
    const first = await startTestCloud({ dataDir, masterKey, tlsSessions });
    let current: Buffer | undefined;
    try {
      await first.cloud.services.registerSecretDevice({ deviceId: "rot-1", secretHex: secret.hex });
      const full = await attempt(first, "rot-1", loginPassword("rot-1", secret.bytes, "s", counter++), "TLSv1.3", undefined);
      assert.equal(full.code, 0);
      const same = await attempt(first, "rot-1", loginPassword("rot-1", secret.bytes, "s", counter++), "TLSv1.3", full.session);
      assert.equal(same.reused, true, "same period: resumed");
      assert.equal(await first.cloud.mqtt.rotateTicketKeys(), false, "same period: no rotation");
      clock += 3_600_000;
      assert.equal(await first.cloud.mqtt.rotateTicketKeys(), true, "a new period: rotated");
      const old = await attempt(first, "rot-1", loginPassword("rot-1", secret.bytes, "s", counter++), "TLSv1.3", same.session);
      assert.equal(old.code, 0);
      assert.equal(old.reused, false, "a ticket of the period before: a full handshake");
      current = old.session;
    } finally {
      await first.cloud.close();
    }
    const second = await startTestCloud({ dataDir, masterKey, tlsSessions });
    try {
      const resumed = await attempt(second, "rot-1", loginPassword("rot-1", secret.bytes, "s", counter++), "TLSv1.3", current);
      assert.equal(resumed.code, 0);
      assert.equal(resumed.reused, true, "this period's keys came back from the store");
    } finally {
      await second.stop();
    }
  });

  it("the session bound holds: beyond maxEntries the sessions closest to expiry go; expired ones are misses", async () => {
    const dir = tempDir();
    let now = 1_000_000;
    const store = SqliteResumptionStore.open(dir, resumptionKey(new Uint8Array(randomBytes(32))), { maxEntries: 10, now: () => now });
    const ids = Array.from({ length: 30 }, (_, i) => Buffer.from([i + 1]));
    for (const [i, id] of ids.entries()) await store.set(id, Buffer.from([i]), 10_000 + i);
    store.trim();
    assert.equal(store.size, 10);
    assert.equal(await store.get(ids[0]), undefined);
    assert.deepEqual(Buffer.from((await store.get(ids[29]))!), Buffer.from([29]));
    now += 20_000;
    assert.equal(await store.get(ids[29]), undefined, "expired");
    await store.set(Buffer.alloc(33), Buffer.from([1]), 1000);
    await store.set(Buffer.from([99]), Buffer.alloc(20_000), 1000);
    store.trim();
    assert.equal(store.size, 0, "expired trimmed; an oversized id or session is not stored");
    store.close();
  });
});
