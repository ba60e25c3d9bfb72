/*
 * Record and replay of the state machine (modules/machine.ts), portable: the same
 * code runs under mocha on Node and inside XS (test/xs/entry.ts).
 *
 * - recordFirstBoot: a temporary device with a radio, from power-on through scan,
 *   join, the temporary login, issue, commit, ONLINE as PERMANENT, hello and the
 *   profile fetch, over the fake cloud; the ConnectionManager's recorder keeps
 *   what flash held at boot and every step (event in, effects out);
 * - replay: boots a fresh machine from the recording's config and stored
 *   records and steps the recorded events through `step` alone (no ports but
 *   the deterministic digest and sealing arithmetic), returning its effects;
 * - encode: one canonical text of events or effects (bytes as hex), so two
 *   engines' effects compare byte for byte.
 */
import { fromHex, toHex } from "../../modules/bytes";
import { validateConfig } from "../../modules/config";
import type { HotspotProfile } from "../../modules/hotspots";
import { jsSeal } from "../../modules/js-seal";
import { boot, step, type Effect, type Event, type Machine, type Stored } from "../../modules/machine";
import { managerContext, type ManagerPorts } from "../../modules/manager";
import type { DigestPort } from "../../modules/ports";
import { MemoryFlash, TestBed } from "./scenarios";

/** One recorded boot: enough to rebuild the machine and step it again. */
export interface Recording {
  name: string;
  /** the device configuration before validateConfig (JSON) */
  config: Record<string, unknown>;
  radio: boolean;
  requestTimeoutMs: number;
  stored: Stored;
  bootMs: number;
  steps: { event: Event; effects: Effect[]; kept: boolean }[];
}

/** Canonical text: object keys in insertion order, Uint8Array as {"$hex": ...}. */
export function encode(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $hex: toHex(v) } : v));
}

/** The inverse of encode. */
export function decode<T>(text: string): T {
  return JSON.parse(text, (_key, v: unknown) => (v && typeof v === "object" && "$hex" in v ? fromHex((v as { $hex: string }).$hex) : v)) as T;
}

const PROVISIONING_KEY = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00112233445566778899aabbccddeeff";
const RADIUS = { serverName: "radius.localhost", ca: "-----BEGIN CERTIFICATE-----\nMIIBradiusCA\n-----END CERTIFICATE-----" };
const ZIPKEY: HotspotProfile = { name: "zipkey", roamingConsortium: ["5a03ba"], radius: RADIUS };
const PARTNER: HotspotProfile = { name: "partner", ssid: "Partner", radius: RADIUS };

function recorder(out: Recording): NonNullable<ManagerPorts["recorder"]> {
  return {
    boot(stored, nowMs) {
      out.stored = decode(encode(stored));
      out.bootMs = nowMs;
    },
    step(event, effects, kept) {
      out.steps.push(decode(encode({ event, effects, kept })));
    },
  };
}

/**
 * Records a temporary device's whole first boot with a radio (hotspot join,
 * issuance, hello, profile fetch).
 * @throws Error when the boot does not end ONLINE and PERMANENT
 */
export function recordFirstBoot(digest: DigestPort): Recording {
  const bed = new TestBed(digest, "record");
  bed.cloud.addProvisioningKey(new Uint8Array(fromHex(PROVISIONING_KEY)));
  bed.cloud.setHotspots([ZIPKEY, PARTNER]);
  const raw = {
    deviceId: "dev-rec", option: "temporary", provisioningKey: PROVISIONING_KEY,
    cloud: { host: "localhost", port: 8883, ca: "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----" },
    hotspots: [ZIPKEY], buildTime: 1_767_225_600,
  };
  const radio = bed.radio();
  radio.add({ ssid: "Neighbour", bssid: "02:00:00:00:00:01", rssi: -30, security: "psk", psk: "not-ours-12" });
  radio.add(bed.hotspotAp("ZipKey", "02:00:00:00:00:02", -60, { roamingConsortium: ["5A03BA"] }));
  const out: Recording = { name: "firstBoot", config: raw, radio: true, requestTimeoutMs: 2000, stored: undefined as unknown as Stored, bootMs: 0, steps: [] };
  const device = bed.device(validateConfig(raw), new MemoryFlash(), "dev-rec", radio, recorder(out));
  device.manager.start();
  bed.time.advance(5000);
  const status = device.manager.status;
  if (status.state !== "ONLINE" || status.credential !== "permanent" || device.manager.hotspots.profiles.length !== 2) {
    throw new Error(`recorded boot ended ${status.state}/${status.credential} with ${device.manager.hotspots.profiles.length} profiles`);
  }
  return out;
}

/** The machine a recording boots from. */
export function bootOf(recording: Recording, digest: DigestPort): Machine {
  const config = validateConfig(recording.config);
  const ctx = managerContext(config, { digest, seal: jsSeal, radio: recording.radio }, { requestTimeoutMs: recording.requestTimeoutMs });
  return boot(ctx, recording.stored, recording.bootMs);
}

/**
 * Steps the recorded events through `step` alone.
 * @returns the effects of each step, and the machine at the end
 */
export function replay(recording: Recording, digest: DigestPort): { effects: Effect[][]; machine: Machine } {
  let machine = bootOf(recording, digest);
  const effects: Effect[][] = [];
  for (const recorded of recording.steps) {
    const result = step(machine, recorded.event);
    effects.push(result.effects);
    if (recorded.kept) machine = result.state;
  }
  return { effects, machine };
}
