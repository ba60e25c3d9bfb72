/*
 * A simulated access point: what a scan reports (ssid, bssid, channel, rssi,
 * security, roaming-consortium OIs), what lies behind it (internet "full",
 * "walled-garden" or "none"), its PSK, and for WPA2-Enterprise its 802.1X
 * authenticator in pass-through mode, i.e. a RADIUS client (NAS):
 * EAP-Request/Identity to the station, then Access-Requests carrying the
 * station's EAP (split into <=253-byte EAP-Message attributes), State echoed,
 * Message-Authenticator (RFC 3579), NAS-Identifier, Called-/Calling-Station-Id,
 * NAS-Port-Type 19, Framed-MTU; retransmission on timeout; answers checked
 * (Response Authenticator, Message-Authenticator) and discarded when bad; on
 * Access-Accept the MS-MPPE keys are decrypted and compared with the station's
 * MSK (the precondition of the 4-way handshake); then DHCP.
 *
 * The Accept's session policy is enforced per station, as an enterprise AP
 * does: Filter-Id selects one of the AP's filters (its ACLs: allowed domains,
 * with the addresses its resolver answers for them, as a DNS-snooping walled
 * garden does; a Filter-Id the AP does not define lets nothing through),
 * WISPr-Bandwidth-Max-Up/-Down cap the station's rate (shapedMs), and
 * Session-Timeout ends the session (Accounting-Stop Session-Timeout,
 * deauthentication), after which the station authenticates again.
 *
 * Faults are explicit: out of range (now or later), dropped RADIUS traffic,
 * no DHCP answer, internet mode, deauthentication. Every step is appended to
 * `events` for tests.
 */
import { createSocket, type Socket } from "node:dgram";
import { CAUSE, NasServices, type NasServiceEvent } from "./nas-services";
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { NetworkSecurity, ScanResult, ScheduledTask, SchedulerPort } from "../../../modules/ports";
import { EAP_CODE, EAP_TYPE, describeEap, encodeEap } from "./eap";
import type { EapPeerStep } from "./eap-peer";
import {
  NAS_PORT_TYPE_WIRELESS_80211, RADIUS_ATTR, RADIUS_CODE, acceptPolicy, attribute, decodeRadius, eapMessageAttributes,
  encodeAccessRequest, firstAttribute, joinEapMessage, mppeKeys, verifyResponse, type RadiusAttribute, type RadiusPacket,
} from "./radius-codec";

/** What the station can reach through an access point. */
export type InternetMode = "full" | "walled-garden" | "none";

/** The access point's RADIUS client settings. */
export interface RadiusClientConfig {
  host: string;
  port: number;
  /** the shared secret registered for this NAS on the server */
  secret: string;
  /** default "wcm-sim-<bssid without colons>" */
  nasIdentifier?: string;
  /** wait per transmission in ms (default 1000) */
  timeoutMs?: number;
  /** retransmissions after the first send (default 2) */
  retries?: number;
  /** Framed-MTU announced to the server, which sizes its EAP-TLS fragments by it (default 1400) */
  framedMtu?: number;
  /** the cloud's accounting port (RFC 2866): Start / Interim-Update / Stop for each accepted station; none: no accounting */
  accountingPort?: number;
  /** Interim-Update period, ms (none: no interims) */
  interimMs?: number;
  /** listen for Disconnect/CoA requests (RFC 5176) on this UDP port of 127.0.0.1 (0 = ephemeral; listen() binds it) */
  dynamicAuthorizationPort?: number;
}

