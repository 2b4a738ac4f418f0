// The Server-Sent Events transport: `GET /sse/subscribe/<path route>` read with `fetch` and
// the response body's stream, parsed by `EventStreamParser`. `fetch` rather than the
// browser's `EventSource` because `EventSource` hides the HTTP status of a refusal (it cannot
// tell 410 from 400 from 503), cannot time out a silent connection, and does not exist in
// Node 20; `fetch` does all of that in browsers and in Node alike.

import { EventStreamParser } from "./event-stream.js";
import { StreamBase } from "./transport.js";
import type { Failure, OpenRequest, StreamHandle, StreamHandlers, Transport } from "./transport.js";
import { wsFailure } from "./websocket.js";

/** The part of `fetch` the transport uses. */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal; cache?: "no-store" },
) => Promise<Response>;

export interface SseTransportOptions {
  /** The `fetch` implementation; default `globalThis.fetch` (browsers, Node 18+). */
  fetch?: FetchLike;
  /** The node's `ping_interval` (`[stream]` in app.toml), ms: it sends a `: keepalive`
   * comment at least this often on a quiet stream. Default 30000, the node's default. */
  pingIntervalMs?: number;
}

/** The node's default `ping_interval`, ms. */
export const DEFAULT_PING_INTERVAL_MS = 30_000;

/** The longest refusal body read for its `{"error": ..}` message, bytes. */
const MAX_ERROR_BODY = 4096;

/**
 * Streams over `http(s)://HOST:PORT/sse/subscribe/...` (a `ws(s)://` endpoint is read as
 * `http(s)://`). A resume asks `?since_height=` (a query, not `Last-Event-ID`: a header
 * that is not CORS-safelisted would cost a browser a preflight on every connect).
 */
export class SseTransport implements Transport {
  readonly name = "sse";
  private readonly fetch: FetchLike | undefined;
  private readonly pingIntervalMs: number;

  constructor(options: SseTransportOptions = {}) {
    const global = (globalThis as { fetch?: FetchLike }).fetch;
    this.fetch = options.fetch ?? (global ? (url, init) => global(url, init) : undefined);
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  }

  open(request: OpenRequest, handlers: StreamHandlers): StreamHandle {
    return new SseStream(this.fetch, request, handlers, staleAfterMs(request, this.pingIntervalMs));
  }
}

/**
 * The silence after which an SSE stream is stale. SSE gives the client no probe to send, so
 * it waits for the node's own keepalive comments: nothing at all (no update, no comment) for
 * the longer of the node's ping interval and `keepaliveIntervalMs`, plus
 * `keepaliveTimeoutMs`. Defaults: max(30 s, 15 s) + 10 s = 40 s.
 */
export function staleAfterMs(
  request: Pick<OpenRequest, "keepaliveIntervalMs" | "keepaliveTimeoutMs">,
  pingIntervalMs: number,
): number {
  return Math.max(request.keepaliveIntervalMs, pingIntervalMs) + request.keepaliveTimeoutMs;
}

