/*
 * The credential decision of a resumed EAP-TTLS session. wpa_supplicant (and
 * RFC 5281 section 7.5) skips the inner login when the TLS session is
 * resumed, so no password arrives: the server decides on what the full
 * handshake proved (its binding: device id, which credential, generation,
 * lot) against the registry as it is now. A revoked device, a replaced secret,
 * a retired or revoked lot, a temporary credential retired since: refused, as
 * a fresh login with that credential would be. The per-device rate is spent
 * as for a proven credential. Reads a CredentialStore (asynchronously), like rules.ts.
 */
import type { Budget, CredentialStore, CredentialUsed, RuleResult } from "./rules";

/** What an accepted full handshake proved, kept with its TLS session. */
export interface ResumedBinding {
  deviceId: string;
  used: Exclude<CredentialUsed, "certificate">;
  generation: number;
  lot?: string;
}

function refuse(id: string, failure: Extract<RuleResult, { ok: false }>["failure"], detail: string): RuleResult {
  return { ok: false, deviceId: id, failure, detail };
}

/** Decides a resumed EAP-TTLS session from its binding. */
export async function resumedHotspotRules(store: CredentialStore, binding: ResumedBinding, budget: Budget): Promise<RuleResult> {
  const id = binding.deviceId;
  const row = await store.device(id);
  const spend = async (): Promise<RuleResult> => ((await budget.device(id))
    ? { ok: true, deviceId: id, used: binding.used, generation: binding.generation, ...(binding.lot ? { lot: binding.lot } : {}) }
    : refuse(id, "RATE_LIMITED", "over the device's login rate"));
  if (binding.used === "temporary") {
    if (row?.revoked) return refuse(id, "REVOKED", "device revoked");
    if (row && row.kind !== "temporary") {
      return row.temp_retired ? refuse(id, "TEMP_RETIRED", "temporary credential retired: the device holds a permanent secret") : refuse(id, "NOT_ALLOWED", "device has no temporary credential");
    }
    const lot = binding.lot === undefined ? undefined : await store.lot(binding.lot);
    if (lot?.revoked) return refuse(id, "LOT_REVOKED", "provisioning key revoked");
    if (!lot || lot.retired) return refuse(id, "LOT_RETIRED", "provisioning key retired");
    if (!(await store.lotAllows(lot, id))) return refuse(id, "NOT_ALLOWED", "id not allowed for the provisioning key");
    return (await budget.lot(lot.lot)) ? spend() : refuse(id, "RATE_LIMITED", "over the lot's login rate");
  }
  if (!row) return refuse(id, "UNKNOWN_DEVICE", "the device of the resumed session is gone");
  if (row.revoked) return refuse(id, "REVOKED", "device revoked");
  if (row.kind === "certificate") return refuse(id, "CERT_REQUIRED", "certificate device: use EAP-TLS");
  // the secret the full handshake proved must still be one of the device's: active, or pending (or committed since)
  const current = (row.secret_enc && row.generation === binding.generation)
    || (row.pending_secret_enc && row.pending_generation === binding.generation);
  if (!current) return refuse(id, "BAD_PROOF", "the secret proved by the resumed session was replaced");
  return spend();
}