export interface AccessPointConfig {
  ssid: string;
  /** default: a locally administered address made from the ssid and a counter */
  bssid?: string;
  channel?: number;
  /** dBm (default -55) */
  rssi?: number;
  security: NetworkSecurity;
  /** WPA2-PSK passphrase (security "psk") */
  password?: string;
  /** the RADIUS server this AP relays to (security "enterprise") */
  radius?: RadiusClientConfig;
  /** Hotspot 2.0 roaming-consortium OIs, hex */
  roamingConsortium?: string[];
  /** default "full" */
  internet?: InternetMode;
  /** destinations a walled garden lets through (the cloud's host:port) */
  walledGarden?: { host: string; port: number }[];
  /** DHCP answer delay in ms (default 5) */
  dhcpDelayMs?: number;
  /** the AP's filters by Filter-Id: the domains each lets through ("*.zone" for a zone), as the operator defines them */
  filters?: Record<string, string[]>;
  /** what the AP's resolver answers for a name (name -> address), for filters by domain */
  dns?: Record<string, string>;
}

/** The policy the AP enforces for one accepted station. */
export interface StationPolicy {
  filterId?: string;
  sessionTimeoutS?: number;
  maxUpBps?: number;
  maxDownBps?: number;
}

/** Explicit faults; change them at any time. */
export interface AccessPointFaults {
  /** the AP sends its RADIUS traffic nowhere (the server then looks down) */
  dropRadius: boolean;
  /** the AP's DHCP server never answers */
  dhcpSilent: boolean;
}

/** One line of an access point's event log. */
export interface AccessPointEvent {
  /** ms on the air's clock */
  at: number;
  kind:
    | "associate" | "disassociate" | "deauthenticate" | "range"
    | "eap-to-station" | "eap-from-station"
    | "radius-request" | "radius-retransmit" | "radius-dropped" | "radius-answer" | "radius-discarded" | "radius-timeout"
    | "4way-ok" | "4way-failed" | "dhcp" | "dhcp-timeout" | "policy" | "session-timeout" | NasServiceEvent["kind"];
  detail: string;
  station?: string;
}

/** The end of one 802.1X authentication, as the authenticator saw it. */
export type NasOutcome =
  | { kind: "accepted"; userName?: string }
  | { kind: "rejected"; replyMessage?: string }
  | { kind: "timeout"; detail: string }
  | { kind: "key-mismatch"; detail: string }
  | { kind: "station-abort"; step: Extract<EapPeerStep, { kind: "abort" }> }
  | { kind: "station-silent"; detail: string }
  | { kind: "cancelled" };

/** The station's side of EAPOL: it answers each EAP packet the authenticator sends. */
export type StationEap = (eap: Uint8Array) => Promise<EapPeerStep>;

let bssidCounter = 0;
function makeBssid(ssid: string): string {
  const n = ++bssidCounter;
  let h = 0;
  for (const c of ssid) h = (h * 31 + c.charCodeAt(0)) & 0xffff;
  return ["02", (h >> 8).toString(16), (h & 0xff).toString(16), "00", (n >> 8).toString(16), (n & 0xff).toString(16)]
    .map((b) => b.padStart(2, "0")).join(":");
}

/** "aa:bb:..." → "AA-BB-..." (RFC 3580 §3.20-3.21). */
export function dashedMac(mac: string): string {
  return mac.toUpperCase().replace(/:/g, "-");
}

const MAX_EAP_ROUNDS = 200;

export class SimulatedAccessPoint {
  readonly ssid: string;
  readonly bssid: string;
  channel: number;
  rssi: number;
  readonly security: NetworkSecurity;
  password: string | undefined;
  radius: RadiusClientConfig | undefined;
  roamingConsortium: string[] | undefined;
  internet: InternetMode;
  walledGarden: { host: string; port: number }[];
  dhcpDelayMs: number;
  filters: Record<string, string[]>;
  dns: Record<string, string>;
  /** the policy of each accepted station (from its Access-Accept) */
  readonly #policies = new Map<string, { policy: StationPolicy; timer?: ScheduledTask }>();
  readonly faults: AccessPointFaults = { dropRadius: false, dhcpSilent: false };
  /** what the AP did and relayed, oldest first */
  readonly events: AccessPointEvent[] = [];
  #inRange = true;
  #rangeTask: ScheduledTask | undefined;
  #leases = new Map<string, string>();
  #associated = new Set<string>();
  #listeners = new Set<(change: "out-of-range" | "deauthenticated", station?: string) => void>();
  /** accounting client and Dynamic Authorization server (when the RADIUS settings ask for them) */
  readonly nasServices: NasServices | undefined;

