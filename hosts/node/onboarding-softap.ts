/*
 * The Node simulator's OnboardingPort: a simulated SoftAP on the SimulatedAir
 * (an open access point that other simulated radios hear in their scans) and a
 * real HTTP/1.1 server on loopback that the owner's client reaches (the CLI,
 * the reference page in a real browser, the demo). The air keeps the
 * SoftAP's address, as a phone that joined it would know its gateway:
 * `softApUrl(air, ssid)`.
 *
 * Like the device's HTTP server it reads at most MAX_LOCAL_BODY bytes of a body
 * (413 beyond, without reading the rest), answers every response with
 * `Access-Control-Allow-Origin: *` (the PAKE, not the origin, authenticates)
 * and a preflight with 204, and times a slow request out after 10 s.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { LocalRequest } from "../../modules/onboarding/machine";
import { MAX_LOCAL_BODY } from "../../modules/onboarding/messages";
import type { OnboardingPort } from "../../modules/onboarding/runner";
import type { SimulatedAccessPoint } from "./radio/access-point";
import type { SimulatedAir } from "./radio/air";

const services = new WeakMap<SimulatedAir, Map<string, string>>();

/** The local service URL of the SoftAP `ssid` on the air (what a phone joined to it reaches), or undefined. */
export function softApUrl(air: SimulatedAir, ssid: string): string | undefined {
  return services.get(air)?.get(ssid);
}

const HEADERS = { "access-control-allow-origin": "*", "cache-control": "no-store" };

/** A SoftAP and local HTTP service for one simulated device. */
export class NodeSoftAp implements OnboardingPort {
  readonly #air: SimulatedAir;
  readonly #rssi: number;
  #server: Server | undefined;
  #ap: SimulatedAccessPoint | undefined;
  #ssid: string | undefined;
  #url: string | undefined;
  /** how many times the SoftAP went up (tests) */
  opened = 0;

  /** @param options.rssi how loud the SoftAP is on the air (default -35: the phone is next to the device) */
  constructor(air: SimulatedAir, options: { rssi?: number } = {}) {
    this.#air = air;
    this.#rssi = options.rssi ?? -35;
  }

  /** The service URL while up. */
  get url(): string | undefined {
    return this.#url;
  }

  open(ssid: string, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void {
    this.close();
    this.opened++;
    this.#ssid = ssid;
    this.#ap = this.#air.addAccessPoint({ ssid, security: "open", rssi: this.#rssi, internet: "none", channel: 1 });
    const server = createServer((req, res) => this.#serve(req, res, handler));
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    this.#server = server;
    server.listen(0, "127.0.0.1", () => {
      if (this.#server !== server) return;
      this.#url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      let map = services.get(this.#air);
      if (!map) services.set(this.#air, (map = new Map()));
      map.set(ssid, this.#url);
    });
  }

  #serve(req: IncomingMessage, res: ServerResponse, handler: (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void): void {
    const send = (status: number, body: Uint8Array) => {
      if (res.headersSent) return;
      res.writeHead(status, { ...HEADERS, "content-type": "application/json", "content-length": body.length });
      res.end(body);
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...HEADERS, "access-control-allow-methods": "GET, POST", "access-control-allow-headers": "content-type", "access-control-max-age": "600" });
      res.end();
      return;
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_LOCAL_BODY) {
      send(413, new TextEncoder().encode('{"v":1,"error":"MESSAGE_TOO_LARGE","detail":"body over 1536 bytes"}'));
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_LOCAL_BODY) {
        send(413, new TextEncoder().encode('{"v":1,"error":"MESSAGE_TOO_LARGE","detail":"body over 1536 bytes"}'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_LOCAL_BODY) return;
      const path = (req.url ?? "/").split("?")[0];
      handler({ method: req.method ?? "GET", path, body: new Uint8Array(Buffer.concat(chunks)) }, send);
    });
    req.on("error", () => res.destroy());
  }

  close(): void {
    if (this.#ap) this.#air.removeAccessPoint(this.#ap);
    if (this.#ssid) services.get(this.#air)?.delete(this.#ssid);
    this.#server?.close();
    this.#server?.closeIdleConnections();
    this.#ap = undefined;
    this.#server = undefined;
    this.#ssid = undefined;
    this.#url = undefined;
  }
}
