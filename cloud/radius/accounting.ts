/*
 * RADIUS accounting (RFC 2866) from NAS clients: the Request Authenticator
 * check (MD5 over the packet with a zero authenticator, and the shared
 * secret), the optional Message-Authenticator (RFC 3579 section 3.2,
 * computed with a zero Request Authenticator), the decoding of one
 * Accounting-Request into a store update, and the Accounting-Response.
 * No I/O and no state: server.ts owns the socket, the duplicate cache and the
 * HotspotStore.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { DEVICE_ID_PATTERN } from "../../modules/protocol";
import { ATTR, MIN_PACKET, attribute, messageAuthenticatorOffset, type RadiusPacket } from "./packet";
import { placeOf } from "./place";
import type { AccountingUpdate } from "./session-store";

/** Acct-Status-Type values (RFC 2866 section 5.1). */
export const ACCT_STATUS = { start: 1, stop: 2, interim: 3, accountingOn: 7, accountingOff: 8 } as const;

/** Acct-Terminate-Cause names (RFC 2866 section 5.10). */
export const TERMINATE_CAUSE: Record<number, string> = {
  1: "User-Request", 2: "Lost-Carrier", 3: "Lost-Service", 4: "Idle-Timeout", 5: "Session-Timeout", 6: "Admin-Reset",
  7: "Admin-Reboot", 8: "Port-Error", 9: "NAS-Error", 10: "NAS-Request", 11: "NAS-Reboot", 12: "Port-Unneeded",
  13: "Port-Preempted", 14: "Port-Suspended", 15: "Service-Unavailable", 16: "Callback", 17: "User-Error", 18: "Host-Request",
};

/** Most bytes of an Acct-Session-Id kept. */
export const MAX_ACCT_SESSION_ID = 128;
/** Largest Acct-Delay-Time honoured (s); a larger one is taken as this (a day). */
const MAX_DELAY_S = 86_400;

/**
 * Checks an Accounting-Request's Request Authenticator (RFC 2866 section 3:
 * MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)) and,
 * when present, its Message-Authenticator (HMAC-MD5 with the authenticator and
 * the field zeroed; at most one, 16 bytes).
 */
export function verifyAccountingRequest(packet: RadiusPacket, secret: Buffer): boolean {
  const zeroed = Buffer.from(packet.raw);
  zeroed.fill(0, 4, 20);
  const expected = createHash("md5").update(zeroed).update(secret).digest();
  if (!timingSafeEqual(expected, packet.authenticator)) return false;
  const mas = packet.attributes.filter((a) => a.type === ATTR.messageAuthenticator);
  if (mas.length === 0) return true;
  if (mas.length !== 1 || mas[0].value.length !== 16) return false;
  const offset = messageAuthenticatorOffset(packet.raw);
  const copy = Buffer.from(zeroed);
  copy.fill(0, offset + 2, offset + 18);
  return timingSafeEqual(createHmac("md5", secret).update(copy).digest(), mas[0].value);
}

/** Builds an Accounting-Request (the NAS side: simulated AP, tests, bench). */
export function signAccountingRequest(identifier: number, secret: Buffer, attributes: { type: number; value: Buffer }[]): Buffer {
  let length = MIN_PACKET;
  for (const a of attributes) length += 2 + a.value.length;
  const out = Buffer.alloc(length);
  out[0] = 4;
  out[1] = identifier & 0xff;
  out.writeUInt16BE(length, 2);
  let offset = MIN_PACKET;
  for (const a of attributes) {
    out[offset] = a.type;
    out[offset + 1] = a.value.length + 2;
    a.value.copy(out, offset + 2);
    offset += 2 + a.value.length;
  }
  createHash("md5").update(out).update(secret).digest().copy(out, 4);
  return out;
}