  constructor(config: AccessPointConfig, private readonly env: { scheduler: SchedulerPort; now: () => number }) {
    if (config.security === "psk" && typeof config.password !== "string") throw new TypeError(`AP ${config.ssid}: psk needs a password`);
    if (config.security === "enterprise" && !config.radius) throw new TypeError(`AP ${config.ssid}: enterprise needs radius settings`);
    if (config.internet === "walled-garden" && !config.walledGarden?.length) throw new TypeError(`AP ${config.ssid}: a walled garden needs walledGarden destinations`);
    this.ssid = config.ssid;
    this.bssid = (config.bssid ?? makeBssid(config.ssid)).toLowerCase();
    this.channel = config.channel ?? 6;
    this.rssi = config.rssi ?? -55;
    this.security = config.security;
    this.password = config.password;
    this.radius = config.radius;
    this.roamingConsortium = config.roamingConsortium;
    this.internet = config.internet ?? "full";
    this.walledGarden = config.walledGarden ?? [];
    this.dhcpDelayMs = config.dhcpDelayMs ?? 5;
    this.filters = config.filters ?? {};
    this.dns = config.dns ?? {};
    const radius = config.radius;
    if (radius && (radius.accountingPort !== undefined || radius.dynamicAuthorizationPort !== undefined)) {
      this.nasServices = new NasServices({
        secret: radius.secret, nasIdentifier: radius.nasIdentifier ?? `wcm-sim-${this.bssid.replace(/:/g, "")}`,
        calledStationId: `${dashedMac(this.bssid)}:${this.ssid}`,
        ...(radius.accountingPort !== undefined ? { accounting: { host: radius.host, port: radius.accountingPort, timeoutMs: radius.timeoutMs, retries: radius.retries, interimMs: radius.interimMs } } : {}),
        ...(radius.dynamicAuthorizationPort !== undefined ? { dynamicAuthorization: { port: radius.dynamicAuthorizationPort } } : {}),
      }, (station, cause) => this.#end(station, cause), (event) => this.#log(event.kind, event.detail, event.station));
    }
  }

  /** Binds the Dynamic Authorization port (when configured); returns it. */
  async listen(): Promise<number | undefined> {
    return this.nasServices?.listen();
  }

  /** Closes the accounting and Dynamic Authorization sockets. */
  close(): void {
    this.nasServices?.close();
  }

  /** Ends a station's session: deauthenticated, and the accounting Stop carries `cause`. */
  #end(station: string, cause: number): void {
    void this.nasServices?.stop(station, cause, this.env.now());
    this.deauthenticate(station);
  }

