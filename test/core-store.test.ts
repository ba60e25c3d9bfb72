/*
 * The device's durable state: RecordStore (two slots, generation, checksum) and
 * CredentialStore (issued secret, login counter), over Moddable-like flash with
 * erase-then-write semantics and a power cut at every write.
 */
import assert from "node:assert/strict";
import { fromHex, utf8Decode, utf8Encode } from "../modules/bytes";
import { COUNTER_BLOCK, CredentialStore, type StoredSecret } from "../modules/credential-store";
import { isWcmError } from "../modules/errors";
import { nobleDigest } from "../modules/noble-digest";
import type { KeyValuePort } from "../modules/ports";
import { MAX_LOGIN_COUNTER } from "../modules/protocol";
import { MAX_RECORD_PAYLOAD, RecordStore } from "../modules/record-store";
import { PowerCut, SimulatedFlash, type CutMode } from "../hosts/node/file-preferences";

const digest = nobleDigest;
const text = (value: string) => utf8Encode(value);
const read = (store: RecordStore) => {
  const record = store.read();
  return record && { payload: utf8Decode(record.payload), generation: record.generation };
};

/** A key-value port whose writes can be made to throw. */
class FailingKv implements KeyValuePort {
  readonly map = new Map<string, Uint8Array>();
  failWrites = false;
  get(key: string) { return this.map.get(key); }
  set(key: string, value: Uint8Array) {
    if (this.failWrites) throw new Error("flash busy");
    this.map.set(key, value.slice());
  }
  delete(key: string) {
    if (this.failWrites) throw new Error("flash busy");
    this.map.delete(key);
  }
}

