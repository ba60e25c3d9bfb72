/*
 * The admin service layer: every operation an operator can perform, validated
 * and audited, used by the CLI, the HTTP API, the demo and tests alike.
 *
 * Each method validates its whole input (bounded sizes, device ids via
 * protocol.checkDeviceId) before it writes, writes in one transaction, and
 * throws CloudError; a refused call changes nothing stored. Results never
 * contain a stored secret, except the values created by the call itself and
 * shown once (a provisioning key, a device private key).
 */
import { randomBytes, X509Certificate as NodeX509 } from "node:crypto";
import { isIP } from "node:net";
import { importBundle, MAX_BUNDLE_BYTES, type BundleImportResult } from "./bundle";
import { MAX_CSV_BYTES } from "./csv";
import { importCsv, type CsvImportResult } from "./csv-import";
import { deviceId, invalid, name, object, optionalInt, secretHex, time } from "./admin-input";
import { CloudError } from "./errors";
import { deviceCertificateUsage } from "./auth/certificate";
import { certificateNamesId, createCa, fingerprint, isCa, issueCertificate, issuedBy, MAX_CRL_BYTES, normalizeSerial, parseCertificate, parseCertificateRequest, privateKeyPem, verifyCrl, withinValidity } from "./pki";
import { hotspotStatusView, type HotspotStatus, type HotspotStatusView } from "./radius/session-store";
import type { DisconnectReport } from "./radius/server";
import type { AuditFilter, AuditRecord, CaRow, DeviceView, NasClientRow, Registry, RevokedCertificate } from "./registry";
import { unlockShared } from "./shared-limits";

function boundedText(value: unknown, field: string, max: number): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max || !/^[\x20-\x7e]*$/.test(value)) invalid(field, `must be 1-${max} printable ASCII characters`);
  return value as string;
}

/** Largest allowlist given at lot creation. */
export const MAX_ALLOWLIST = 1_000_000;

/** A product CA as the admin sees it. */
export interface ProductCaInfo {
  name: string;
  certificatePem: string;
  fingerprint: string;
  /** true when the cloud holds the key and can issue device certificates */
  canIssue: boolean;
  revoked: boolean;
  createdAt: string;
}

/** A device certificate issued by the cloud, with its private key (shown once). */
export interface IssuedDeviceCertificate {
  deviceId: string;
  caName: string;
  certificatePem: string;
  /** PKCS#8 PEM */
  privateKeyPem: string;
  fingerprint: string;
  /** serial number (lower-case hex), for `cert revoke --serial` */
  serial: string;
}

/** A provisioning key created for a lot (the key is shown once). */
export interface ProvisioningKeyInfo {
  lot: string;
  /** 32 random bytes as 64 hex digits */
  provisioningKeyHex: string;
  /** size of the allowlist, or null when any device id may use the key */
  allowlist: number | null;
}

/** A lot as the admin sees it (never its key). */
export interface LotInfo {
  lot: string;
  allowlist: number | null;
  /** no new temporary login (retire or revoke) */
  retired: boolean;
  /** the key was revoked: also no issuance from a live temporary session, pending secrets dropped */
  revoked: boolean;
  /** the line's expected rate of first claims, claims per hour (null: none set) */
  lineRate: number | null;
  /** ids of the lot claimed by a temporary login (since registration or their last reprovision) */
  claimed: number;
  /** claims in the last hour */
  claimsLastHour: number;
  /** claimsLastHour is above lineRate: claims come faster than the line makes devices (audit: lot.claim-rate-exceeded) */
  claimRateExceeded: boolean;
  createdAt: string;
}

/** Largest line rate accepted, claims per hour. */
export const MAX_LINE_RATE = 10_000_000;

/** A RADIUS client (access point) as the admin sees it: never its secret. */
export interface NasClientInfo {
  name: string;
  /** source IP address of its RADIUS packets, or "*" (any address, matched by NAS-Identifier = name) */
  address: string;
  createdAt: string;
}

/** Bounds of a NAS shared secret (RFC 2865 section 3 recommends at least 16 octets). */
export const NAS_SECRET_MIN = 16;
export const NAS_SECRET_MAX = 128;

