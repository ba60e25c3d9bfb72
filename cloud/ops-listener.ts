/*
 * The ops listener: plain HTTP for monitoring, apart from the admin API, with
 * no credentials and nothing that changes state. `GET /metrics` (Prometheus
 * text, cloud/metrics.ts), `GET /healthz`, `GET /readyz` (cloud/health.ts);
 * anything else is 404 and no request body is read. Bind it to loopback or
 * a monitoring network (default 127.0.0.1), as Prometheus exporters are.
 */
import { createServer, type Server } from "node:http";
import { probeResponse, type ReadinessProbe } from "./health";

/** Options of listenOps. */
export interface OpsListenerOptions {
  host: string;
  port: number;
  probe: ReadinessProbe;
  /** the metrics exposition, or undefined for no /metrics */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

/** A listening ops endpoint. */
export interface OpsListener {
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Binds the ops listener (port 0 = ephemeral). */
export async function listenOps(options: OpsListenerOptions): Promise<OpsListener> {
  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    req.resume();
    const send = (status: number, contentType: string, body: string) => {
      res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const url = req.url ?? "/";
    void (async () => {
      const probe = await probeResponse(req.method ?? "GET", url, options.probe);
      if (probe) return send(probe.status, "application/json; charset=utf-8", JSON.stringify(probe.body));
      if (url.split("?")[0] === "/metrics" && options.metrics) {
        if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain; charset=utf-8", "method not allowed\n");
        const { contentType, body } = await options.metrics();
        return send(200, contentType, body);
      }
      send(404, "text/plain; charset=utf-8", "not found\n");
    })().catch(() => send(500, "text/plain; charset=utf-8", "internal error\n"));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  return {
    server,
    port: typeof bound === "object" && bound ? bound.port : options.port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
