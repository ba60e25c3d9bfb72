/*
 * Child process of test/cloud-tls-store.test.ts: opens the TLS resumption
 * store of a data folder, writes one session and one period's ticket keys,
 * says so, and waits to be SIGKILLed (nothing is closed cleanly).
 * IPC: {dataDir, keyHex, idHex, sessionHex, period, ticketKeysHex} -> "written".
 */
import { SqliteResumptionStore } from "../../cloud/tls-store-sqlite";

process.once("message", (m: { dataDir: string; keyHex: string; idHex: string; sessionHex: string; period: number; ticketKeysHex: string }) => {
  void (async () => {
    const store = SqliteResumptionStore.open(m.dataDir, Uint8Array.from(Buffer.from(m.keyHex, "hex")));
    await store.set(Buffer.from(m.idHex, "hex"), Buffer.from(m.sessionHex, "hex"), 3_600_000);
    await store.ticketKeys(m.period, () => Uint8Array.from(Buffer.from(m.ticketKeysHex, "hex")));
    process.send?.("written");
    setInterval(() => undefined, 1000);
  })();
});