  #log(kind: AccessPointEvent["kind"], detail: string, station?: string): void {
    this.events.push({ at: this.env.now(), kind, detail, ...(station ? { station } : {}) });
  }

  /** Events of one kind (tests). */
  eventsOf(kind: AccessPointEvent["kind"]): AccessPointEvent[] {
    return this.events.filter((event) => event.kind === kind);
  }

  get inRange(): boolean {
    return this.#inRange;
  }

  /** What a scan hears from this AP. */
  scanResult(): ScanResult {
    return {
      ssid: this.ssid, bssid: this.bssid, rssi: this.rssi, channel: this.channel, security: this.security,
      ...(this.roamingConsortium ? { roamingConsortium: [...this.roamingConsortium] } : {}),
    };
  }

  /** Fault: the AP goes out of range now, or after `afterMs`; joined stations lose it (CONNECTION-LOST). */
  goOutOfRange(afterMs = 0): void {
    this.#rangeTask?.cancel();
    const go = () => {
      this.#rangeTask = undefined;
      if (!this.#inRange) return;
      this.#inRange = false;
      this.#log("range", "out of range");
      for (const station of this.#associated) {
        this.#clearPolicy(station);
        void this.nasServices?.stop(station, CAUSE.lostCarrier, this.env.now());
      }
      this.#associated.clear();
      for (const listener of [...this.#listeners]) listener("out-of-range");
    };
    if (afterMs <= 0) go();
    else this.#rangeTask = this.env.scheduler.after(afterMs, go);
  }

  /** The AP is heard again (a pending goOutOfRange is cancelled). */
  comeIntoRange(): void {
    this.#rangeTask?.cancel();
    this.#rangeTask = undefined;
    if (this.#inRange) return;
    this.#inRange = true;
    this.#log("range", "in range");
  }

  /** Fault: the AP deauthenticates a station (or all); they lose it (CONNECTION-LOST). */
  deauthenticate(station?: string): void {
    const targets = station ? [station] : [...this.#associated];
    for (const mac of targets) {
      if (!this.#associated.delete(mac)) continue;
      this.#clearPolicy(mac);
      void this.nasServices?.stop(mac, CAUSE.adminReset, this.env.now());
      this.#log("deauthenticate", "deauthenticated by the AP", mac);
      for (const listener of [...this.#listeners]) listener("deauthenticated", mac);
    }
  }

  /** Radios listen for range and deauthentication changes; returns an unsubscribe function. */
  watch(listener: (change: "out-of-range" | "deauthenticated", station?: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** 802.11 association (open system); always succeeds while in range. */
  associate(station: string): void {
    this.#associated.add(station);
    this.#log("associate", `${this.security}`, station);
  }

  disassociate(station: string): void {
    if (this.#associated.delete(station)) {
      this.#clearPolicy(station);
      this.#log("disassociate", "station left", station);
      void this.nasServices?.stop(station, CAUSE.userRequest, this.env.now());
    }
  }

  isAssociated(station: string): boolean {
    return this.#associated.has(station);
  }

  /** WPA2-PSK 4-way handshake: succeeds when both sides hold the same passphrase. */
  pskHandshake(station: string, passphrase: string): boolean {
    const ok = this.password !== undefined && passphrase.length >= 8 && passphrase.length <= 63 && passphrase === this.password;
    this.#log(ok ? "4way-ok" : "4way-failed", ok ? "PSK" : "PSK mismatch (MIC check failed)", station);
    return ok;
  }

  /** DHCP: an address after dhcpDelayMs, or undefined after `timeoutMs` when the DHCP server is silent. */
  dhcp(station: string, timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      if (this.faults.dhcpSilent) {
        this.env.scheduler.after(timeoutMs, () => {
          this.#log("dhcp-timeout", `no DHCPOFFER in ${timeoutMs} ms`, station);
          resolve(undefined);
        });
        return;
      }
      this.env.scheduler.after(this.dhcpDelayMs, () => {
        let ip = this.#leases.get(station);
        if (!ip) {
          ip = `10.${parseInt(this.bssid.slice(12, 14), 16)}.${parseInt(this.bssid.slice(15, 17), 16)}.${10 + this.#leases.size}`;
          this.#leases.set(station, ip);
        }
        this.#log("dhcp", ip, station);
        resolve(ip);
      });
    });
  }

  #clearPolicy(station: string): void {
    this.#policies.get(station)?.timer?.cancel();
    this.#policies.delete(station);
  }

  /** The policy the AP enforces for an accepted station (undefined: none, or not associated). */
  stationPolicy(station: string): StationPolicy | undefined {
    return this.#policies.get(station.toLowerCase())?.policy;
  }

  /** Starts enforcing an Access-Accept's policy for a station: its filter, rate caps, and the end of its session at Session-Timeout. */
  #enforce(station: string, policy: StationPolicy): void {
    this.#clearPolicy(station);
    const entry: { policy: StationPolicy; timer?: ScheduledTask } = { policy };
    this.#log("policy", JSON.stringify(policy), station);
    if (policy.sessionTimeoutS !== undefined && policy.sessionTimeoutS > 0) {
      // RFC 2865 section 5.27 (no Termination-Action): the session ends, the station authenticates again to continue
      entry.timer = this.env.scheduler.after(policy.sessionTimeoutS * 1000, () => {
        if (this.#policies.get(station) !== entry) return;
        this.#log("session-timeout", `Session-Timeout ${policy.sessionTimeoutS} s`, station);
        this.#end(station, CAUSE.sessionTimeout);
      });
    }
    this.#policies.set(station, entry);
  }

  /** How long `bytes` take for a station at its rate cap (WISPr-Bandwidth-Max-Up / -Down); 0 without a cap. */
  shapedMs(station: string, bytes: number, direction: "up" | "down"): number {
    const policy = this.stationPolicy(station);
    const bps = direction === "up" ? policy?.maxUpBps : policy?.maxDownBps;
    return bps ? Math.ceil((bytes * 8 * 1000) / bps) : 0;
  }

  /**
   * Whether a station behind this AP can reach host:port; the reason when not.
   * A station with a Filter-Id reaches only its filter's domains (by name, or
   * by an address the AP's resolver gives for one of them); otherwise the AP's
   * internet mode decides.
   */
  reach(host: string, port: number, station?: string): { reachable: true } | { reachable: false; detail: string } {
    const policy = station ? this.stationPolicy(station) : undefined;
    if (policy?.filterId !== undefined) {
      const domains = this.filters[policy.filterId];
      if (!domains) return { reachable: false, detail: `Filter-Id ${policy.filterId} is not defined on ${this.ssid}` };
      const name = host.toLowerCase();
      const allowed = (candidate: string) => domains.some((d) => (d.startsWith("*.") ? candidate === d.slice(2) || candidate.endsWith(d.slice(1)) : candidate === d));
      if (allowed(name) || Object.entries(this.dns).some(([dnsName, address]) => address === name && allowed(dnsName.toLowerCase()))) return { reachable: true };
      return { reachable: false, detail: `${host}:${port} is outside the walled garden ${policy.filterId} of ${this.ssid}` };
    }
    if (this.internet === "full") return { reachable: true };
    if (this.internet === "none") return { reachable: false, detail: `no internet behind ${this.ssid}` };
    if (this.walledGarden.some((d) => d.host === host && d.port === port)) return { reachable: true };
    return { reachable: false, detail: `${host}:${port} is outside the walled garden of ${this.ssid}` };
  }

  /**
   * 802.1X in pass-through mode for one station: relays its EAP to the RADIUS
   * server until Accept, Reject, a timeout, or the station gives up.
   * `station(eap)` delivers an EAP packet to the station and returns its step;
   * `cancelled()` is asked between rounds, `signal` aborts a RADIUS wait at once.
   */
  async authenticate(mac: string, station: StationEap, cancelled: () => boolean = () => false, signal?: AbortSignal): Promise<NasOutcome> {
    const radius = this.radius;
    if (!radius) throw new Error(`AP ${this.ssid} has no RADIUS server`);
    const secret = new TextEncoder().encode(radius.secret);
    const socket = createSocket(radius.host.includes(":") ? "udp6" : "udp4");
    socket.on("error", () => {}); // ICMP errors on UDP look like silence: a timeout follows
    const client = new RadiusTransport(socket, radius, secret, (kind, detail) => this.#log(kind, detail, mac), () => this.faults.dropRadius, this.env.scheduler);
    signal?.addEventListener("abort", () => client.close(), { once: true });
    const toStation = async (eap: Uint8Array): Promise<EapPeerStep> => {
      this.#log("eap-to-station", describeEap(eap), mac);
      const step = await station(eap);
      if (step.kind === "send") this.#log("eap-from-station", describeEap(step.packet), mac);
      return step;
    };
    try {
      const baseAttributes: RadiusAttribute[] = [
        attribute(RADIUS_ATTR.nasIdentifier, radius.nasIdentifier ?? `wcm-sim-${this.bssid.replace(/:/g, "")}`),
        attribute(RADIUS_ATTR.calledStationId, `${dashedMac(this.bssid)}:${this.ssid}`),
        attribute(RADIUS_ATTR.callingStationId, dashedMac(mac)),
        attribute(RADIUS_ATTR.nasPortType, NAS_PORT_TYPE_WIRELESS_80211),
        attribute(RADIUS_ATTR.serviceType, 2 /* Framed */),
        attribute(RADIUS_ATTR.framedMtu, radius.framedMtu ?? 1400),
        attribute(RADIUS_ATTR.connectInfo, "CONNECT 54Mbps 802.11g"),
      ];
      let step = await toStation(encodeEap({ code: EAP_CODE.request, identifier: randomBytes(1)[0], type: EAP_TYPE.identity, data: new Uint8Array(0) }));
      let userName: Uint8Array | undefined;
      let state: Uint8Array | undefined;
      for (let round = 0; round < MAX_EAP_ROUNDS; round++) {
        if (cancelled()) return { kind: "cancelled" };
        if (step.kind === "abort") return { kind: "station-abort", step };
        if (step.kind !== "send") return { kind: "station-silent", detail: `station did not answer (${step.kind})` };
        const eap = step.packet;
        if (userName === undefined && eap[4] === EAP_TYPE.identity && eap[0] === EAP_CODE.response) userName = eap.slice(5, (eap[2] << 8) | eap[3]);
        const attributes = [
          ...(userName ? [attribute(RADIUS_ATTR.userName, userName.subarray(0, 253))] : []),
          ...baseAttributes,
          ...eapMessageAttributes(eap),
          ...(state ? [attribute(RADIUS_ATTR.state, state)] : []),
        ];
        const answer = await client.exchange(attributes);
        if (cancelled()) return { kind: "cancelled" };
        if (!answer) return { kind: "timeout", detail: `no valid answer from RADIUS ${radius.host}:${radius.port}` };
        const { packet, requestAuthenticator } = answer;
        const serverEap = joinEapMessage(packet);
        if (packet.code === RADIUS_CODE.accessChallenge) {
          if (!serverEap) return { kind: "timeout", detail: "Access-Challenge without EAP-Message" };
          state = firstAttribute(packet, RADIUS_ATTR.state);
          step = await toStation(serverEap);
          continue;
        }
        if (packet.code === RADIUS_CODE.accessReject) {
          const reply = packet.attributes.filter((a) => a.type === RADIUS_ATTR.replyMessage).map((a) => new TextDecoder().decode(a.value)).join("");
          await toStation(serverEap ?? encodeEap({ code: EAP_CODE.failure, identifier: eap[1], data: new Uint8Array(0) }));
          return { kind: "rejected", ...(reply ? { replyMessage: reply } : {}) };
        }
        // Access-Accept: the station must hold the MSK whose halves the server sent as MPPE keys
        const keys = mppeKeys(packet, secret, requestAuthenticator);
        const end = await toStation(serverEap ?? encodeEap({ code: EAP_CODE.success, identifier: eap[1], data: new Uint8Array(0) }));
        if (end.kind !== "success") return end.kind === "abort" ? { kind: "station-abort", step: end } : { kind: "key-mismatch", detail: "station did not complete EAP" };
        const mismatch = !keys.recv || !keys.send || keys.recv.length !== 32 || keys.send.length !== 32
          || !timingSafeEqual(keys.recv, end.msk.subarray(0, 32)) || !timingSafeEqual(keys.send, end.msk.subarray(32, 64));
        if (mismatch) {
          const detail = !keys.recv || !keys.send ? "Access-Accept without MS-MPPE keys" : "PMK from MS-MPPE keys does not match the station's MSK";
          this.#log("4way-failed", detail, mac);
          return { kind: "key-mismatch", detail };
        }
        this.#log("4way-ok", "PMK from MS-MPPE-Recv-Key matches", mac);
        this.#enforce(mac, acceptPolicy(packet));
        const name = firstAttribute(packet, RADIUS_ATTR.userName);
        if (name) this.nasServices?.start(mac, new TextDecoder().decode(name), this.env.now());
        return { kind: "accepted", ...(name ? { userName: new TextDecoder().decode(name) } : {}) };
      }
      return { kind: "timeout", detail: `EAP did not end in ${MAX_EAP_ROUNDS} rounds` };
    } finally {
      client.close();
    }
  }
}

/** One RADIUS client socket: identifiers, retransmission, answer checks. */
class RadiusTransport {
  #identifier = randomBytes(1)[0];
  #waiting: { identifier: number; authenticator: Uint8Array; resolve: (answer: { packet: RadiusPacket; requestAuthenticator: Uint8Array } | undefined) => void } | undefined;
  #closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly config: RadiusClientConfig,
    private readonly secret: Uint8Array,
    private readonly log: (kind: AccessPointEvent["kind"], detail: string) => void,
    private readonly dropping: () => boolean,
    private readonly scheduler: SchedulerPort,
  ) {
    socket.on("message", (message) => this.#onMessage(new Uint8Array(message)));
  }

  #onMessage(bytes: Uint8Array): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    let packet: RadiusPacket;
    try {
      packet = decodeRadius(bytes);
    } catch (error) {
      this.log("radius-discarded", (error as Error).message);
      return;
    }
    if (packet.identifier !== waiting.identifier) {
      this.log("radius-discarded", `identifier ${packet.identifier}, waiting for ${waiting.identifier}`);
      return;
    }
    if (![RADIUS_CODE.accessAccept, RADIUS_CODE.accessReject, RADIUS_CODE.accessChallenge].includes(packet.code as 2)) {
      this.log("radius-discarded", `code ${packet.code}`);
      return;
    }
    const bad = verifyResponse(bytes, waiting.authenticator, this.secret);
    if (bad) {
      this.log("radius-discarded", bad);
      return;
    }
    const name = packet.code === RADIUS_CODE.accessAccept ? "Access-Accept" : packet.code === RADIUS_CODE.accessReject ? "Access-Reject" : "Access-Challenge";
    const eap = joinEapMessage(packet);
    this.log("radius-answer", `${name} id ${packet.identifier}${eap ? ` [${describeEap(eap)}]` : ""}`);
    this.#waiting = undefined;
    waiting.resolve({ packet, requestAuthenticator: waiting.authenticator });
  }

  /** Sends an Access-Request and waits for a verified answer, retransmitting the same bytes (RFC 5080 §2.2.1). */
  exchange(attributes: RadiusAttribute[]): Promise<{ packet: RadiusPacket; requestAuthenticator: Uint8Array } | undefined> {
    const identifier = this.#identifier = (this.#identifier + 1) & 0xff;
    const authenticator = new Uint8Array(randomBytes(16));
    const bytes = encodeAccessRequest(identifier, authenticator, attributes, this.secret);
    const timeoutMs = this.config.timeoutMs ?? 1000;
    const retries = this.config.retries ?? 2;
    return new Promise((resolve) => {
      let task: ScheduledTask | undefined;
      let sent = 0;
      this.#waiting = {
        identifier, authenticator,
        resolve: (answer) => {
          task?.cancel();
          resolve(answer);
        },
      };
      const transmit = () => {
        if (this.#closed) return resolve(undefined);
        if (sent > retries) {
          this.#waiting = undefined;
          this.log("radius-timeout", `no answer to id ${identifier} after ${sent} transmissions of ${timeoutMs} ms`);
          return resolve(undefined);
        }
        const eap = joinEapMessage(decodeRadius(bytes));
        const what = `Access-Request id ${identifier} ${bytes.length}B${eap ? ` [${describeEap(eap)}]` : ""}`;
        if (this.dropping()) this.log("radius-dropped", what);
        else {
          this.log(sent === 0 ? "radius-request" : "radius-retransmit", what);
          this.socket.send(bytes, this.config.port, this.config.host);
        }
        sent++;
        task = this.scheduler.after(timeoutMs, transmit);
      };
      transmit();
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiting?.resolve(undefined);
    this.#waiting = undefined;
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