/** Callbacks the running cloud installs so that revocations end live sessions. */
export interface ServiceHooks {
  deviceRevoked?(deviceId: string): void;
  caRevoked?(caName: string): void;
  /** certificates were revoked: close the live sessions whose client certificate is now refused */
  certificatesRevoked?(): void;
  /** a lot's key was retired: nothing to close (live temporary sessions may finish) */
  lotRetired?(lot: string): void;
  /** a lot's key was revoked: close the sessions of `temporaryIds` */
  lotKeyRevoked?(lot: string, temporaryIds: string[]): void;
  /** a whole lot was revoked: close the sessions of `deviceIds` */
  lotRevoked?(lot: string, deviceIds: string[]): void;
  /** an operator unlocked `deviceId`: forget the failures and locks of the login limits; returns whether it was locked */
  deviceUnlocked?(deviceId: string): boolean | Promise<boolean>;
  /** a rotated secret is pending: tell the device's live session */
  secretRotated?(deviceId: string): void;
  /** the device's hotspot status (RADIUS authentications and accounting, cloud/radius/session-store.ts), when RADIUS runs */
  hotspotStatus?(deviceId: string): Promise<HotspotStatus | undefined>;
  /** sends Disconnect-Requests (RFC 5176) for the device's live hotspot sessions, when RADIUS runs */
  disconnectHotspot?(deviceId: string, reason: string): Promise<DisconnectReport[]>;
  /** runs a bundle import off the event loop (cloud/admin-worker.ts: a worker thread with its own registry connection); absent: in this thread */
  bulkImport?(actor: string, bundle: readonly Uint8Array[], checksum: string): Promise<BundleImportResult>;
  /** runs a CSV import off the event loop (the same worker); absent: in this thread */
  bulkImportCsv?(actor: string, csv: string, caName: string | undefined, lot: string | undefined): Promise<CsvImportResult>;
}

/** A device with its hotspot status (getDevice). */
export type DeviceStatusView = DeviceView & { hotspot?: HotspotStatusView };

/** The admin services over one registry. */
export class CloudServices {
  /**
   * @param registry - the open registry
   * @param actor - who performs the operations, for the audit log (e.g. "admin:cli")
   * @param hooks - installed by startCloud to end live sessions on revocation
   */
  constructor(readonly registry: Registry, readonly actor = "admin", readonly hooks: ServiceHooks = {}) {}

  /** The same services acting as another actor (audit log). */
  as(actor: string): CloudServices {
    return new CloudServices(this.registry, actor, this.hooks);
  }

