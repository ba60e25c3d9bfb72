/*
 * Who may talk to the admin API: the checks every request passes before any
 * route runs (sans I/O, so inject() and the socket path share them).
 *
 * - Host must be one of the admin's names (the configured admin name; on a
 *   loopback bind also localhost, 127.0.0.1 and [::1]) with the bound port
 *   (HOST_REFUSED 403): a DNS-rebinding page reaches the socket under its
 *   own name and is refused.
 * - An Origin header, when present, must be the admin's own origin,
 *   `<scheme>://<Host>` (ORIGIN_REFUSED 403): a browser page elsewhere that
 *   gets a request through is refused.
 * - `Authorization: Bearer <token>`, compared in constant time
 *   (UNAUTHORIZED 401). Browsers cannot add that header cross-site without a
 *   CORS preflight, which this API never grants.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { CloudError } from "./errors";

/** The names a loopback-bound admin API also answers to. */
export const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"] as const;

/** What the admin API accepts. */
export interface AdminAccess {
  /** the bearer token */
  token: string;
  /** accepted Host names, lower case, IPv6 in brackets */
  names: string[];
  /** "https" when served over TLS */
  scheme: "http" | "https";
  /** the bound port; undefined (inject() only) accepts any port */
  port?: number;
}

/** True when `host` (a bind address) is a loopback address or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (h.startsWith("::ffff:")) return isLoopbackHost(h.slice(7));
  return false;
}

/** A name as it appears in a Host header: lower case, IPv6 literals in brackets. */
export function hostHeaderName(name: string): string {
  const h = name.trim().toLowerCase();
  return isIP(h) === 6 ? `[${h}]` : h;
}

/** Splits a Host header into name and port; undefined when malformed. */
function parseHost(value: string): { name: string; port: number | undefined } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?$/.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  return { name: match[1], port: match[2] === undefined ? undefined : Number(match[2]) };
}

function sameToken(given: string, expected: string): boolean {
  // hash both so the comparison takes the same time whatever the lengths
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * Checks Host, Origin and the bearer token of a request.
 * @throws CloudError HOST_REFUSED / ORIGIN_REFUSED (403), UNAUTHORIZED (401)
 */
export function checkAdminRequest(access: AdminAccess, headers: Record<string, string | undefined>): void {
  const hostValue = headers.host ?? "";
  const host = parseHost(hostValue);
  const defaultPort = access.scheme === "https" ? 443 : 80;
  const portOk = host !== undefined && (access.port === undefined || (host.port ?? defaultPort) === access.port);
  if (!host || !access.names.includes(host.name) || !portOk) {
    throw new CloudError("HOST_REFUSED", "the Host header is not this admin API's name");
  }
  const origin = headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `${access.scheme}://${hostValue.trim().toLowerCase()}`) {
    throw new CloudError("ORIGIN_REFUSED", "cross-origin requests are refused");
  }
  const auth = headers.authorization ?? "";
  const match = /^Bearer (.+)$/i.exec(auth);
  if (!match || !sameToken(match[1], access.token)) throw new CloudError("UNAUTHORIZED", "missing or wrong bearer token");
}
