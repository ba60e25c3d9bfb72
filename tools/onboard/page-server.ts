/*
 * Serves the reference owner's page (tools/onboard/page) on loopback: index.html
 * and page.js, bundled by esbuild from page.ts. This plays the product's app (or
 * a trusted origin) that holds the page: the device never serves it
 * (docs/protocol.md 15.7). `bundlePage()` also reports the bundle's size.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { build } from "esbuild";

const here = new URL("./page/", import.meta.url);

/** page.js, minified, for browsers from 2020 on. */
export async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [new URL("page.ts", here).pathname], bundle: true, minify: true, format: "iife", target: "es2020", write: false, logLevel: "silent",
  });
  return result.outputFiles[0].text;
}

/** Starts the page server on 127.0.0.1 (port 0: any free port). */
export async function servePage(port = 0): Promise<{ url: string; server: Server; bytes: { html: number; js: number } }> {
  const html = readFileSync(new URL("index.html", here));
  const js = Buffer.from(await bundlePage());
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const file = path === "/" || path === "/index.html" ? { body: html, type: "text/html; charset=utf-8" } : path === "/page.js" ? { body: js, type: "text/javascript" } : undefined;
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": file.type, "content-length": file.body.length, "cache-control": "no-store" });
    res.end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server, bytes: { html: html.length, js: js.length } };
}
