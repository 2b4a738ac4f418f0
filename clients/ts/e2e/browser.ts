// Drives a page in headless Chromium for the browser end-to-end tests
// (tests/client_browser.rs): the wallet page (examples/wallet), or a blank page for a test
// that scripts the browser's own APIs (native EventSource). Serves the repository's
// examples/ and clients/ts/dist/ (and /blank.html) over HTTP, opens the page, prints
// {"ready":true,...}, then answers one JSON command per stdin line with one JSON line:
//   {"cmd":"eval","expr":"..."}                    -> {"value":...}
//   {"cmd":"waitFor","expr":"...","timeoutMs":N}   -> {"ok":true,"ms":..} | {"ok":false,"error":..}
//   {"cmd":"screenshot","path":"..."}              -> {"ok":true}
//   {"cmd":"requests"}  -> {"value":[{"url":..,"lastEventId":..|null},..]}: the page's
//                          EventSource requests so far, with their Last-Event-ID header
//   {"cmd":"quit"}
// Argument: {"chromium":"/usr/bin/chromium","root":"<repo>","endpoint":"ws://..","address":"..",
// "page":"wallet"|"blank" (default wallet),"port":N (default any free one),
// "query":{..} (more wallet page parameters, e.g. {"transport":"sse"})}.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

interface Config {
  chromium: string;
  root: string;
  endpoint: string;
  address: string;
  page?: "wallet" | "blank";
  port?: number;
  query?: Record<string, string>;
}

const config = JSON.parse(process.argv[2] ?? "{}") as Config;
const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".css": "text/css",
};
const SERVED = ["examples/", "clients/ts/dist/"];

const BLANK =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>blank</title><link rel="icon" href="data:,"></head>' +
  '<body></body></html>';

const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^\/+/, "");
  if (path === "blank.html") {
    res.writeHead(200, { "content-type": TYPES[".html"] }).end(BLANK);
    return;
  }
  if (!SERVED.some((p) => path.startsWith(p)) || path.includes("..")) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = await readFile(join(config.root, path));
    res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(config.port ?? 0, "127.0.0.1", resolve));
const port = (server.address() as AddressInfo).port;

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
page.on("console", (m) => process.stderr.write(`[page ${m.type()}] ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`[page error] ${e.message}\n`));
const eventSourceRequests: Array<{ url: string; lastEventId: string | null }> = [];
page.on("request", (r) => {
  if (r.resourceType() === "eventsource") {
    // Blink's EventSource sets the header itself, so the provisional headers have it; the
    // headers as sent (known once the response arrives) confirm it.
    const entry = { url: r.url(), lastEventId: r.headers()["last-event-id"] ?? null };
    eventSourceRequests.push(entry);
    r.headerValue("last-event-id").then(
      (v) => {
        if (v !== null) entry.lastEventId = v;
      },
      () => {},
    );
  }
});
const url =
  config.page === "blank"
    ? `http://127.0.0.1:${port}/blank.html`
    : `http://127.0.0.1:${port}/examples/wallet/index.html?` +
      new URLSearchParams({ ...config.query, endpoint: config.endpoint, address: config.address }).toString();
await page.goto(url);
print({ ready: true, url });

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line) as { cmd: string; expr?: string; timeoutMs?: number; path?: string };
  try {
    switch (cmd.cmd) {
      case "eval":
        print({ value: await page.evaluate(cmd.expr ?? "undefined") });
        break;
      case "waitFor": {
        const started = Date.now();
        try {
          await page.waitForFunction(cmd.expr ?? "false", undefined, {
            timeout: cmd.timeoutMs ?? 5000,
            polling: 10,
          });
          print({ ok: true, ms: Date.now() - started });
        } catch (e) {
          print({ ok: false, error: String(e) });
        }
        break;
      }
      case "requests":
        print({ value: eventSourceRequests });
        break;
      case "screenshot":
        await page.screenshot({ path: cmd.path ?? "wallet.png", fullPage: true });
        print({ ok: true });
        break;
      case "quit":
        await browser.close();
        server.close();
        process.exit(0);
        break;
      default:
        print({ error: `unknown command ${cmd.cmd}` });
    }
  } catch (e) {
    print({ error: String(e) });
  }
}
await browser.close();
server.close();
