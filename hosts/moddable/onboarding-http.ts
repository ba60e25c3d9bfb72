/*
 * The local onboarding service over Moddable's HTTP server (modules/network/http):
 * one request in, the core's answer out (modules/onboarding/runner.ts answers
 * synchronously, inside the request). The body is read only when its
 * Content-Length is at most MAX_LOCAL_BODY bytes (chunked bodies are refused
 * by the server itself); anything larger is ignored unread and answered 413.
 * Every answer carries `Access-Control-Allow-Origin: *` and `connection: close`
 * (the server's own). The SoftAP around it is the platform's (hosts/esp32/onboarding.ts).
 */
import { Server, type HTTPServerCallback } from "http";
import type { LocalRequest } from "wcm/onboarding/machine";

/** Largest body read (modules/onboarding/device-messages.ts MAX_LOCAL_BODY). */
const MAX_BODY = 1536;
const TOO_LARGE = '{"v":1,"error":"MESSAGE_TOO_LARGE","detail":"body over 1536 bytes"}';

type Handler = (request: LocalRequest, respond: (status: number, body: Uint8Array) => void) => void;

interface Exchange {
  path: string;
  method: string;
  length: number;
  body?: Uint8Array;
  answer?: { status: number; body: Uint8Array };
}

/** Starts the service on `port`; returns a function that stops it. */
export function serveOnboarding(port: number, handler: Handler): () => void {
  const server = new Server({ port });
  const exchanges = new WeakMap<object, Exchange>();
  // headersComplete answers with the body's type (the ArrayBuffer constructor), which Moddable's typings do not list
  server.callback = function (this: object, message: number, value?: unknown, etc?: unknown) {
    let exchange = exchanges.get(this);
    switch (message) {
      case Server.status:
        exchanges.set(this, { path: String(value).split("?")[0], method: String(etc), length: 0 });
        return;
      case Server.header:
        if (exchange && value === "content-length") exchange.length = parseInt(String(etc), 10) || 0;
        return;
      case Server.headersComplete:
        if (!exchange) return;
        if (exchange.length > MAX_BODY) {
          exchange.answer = { status: 413, body: new Uint8Array(ArrayBuffer.fromString(TOO_LARGE)) };
          return false;
        }
        return ArrayBuffer;
      case Server.requestComplete:
        if (exchange) exchange.body = new Uint8Array(value as ArrayBuffer);
        return;
      case Server.prepareResponse: {
        exchange ??= { path: "/", method: "GET", length: 0 };
        if (!exchange.answer) {
          const request: LocalRequest = { method: exchange.method, path: exchange.path, body: exchange.body ?? new Uint8Array(0) };
          handler(request, (status, body) => {
            exchange!.answer = { status, body };
          });
        }
        const answer = exchange.answer ?? { status: 503, body: new Uint8Array(0) };
        exchanges.delete(this);
        const body = new Uint8Array(answer.body.length);
        body.set(answer.body);
        return {
          status: answer.status,
          headers: ["content-type", "application/json", "access-control-allow-origin", "*", "cache-control", "no-store"],
          body: body.buffer,
        };
      }
    }
  } as unknown as HTTPServerCallback;
  return () => server.close();
}
