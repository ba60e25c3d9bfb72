/*
 * The CLI's client of a running server's admin API, for the commands that act
 * on the live server rather than on the registry (e.g. `device disconnect`,
 * whose hotspot sessions and Disconnect client live in the server).
 *
 * Where: `--admin-url`, else the configuration's admin.host / admin.port
 * (admin.name when set), https when the admin API uses TLS (admin.tls issue,
 * the operator's files, or a non-loopback bind). Trust: `--admin-ca`, else the
 * cloud's server CA (`<data.dir>/server-ca.pem`, which serve writes and which
 * signs the issued admin certificate). Token: admin.tokenFile, else
 * `<data.dir>/admin-token` (read, never created, never printed). The answer
 * is bounded (1 MiB); an API error comes back as the CloudError it names.
 */
import { existsSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { ADMIN_TOKEN_FILE, readAdminTokenFile } from "./admin-token";
import { isLoopbackHost } from "./admin-guard";
import { CLOUD_ERROR_CODES, CloudError, type CloudErrorCode } from "./errors";

/** Where and how the CLI reaches the admin API. */
export interface AdminEndpoint {
  url: URL;
  token: string;
  /** PEM trust anchors for https */
  ca?: string;
}

/** Largest answer read. */
const MAX_ANSWER = 1024 * 1024;

/**
 * The admin endpoint from CLI options and configuration values.
 * @throws CloudError INVALID_INPUT (a bad --admin-url), ADMIN_TOKEN_INVALID, FILE_UNREADABLE (the CA file)
 */
export function adminEndpoint(options: {
  url?: string; caFile?: string; dataDir: string; tokenFile?: string;
  host: string; port: number; name?: string; tls?: string; tlsCertFile?: string;
}): AdminEndpoint {
  let url: URL;
  if (options.url !== undefined) {
    try {
      if (options.url.length > 2048) throw new Error("too long");
      url = new URL(options.url);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
      if (url.username || url.password) throw new Error("credentials");
    } catch {
      throw new CloudError("INVALID_INPUT", "must be an http(s)://host:port URL without credentials", { field: "admin-url" });
    }
  } else {
    if (options.port === 0) throw new CloudError("INVALID_INPUT", "admin.port is 0 (ephemeral): give --admin-url (serve prints adminUrl)", { field: "admin-url" });
    const secure = options.tls === "issue" || options.tlsCertFile !== undefined || (options.tls !== "off" && !isLoopbackHost(options.host));
    const host = options.name ?? (isLoopbackHost(options.host) || options.host === "0.0.0.0" ? "127.0.0.1" : options.host);
    url = new URL(`${secure ? "https" : "http"}://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${options.port}`);
  }
  const token = readAdminTokenFile(options.tokenFile ?? join(options.dataDir, ADMIN_TOKEN_FILE));
  let ca: string | undefined;
  if (url.protocol === "https:") {
    const file = options.caFile ?? join(options.dataDir, "server-ca.pem");
    if (existsSync(file)) {
      const text = readFileSync(file, "utf8");
      if (text.length > 64 * 1024) throw new CloudError("FILE_UNREADABLE", `the CA file ${file} is larger than 64 KiB`, { field: "admin-ca" });
      ca = text;
    } else if (options.caFile !== undefined) {
      throw new CloudError("FILE_UNREADABLE", `the CA file ${file} does not exist`, { field: "admin-ca" });
    }
  }
  return { url, token, ...(ca ? { ca } : {}) };
}

/** A request body: its media type and bytes. */
export interface AdminBody {
  type: string;
  data: Uint8Array;
}

/**
 * One request to the admin API.
 * @param timeoutMs - most ms without a byte either way (a bundle import answers when it is done: give it more)
 * @returns the JSON body of a 2xx answer
 * @throws CloudError with the code the API answered (DEVICE_NOT_FOUND, ...), ADMIN_UNREACHABLE when no answer came
 */
export function adminCall(endpoint: AdminEndpoint, method: "GET" | "POST", path: string, timeoutMs = 30_000, body?: AdminBody): Promise<unknown> {
  const url = new URL(path, endpoint.url);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method,
      headers: {
        host: url.host, authorization: `Bearer ${endpoint.token}`, accept: "application/json",
        ...(body ? { "content-type": body.type, "content-length": String(body.data.byteLength) } : {}),
      },
      ...(endpoint.ca ? { ca: endpoint.ca } : {}),
      timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER) req.destroy(new Error("answer larger than 1 MiB"));
        else chunks.push(chunk);
      });
      res.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          return reject(new CloudError("ADMIN_UNREACHABLE", `${url.origin} answered ${res.statusCode} without JSON`));
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(body);
        const error = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } }).error;
        const code = typeof error?.code === "string" && error.code in CLOUD_ERROR_CODES ? (error.code as CloudErrorCode) : "INTERNAL";
        const message = typeof error?.message === "string" ? error.message.replace(/^[A-Z_]+: (?:[^:]+: )?/, "").slice(0, 500) : `HTTP ${status}`;
        reject(new CloudError(code, message, typeof error?.field === "string" ? { field: error.field } : {}));
      });
      res.on("error", (e) => reject(new CloudError("ADMIN_UNREACHABLE", `${url.origin}: ${e.message}`)));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", (e) => reject(new CloudError("ADMIN_UNREACHABLE", `the admin API at ${url.origin} did not answer: ${e.message} (is serve running? --admin-url)`)));
    req.end(body ? Buffer.from(body.data.buffer, body.data.byteOffset, body.data.byteLength) : undefined);
  });
}