describe("RecordStore", () => {
  it("Read_EmptyStore_Undefined", () => {
    assert.equal(new RecordStore(new SimulatedFlash(), digest, "rec").read(), undefined);
  });

  it("Write_ThenRead_SameStoreAndNewInstance", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    assert.deepEqual(store.write(text("one")), { payload: text("one"), generation: 1 });
    assert.deepEqual(read(store), { payload: "one", generation: 1 });
    assert.deepEqual(read(new RecordStore(flash, digest, "rec")), { payload: "one", generation: 1 });
  });

  it("Write_AlternatesSlots_NewestValidWins", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    store.write(text("a"));
    assert.deepEqual(flash.keys().sort(), ["rec.0"]);
    store.write(text("b"));
    assert.deepEqual(flash.keys().sort(), ["rec.0", "rec.1"]);
    store.write(text("c"));
    assert.deepEqual(read(store), { payload: "c", generation: 3 });
    // slot 0 holds c (gen 3), slot 1 holds b (gen 2)
    assert.equal(utf8Decode((flash.get("rec.0") as Uint8Array).subarray(9, 10)), "c");
    assert.equal(utf8Decode((flash.get("rec.1") as Uint8Array).subarray(9, 10)), "b");
  });

  it("Write_NeverTouchesNewestSlot", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    for (let i = 0; i < 10; i++) {
      const before = store.read();
      const keysBefore = new Map(flash.keys().map((key) => [key, flash.get(key) as Uint8Array]));
      store.write(text(`v${i}`));
      if (before) {
        // exactly one slot changed and the newest one before the write is still intact
        const unchanged = [...keysBefore].filter(([key, value]) => {
          const now = flash.get(key);
          return now !== undefined && Buffer.compare(now, value) === 0;
        });
        assert.equal(unchanged.length, 1);
      }
    }
  });

  it("Slot_Layout", () => {
    const flash = new SimulatedFlash();
    new RecordStore(flash, digest, "ctr").write(text('{"id":"lamp-0001","n":33}'));
    assert.equal(
      Buffer.from(flash.get("ctr.0") as Uint8Array).toString("hex"),
      "5752010000000100197b226964223a226c616d702d30303031222c226e223a33337d6a35365ca64bc4f9",
    );
  });

  describe("damaged newest slot falls back to the previous record", () => {
    const damages: [string, (value: Uint8Array) => Uint8Array | undefined][] = [
      ["Erased", () => undefined],
      ["Torn_Half", (value) => value.slice(0, Math.floor(value.length / 2))],
      ["Torn_MissingLastByte", (value) => value.slice(0, value.length - 1)],
      ["Torn_HeaderOnly", (value) => value.slice(0, 9)],
      ["Empty", () => new Uint8Array(0)],
      ["ExtraByte", (value) => Uint8Array.of(...value, 0)],
      ["FlippedPayloadBit", (value) => { const out = value.slice(); out[10] ^= 0x01; return out; }],
      ["FlippedChecksumBit", (value) => { const out = value.slice(); out[out.length - 1] ^= 0x80; return out; }],
      ["FlippedGenerationBit", (value) => { const out = value.slice(); out[6] ^= 0x04; return out; }],
      ["FlippedLengthBit", (value) => { const out = value.slice(); out[8] ^= 0x01; return out; }],
      ["BadMagic", (value) => { const out = value.slice(); out[0] = 0x58; return out; }],
      ["BadFormat", (value) => { const out = value.slice(); out[2] = 2; return out; }],
      ["AllFF", (value) => new Uint8Array(value.length).fill(0xff)],
    ];
    for (const [name, damage] of damages) {
      it(name, () => {
        const flash = new SimulatedFlash();
        const store = new RecordStore(flash, digest, "rec");
        store.write(text("old"));
        store.write(text("new")); // slot 1, generation 2
        const damaged = damage(flash.get("rec.1") as Uint8Array);
        if (damaged === undefined) flash.delete("rec.1");
        else flash.set("rec.1", damaged);
        assert.deepEqual(read(store), { payload: "old", generation: 1 });
        // the next write goes into the damaged slot, keeping the good one
        store.write(text("next"));
        assert.deepEqual(read(store), { payload: "next", generation: 2 });
        assert.equal(utf8Decode((flash.get("rec.0") as Uint8Array).subarray(9, 12)), "old");
      });
    }
  });

  it("GenerationZero_Invalid", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    store.write(text("x"));
    // rebuild the same slot with generation 0 and a correct checksum
    const value = (flash.get("rec.0") as Uint8Array).slice();
    value.fill(0, 3, 7);
    const body = value.subarray(0, value.length - 8);
    value.set(digest.sha256(body).subarray(0, 8), value.length - 8);
    flash.set("rec.0", value);
    assert.equal(store.read(), undefined);
  });

  it("BothSlotsDamaged_Undefined", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    store.write(text("a"));
    store.write(text("b"));
    flash.set("rec.0", Uint8Array.of(1, 2, 3));
    flash.set("rec.1", new Uint8Array(40));
    assert.equal(store.read(), undefined);
    store.write(text("fresh"));
    assert.deepEqual(read(store), { payload: "fresh", generation: 1 });
  });

  it("RecordsWithDifferentNames_Independent", () => {
    const flash = new SimulatedFlash();
    new RecordStore(flash, digest, "a").write(text("A"));
    new RecordStore(flash, digest, "b").write(text("B"));
    assert.deepEqual(read(new RecordStore(flash, digest, "a")), { payload: "A", generation: 1 });
    assert.deepEqual(read(new RecordStore(flash, digest, "b")), { payload: "B", generation: 1 });
  });

  it("Clear_RemovesBothSlots", () => {
    const flash = new SimulatedFlash();
    const store = new RecordStore(flash, digest, "rec");
    store.write(text("a"));
    store.write(text("b"));
    store.clear();
    assert.deepEqual(flash.keys(), []);
    assert.equal(store.read(), undefined);
  });

  describe("limits", () => {
    it("STORE_LIMIT_PayloadOneOverMax", () => {
      const flash = new SimulatedFlash();
      const store = new RecordStore(flash, digest, "rec");
      assert.equal(MAX_RECORD_PAYLOAD, 3983);
      store.write(new Uint8Array(MAX_RECORD_PAYLOAD).fill(0x41));
      assert.equal(store.read()?.payload.length, MAX_RECORD_PAYLOAD);
      assert.equal((flash.get("rec.0") as Uint8Array).length, 4000);
      assert.throws(() => store.write(new Uint8Array(MAX_RECORD_PAYLOAD + 1)), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
      assert.equal(store.read()?.payload.length, MAX_RECORD_PAYLOAD, "the failed write changed nothing");
      assert.deepEqual(flash.keys(), ["rec.0"]);
    });

    for (const name of ["", "a".repeat(14), "Cred", "a.b", "a-b", "crédit"]) {
      it(`STORE_LIMIT_BadName_${JSON.stringify(name)}`, () => {
        assert.throws(() => new RecordStore(new SimulatedFlash(), digest, name), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
      });
    }

    it("LongestName_13Chars_KeysFitPreference", () => {
      const flash = new SimulatedFlash();
      const store = new RecordStore(flash, digest, "a".repeat(13));
      store.write(text("x"));
      store.write(text("y"));
      assert.ok(flash.keys().every((key) => key.length === 15));
    });

    it("SimulatedFlash_EnforcesPreferenceLimits", () => {
      const flash = new SimulatedFlash();
      assert.throws(() => flash.set("k".repeat(16), Uint8Array.of(1)), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
      assert.throws(() => flash.set("k", new Uint8Array(4001)), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
    });
  });

  it("STORE_FAILED_WhenPortThrows_PreviousKept", () => {
    const kv = new FailingKv();
    const store = new RecordStore(kv, digest, "rec");
    store.write(text("good"));
    kv.failWrites = true;
    assert.throws(() => store.write(text("bad")), (error: unknown) => isWcmError(error, "STORE_FAILED") && !error.message.includes("bad\""));
    assert.throws(() => store.clear(), (error: unknown) => isWcmError(error, "STORE_FAILED"));
    assert.deepEqual(read(store), { payload: "good", generation: 1 });
  });

  for (const mode of ["erased", "torn"] as CutMode[]) {
    it(`PowerCut_${mode}_AtEveryWrite_PreviousRecordSurvives`, () => {
      for (let writes = 1; writes <= 6; writes++) {
        const flash = new SimulatedFlash();
        const store = new RecordStore(flash, digest, "rec");
        for (let i = 1; i < writes; i++) store.write(text(`v${i}`));
        flash.cutPowerAtWrite(1, mode);
        assert.throws(() => store.write(text(`v${writes}`)), (error: unknown) => isWcmError(error, "STORE_FAILED"));
        flash.restorePower();
        const after = read(new RecordStore(flash, digest, "rec"));
        if (writes === 1) assert.equal(after, undefined);
        else assert.deepEqual(after, { payload: `v${writes - 1}`, generation: writes - 1 });
      }
    });
  }
});

// ---------------------------------------------------------------- CredentialStore

const SECRET_A = fromHex("202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
const SECRET_B = fromHex("404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f");
const stored = (secret: Uint8Array, generation: number, confirmed: boolean): StoredSecret => ({ deviceId: "lamp-0001", secret, generation, confirmed });

describe("CredentialStore.loadSecret/saveSecret", () => {
  it("NothingStored_Undefined", () => {
    assert.equal(new CredentialStore(new SimulatedFlash(), digest, "lamp-0001").loadSecret(), undefined);
  });

  it("SaveThenLoad_AcrossRestart", () => {
    const flash = new SimulatedFlash();
    new CredentialStore(flash, digest, "lamp-0001").saveSecret(stored(SECRET_A, 1, false));
    assert.deepEqual(new CredentialStore(flash, digest, "lamp-0001").loadSecret(), stored(SECRET_A, 1, false));
    new CredentialStore(flash, digest, "lamp-0001").saveSecret(stored(SECRET_A, 1, true));
    assert.deepEqual(new CredentialStore(flash, digest, "lamp-0001").loadSecret(), stored(SECRET_A, 1, true));
  });

  it("StoredForAnotherDevice_Ignored", () => {
    const flash = new SimulatedFlash();
    new CredentialStore(flash, digest, "lamp-0001").saveSecret(stored(SECRET_A, 1, true));
    assert.equal(new CredentialStore(flash, digest, "lamp-0002").loadSecret(), undefined);
  });

  it("SaveForAnotherDevice_STATE_INVALID", () => {
    const store = new CredentialStore(new SimulatedFlash(), digest, "lamp-0002");
    assert.throws(() => store.saveSecret(stored(SECRET_A, 1, false)), (error: unknown) => isWcmError(error, "STATE_INVALID"));
  });

  const badPayloads: [string, string][] = [
    ["NotJson", "{"],
    ["SecretNotBase64", '{"id":"lamp-0001","s":"***","g":1,"c":true}'],
    ["SecretTooShort", '{"id":"lamp-0001","s":"AAAA","g":1,"c":true}'],
    ["GenerationZero", '{"id":"lamp-0001","s":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","g":0,"c":true}'],
    ["GenerationFraction", '{"id":"lamp-0001","s":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","g":1.5,"c":true}'],
    ["GenerationMissing", '{"id":"lamp-0001","s":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","c":true}'],
    ["NullPayload", "null"],
  ];
  for (const [name, payload] of badPayloads) {
    it(`MalformedRecord_Undefined_${name}`, () => {
      const flash = new SimulatedFlash();
      new RecordStore(flash, digest, "cred").write(text(payload));
      assert.equal(new CredentialStore(flash, digest, "lamp-0001").loadSecret(), undefined);
    });
  }

  it("ConfirmedOnlyWhenTrue", () => {
    const flash = new SimulatedFlash();
    new RecordStore(flash, digest, "cred").write(text('{"id":"lamp-0001","s":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","g":2,"c":"yes"}'));
    assert.deepEqual(new CredentialStore(flash, digest, "lamp-0001").loadSecret(), stored(SECRET_A, 2, false));
  });

  for (const mode of ["erased", "torn"] as CutMode[]) {
    it(`PowerCut_${mode}_DuringSave_OldOrNewNeverLost`, () => {
      const flash = new SimulatedFlash();
      new CredentialStore(flash, digest, "lamp-0001").saveSecret(stored(SECRET_A, 1, false));
      flash.cutPowerAtWrite(1, mode);
      assert.throws(() => new CredentialStore(flash, digest, "lamp-0001").saveSecret(stored(SECRET_B, 2, false)), (error: unknown) => isWcmError(error, "STORE_FAILED"));
      flash.restorePower();
      assert.deepEqual(new CredentialStore(flash, digest, "lamp-0001").loadSecret(), stored(SECRET_A, 1, false));
    });
  }
});

describe("CredentialStore.nextLoginCounter", () => {
  it("FreshDevice_StartsAt1_StrictlyIncreasing", () => {
    const store = new CredentialStore(new SimulatedFlash(), digest, "lamp-0001");
    const counters = Array.from({ length: 100 }, () => store.nextLoginCounter());
    assert.deepEqual(counters, Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it("OneFlashWritePerBlock", () => {
    const flash = new SimulatedFlash();
    const store = new CredentialStore(flash, digest, "lamp-0001");
    store.nextLoginCounter();
    assert.equal(flash.writes, 1);
    for (let i = 1; i < COUNTER_BLOCK; i++) store.nextLoginCounter();
    assert.equal(flash.writes, 1, "the first block costs one write");
    store.nextLoginCounter();
    assert.equal(flash.writes, 2);
  });

  it("ReservationPersistedBeforeUse", () => {
    const flash = new SimulatedFlash();
    const counter = new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter();
    const record = new RecordStore(flash, digest, "ctr").read();
    assert.ok(record);
    const value = JSON.parse(utf8Decode(record.payload)) as { id: string; n: number };
    assert.equal(value.id, "lamp-0001");
    assert.ok(value.n > counter);
    assert.equal(value.n, counter + COUNTER_BLOCK);
  });

  it("StrictlyIncreasing_AcrossRestarts", () => {
    const flash = new SimulatedFlash();
    const seen: number[] = [];
    for (let boot = 0; boot < 20; boot++) {
      const store = new CredentialStore(flash, digest, "lamp-0001");
      for (let i = 0; i < boot % 5; i++) seen.push(store.nextLoginCounter());
      seen.push(store.nextLoginCounter());
    }
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `counter ${seen[i]} after ${seen[i - 1]}`);
    assert.equal(seen[0], 1);
  });

  it("Restart_SkipsToEndOfReservedBlock", () => {
    const flash = new SimulatedFlash();
    const first = new CredentialStore(flash, digest, "lamp-0001");
    for (let i = 0; i < 5; i++) first.nextLoginCounter();
    assert.equal(new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter(), 1 + COUNTER_BLOCK);
  });

  it("ReservationOfAnotherDevice_StartsAt1", () => {
    const flash = new SimulatedFlash();
    const other = new CredentialStore(flash, digest, "lamp-0002");
    for (let i = 0; i < 40; i++) other.nextLoginCounter();
    assert.equal(new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter(), 1);
  });

  it("MalformedReservation_StartsAt1", () => {
    for (const payload of ["{", '{"id":"lamp-0001","n":0}', '{"id":"lamp-0001","n":"7"}', '{"id":"lamp-0001","n":1.5}', `{"id":"lamp-0001","n":${MAX_LOGIN_COUNTER + 1}}`]) {
      const flash = new SimulatedFlash();
      new RecordStore(flash, digest, "ctr").write(text(payload));
      assert.equal(new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter(), 1, payload);
    }
  });

  it("STORE_FAILED_WhenReservationCannotBeWritten_CounterNotUsed", () => {
    const kv = new FailingKv();
    const store = new CredentialStore(kv, digest, "lamp-0001");
    kv.failWrites = true;
    assert.throws(() => store.nextLoginCounter(), (error: unknown) => isWcmError(error, "STORE_FAILED"));
    assert.throws(() => store.nextLoginCounter(), (error: unknown) => isWcmError(error, "STORE_FAILED"));
    kv.failWrites = false;
    assert.equal(store.nextLoginCounter(), 1, "the counter that could not be reserved is used only after its reservation");
    assert.equal(new CredentialStore(kv, digest, "lamp-0001").nextLoginCounter(), 1 + COUNTER_BLOCK);
  });

  it("STORE_LIMIT_AtMaxCounter", () => {
    const flash = new SimulatedFlash();
    new RecordStore(flash, digest, "ctr").write(text(`{"id":"lamp-0001","n":${MAX_LOGIN_COUNTER - 1}}`));
    const store = new CredentialStore(flash, digest, "lamp-0001");
    assert.equal(store.nextLoginCounter(), MAX_LOGIN_COUNTER - 1);
    assert.throws(() => store.nextLoginCounter(), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
    assert.throws(() => new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter(), (error: unknown) => isWcmError(error, "STORE_LIMIT"));
  });

  /**
   * One device life: boots (new CredentialStore), logins, an issued secret saved
   * twice. Returns every counter handed out. A power cut (STORE_FAILED from the
   * cut write) ends the boot; the next boot starts with a fresh CredentialStore.
   */
  function life(flash: SimulatedFlash, log: { counters: number[]; cuts: number; secretSaved: boolean }): void {
    const plan = [3, 40, 1, 33, 0, 70, 2];
    for (let boot = 0; boot < plan.length; boot++) {
      const store = new CredentialStore(flash, digest, "lamp-0001");
      try {
        for (let i = 0; i < plan[boot]; i++) log.counters.push(store.nextLoginCounter());
        if (boot === 1) {
          store.saveSecret(stored(SECRET_A, 1, false));
          log.secretSaved = true;
          store.saveSecret(stored(SECRET_A, 1, true));
        }
        log.counters.push(store.nextLoginCounter());
      } catch (error) {
        assert.ok(isWcmError(error, "STORE_FAILED"), `unexpected ${String(error)}`);
        log.cuts++;
        flash.restorePower(); // the reboot
      }
      // once saved, the secret survives every later cut
      if (log.secretSaved) assert.deepEqual(new CredentialStore(flash, digest, "lamp-0001").loadSecret()?.secret, SECRET_A);
    }
  }

  for (const mode of ["erased", "torn"] as CutMode[]) {
    it(`StrictlyIncreasing_PowerCutAtEveryWrite_${mode}`, () => {
      const reference = new SimulatedFlash();
      const uncut = { counters: [] as number[], cuts: 0, secretSaved: false };
      life(reference, uncut);
      const totalWrites = reference.writes;
      assert.ok(totalWrites >= 8, `only ${totalWrites} writes in a life`);
      assert.equal(uncut.cuts, 0);
      for (let cut = 1; cut <= totalWrites; cut++) {
        const flash = new SimulatedFlash();
        flash.cutPowerAtWrite(cut, mode);
        const log = { counters: [] as number[], cuts: 0, secretSaved: false };
        life(flash, log);
        assert.equal(log.cuts, 1, `cut ${cut}: exactly one power cut`);
        const { counters } = log;
        assert.ok(counters.length > 50, `cut ${cut}: only ${counters.length} logins`);
        for (let i = 1; i < counters.length; i++) {
          assert.ok(counters[i] > counters[i - 1], `cut ${cut} (${mode}): counter ${counters[i]} after ${counters[i - 1]}`);
        }
        // and a fresh boot after the whole life continues above everything sent
        const next = new CredentialStore(flash, digest, "lamp-0001").nextLoginCounter();
        assert.ok(next > counters[counters.length - 1]);
      }
    });
  }

  it("SimulatedFlash_PowerCut_LeavesKeyErasedOrTorn", () => {
    // the fault model the sweep relies on
    for (const mode of ["erased", "torn"] as CutMode[]) {
      const flash = new SimulatedFlash();
      flash.set("k", Uint8Array.of(1, 2, 3, 4));
      flash.cutPowerAtWrite(1, mode);
      assert.throws(() => flash.set("k", Uint8Array.of(5, 6, 7, 8)), PowerCut);
      assert.ok(flash.powerLost);
      assert.throws(() => flash.get("k"), PowerCut); // nothing runs until the reboot
      flash.restorePower();
      assert.deepEqual(flash.get("k"), mode === "erased" ? undefined : Uint8Array.of(5, 6));
      flash.set("k", Uint8Array.of(9)); // disarmed after one cut
      assert.deepEqual(flash.get("k"), Uint8Array.of(9));
    }
  });
});
