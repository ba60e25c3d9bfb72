/*
 * The simulated Wi-Fi radio of the Node host, a NetworkPort over a SimulatedAir:
 * scan, join (open, WPA2-PSK, WPA2-Enterprise with the EAP peer through the
 * AP's RADIUS client), DHCP, loss of the network, and the reachability gate
 * the MQTT link asks before connecting (what the joined AP's internet allows).
 *
 * Failure reasons: no such SSID in range → NETWORK-NOT-FOUND; security that
 * does not match the AP → ASSOCIATION-FAILED; wrong PSK → INCORRECT-PASSWORD;
 * Access-Reject → EAP-REJECTED (Reply-Message as detail); no RADIUS answer →
 * EAP-TIMEOUT; server certificate or name wrong → EAP-SERVER-UNTRUSTED; MPPE
 * keys that do not match the MSK → ASSOCIATION-FAILED; no DHCP answer →
 * DHCP-TIMEOUT; AP out of range or deauthentication after joining → onLost
 * CONNECTION-LOST.
 */
import type { JoinEvents, JoinRequest, NetworkFailure, NetworkPort, ScanResult, ScheduledTask } from "../../../modules/ports";
import type { LinkGate } from "../mqtt-link";
import type { NasOutcome, SimulatedAccessPoint } from "./access-point";
import type { SimulatedAir } from "./air";
import { EapPeer } from "./eap-peer";

export interface SimulatedRadioOptions {
  /** the station's MAC (default 02:00:00:00:00:01 + a counter) */
  mac?: string;
  /** how long a scan takes in ms (default 20) */
  scanMs?: number;
  /** association delay in ms (default 5) */
  associateMs?: number;
  /** how long the station waits for a DHCP answer in ms (default 3000) */
  dhcpTimeoutMs?: number;
  /** the longest an 802.1X authentication may take in ms (default 30000) */
  eapTimeoutMs?: number;
  /** most TLS bytes per EAP-Response (default 1020) */
  eapFragmentSize?: number;
}

/** One line of the radio's own log (tests, demo). */
export interface RadioEvent {
  at: number;
  kind: "scan" | "join" | "joined" | "failed" | "lost" | "leave" | "gate";
  detail: string;
}

let macCounter = 0;

export class SimulatedRadio implements NetworkPort {
  readonly mac: string;
  readonly events: RadioEvent[] = [];
  readonly #air: SimulatedAir;
  readonly #options: SimulatedRadioOptions;
  /** bumps on every join/leave: stale callbacks compare and go quiet */
  #generation = 0;
  #joined: { ap: SimulatedAccessPoint; ip: string; stop: () => void } | undefined;

  constructor(air: SimulatedAir, options: SimulatedRadioOptions = {}) {
    this.#air = air;
    this.#options = options;
    this.mac = (options.mac ?? `02:00:00:00:00:${(++macCounter & 0xff).toString(16).padStart(2, "0")}`).toLowerCase();
  }

