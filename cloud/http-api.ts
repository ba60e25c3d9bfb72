/*
 * The admin HTTP JSON API over the service layer (node:http, or node:https).
 *
 * buildAdminApi() makes the app: a request handler plus inject() so tests call
 * routes without sockets; listenAdminApi() binds it to a port (fastify's
 * build/listen split). Every request passes admin-guard.ts first (Host,
 * Origin, bearer token; there is no unauthenticated mode), except the
 * liveness and readiness probes /healthz and /readyz (cloud/health.ts), which
 * change and reveal nothing. Bodies are JSON
 * only (`application/json`; CSV import also takes `text/csv`, which is not a
 * CORS-safelisted type), so no simple cross-site request changes anything.
 * A manufacturing bundle (POST /v1/bundles/import) is `application/x-ndjson`
 * (not CORS-safelisted either), up to MAX_BUNDLE_BYTES, its SHA-256 in the
 * query (`?sha256=<hex>`); the body is kept as the chunks it arrived in and
 * handed to the admin worker (cloud/admin-worker.ts), which parses, checks
 * and writes it off this event loop.
 * Bodies are bounded (1 MiB JSON, 50 MiB CSV, 512 MiB bundle). Errors are
 * `{ "error": { "code", "message", "field"?, "line"? } }` with the HTTP status
 * of the code (cloud/errors.ts; catalogue in cloud/README.md).
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { randomUUID } from "node:crypto";
import { errorText, type CloudLog } from "./log";
import { CloudError, isCloudError } from "./errors";
import { checkAdminRequest, LOOPBACK_NAMES, type AdminAccess } from "./admin-guard";
import { MAX_CSV_BYTES } from "./csv";
import { MAX_BUNDLE_BYTES } from "./bundle";
import type { CloudServices } from "./services";
import { NetworkServices } from "./network-service";
import { HEALTH_PATHS, probeResponse, type ReadinessProbe } from "./health";

/** Largest JSON request body. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

/** A request as the router sees it. */
export interface AdminRequest {
  method: string;
  /** path and query, e.g. `/v1/devices?limit=10` */
  url: string;
  headers?: Record<string, string | undefined>;
  /** raw body (a bundle route also takes the chunks it arrived in) */
  body?: string | Uint8Array | readonly Uint8Array[];
}

/** A response: status and JSON body. */
export interface AdminResponse {
  status: number;
  body: unknown;
  /** the id of this request in the log lines (also sent as X-Request-Id) */
  requestId?: string;
}

/** The built API. */
export interface AdminApi {
  /** node:http request listener */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Runs a request through the guard and the routes without a socket. */
  inject(request: AdminRequest): Promise<AdminResponse>;
  /** What requests must carry; listenAdminApi() sets `port` once bound. */
  readonly access: AdminAccess;
}

/** Options of buildAdminApi. */
export interface AdminApiOptions {
  /** hotspot profiles and private networks (default: over the same registry and actor as `services`) */
  network?: NetworkServices;
  /** every request needs `Authorization: Bearer <token>` (required: no unauthenticated mode) */
  token: string;
  /** accepted Host names (default localhost, 127.0.0.1, [::1]) */
  names?: string[];
  /** "https" when listenAdminApi() is given TLS (default "http"): the scheme of the admin's own Origin */
  scheme?: "http" | "https";
  /** answers GET /healthz and /readyz without credentials (cloud/health.ts); none when undefined */
  probe?: ReadinessProbe;
  /** one log line per request (cloud/log.ts): request id, method, path, status, error code, ms; never a body, header or query */
  log?: CloudLog;
}

type Handler = (ctx: {
  params: string[]; query: URLSearchParams; json: () => Record<string, unknown>; text: () => string; contentType: string;
  /** the body's bytes as they arrived (bundle routes) */
  chunks: () => readonly Uint8Array[];
}) => Promise<unknown>;

/** The media type of a bundle body (JSON lines). */
export const BUNDLE_MEDIA_TYPE = "application/x-ndjson";
/** The path of the bundle import. */
const BUNDLE_PATH = "/v1/bundles/import";