/** The URL of `request`'s stream: `?since_height=` when resuming, `token=` when it has one. */
export function sseUrl(request: Pick<OpenRequest, "endpoint" | "topic" | "since" | "token">): string {
  const base = request.endpoint.replace(/\/+$/, "").replace(/^ws(s?):\/\//, "http$1://");
  const query: string[] = [];
  if (request.since !== undefined) query.push(`since_height=${request.since}`);
  if (request.token !== undefined) query.push(`token=${encodeURIComponent(request.token)}`);
  const search = query.length === 0 ? "" : `?${query.join("&")}`;
  return `${base}/sse/subscribe/${request.topic.path}${search}`;
}

/**
 * An HTTP refusal (or the code of an `event: error`) as a failure: 410 `gone`; 400 (a bad
 * address, denom or path) and 403 (an `Origin` the node does not allow, or a token that
 * does not allow the stream: retrying will not change it) `invalid`; 401 (no token, an
 * invalid one, or an `event: error` with code 401 when the stream's token expired) `retry`,
 * which asks the client's `token` function again; but a `since_height` above this node's latest height is `retry` (it
 * is behind the node that served the stream before); 404 `invalid` (the node does not serve
 * SSE); anything else (429, 500, 503, ...) `retry`.
 */
export function httpFailure(status: number, message: string): Failure {
  if (status === 403) return { kind: "invalid", message: `${status}: ${message}` };
  if (status === 404) return { kind: "invalid", message: `${status}: no SSE here (${message})` };
  return wsFailure(status, message);
}

class SseStream extends StreamBase {
  private readonly abort = new AbortController();
  private opened = false;
  private lastReceived = Date.now();

  constructor(
    fetch: FetchLike | undefined,
    private readonly request: OpenRequest,
    handlers: StreamHandlers,
    private readonly staleAfterMs: number,
  ) {
    super(handlers);
    if (!fetch) {
      this.later(0, () =>
        this.finish({ kind: "invalid", message: "no fetch implementation: pass one as `fetch`" }),
      );
      return;
    }
    const url = sseUrl(request);
    this.later(request.connectTimeoutMs, () => {
      if (!this.opened) {
        this.finish({
          kind: "retry",
          message: `the stream did not open within ${request.connectTimeoutMs} ms`,
        });
      }
    });
    const shown = url.replace(/token=[^&]*/, "token=...");
    this.run(fetch, url).catch((e: unknown) =>
      this.finish({ kind: "retry", message: `${shown}: ${String(e)}` }),
    );
  }

  private async run(fetch: FetchLike, url: string): Promise<void> {
    const response = await fetch(url, {
      headers: { accept: "text/event-stream" },
      signal: this.abort.signal,
      cache: "no-store",
    });
    if (this.done) return;
    if (response.status !== 200) {
      const failure = httpFailure(response.status, await errorMessage(response));
      const retryAfter = retryAfterMs(response.headers.get("retry-after"));
      if (failure.kind === "retry" && retryAfter !== undefined) failure.retryAfterMs = retryAfter;
      this.finish(failure);
      return;
    }
    const type = response.headers.get("content-type") ?? "";
    if (!type.toLowerCase().startsWith("text/event-stream") || !response.body) {
      const what = type || "no content type";
      const shown = url.replace(/token=[^&]*/, "token=...");
      this.finish({ kind: "retry", message: `${shown} answered ${what}, not an event stream` });
      return;
    }
    this.opened = true;
    this.lastReceived = Date.now();
    this.handlers.open();
    this.keepalive();
    const parser = new EventStreamParser({
      event: (event) => {
        if (this.done) return;
        if (event.type === "update") this.update(event.data);
        else if (event.type === "error") this.ended(event.data);
      },
    });
    const reader = response.body.getReader();
    // The parser drops the one leading BOM itself (it is fed text).
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (this.done) return;
      if (done) break;
      this.lastReceived = Date.now();
      parser.feed(decoder.decode(value, { stream: true }));
      if (this.done) return;
    }
    this.finish({ kind: "retry", message: "the node ended the stream" });
  }

  private update(data: string): void {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      this.finish({ kind: "retry", message: "an update that is not JSON" });
      return;
    }
    this.handlers.update(json);
  }

  /** The stream's last event, `event: error` with `{"code": .., "error": ..}`. */
  private ended(data: string): void {
    let code = 0;
    let message = data;
    try {
      const e = JSON.parse(data) as { code?: unknown; error?: unknown };
      code = Number(e.code);
      message = String(e.error);
    } catch {
      // Not JSON: retry with the text as the reason.
    }
    this.finish(httpFailure(code, message));
  }

  /** Stale detection: nothing received for `staleAfterMs` (see `staleAfterMs()`). */
  private keepalive(): void {
    const limit = this.staleAfterMs;
    const tick = Math.max(20, Math.min(limit, this.request.keepaliveTimeoutMs) / 4);
    const check = () => {
      if (this.done) return;
      if (Date.now() - this.lastReceived >= limit) {
        this.finish({ kind: "retry", message: `stale: nothing received for ${limit} ms` });
        return;
      }
      this.later(tick, check);
    };
    this.later(tick, check);
  }

  protected override release(): void {
    this.abort.abort();
  }
}

/** A `Retry-After` of whole seconds (what the node sends with 429), in ms. A page on another
 * origin cannot read the header (it is not CORS-exposed): the backoff alone applies there. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null || !/^\s*[0-9]+\s*$/.test(header)) return undefined;
  return Number(header) * 1000;
}

/** The `error` of a refusal's JSON body, else its text (bounded), else its status text. */
async function errorMessage(response: Response): Promise<string> {
  let text = "";
  try {
    text = (await response.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    // The body could not be read; the status says enough.
  }
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error;
    if (typeof error === "string") return error;
  } catch {
    // Not JSON.
  }
  return text.trim() || response.statusText || `HTTP ${response.status}`;
}