  #caInfo(row: CaRow): ProductCaInfo {
    return {
      name: row.name, certificatePem: row.cert_pem, fingerprint: row.fingerprint, canIssue: row.key_enc !== null,
      revoked: row.revoked === 1, createdAt: new Date(row.created_at).toISOString(),
    };
  }

  async #requireCa(caName: string, field = "caName"): Promise<CaRow> {
    const row = await this.registry.ca(caName);
    if (!row) throw new CloudError("CA_NOT_FOUND", `no CA named ${caName}`, { field });
    if (row.revoked) throw new CloudError("CA_REVOKED", `CA ${caName} is revoked`, { field });
    return row;
  }

  /**
   * Creates a product CA (self-signed RSA-2048; its key is kept sealed so the
   * cloud can issue device certificates).
   * @example await services.createProductCa({ name: "lamps-2025" })
   */
  async createProductCa(input: { name: string; days?: number }): Promise<ProductCaInfo> {
    const body = object(input);
    const caName = name(body.name, "name");
    const days = optionalInt(body.days, "days", 1, 36_500, 3650);
    if ((await this.registry.ca(caName))) throw new CloudError("CA_EXISTS", `a CA named ${caName} exists`, { field: "name" });
    const ca = await createCa(`${caName} product CA`, days);
    await this.registry.insertCa(caName, ca.certPem, fingerprint(new NodeX509(ca.certPem)), ca.keyDer, this.actor);
    return this.#caInfo((await this.registry.ca(caName))!);
  }

  /** Registers an external product CA from its PEM certificate (the cloud does not hold its key). */
  async registerProductCa(input: { name: string; certificatePem: string }): Promise<ProductCaInfo> {
    const body = object(input);
    const caName = name(body.name, "name");
    const cert = parseCertificate(body.certificatePem, "certificatePem");
    if (!isCa(cert)) throw new CloudError("CERT_INVALID", "not a CA certificate (basic constraints CA:TRUE)", { field: "certificatePem" });
    if (!withinValidity(cert, this.registry.now())) throw new CloudError("CERT_INVALID", "outside its validity period", { field: "certificatePem" });
    await this.registry.insertCa(caName, cert.toString(), fingerprint(cert), undefined, this.actor);
    return this.#caInfo((await this.registry.ca(caName))!);
  }

  /** Every product CA. */
  async listProductCas(): Promise<ProductCaInfo[]> {
    return (await this.registry.cas()).map((row) => this.#caInfo(row));
  }

  /** Revokes a product CA: devices under it are refused from the next connect, live sessions end. */
  async revokeProductCa(input: { name: string }): Promise<ProductCaInfo> {
    const caName = name(object(input).name, "name");
    await this.registry.revokeCa(caName, this.actor);
    this.hooks.caRevoked?.(caName);
    return this.#caInfo((await this.registry.ca(caName))!);
  }

  /**
   * Issues a device certificate (CN and SAN = device id, clientAuth) from a CA the
   * cloud created. Does not register the device: call registerCertificateDevice.
   * @param input.keyType - "rsa" (RSA-2048, default; what Moddable can sign with) or "ec" (P-256)
   */
  async issueDeviceCertificate(input: { caName: string; deviceId: string; keyType?: "rsa" | "ec"; days?: number }): Promise<IssuedDeviceCertificate> {
    const body = object(input);
    const caName = name(body.caName, "caName");
    const id = deviceId(body.deviceId);
    if (body.keyType !== undefined && body.keyType !== "rsa" && body.keyType !== "ec") invalid("keyType", "must be rsa or ec");
    const days = optionalInt(body.days, "days", 1, 36_500, 825);
    const ca = await this.#requireCa(caName);
    const caKey = this.registry.caKey(ca);
    if (!caKey) throw new CloudError("CA_HAS_NO_KEY", `the cloud does not hold the key of CA ${caName}`, { field: "caName" });
    const issued = await issueCertificate({
      caCertPem: ca.cert_pem, caKeyDer: caKey, commonName: id, usage: "client", dnsNames: [id],
      keyType: (body.keyType as "rsa" | "ec" | undefined) ?? "rsa", days,
    });
    const cert = new NodeX509(issued.certPem);
    const fp = fingerprint(cert);
    const serial = normalizeSerial(cert.serialNumber);
    await this.registry.tx(() => this.registry.audit(this.actor, "certificate.issue", id, `ca=${caName} serial=${serial} sha256=${fp.slice(0, 16)}`));
    return { deviceId: id, caName, certificatePem: issued.certPem, privateKeyPem: privateKeyPem(issued.keyDer), fingerprint: fp, serial };
  }

  /**
   * Signs a device's PKCS#10 request (key made on the device or elsewhere) with a
   * CA the cloud created: CN and SAN = device id, clientAuth. The request's CN,
   * if any, must be the device id. Does not register the device.
   */
  async signDeviceCsr(input: { caName: string; deviceId: string; csrPem: string; days?: number }): Promise<{ deviceId: string; caName: string; certificatePem: string; fingerprint: string; serial: string }> {
    const body = object(input);
    const caName = name(body.caName, "caName");
    const id = deviceId(body.deviceId);
    const days = optionalInt(body.days, "days", 1, 36_500, 825);
    const request = await parseCertificateRequest(body.csrPem);
    if (request.commonName !== undefined && request.commonName !== id) throw new CloudError("CERT_INVALID", "the request's CN must be the device id", { field: "csrPem" });
    const ca = await this.#requireCa(caName);
    const caKey = this.registry.caKey(ca);
    if (!caKey) throw new CloudError("CA_HAS_NO_KEY", `the cloud does not hold the key of CA ${caName}`, { field: "caName" });
    const issued = await issueCertificate({
      caCertPem: ca.cert_pem, caKeyDer: caKey, commonName: id, usage: "client", dnsNames: [id], keyType: request.keyType, days, publicKey: request.publicKey,
    });
    const cert = new NodeX509(issued.certPem);
    const fp = fingerprint(cert);
    const serial = normalizeSerial(cert.serialNumber);
    await this.registry.tx(() => this.registry.audit(this.actor, "certificate.sign", id, `ca=${caName} serial=${serial} sha256=${fp.slice(0, 16)}`));
    return { deviceId: id, caName, certificatePem: issued.certPem, fingerprint: fp, serial };
  }

  /**
   * Revokes one device certificate, by its CA and serial number (hex, colons
   * allowed) or by its SHA-256 fingerprint (64 hex digits, colons allowed):
   * refused at every later mTLS connect and EAP-TLS authentication
   * (CERT_REVOKED), live sessions with it closed. Audited (`certificate.revoke`).
   * @example await services.revokeCertificate({ caName: "lamps", serial: "5a3f01" })
   * @throws INVALID_INPUT, CA_NOT_FOUND
   */
  async revokeCertificate(input: { caName?: string; serial?: string; fingerprint?: string; reason?: string }): Promise<{ revoked: RevokedCertificate; alreadyRevoked: boolean }> {
    const body = object(input);
    const reason = body.reason === undefined ? null : boundedText(body.reason, "reason", 100);
    let entry: { caName: string; serial: string } | { fingerprint: string };
    if (body.fingerprint !== undefined) {
      if (body.caName !== undefined || body.serial !== undefined) invalid("fingerprint", "give either fingerprint, or caName and serial");
      const fp = typeof body.fingerprint === "string" ? body.fingerprint.replace(/:/g, "").toLowerCase() : "";
      if (!/^[0-9a-f]{64}$/.test(fp)) invalid("fingerprint", "must be a SHA-256 fingerprint (64 hex digits, colons allowed)");
      entry = { fingerprint: fp };
    } else {
      const caName = name(body.caName, "caName");
      if (typeof body.serial !== "string" || !/^[0-9A-Fa-f:]{1,64}$/.test(body.serial)) invalid("serial", "must be a serial number in hex (at most 20 bytes, colons allowed)");
      const serial = normalizeSerial(body.serial as string);
      if (serial.length > 40) invalid("serial", "must be at most 20 bytes");
      entry = { caName, serial };
    }
    const added = await this.registry.revokeCertificate(entry, reason, this.actor);
    if (added) this.hooks.certificatesRevoked?.();
    const revoked = "caName" in entry
      ? (await this.registry.certificateRevocation(entry.caName, entry.serial, ""))!
      : (await this.registry.certificateRevocation("", "", entry.fingerprint))!;
    return { revoked, alreadyRevoked: !added };
  }

  /**
   * Imports a CRL of a registered product CA (PEM text or DER as base64),
   * verified against the CA's key: every serial it lists is revoked from now on
   * (entries are only ever added). Audited (`ca.crl-import`).
   * @throws CERT_INVALID (does not parse or verify), CA_NOT_FOUND, INVALID_INPUT
   */
  async importCrl(input: { caName: string; crlPem?: string; crlDerBase64?: string }): Promise<{ caName: string; crlNumber: string | null; entries: number; added: number; thisUpdate: string; nextUpdate: string | null }> {
    const body = object(input);
    const caName = name(body.caName, "caName");
    if ((body.crlPem === undefined) === (body.crlDerBase64 === undefined)) invalid("crlPem", "give exactly one of crlPem and crlDerBase64");
    let crl: string | Uint8Array;
    if (body.crlPem !== undefined) {
      if (typeof body.crlPem !== "string" || body.crlPem.length > MAX_CRL_BYTES * 1.4) invalid("crlPem", "must be a PEM X509 CRL");
      crl = body.crlPem as string;
    } else {
      if (typeof body.crlDerBase64 !== "string" || body.crlDerBase64.length > MAX_CRL_BYTES * 1.4 || !/^[A-Za-z0-9+/=\s]*$/.test(body.crlDerBase64)) invalid("crlDerBase64", "must be base64 DER");
      crl = new Uint8Array(Buffer.from(body.crlDerBase64 as string, "base64"));
    }
    const ca = await this.registry.ca(caName);
    if (!ca) throw new CloudError("CA_NOT_FOUND", `no CA named ${caName}`, { field: "caName" });
    const verified = await verifyCrl(crl, ca.cert_pem, this.registry.now());
    const added = await this.registry.importCrlSerials(caName, verified.serials, verified.crlNumber, this.actor);
    if (added > 0) this.hooks.certificatesRevoked?.();
    return {
      caName, crlNumber: verified.crlNumber ?? null, entries: verified.serials.length, added,
      thisUpdate: verified.thisUpdate.toISOString(), nextUpdate: verified.nextUpdate?.toISOString() ?? null,
    };
  }

  /** Revoked certificates, newest first (of one CA, or all; at most `limit`, default 1000). */
  async listRevokedCertificates(input: { caName?: string; limit?: number } = {}): Promise<RevokedCertificate[]> {
    const body = object(input);
    const caName = body.caName === undefined ? undefined : name(body.caName, "caName");
    return await this.registry.revokedCertificates(caName, optionalInt(body.limit, "limit", 1, 10_000, 1000));
  }

  /**
   * Registers a shared-secret device (the secret it was manufactured with, 16-64 bytes hex).
   * @example await services.registerSecretDevice({ deviceId: "lamp-0001", secretHex: "00ff..." })
   */
  async registerSecretDevice(input: { deviceId: string; secretHex: string }): Promise<DeviceView> {
    const body = object(input);
    const id = deviceId(body.deviceId);
    const secret = secretHex(body.secretHex);
    await this.registry.tx(() => this.registry.insertSecretDevice(id, secret, this.actor));
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Registers a certificate device, either pinned to one certificate
   * (`certificatePem`, whose CN or SAN must be the id and whose issuer must be a
   * registered CA) or by id under a CA (`caName`: any valid certificate of that
   * CA naming the id is accepted).
   */
  async registerCertificateDevice(input: { deviceId: string; certificatePem?: string; caName?: string }): Promise<DeviceView> {
    const body = object(input);
    const id = deviceId(body.deviceId);
    if ((body.certificatePem === undefined) === (body.caName === undefined)) invalid("certificatePem", "give exactly one of certificatePem and caName");
    if (body.caName !== undefined) {
      const ca = await this.#requireCa(name(body.caName, "caName"));
      await this.registry.tx(() => this.registry.insertCertificateDevice(id, ca.name, null, this.actor));
    } else {
      const cert = parseCertificate(body.certificatePem, "certificatePem");
      if (!certificateNamesId(cert, id)) throw new CloudError("CERT_INVALID", "CN or SAN must equal the device id", { field: "certificatePem" });
      if (!withinValidity(cert, this.registry.now())) throw new CloudError("CERT_INVALID", "outside its validity period", { field: "certificatePem" });
      const usage = deviceCertificateUsage(cert);
      if (usage) throw new CloudError("CERT_INVALID", usage, { field: "certificatePem" });
      const ca = (await this.registry.cas()).find((row) => !row.revoked && issuedBy(cert, new NodeX509(row.cert_pem)));
      if (!ca) throw new CloudError("UNKNOWN_CA", "not issued by a registered, unrevoked product CA", { field: "certificatePem" });
      await this.registry.tx(() => this.registry.insertCertificateDevice(id, ca.name, fingerprint(cert), this.actor));
    }
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Creates a provisioning key for a lot: 32 random bytes, returned once.
   * With `allowlist`, only those device ids may use it; without, any id may.
   */
  async createProvisioningKey(input: { lot: string; allowlist?: string[]; lineRate?: number }): Promise<ProvisioningKeyInfo> {
    const body = object(input);
    const lot = name(body.lot, "lot");
    const lineRate = body.lineRate === undefined ? null : optionalInt(body.lineRate, "lineRate", 1, MAX_LINE_RATE, 1);
    let allowlist: string[] | undefined;
    if (body.allowlist !== undefined) {
      if (!Array.isArray(body.allowlist) || body.allowlist.length > MAX_ALLOWLIST) invalid("allowlist", `must be an array of at most ${MAX_ALLOWLIST} device ids`);
      allowlist = body.allowlist.map((id, i) => deviceId(id, `allowlist[${i}]`));
    }
    const key = new Uint8Array(randomBytes(32));
    await this.registry.insertLot(lot, key, allowlist, this.actor, lineRate);
    return { lot, provisioningKeyHex: Buffer.from(key).toString("hex"), allowlist: allowlist ? new Set(allowlist).size : null };
  }

  /**
   * Retires a lot's provisioning key, once the lot is done: from now on no
   * temporary login with it (CONNACK 5, LOT_RETIRED). Gentle: a temporary
   * session already open may finish its issuance, an issued secret may still
   * be committed, and devices that hold a permanent secret are not affected.
   * Retiring a retired lot changes nothing. @throws LOT_NOT_FOUND
   */
  async retireProvisioningKey(input: { lot: string }): Promise<LotInfo> {
    const lot = name(object(input).lot, "lot");
    await this.registry.retireLot(lot, this.actor);
    this.hooks.lotRetired?.(lot);
    return await this.#lotInfo(lot);
  }

  /**
   * Revokes a lot's provisioning key at once (it leaked): no temporary login
   * with it, live temporary sessions of the lot closed, secrets issued under it
   * but not committed dropped. Devices that already hold a permanent secret
   * keep working (revoke them, or the lot, if they are suspect). @throws LOT_NOT_FOUND
   */
  async revokeProvisioningKey(input: { lot: string }): Promise<LotInfo & { closedTemporary: number }> {
    const lot = name(object(input).lot, "lot");
    const temporary = await this.registry.revokeLotKey(lot, this.actor);
    this.hooks.lotKeyRevoked?.(lot, temporary);
    return { ...(await this.#lotInfo(lot)), closedTemporary: temporary.length };
  }

  /**
   * Revokes a whole lot: its key is revoked (as revokeProvisioningKey) and every
   * device of the lot, temporary or permanent, is revoked and its live session
   * closed; each device's revocation is audited. @throws LOT_NOT_FOUND
   */
  async revokeLot(input: { lot: string }): Promise<LotInfo & { revokedDevices: number }> {
    const lot = name(object(input).lot, "lot");
    const ids = await this.registry.revokeLot(lot, this.actor);
    this.hooks.lotRevoked?.(lot, ids);
    return { ...(await this.#lotInfo(lot)), revokedDevices: ids.length };
  }

  async #lotInfo(lot: string): Promise<LotInfo> {
    const row = (await this.registry.lots()).find((l) => l.lot === lot);
    if (!row) throw new CloudError("LOT_NOT_FOUND", `no lot ${lot}`, { field: "lot" });
    return await this.#lotView(row);
  }

  async #lotView(row: Awaited<ReturnType<Registry["lots"]>>[number]): Promise<LotInfo> {
    const claims = await this.registry.lotClaims(row.lot);
    const lineRate = row.line_rate ?? null;
    return {
      lot: row.lot, allowlist: row.has_allowlist ? row.devices : null, retired: row.retired === 1, revoked: row.revoked === 1,
      lineRate, claimed: claims.claimed, claimsLastHour: claims.lastHour, claimRateExceeded: lineRate !== null && claims.lastHour > lineRate,
      createdAt: new Date(row.created_at).toISOString(),
    };
  }

  /** Every lot (never its key), with its claims and line rate. */
  async listProvisioningKeys(): Promise<LotInfo[]> {
    return Promise.all((await this.registry.lots()).map((row) => this.#lotView(row)));
  }

  /** One lot (never its key). @throws LOT_NOT_FOUND */
  async getLot(input: { lot: string }): Promise<LotInfo> {
    return await this.#lotInfo(name(object(input).lot, "lot"));
  }

  /**
   * Sets a lot's line rate: the claims per hour its manufacturing line can make.
   * When a lot's claims (first temporary logins) in the last hour pass it, the
   * cloud audits lot.claim-rate-exceeded (at most once an hour) and the lot shows
   * claimRateExceeded: a sign that its key or devices' secrets are used by
   * someone else. Claims are not refused. `null` clears it. @throws LOT_NOT_FOUND, INVALID_INPUT
   */
  async setLotLineRate(input: { lot: string; lineRate: number | null }): Promise<LotInfo> {
    const body = object(input);
    const lot = name(body.lot, "lot");
    const lineRate = body.lineRate === null ? null : optionalInt(body.lineRate, "lineRate", 1, MAX_LINE_RATE, 1);
    if (body.lineRate === undefined) invalid("lineRate", "must be claims per hour (1..10000000) or null");
    await this.registry.setLineRate(lot, lineRate, this.actor);
    return await this.#lotInfo(lot);
  }

  /** Devices with state, credential, last failure and last seen, in id order. */
  async listDevices(input: { limit?: number; offset?: number } = {}): Promise<DeviceView[]> {
    const body = object(input);
    const limit = optionalInt(body.limit, "limit", 1, 10_000, 1000);
    const offset = optionalInt(body.offset, "offset", 0, Number.MAX_SAFE_INTEGER, 0);
    return await this.registry.listDevices(limit, offset);
  }

  /** One device, with its hotspot status when RADIUS runs. @throws DEVICE_NOT_FOUND */
  async getDevice(input: { deviceId: string }): Promise<DeviceStatusView> {
    const id = deviceId(object(input).deviceId);
    const row = await this.registry.device(id);
    if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
    const view = this.registry.view(row);
    const hotspot = await this.hooks.hotspotStatus?.(id);
    return hotspot ? { ...view, hotspot: hotspotStatusView(hotspot) } : view;
  }

  /**
   * Ends a device's live hotspot sessions by hand: a Disconnect-Request (RFC 5176)
   * to each NAS that holds one (from accounting), with retries. The device stays
   * allowed: it may authenticate again.
   * @returns the outcome per live session (ack, nak with its Error-Cause, no-answer); none when it has no live session
   * @throws DEVICE_NOT_FOUND, INVALID_INPUT when the cloud runs no RADIUS server
   */
  async disconnectDevice(input: { deviceId: string }): Promise<{ deviceId: string; sessions: DisconnectReport[] }> {
    const id = deviceId(object(input).deviceId);
    const hook = this.hooks.disconnectHotspot;
    if (!hook) throw new CloudError("INVALID_INPUT", "this cloud runs no RADIUS server: no hotspot sessions to disconnect", { field: "deviceId" });
    if (!(await this.registry.device(id)) && !(await this.hooks.hotspotStatus?.(id))) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
    const sessions = await hook(id, `operator ${this.actor}`);
    await this.registry.audit(this.actor, "radius.disconnect", id, sessions.map((s) => `${s.nas}:${s.outcome.kind}`).join(",") || "no live session");
    return { deviceId: id, sessions };
  }

  /** Revokes a device: refused at every later connect, and its live session is closed. */
  async revokeDevice(input: { deviceId: string }): Promise<DeviceView> {
    const id = deviceId(object(input).deviceId);
    await this.registry.revokeDevice(id, this.actor);
    this.hooks.deviceRevoked?.(id);
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Ends a device's lockout (LOCKED_OUT after repeated failed logins) and
   * forgets its failure and lockout counts, so its next login is verified at
   * once. Works on an id with no device row when the running cloud holds a
   * lock for it (in memory, or shared rows on PostgreSQL). Audited. @throws DEVICE_NOT_FOUND, INVALID_INPUT
   */
  async unlockDevice(input: { deviceId: string }): Promise<DeviceView | { deviceId: string; unlocked: boolean }> {
    const id = deviceId(object(input).deviceId);
    const inMemory = (await this.hooks.deviceUnlocked?.(id)) ?? false;
    // on PostgreSQL the locks are shared rows (cloud/shared-limits.ts): a CLI without a running cloud ends them too
    const shared = this.registry.storage.dialect === "postgres" && (await unlockShared(this.registry.storage, id, this.registry.now()));
    if (!(await this.registry.device(id))) {
      if (!inMemory && !shared) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
      await this.registry.tx(() => this.registry.audit(this.actor, "device.unlock", id, "unregistered id, was locked"));
      return { deviceId: id, unlocked: true };
    }
    await this.registry.unlockDevice(id, this.actor);
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Takes a squatted identity back: someone who held a device's temporary
   * credential (the lot key, or that device's dumped secret) logged in as it and
   * committed a secret of their own, so the genuine device is refused
   * (TEMP_RETIRED). Reprovisioning drops that secret (active and pending) and
   * closes the live session, lifts a revocation, resets the login counter,
   * lockouts and the claim, and drops network state sealed to the old holder's
   * key: the genuine device's next temporary login is accepted and issues it a
   * new secret, and the squatter's secret is refused from now on. Whoever still
   * holds the temporary credential can claim the id again too: with a lot-key lot
   * that is anyone holding the lot key (docs/manufacturing.md). Audited
   * (device.reprovision, then device.claim at the next claim).
   * @throws DEVICE_NOT_FOUND, INVALID_INPUT (not a device of a temporary lot), LOT_RETIRED (the lot is retired or its key revoked)
   */
  async reprovisionDevice(input: { deviceId: string }): Promise<DeviceView & { previousGeneration: number }> {
    const id = deviceId(object(input).deviceId);
    const { previousGeneration } = await this.registry.reprovision(id, this.actor);
    this.hooks.deviceRevoked?.(id); // closes the squatter's live session
    this.hooks.deviceUnlocked?.(id); // and forgets in-memory failures against the id
    return { ...this.registry.view((await this.registry.device(id))!), previousGeneration };
  }

  /**
   * Resets the device's login counter (after its flash was erased, see
   * docs/protocol.md 4.2). The device's next login with any counter is accepted.
   * @throws DEVICE_NOT_FOUND, INVALID_INPUT
   */
  async resetLoginCounter(input: { deviceId: string }): Promise<DeviceView> {
    const id = deviceId(object(input).deviceId);
    await this.registry.resetLoginCounter(id, this.actor);
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Starts a secret rotation for a shared-secret device: a new secret is stored
   * as pending; the device fetches it with `issue` (wrapped under its current
   * secret and, when the device registered a format-3 sealing key, sealed to
   * that key too: docs/protocol.md 9.5) and commits it like an issued permanent secret.
   * @throws DEVICE_NOT_FOUND, DEVICE_REVOKED, INVALID_INPUT (not a secret device or a rotation is pending)
   */
  async rotateSecret(input: { deviceId: string }): Promise<DeviceView> {
    const id = deviceId(object(input).deviceId);
    const row = await this.registry.device(id);
    if (!row) throw new CloudError("DEVICE_NOT_FOUND", `no device ${id}`, { field: "deviceId" });
    if (row.revoked) throw new CloudError("DEVICE_REVOKED", `device ${id} is revoked`, { field: "deviceId" });
    if (row.kind !== "secret") invalid("deviceId", "only shared-secret devices rotate their secret");
    if (!(await this.registry.storePending(id, new Uint8Array(randomBytes(32)), row.generation + 1, new Uint8Array(randomBytes(16)), this.actor))) {
      invalid("deviceId", "a rotation is already pending");
    }
    this.hooks.secretRotated?.(id);
    return this.registry.view((await this.registry.device(id))!);
  }

  /**
   * Bulk registration from CSV (`device_id,option,secret_hex`): option secret
   * registers the id with its secret; certificate registers the id under
   * `caName`; temporary adds the id to the allowlist of `lot`. A bad CSV changes
   * nothing: the first bad line is reported (CSV_INVALID with `line`) before any
   * write; the rows then go in short transactions (cloud/csv-import.ts), in the
   * running cloud in its admin worker thread (hooks.bulkImportCsv).
   */
  async importDevicesCsv(input: { csv: string; caName?: string; lot?: string }): Promise<CsvImportResult> {
    const body = object(input);
    if (typeof body.csv !== "string") invalid("csv", "must be CSV text");
    if (body.csv.length > MAX_CSV_BYTES) throw new CloudError("TOO_LARGE", `CSV larger than ${MAX_CSV_BYTES} bytes`);
    const caName = body.caName === undefined ? undefined : name(body.caName, "caName");
    const lotName = body.lot === undefined ? undefined : name(body.lot, "lot");
    if (this.hooks.bulkImportCsv) return this.hooks.bulkImportCsv(this.actor, body.csv as string, caName, lotName);
    return importCsv(this.registry, this.actor, body.csv as string, caName, lotName);
  }

  /**
   * Imports a manufacturing registration bundle (cloud/bundle.ts,
   * docs/manufacturing.md) after checking it against its SHA-256 checksum.
   * A bad bundle changes nothing; the rows go in short transactions;
   * importing the same bundle again changes nothing and answers
   * `alreadyImported: true` (or finishes an import cut short). In the running
   * cloud it runs in a worker thread (hooks.bulkImport), off the event loop that serves devices.
   * @param input.bundle - the bytes, whole or as the chunks a request body arrived in
   * @throws BUNDLE_INVALID (checksum, or a bad line with `line`), CA_NOT_FOUND, CA_REVOKED, LOT_EXISTS, TOO_LARGE
   */
  async importBundle(input: { bundle: Uint8Array | readonly Uint8Array[]; checksum: string }): Promise<BundleImportResult> {
    const body = object(input);
    const chunks = body.bundle instanceof Uint8Array ? [body.bundle] : body.bundle;
    if (!Array.isArray(chunks) || !chunks.every((c) => c instanceof Uint8Array)) invalid("bundle", "must be bytes");
    if (typeof body.checksum !== "string" || body.checksum.length > 1024) invalid("checksum", "must be the checksum file's text");
    const parts = chunks as Uint8Array[];
    const size = parts.reduce((n, c) => n + c.byteLength, 0);
    if (size > MAX_BUNDLE_BYTES) throw new CloudError("TOO_LARGE", `bundle larger than ${MAX_BUNDLE_BYTES} bytes`);
    if (this.hooks.bulkImport) return this.hooks.bulkImport(this.actor, parts, body.checksum as string);
    const bytes = parts.length === 1 ? Buffer.from(parts[0].buffer, parts[0].byteOffset, parts[0].byteLength) : Buffer.concat(parts);
    return importBundle(this.registry, this.actor, bytes, body.checksum as string);
  }

  /**
   * The most recent audit records, newest first, filtered (all optional, AND):
   * `deviceId`; `action` exact or a prefix ending in `.` or `*` (`login.`,
   * `lot.*`); `actor`; `since` / `until` as ISO 8601 or ms since the epoch;
   * `before` a sequence number (paging: pass the last `seq` you got).
   * @example await services.auditLog({ action: "login.", since: "2025-06-01T00:00:00Z", limit: 50 })
   */
  async auditLog(input: { limit?: number; deviceId?: string; action?: string; actor?: string; since?: string | number; until?: string | number; before?: number } = {}): Promise<AuditRecord[]> {
    const body = object(input);
    const limit = optionalInt(body.limit, "limit", 1, 10_000, 100);
    const filter: AuditFilter = {};
    if (body.action !== undefined) {
      if (typeof body.action !== "string" || !/^[a-z0-9.*_-]{1,64}$/.test(body.action)) invalid("action", "must be an action name or a prefix ending in . or *");
      filter.action = body.action;
    }
    if (body.actor !== undefined) {
      if (typeof body.actor !== "string" || body.actor.length < 1 || body.actor.length > 64) invalid("actor", "must be 1-64 characters");
      filter.actor = body.actor;
    }
    filter.since = time(body.since, "since");
    filter.until = time(body.until, "until");
    if (body.before !== undefined) filter.before = optionalInt(body.before, "before", 1, Number.MAX_SAFE_INTEGER, 1);
    return await this.registry.auditLog(limit, body.deviceId === undefined ? undefined : deviceId(body.deviceId), filter);
  }

  #nasInfo(row: NasClientRow): NasClientInfo {
    return { name: row.name, address: row.address, createdAt: new Date(row.created_at).toISOString() };
  }

  /**
   * Registers a RADIUS client (an access point or its controller) with its shared secret.
   * @param input.address - the IP address its packets come from, or "*" to match it by NAS-Identifier (= name) from any address
   * @param input.secret - the shared secret, 16-128 printable ASCII characters
   * @throws INVALID_INPUT, NAS_EXISTS
   * @example await services.addNasClient({ name: "ap-lobby", address: "10.0.0.2", secret: "a long random shared secret" })
   */
  async addNasClient(input: { name: string; address: string; secret: string }): Promise<NasClientInfo> {
    const body = object(input);
    const nasName = name(body.name, "name");
    const address = body.address;
    if (typeof address !== "string" || (address !== "*" && isIP(address) === 0)) invalid("address", "must be an IPv4 or IPv6 address, or *");
    const secret = body.secret;
    if (typeof secret !== "string" || !/^[\x21-\x7e]+$/.test(secret) || secret.length < NAS_SECRET_MIN || secret.length > NAS_SECRET_MAX) {
      invalid("secret", `must be ${NAS_SECRET_MIN}-${NAS_SECRET_MAX} printable ASCII characters without spaces`);
    }
    await this.registry.insertNasClient(nasName, address.toLowerCase(), Buffer.from(secret as string, "latin1"), this.actor);
    return this.#nasInfo((await this.registry.nasClient(nasName))!);
  }

  /** Every RADIUS client (never a secret). */
  async listNasClients(): Promise<NasClientInfo[]> {
    return (await this.registry.nasClients()).map((row) => this.#nasInfo(row));
  }

  /** Removes a RADIUS client; its packets are dropped from the next one on. @throws NAS_NOT_FOUND */
  async removeNasClient(input: { name: string }): Promise<{ removed: string }> {
    const nasName = name(object(input).name, "name");
    await this.registry.removeNasClient(nasName, this.actor);
    return { removed: nasName };
  }
}
