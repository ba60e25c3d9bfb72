/*
 * The one catalogue of reasons a credential is refused, shared by every front
 * end (MQTT CONNECT, RADIUS Access-Reject), and how the MQTT endpoint maps
 * each one to a CONNACK code. Catalogue with meanings: cloud/README.md.
 */
import type { CertificateFailure } from "./certificate";

/** Why a credential was refused: stored as devices.last_failure, in the audit log, and sent as RADIUS Reply-Message. */
export type AuthFailure =
  | "BAD_LOGIN" | "UNKNOWN_DEVICE" | "BAD_PROOF" | "REPLAY" | "REVOKED" | "TEMP_RETIRED" | "LOT_RETIRED" | "LOT_REVOKED"
  | "NOT_ALLOWED" | CertificateFailure
  | "RATE_LIMITED" | "LOCKED_OUT" | "INTERNAL";

/** Every AuthFailure, in catalogue order. */
export const AUTH_FAILURES: readonly AuthFailure[] = [
  "BAD_LOGIN", "UNKNOWN_DEVICE", "BAD_PROOF", "REPLAY", "REVOKED", "TEMP_RETIRED", "LOT_RETIRED", "LOT_REVOKED",
  "NOT_ALLOWED", "CERT_REQUIRED", "UNKNOWN_CA", "CA_REVOKED", "CERT_EXPIRED", "CERT_USAGE", "CERT_REVOKED", "CERT_MISMATCH",
  "RATE_LIMITED", "LOCKED_OUT", "INTERNAL",
];

/** The MQTT 3.1.1 CONNACK return code of each refusal (3 server unavailable, 4 bad credentials, 5 not authorized). */
export const CONNACK_OF: Readonly<Record<AuthFailure, 3 | 4 | 5>> = {
  BAD_LOGIN: 4, UNKNOWN_DEVICE: 4, BAD_PROOF: 4, REPLAY: 4, CERT_REQUIRED: 4, UNKNOWN_CA: 4, CERT_EXPIRED: 4, CERT_USAGE: 4, CERT_MISMATCH: 4,
  REVOKED: 5, TEMP_RETIRED: 5, LOT_RETIRED: 5, LOT_REVOKED: 5, NOT_ALLOWED: 5, CA_REVOKED: 5, CERT_REVOKED: 5, LOCKED_OUT: 5,
  RATE_LIMITED: 3, INTERNAL: 3,
};

/**
 * Refusals that do not count towards a lockout: the cloud's own state (rate
 * limits, lockouts, internal errors), and CERT_REQUIRED, a connection without
 * a client certificate, which cannot be a guess at a certificate device's
 * credential (counting it would let anyone lock such a device out).
 */
export const NOT_COUNTED: ReadonlySet<string> = new Set<AuthFailure>(["RATE_LIMITED", "LOCKED_OUT", "INTERNAL", "CERT_REQUIRED"]);
