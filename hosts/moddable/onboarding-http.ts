/*
 * The local onboarding service over Moddable's HTTP server (modules/network/http):
 * one request in, the core's answer out (modules/onboarding/attach.ts answers
 * synchronously, inside the request). The body is read only when its
 * Content-Length is at most MAX_LOCAL_BODY bytes (chunked bodies are refused
 * by the server itself); anything larger is ignored unread and answered 413.
 * Every answer carries `Access-Control-Allow-Origin: *` and `connection: close`
 * (the server's own). The SoftAP around it is the platform's (hosts/esp32/onboarding.ts).
 * What one request gathered is kept on the server's request object (`this` of
 * its callback) under `wcm`, a name http.js does not use.
 */
import { Server, type HTTPServerCallback } from "http";
import { encodeError, MAX_LOCAL_BODY } from "wcm/onboarding/device-messages";
import type { LocalRequest } from "wcm/onboarding/attach";

type Handler = (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void;

interface Exchange {
  path: string;
  method: string;
  length: number;
  body?: Uint8Array;
  status?: number;
  answer?: Uint8Array;
}

/** Starts the service on `port`; returns a function that stops it. */
export function serveOnboarding(port: number, handler: Handler): () => void {
  const server = new Server({ port });
  // headersComplete answers with the body's type (the ArrayBuffer constructor), which Moddable's typings do not list
  server.callback = function (this: { wcm?: Exchange }, message: number, value?: unknown, etc?: unknown) {
    if (message === Server.status) {
      this.wcm = { path: String(value).split("?")[0], method: String(etc), length: 0 };
      return;
    }
    // every message of a request comes after its status line
    const exchange = this.wcm;
    if (!exchange) return;
    if (message === Server.header) {
      if (value === "content-length") exchange.length = parseInt(String(etc), 10) || 0;
    } else if (message === Server.headersComplete) {
      if (exchange.length <= MAX_LOCAL_BODY) return ArrayBuffer;
      exchange.status = 413;
      exchange.answer = encodeError("MESSAGE_TOO_LARGE", `body over ${MAX_LOCAL_BODY} bytes`);
      return false;
    } else if (message === Server.requestComplete) {
      exchange.body = new Uint8Array(value as ArrayBuffer);
    } else if (message === Server.prepareResponse) {
      const empty = new Uint8Array(0);
      if (!exchange.status) {
        handler({ method: exchange.method, path: exchange.path, body: exchange.body ?? empty }, (status, body) => {
          exchange.status = status;
          exchange.answer = body;
        });
      }
      this.wcm = undefined;
      return {
        status: exchange.status ?? 503,
        headers: ["content-type", "application/json", "access-control-allow-origin", "*", "cache-control", "no-store"],
        body: (exchange.answer ?? empty).slice().buffer,
      };
    }
  } as unknown as HTTPServerCallback;
  return () => server.close();
}
