/*
 * TLS session resumption of the MQTT endpoint (cloud/tls-sessions.ts): TLS 1.2
 * by session id from a client that offers no SessionTicket extension (as
 * Moddable's), TLS 1.3 by ticket; certificate devices identified by the
 * certificate of the resumed session; a revoked device or certificate refused
 * on a resumed session; only accepted logins' sessions stored; the LRU bound
 * and the lifetime; the Node simulator's link resumes on reconnect.
 */
import { strict as assert } from "node:assert";
import { constants } from "node:crypto";
import mqtt from "mqtt";
import type { TLSSocket } from "node:tls";
import { MemorySessionStore, sessionIdentity } from "../cloud/tls-sessions";
import { createMqttLink, TlsSessionCache } from "../hosts/node/mqtt-link";
import { loginPassword, newSecret, sleep, startTestCloud, type TestCloud } from "./cloud-helpers";

type Version = "TLSv1.2" | "TLSv1.3";

interface Attempt {
  /** 0 = CONNACK accepted, else the refusal's return code */
  code: number | undefined;
  reused: boolean;
  session: Buffer | undefined;
}

describe("cloud TLS resumption (session ids for TLS 1.2, tickets for TLS 1.3)", function () {
  this.timeout(30_000);
  let t: TestCloud;
  let counter = 1;
  const secret = newSecret();
  let cert: { certificatePem: string; privateKeyPem: string; serial: string };

  before(async () => {
    t = await startTestCloud();
    await t.cloud.services.registerSecretDevice({ deviceId: "res-s1", secretHex: secret.hex });
    await t.cloud.services.registerSecretDevice({ deviceId: "res-s2", secretHex: secret.hex });
    await t.cloud.services.createProductCa({ name: "lamps" });
    for (const id of ["res-c12", "res-c13"]) await t.cloud.services.registerCertificateDevice({ deviceId: id, caName: "lamps" });
    cert = await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: "res-c12" });
  });

  after(async () => t?.stop());

  /** One MQTT connect; TLS 1.2 without the SessionTicket extension (as Moddable), TLS 1.3 as node offers it. */
  function attempt(id: string, version: Version, session: Buffer | undefined, credential: { password?: string; cert?: string; key?: string }): Promise<Attempt> {
    return new Promise((resolve) => {
      const client = mqtt.connect(`mqtts://127.0.0.1:${t.cloud.mqttPort}`, {
        clientId: id, username: id, password: credential.password, cert: credential.cert, key: credential.key,
        ca: t.cloud.serverCaPem, servername: t.cloud.serverName, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000,
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
        }, 50);
      };
      client.once("connect", () => settle(0));
      client.once("error", (error: Error & { code?: unknown }) => settle(typeof error.code === "number" ? error.code : undefined));
      client.once("close", () => settle(undefined));
    });
  }

  const password = (id: string) => ({ password: loginPassword(id, secret.bytes, "s", counter++) });

  for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
    it(`${version}: a reconnect resumes (client and server both see a reused session) and logs in`, async () => {
      const stats = t.cloud.mqtt.stats;
      const full = await attempt("res-s1", version, undefined, password("res-s1"));
      assert.equal(full.code, 0);
      assert.equal(full.reused, false);
      assert.ok(full.session, "no session to resume");
      const resumedBefore = stats.tlsResumed;
      const again = await attempt("res-s1", version, full.session, password("res-s1"));
      assert.equal(again.code, 0);
      assert.equal(again.reused, true, "not resumed");
      assert.equal(stats.tlsResumed, resumedBefore + 1);
    });
  }

  it("TLSv1.2: resumption is by session id through the store (no ticket), and only after an accepted login", async () => {
    const store = t.cloud.mqtt.sessionStore as MemorySessionStore;
    const before = { size: store.size, hits: store.stats.hits };
    const refused = await attempt("res-s2", "TLSv1.2", undefined, { password: loginPassword("res-s2", newSecret().bytes, "s", 1) });
    assert.equal(refused.code, 4);
    assert.equal(store.size, before.size, "a refused login's session was stored");
    const retry = await attempt("res-s2", "TLSv1.2", refused.session, password("res-s2"));
    assert.equal(retry.reused, false, "a refused login's session was resumed");
    assert.equal(retry.code, 0);
    assert.equal(store.size, before.size + 1);
    const resumed = await attempt("res-s2", "TLSv1.2", retry.session, password("res-s2"));
    assert.equal(resumed.reused, true);
    assert.equal(store.stats.hits, before.hits + 1);
    assert.equal(sessionIdentity(retry.session!)?.version, 0x0303);
  });

  for (const [version, id] of [["TLSv1.2", "res-c12"], ["TLSv1.3", "res-c13"]] as const) {
    it(`${version}: a certificate device is identified by the resumed session's certificate (even when the client sends none); a revoked certificate is refused on a resumed session`, async () => {
      const issued = id === "res-c12" ? cert : await t.cloud.services.issueDeviceCertificate({ caName: "lamps", deviceId: id });
      const credential = { cert: issued.certificatePem, key: issued.privateKeyPem };
      const full = await attempt(id, version, undefined, credential);
      assert.equal(full.code, 0);
      const resumed = await attempt(id, version, full.session, credential);
      assert.deepEqual([resumed.code, resumed.reused], [0, true]);
      // a resumed session whose client sends no certificate of its own is still the certificate device
      const bare = await attempt(id, version, resumed.session ?? full.session, {});
      assert.deepEqual([bare.code, bare.reused], [0, true]);
      const session = bare.session ?? resumed.session ?? full.session;
      await t.cloud.services.revokeCertificate({ caName: "lamps", serial: issued.serial });
      const revoked = await attempt(id, version, session, credential);
      assert.equal(revoked.reused, true, "the revoked certificate's session was not resumed: the test proves nothing");
      assert.equal(revoked.code, 5);
      assert.equal((await t.cloud.registry.device(id))!.last_failure, "CERT_REVOKED");
    });
  }

  it("a revoked secret device is refused on a resumed session (REVOKED); its TLS 1.2 session is dropped", async () => {
    await t.cloud.services.registerSecretDevice({ deviceId: "res-s3", secretHex: secret.hex });
    const full = await attempt("res-s3", "TLSv1.2", undefined, password("res-s3"));
    assert.equal(full.code, 0);
    await t.cloud.services.revokeDevice({ deviceId: "res-s3" });
    const revoked = await attempt("res-s3", "TLSv1.2", full.session, password("res-s3"));
    assert.deepEqual([revoked.code, revoked.reused], [5, true]);
    assert.equal((await t.cloud.registry.device("res-s3"))!.last_failure, "REVOKED");
    const next = await attempt("res-s3", "TLSv1.2", full.session, password("res-s3"));
    assert.equal(next.reused, false, "the refused session stayed in the store");
  });

  it("lifetime: a session older than lifetimeS is not resumed (TLS 1.2 and 1.3)", async () => {
    const short = await startTestCloud({ tlsSessions: { lifetimeS: 1 } });
    try {
      await short.cloud.services.registerSecretDevice({ deviceId: "res-l1", secretHex: secret.hex });
      const saved = t;
      t = short;
      try {
        for (const version of ["TLSv1.2", "TLSv1.3"] as const) {
          const full = await attempt("res-l1", version, undefined, password("res-l1"));
          assert.equal((await attempt("res-l1", version, full.session, password("res-l1"))).reused, true);
          await sleep(2100);
          const late = await attempt("res-l1", version, full.session, password("res-l1"));
          assert.deepEqual([late.code, late.reused], [0, false], version);
        }
      } finally {
        t = saved;
      }
    } finally {
      await short.stop();
    }
  });

  it("MemorySessionStore: bounded LRU (least recently used evicted), entries expire, oversized ignored", async () => {
    let now = 0;
    const store = new MemorySessionStore(2, () => now);
    const id = (n: number) => new Uint8Array(32).fill(n);
    await store.set(id(1), Buffer.from("a"), 1000);
    await store.set(id(2), Buffer.from("b"), 1000);
    assert.ok(await store.get(id(1))); // 1 is now the most recently used
    await store.set(id(3), Buffer.from("c"), 1000);
    assert.equal(store.size, 2);
    assert.equal(await store.get(id(2)), undefined);
    assert.ok(await store.get(id(1)));
    now = 1000;
    assert.equal(await store.get(id(3)), undefined);
    assert.equal(store.stats.expired, 1);
    await store.set(id(4), new Uint8Array(20_000), 1000);
    assert.equal(await store.get(id(4)), undefined);
    assert.equal(sessionIdentity(new Uint8Array([0x30, 0x03, 0x02, 0x01])), undefined);
  });

  it("the Node simulator's link keeps one session per device and resumes on reconnect", async () => {
    await t.cloud.services.registerSecretDevice({ deviceId: "res-sim", secretHex: secret.hex });
    const cache = new TlsSessionCache();
    const results: boolean[] = [];
    for (const maxTlsVersion of ["TLSv1.2", "TLSv1.2", "TLSv1.3", "TLSv1.3"] as const) {
      const link = createMqttLink({ sessionCache: cache, maxTlsVersion });
      await new Promise<void>((resolve, reject) => {
        link.connect({
          host: "127.0.0.1", port: t.cloud.mqttPort, clientId: "res-sim", username: "res-sim",
          password: loginPassword("res-sim", secret.bytes, "s", counter++), keepAliveSeconds: 60,
          tls: { ca: t.cloud.serverCaPem, serverName: t.cloud.serverName },
        }, {
          onReady: () => setTimeout(() => link.close(), 50),
          onMessage: () => undefined,
          onClose: (info) => (info.detail === "closed by device" ? resolve() : reject(new Error(info.detail))),
        });
      });
      results.push(link.lastTls!.resumed);
    }
    // the TLS 1.2 session cannot resume as TLS 1.3: the first 1.3 connect is full
    assert.deepEqual(results, [false, true, false, true]);
  });
});