interface Route {
  method: string;
  pattern: RegExp;
  body: "json" | "csv" | "bundle" | "none";
  status?: number;
  handler: Handler;
}

function queryInt(query: URLSearchParams, key: string): number | undefined {
  const value = query.get(key);
  if (value === null) return undefined;
  if (!/^[0-9]{1,15}$/.test(value)) throw new CloudError("INVALID_INPUT", "must be a non-negative integer", { field: key });
  return Number(value);
}

function queryString(query: URLSearchParams, key: string): string | undefined {
  return query.get(key) ?? undefined;
}

function routes(services: CloudServices, network: NetworkServices): Route[] {
  const seg = "([A-Za-z0-9][A-Za-z0-9._-]{0,63})";
  return [
    { method: "GET", pattern: /^\/v1\/health$/, body: "none", handler: async () => ({ ok: true }) },
    {
      method: "GET", pattern: /^\/v1\/devices$/, body: "none",
      handler: async ({ query }) => ({ devices: await services.listDevices({ limit: queryInt(query, "limit"), offset: queryInt(query, "offset") }) }),
    },
    {
      method: "POST", pattern: /^\/v1\/devices$/, body: "json", status: 201,
      handler: async ({ json }) => {
        const body = json();
        if (body.secretHex !== undefined) return services.registerSecretDevice(body as never);
        return services.registerCertificateDevice(body as never);
      },
    },
    {
      method: "POST", pattern: /^\/v1\/devices\/import$/, body: "csv", status: 201,
      handler: async ({ query, text, json, contentType }) => {
        if (contentType === "text/csv") return services.importDevicesCsv({ csv: text(), caName: queryString(query, "caName"), lot: queryString(query, "lot") });
        const body = json();
        if (typeof body.csv !== "string") throw new CloudError("INVALID_INPUT", "must be a string", { field: "csv" });
        return services.importDevicesCsv({ csv: body.csv, caName: body.caName as never, lot: body.lot as never });
      },
    },
    {
      method: "POST", pattern: /^\/v1\/bundles\/import$/, body: "bundle", status: 201,
      handler: async ({ query, chunks }) => {
        const sha256 = query.get("sha256");
        if (sha256 === null || !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new CloudError("INVALID_INPUT", "give the bundle's SHA-256 as ?sha256=<64 hex digits>", { field: "sha256" });
        return services.importBundle({ bundle: chunks(), checksum: sha256 });
      },
    },
    { method: "GET", pattern: new RegExp(`^/v1/devices/${seg}$`), body: "none", handler: async ({ params }) => services.getDevice({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/revoke$`), body: "none", handler: async ({ params }) => services.revokeDevice({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/disconnect$`), body: "none", handler: async ({ params }) => services.disconnectDevice({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/rotate$`), body: "none", handler: async ({ params }) => services.rotateSecret({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/reset-counter$`), body: "none", handler: async ({ params }) => services.resetLoginCounter({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/reprovision$`), body: "none", handler: async ({ params }) => services.reprovisionDevice({ deviceId: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/unlock$`), body: "none", handler: async ({ params }) => services.unlockDevice({ deviceId: params[0] }) },
    { method: "GET", pattern: /^\/v1\/cas$/, body: "none", handler: async () => ({ cas: await services.listProductCas() }) },
    {
      method: "POST", pattern: /^\/v1\/cas$/, body: "json", status: 201,
      handler: async ({ json }) => {
        const body = json();
        return body.certificatePem !== undefined ? services.registerProductCa(body as never) : services.createProductCa(body as never);
      },
    },
    { method: "POST", pattern: new RegExp(`^/v1/cas/${seg}/revoke$`), body: "none", handler: async ({ params }) => services.revokeProductCa({ name: params[0] }) },
    {
      method: "POST", pattern: new RegExp(`^/v1/cas/${seg}/certificates$`), body: "json", status: 201,
      handler: async ({ params, json }) => services.issueDeviceCertificate({ ...json(), caName: params[0] } as never),
    },
    { method: "POST", pattern: new RegExp(`^/v1/cas/${seg}/crl$`), body: "json", handler: async ({ params, json }) => services.importCrl({ ...json(), caName: params[0] } as never) },
    { method: "POST", pattern: /^\/v1\/certificates\/revoke$/, body: "json", handler: async ({ json }) => services.revokeCertificate(json() as never) },
    {
      method: "GET", pattern: /^\/v1\/certificates\/revoked$/, body: "none",
      handler: async ({ query }) => ({ revoked: await services.listRevokedCertificates({ caName: queryString(query, "caName"), limit: queryInt(query, "limit") }) }),
    },
    { method: "GET", pattern: /^\/v1\/hotspots$/, body: "none", handler: async () => network.listHotspotProfiles() },
    { method: "PUT", pattern: /^\/v1\/hotspots$/, body: "json", handler: async ({ json }) => network.setHotspotProfiles(json() as never) },
    {
      method: "PUT", pattern: new RegExp(`^/v1/devices/${seg}/network$`), body: "json",
      handler: async ({ params, json }) => network.setDeviceNetwork({ ...json(), deviceId: params[0] } as never),
    },
    {
      method: "POST", pattern: new RegExp(`^/v1/devices/${seg}/network/forget$`), body: "json",
      handler: async ({ params, json }) => network.forgetDeviceNetwork({ ...json(), deviceId: params[0] } as never),
    },
    { method: "GET", pattern: /^\/v1\/lots$/, body: "none", handler: async () => ({ lots: await services.listProvisioningKeys() }) },
    { method: "POST", pattern: /^\/v1\/lots$/, body: "json", status: 201, handler: async ({ json }) => services.createProvisioningKey(json() as never) },
    { method: "GET", pattern: new RegExp(`^/v1/lots/${seg}$`), body: "none", handler: async ({ params }) => services.getLot({ lot: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/lots/${seg}/line-rate$`), body: "json", handler: async ({ params, json }) => services.setLotLineRate({ ...(json() as object), lot: params[0] } as never) },
    { method: "POST", pattern: new RegExp(`^/v1/lots/${seg}/retire$`), body: "none", handler: async ({ params }) => services.retireProvisioningKey({ lot: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/lots/${seg}/revoke-key$`), body: "none", handler: async ({ params }) => services.revokeProvisioningKey({ lot: params[0] }) },
    { method: "POST", pattern: new RegExp(`^/v1/lots/${seg}/revoke$`), body: "none", handler: async ({ params }) => services.revokeLot({ lot: params[0] }) },
    { method: "GET", pattern: /^\/v1\/nas-clients$/, body: "none", handler: async () => ({ nasClients: await services.listNasClients() }) },
    { method: "POST", pattern: /^\/v1\/nas-clients$/, body: "json", status: 201, handler: async ({ json }) => services.addNasClient(json() as never) },
    { method: "DELETE", pattern: new RegExp(`^/v1/nas-clients/${seg}$`), body: "none", handler: async ({ params }) => services.removeNasClient({ name: params[0] }) },
    {
      method: "GET", pattern: /^\/v1\/audit$/, body: "none",
      handler: async ({ query }) => ({
        audit: await services.auditLog({
          limit: queryInt(query, "limit"), deviceId: queryString(query, "deviceId"), action: queryString(query, "action"), actor: queryString(query, "actor"),
          since: queryString(query, "since"), until: queryString(query, "until"), before: queryInt(query, "before"),
        }),
      }),
    },
  ];
}

/**
 * Every route as `METHOD /path`, a path parameter written `<>` (e.g. `POST /v1/devices/<>/revoke`):
 * test/docs-catalogue.test.ts checks cloud/README.md's HTTP table against it.
 */
export function adminRouteList(): string[] {
  return routes({} as CloudServices, {} as NetworkServices).map((route) =>
    `${route.method} ${route.pattern.source.replace(/^\^/, "").replace(/\$$/, "").replace(/\([^)]*\)/g, "<>").replace(/\\\//g, "/")}`);
}

/** Largest body of a route's kind. */
function bodyLimit(kind: Route["body"]): number {
  return kind === "bundle" ? MAX_BUNDLE_BYTES : kind === "csv" ? MAX_CSV_BYTES + 4096 : MAX_JSON_BODY_BYTES;
}

function errorBody(error: CloudError): AdminResponse {
  const out: Record<string, unknown> = { code: error.code, message: error.message };
  if (error.field !== undefined) out.field = error.field;
  if (error.line !== undefined) out.line = error.line;
  return { status: error.httpStatus, body: { error: out } };
}

/**
 * Builds the admin API over `services`.
 * @example const api = buildAdminApi(cloud.services); const res = await api.inject({ method: "GET", url: "/v1/devices" });
 */
export function buildAdminApi(services: CloudServices, options: AdminApiOptions): AdminApi {
  if (typeof options?.token !== "string" || options.token.length < 32) throw new CloudError("ADMIN_TOKEN_INVALID", "the admin API needs a token of at least 32 characters");
  const table = routes(services, options.network ?? new NetworkServices(services.registry, services.actor));
  const access: AdminAccess = { token: options.token, names: options.names ?? [...LOOPBACK_NAMES], scheme: options.scheme ?? "http" };

  /** Answers one request; with a log, numbers it and writes one line. */
  async function dispatch(request: AdminRequest): Promise<AdminResponse> {
    const requestId = randomUUID();
    const started = performance.now();
    const response = await answer(request, requestId);
    const path = request.url.split("?")[0].slice(0, 200);
    const code = response.status >= 400 ? (response.body as { error?: { code?: string } }).error?.code : undefined;
    options.log?.(response.status >= 500 ? "error" : (HEALTH_PATHS as readonly string[]).includes(path) ? "debug" : "info", "admin request", {
      event: "admin.request", reqId: requestId, method: request.method.slice(0, 16), path, status: response.status, code, ms: Math.round(performance.now() - started),
    });
    return { ...response, requestId };
  }

  async function answer(request: AdminRequest, requestId: string): Promise<AdminResponse> {
    try {
      const probed = options.probe && await probeResponse(request.method, request.url, options.probe);
      if (probed) return probed;
      checkAdminRequest(access, request.headers ?? {});
      const url = new URL(request.url, "http://admin.invalid");
      const matches = table.filter((route) => route.pattern.test(url.pathname));
      if (matches.length === 0) throw new CloudError("NOT_FOUND", `no route ${url.pathname.slice(0, 100)}`);
      const route = matches.find((r) => r.method === request.method);
      if (!route) throw new CloudError("METHOD_NOT_ALLOWED", `${request.method} not allowed here`);
      const params = route.pattern.exec(url.pathname)!.slice(1);
      const contentType = (request.headers?.["content-type"] ?? "").split(";")[0].trim().toLowerCase();
      const parts: readonly Uint8Array[] = request.body === undefined ? [] : typeof request.body === "string" ? [Buffer.from(request.body)] : request.body instanceof Uint8Array ? [request.body] : request.body;
      const size = parts.reduce((n, part) => n + part.byteLength, 0);
      const limit = bodyLimit(route.body);
      if (size > limit) throw new CloudError("TOO_LARGE", `request body larger than ${limit} bytes`);
      if (route.body === "bundle") {
        if (contentType !== BUNDLE_MEDIA_TYPE) throw new CloudError("UNSUPPORTED_MEDIA_TYPE", `send ${BUNDLE_MEDIA_TYPE}`);
        const unused = () => {
          throw new CloudError("UNSUPPORTED_MEDIA_TYPE", `send ${BUNDLE_MEDIA_TYPE}`);
        };
        const body = await route.handler({ params, query: url.searchParams, json: unused, text: unused, contentType, chunks: () => parts });
        return { status: route.status ?? 200, body };
      }
      const raw = parts.length === 0 ? "" : Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))).toString("utf8");
      // JSON only: a form or text/plain body (what a page elsewhere can send without a preflight) changes nothing
      const typed = contentType === "application/json" || (route.body === "csv" && contentType === "text/csv");
      if (raw.length > 0 && !typed) throw new CloudError("UNSUPPORTED_MEDIA_TYPE", route.body === "csv" ? "send application/json or text/csv" : "send application/json");
      const json = (): Record<string, unknown> => {
        if (contentType !== "application/json") throw new CloudError("UNSUPPORTED_MEDIA_TYPE", "send application/json");
        let value: unknown;
        try {
          value = JSON.parse(raw);
        } catch {
          throw new CloudError("INVALID_INPUT", "body is not JSON", { field: "body" });
        }
        if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CloudError("INVALID_INPUT", "must be a JSON object", { field: "body" });
        return value as Record<string, unknown>;
      };
      const text = (): string => {
        if (contentType !== "text/csv") throw new CloudError("UNSUPPORTED_MEDIA_TYPE", "send application/json or text/csv");
        return raw;
      };
      const body = await route.handler({ params, query: url.searchParams, json, text, contentType, chunks: () => parts });
      return { status: route.status ?? 200, body };
    } catch (error) {
      if (isCloudError(error)) return errorBody(error);
      options.log?.("error", `admin request failed internally: ${errorText(error)}`, { event: "admin.internal", reqId: requestId });
      return errorBody(new CloudError("INTERNAL", "internal error"));
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const send = (response: AdminResponse): void => {
      const text = JSON.stringify(response.body);
      res.writeHead(response.status, {
        "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store",
        ...(response.requestId ? { "x-request-id": response.requestId } : {}),
      });
      res.end(text);
    };
    const headers: Record<string, string | undefined> = {};
    for (const [key, value] of Object.entries(req.headers)) headers[key] = Array.isArray(value) ? value.join(",") : value;
    // probes need no credential and read no body (cloud/health.ts)
    if (options.probe && (HEALTH_PATHS as readonly string[]).includes((req.url ?? "").split("?")[0])) {
      req.resume();
      void dispatch({ method: req.method ?? "GET", url: req.url ?? "/", headers }).then(send);
      return;
    }
    // refused before any body is read: a caller without the credential cannot make the API buffer 50 MiB
    try {
      checkAdminRequest(access, headers);
    } catch (error) {
      const refused = { ...errorBody(isCloudError(error) ? error : new CloudError("INTERNAL", "internal error")), requestId: randomUUID() };
      options.log?.("warn", "admin request refused", {
        event: "admin.request", reqId: refused.requestId, method: (req.method ?? "?").slice(0, 16), path: (req.url ?? "").split("?")[0].slice(0, 200),
        status: refused.status, code: isCloudError(error) ? error.code : "INTERNAL", source: req.socket.remoteAddress,
      });
      send(refused);
      req.resume();
      return;
    }
    const path = (req.url ?? "").split("?")[0];
    const isBundle = path === BUNDLE_PATH;
    const limit = bodyLimit(isBundle ? "bundle" : path === "/v1/devices/import" ? "csv" : "json");
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      send(errorBody(new CloudError("TOO_LARGE", `request body larger than ${limit} bytes`)));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        send(errorBody(new CloudError("TOO_LARGE", `request body larger than ${limit} bytes`)));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (refused) return;
      // a bundle stays in its chunks: no copy of hundreds of MiB on this thread (the admin worker joins them)
      dispatch({ method: req.method ?? "GET", url: req.url ?? "/", headers, body: isBundle ? chunks : Buffer.concat(chunks) }).then(send, () => {
        send(errorBody(new CloudError("INTERNAL", "internal error")));
      });
    });
  }

  return { handle, inject: dispatch, access };
}

/** A listening admin API. */
export interface AdminListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * Binds the API to `host:port` (port 0 = ephemeral), over TLS when `tls` is
 * given (PEM chain and key), and sets `api.access.port` to the bound port.
 */
export async function listenAdminApi(api: AdminApi, address: { host: string; port: number; tls?: { certPem: string; keyPem: string } }): Promise<AdminListener> {
  const timeouts = { requestTimeout: 60_000, headersTimeout: 10_000 };
  const server: Server = address.tls
    ? createTlsServer({ ...timeouts, cert: address.tls.certPem, key: address.tls.keyPem, minVersion: "TLSv1.2" }, api.handle)
    : createServer(timeouts, api.handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : address.port;
  api.access.port = port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
