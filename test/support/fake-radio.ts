/*
 * A scriptable NetworkPort for the portable scenarios (no Node API: it runs
 * in XS too). Access points are plain objects the test changes at will; every
 * outcome is delivered through the SchedulerPort after `latencyMs`.
 *
 * Faults, all explicit: an access point out of range (NETWORK-NOT-FOUND, or
 * onLost while joined), a wrong PSK (INCORRECT-PASSWORD), a RADIUS server that
 * rejects with a Reply-Message (EAP-REJECTED), a server name or CA the device
 * does not expect (EAP-SERVER-UNTRUSTED), no DHCP answer (DHCP-TIMEOUT), and no
 * internet behind the access point (gate() makes cloud connects fail).
 */
import type {
  CloudLinkFactory,
  JoinEvents,
  JoinRequest,
  NetworkPort,
  NetworkSecurity,
  ScanResult,
  SchedulerPort,
} from "../../modules/ports";

/** What a fake RADIUS server says to an EAP login. */
export type RadiusAnswer = { ok: true } | { ok: false; replyMessage: string };

/** One simulated access point. */
export interface FakeAccessPoint {
  ssid: string;
  bssid: string;
  rssi: number;
  channel?: number;
  security: NetworkSecurity;
  roamingConsortium?: string[];
  /** the PSK (security "psk") */
  psk?: string;
  /** the RADIUS server behind an enterprise access point */
  radius?: { serverName: string; ca: string; check(request: Extract<JoinRequest, { security: "enterprise" }>): RadiusAnswer };
  /** default true */
  inRange?: boolean;
  /** default true: false = DHCP-TIMEOUT */
  dhcp?: boolean;
  /** default true: false = the cloud is unreachable over it */
  internet?: boolean;
}

/** The fake radio. */
export class FakeRadio implements NetworkPort {
  readonly aps: FakeAccessPoint[] = [];
  /** every join request, in order */
  readonly joins: JoinRequest[] = [];
  scans = 0;
  #current: { ap: FakeAccessPoint; events: JoinEvents; joined: boolean; token: number } | undefined;
  #token = 0;

  constructor(readonly scheduler: SchedulerPort, readonly latencyMs = 20) {}

  /** Adds an access point; returns it for later changes. */
  add(ap: FakeAccessPoint): FakeAccessPoint {
    this.aps.push(ap);
    return ap;
  }

  /** The access point the radio is joined to, if any. */
  get joined(): FakeAccessPoint | undefined {
    return this.#current?.joined ? this.#current.ap : undefined;
  }

  /** Takes an access point out of range; a device joined to it loses it. */
  outOfRange(ssid: string): void {
    for (const ap of this.aps) if (ap.ssid === ssid) ap.inRange = false;
    const current = this.#current;
    if (current?.joined && current.ap.ssid === ssid) {
      this.#current = undefined;
      this.scheduler.after(this.latencyMs, () => current.events.onLost({ reason: "CONNECTION-LOST", detail: "out of range" }));
    }
  }

  scan(done: (results: ScanResult[]) => void): void {
    this.scans++;
    const results: ScanResult[] = this.aps.filter((ap) => ap.inRange !== false).map((ap) => ({
      ssid: ap.ssid, bssid: ap.bssid, rssi: ap.rssi, channel: ap.channel ?? 6, security: ap.security,
      ...(ap.roamingConsortium ? { roamingConsortium: ap.roamingConsortium.slice() } : {}),
    }));
    this.scheduler.after(this.latencyMs, () => done(results));
  }

  join(request: JoinRequest, events: JoinEvents): void {
    this.joins.push(request);
    const token = ++this.#token;
    this.#current = undefined;
    this.scheduler.after(this.latencyMs, () => {
      if (token !== this.#token) return; // left or replaced meanwhile
      const ap = this.aps.find((a) => a.inRange !== false && a.ssid === request.ssid && (!request.bssid || a.bssid === request.bssid));
      if (!ap) return events.onFailed({ reason: "NETWORK-NOT-FOUND" });
      if (ap.security !== request.security) return events.onFailed({ reason: "ASSOCIATION-FAILED", detail: "security mismatch" });
      if (request.security === "psk" && request.password !== ap.psk) return events.onFailed({ reason: "INCORRECT-PASSWORD" });
      if (request.security === "enterprise") {
        const radius = ap.radius;
        if (!radius) return events.onFailed({ reason: "EAP-TIMEOUT" });
        if (request.server.serverName !== radius.serverName || request.server.ca !== radius.ca) {
          return events.onFailed({ reason: "EAP-SERVER-UNTRUSTED", detail: `server ${radius.serverName}` });
        }
        const answer = radius.check(request);
        if (!answer.ok) return events.onFailed({ reason: "EAP-REJECTED", detail: answer.replyMessage });
      }
      if (ap.dhcp === false) return events.onFailed({ reason: "DHCP-TIMEOUT" });
      this.#current = { ap, events, joined: true, token };
      events.onJoined({ ip: "10.0.0.23", ssid: ap.ssid, bssid: ap.bssid });
    });
  }

  leave(): void {
    this.#token++;
    this.#current = undefined;
  }

  /** True when joined to an access point with internet. */
  get online(): boolean {
    return !!this.#current?.joined && this.#current.ap.internet !== false;
  }

  /** Wraps a cloud link factory: a connect fails at the network level unless the radio is online. */
  gate(factory: CloudLinkFactory): CloudLinkFactory {
    return () => {
      const inner = factory();
      let blocked = false;
      return {
        connect: (options, events) => {
          if (this.online) return inner.connect(options, events);
          blocked = true;
          this.scheduler.after(this.latencyMs, () => events.onClose({ detail: "network unreachable" }));
        },
        publish: (topic, payload) => blocked || inner.publish(topic, payload),
        subscribe: (topic) => blocked || inner.subscribe(topic),
        close: () => blocked || inner.close(),
      };
    };
  }
}