  #log(kind: RadioEvent["kind"], detail: string): void {
    this.events.push({ at: this.#air.now(), kind, detail });
  }

  /** The network the station is on, if any. */
  get joined(): { ssid: string; bssid: string; ip: string; accessPoint: SimulatedAccessPoint } | undefined {
    const j = this.#joined;
    return j && { ssid: j.ap.ssid, bssid: j.ap.bssid, ip: j.ip, accessPoint: j.ap };
  }

  scan(done: (results: ScanResult[]) => void): void {
    this.#air.scheduler.after(this.#options.scanMs ?? 20, () => {
      const results = this.#air.inRange().map((ap) => ap.scanResult());
      this.#log("scan", `${results.length} heard`);
      done(results);
    });
  }

  join(request: JoinRequest, events: JoinEvents): void {
    this.#drop();
    const generation = ++this.#generation;
    this.#log("join", `${request.ssid} (${request.security}${request.security === "enterprise" ? ` ${request.method}` : ""})`);
    void this.#join(request, events, generation).catch((error: Error) => {
      if (generation === this.#generation) this.#fail(events, { reason: "ASSOCIATION-FAILED", detail: `simulator error: ${error.message}` });
    });
  }

  leave(): void {
    this.#generation++;
    if (this.#joined) this.#log("leave", this.#joined.ap.ssid);
    this.#drop();
  }

  /**
   * The MQTT link's reachability check: a destination is reachable only
   * through a joined AP whose internet lets it through.
   */
  readonly gate: LinkGate = (host, port) => {
    const joined = this.#joined;
    const result = !joined
      ? { reachable: false as const, detail: "not joined to a network" }
      : !joined.ap.inRange
        ? { reachable: false as const, detail: `${joined.ap.ssid} is out of range` }
        : joined.ap.reach(host, port, this.mac);
    this.#log("gate", `${host}:${port} ${result.reachable ? "reachable" : `unreachable: ${result.detail}`}`);
    return result;
  };

  #drop(): void {
    const joined = this.#joined;
    this.#joined = undefined;
    if (joined) {
      joined.stop();
      joined.ap.disassociate(this.mac);
    }
  }

  #fail(events: JoinEvents, failure: NetworkFailure): void {
    this.#log("failed", `${failure.reason}${failure.detail ? `: ${failure.detail}` : ""}`);
    events.onFailed(failure);
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.#air.scheduler.after(ms, resolve));
  }

  async #join(request: JoinRequest, events: JoinEvents, generation: number): Promise<void> {
    const current = () => generation === this.#generation;
    await this.#delay(this.#options.associateMs ?? 5);
    if (!current()) return;
    const candidates = this.#air.inRange()
      .filter((ap) => ap.ssid === request.ssid && (!request.bssid || ap.bssid === request.bssid.toLowerCase()))
      .sort((a, b) => b.rssi - a.rssi);
    const ap = candidates[0];
    if (!ap) return this.#fail(events, { reason: "NETWORK-NOT-FOUND", detail: `${request.ssid} not in range` });
    if (ap.security !== request.security) {
      return this.#fail(events, { reason: "ASSOCIATION-FAILED", detail: `${ap.ssid} is ${ap.security}, asked for ${request.security}` });
    }
    ap.associate(this.mac);
    const outOfRange = () => !ap.inRange || !ap.isAssociated(this.mac);
    const lostDuringJoin = (): boolean => {
      if (!outOfRange()) return false;
      this.#fail(events, { reason: "ASSOCIATION-FAILED", detail: `${ap.ssid} went away while joining` });
      return true;
    };

    if (request.security === "psk") {
      if (!ap.pskHandshake(this.mac, request.password)) {
        ap.disassociate(this.mac);
        return this.#fail(events, { reason: "INCORRECT-PASSWORD", detail: "4-way handshake failed" });
      }
    } else if (request.security === "enterprise") {
      const peer = new EapPeer(
        request.method === "tls"
          ? { method: "tls", identity: request.identity, certificate: request.certificate, privateKey: request.privateKey, server: request.server }
          : { method: "ttls-pap", identity: request.identity, password: request.password, server: request.server, ...(request.anonymousIdentity ? { anonymousIdentity: request.anonymousIdentity } : {}) },
        this.#options.eapFragmentSize ? { fragmentSize: this.#options.eapFragmentSize } : {},
      );
      const eapTimeoutMs = this.#options.eapTimeoutMs ?? 30_000;
      let timedOut = false;
      const abort = new AbortController();
      let timer: ScheduledTask | undefined;
      const outcome = await Promise.race([
        ap.authenticate(this.mac, (eap) => peer.handle(eap), () => !current() || timedOut || outOfRange(), abort.signal),
        new Promise<NasOutcome>((resolve) => {
          timer = this.#air.scheduler.after(eapTimeoutMs, () => {
            timedOut = true;
            resolve({ kind: "timeout", detail: `802.1X did not finish in ${eapTimeoutMs} ms` });
          });
        }),
      ]);
      timer?.cancel();
      abort.abort();
      peer.close();
      if (!current()) return;
      if (outcome.kind !== "accepted") ap.disassociate(this.mac);
      switch (outcome.kind) {
        case "accepted":
          break;
        case "rejected":
          return this.#fail(events, { reason: "EAP-REJECTED", ...(outcome.replyMessage ? { detail: outcome.replyMessage } : {}) });
        case "timeout":
          return this.#fail(events, { reason: "EAP-TIMEOUT", detail: outcome.detail });
        case "station-abort":
          return this.#fail(events, outcome.step.failure);
        case "key-mismatch":
          return this.#fail(events, { reason: "ASSOCIATION-FAILED", detail: `4-way handshake failed: ${outcome.detail}` });
        case "station-silent":
          return this.#fail(events, { reason: "EAP-TIMEOUT", detail: outcome.detail });
        case "cancelled":
          if (lostDuringJoin()) return;
          return this.#fail(events, { reason: "EAP-TIMEOUT", detail: `802.1X did not finish in ${eapTimeoutMs} ms` });
      }
    }
    if (!current() || lostDuringJoin()) return;

    const ip = await ap.dhcp(this.mac, this.#options.dhcpTimeoutMs ?? 3000);
    if (!current() || lostDuringJoin()) return;
    if (!ip) {
      ap.disassociate(this.mac);
      return this.#fail(events, { reason: "DHCP-TIMEOUT", detail: `no address from ${ap.ssid}` });
    }
    const stop = ap.watch((change, station) => {
      if (change === "deauthenticated" && station !== this.mac) return;
      if (!current() || this.#joined?.ap !== ap) return;
      this.#joined = undefined;
      stop();
      const detail = change === "out-of-range" ? `${ap.ssid} out of range` : `deauthenticated by ${ap.ssid}`;
      this.#log("lost", detail);
      events.onLost({ reason: "CONNECTION-LOST", detail });
    });
    this.#joined = { ap, ip, stop };
    this.#log("joined", `${ap.ssid} ${ap.bssid} ${ip}`);
    events.onJoined({ ip, ssid: ap.ssid, bssid: ap.bssid });
  }
}