/** What one Accounting-Request asks. */
export type AccountingRequest =
  | { kind: "session"; update: AccountingUpdate }
  /** Accounting-On / Off: the NAS (re)started or stops: all its sessions have ended */
  | { kind: "nas-restart"; nas: string; at: number; status: "on" | "off" }
  /** well formed but nothing to record (not a device's session, an unknown status type) */
  | { kind: "ignored"; why: string };

function uint32(value: Buffer | undefined): number | undefined {
  return value && value.length === 4 ? value.readUInt32BE(0) : undefined;
}

function address(packet: RadiusPacket): string | undefined {
  const v4 = attribute(packet, ATTR.nasIpAddress);
  if (v4 && v4.length === 4) return [...v4].join(".");
  const v6 = attribute(packet, ATTR.nasIpv6Address);
  if (v6 && v6.length === 16) return [...Array(8).keys()].map((i) => v6.readUInt16BE(i * 2).toString(16)).join(":");
  return undefined;
}

/**
 * Decodes an Accounting-Request already matched to NAS client `nas` and verified.
 * @param source - the datagram's source address (where Disconnect requests go when no NAS-IP-Address is given)
 * @param now - arrival time, ms
 * @throws Error "BAD_ACCOUNTING: ..." when a required attribute is missing or malformed (RFC 2866: silently discarded)
 */
export function decodeAccounting(packet: RadiusPacket, nas: string, source: string, now: number): AccountingRequest {
  const status = uint32(attribute(packet, ATTR.acctStatusType));
  if (status === undefined) throw new Error("BAD_ACCOUNTING: no Acct-Status-Type");
  const delay = Math.min(uint32(attribute(packet, ATTR.acctDelayTime)) ?? 0, MAX_DELAY_S);
  const at = now - delay * 1000;
  if (status === ACCT_STATUS.accountingOn || status === ACCT_STATUS.accountingOff) {
    return { kind: "nas-restart", nas, at, status: status === ACCT_STATUS.accountingOn ? "on" : "off" };
  }
  const kind = status === ACCT_STATUS.start ? "start" : status === ACCT_STATUS.stop ? "stop" : status === ACCT_STATUS.interim ? "interim" : undefined;
  if (!kind) return { kind: "ignored", why: `Acct-Status-Type ${status}` };
  const sessionId = attribute(packet, ATTR.acctSessionId);
  if (!sessionId || sessionId.length === 0) throw new Error("BAD_ACCOUNTING: no Acct-Session-Id");
  const userName = attribute(packet, ATTR.userName)?.toString("utf8");
  if (!userName || !DEVICE_ID_PATTERN.test(userName)) return { kind: "ignored", why: "User-Name is not a device id" };
  const framed = attribute(packet, ATTR.framedIpAddress);
  const cause = uint32(attribute(packet, ATTR.acctTerminateCause));
  const sessionTime = uint32(attribute(packet, ATTR.acctSessionTime));
  const input = uint32(attribute(packet, ATTR.acctInputOctets));
  const output = uint32(attribute(packet, ATTR.acctOutputOctets));
  const nasIdentifier = attribute(packet, ATTR.nasIdentifier)?.toString("utf8").slice(0, 64);
  return {
    kind: "session",
    update: {
      ...placeOf(packet, nas),
      kind, deviceId: userName, acctSessionId: sessionId.toString("latin1").slice(0, MAX_ACCT_SESSION_ID),
      nasAddress: address(packet) ?? source, at,
      ...(nasIdentifier ? { nasIdentifier } : {}),
      ...(framed && framed.length === 4 ? { framedIp: [...framed].join(".") } : {}),
      ...(kind === "stop" ? { terminateCause: cause === undefined ? "Unknown" : TERMINATE_CAUSE[cause] ?? `Cause-${cause}` } : {}),
      ...(sessionTime !== undefined ? { sessionTimeS: sessionTime } : {}),
      ...(input !== undefined ? { inputOctets: input } : {}),
      ...(output !== undefined ? { outputOctets: output } : {}),
    },
  };
}
