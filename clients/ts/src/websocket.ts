// The WebSocket transport: the node's multiplexed `/ws` endpoint, one subscription per
// connection. `/ws` (not the path routes) because a browser's WebSocket hides the HTTP
// status of a refused upgrade, while `/ws` answers every refusal (410, 400, 429, 503) as
// a JSON message the client can read.

import { StreamBase } from "./transport.js";
import type { Failure, OpenRequest, StreamHandle, StreamHandlers, Transport } from "./transport.js";

/** The part of the WebSocket API the transport uses (the browser's, or the `ws` package's). */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers (and Node 22+); under Node 20
 * pass the `ws` package's. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Close code of a resumed stream the node cannot continue without a gap. */
export const CLOSE_GONE = 4410;
/** Close code of a stream whose token expired: reconnect with a new token and resume. */
export const CLOSE_TOKEN_EXPIRED = 4001;

/** The id of the subscribe request (one per connection). */
const SUBSCRIBE_ID = 1;
/** The keepalive probe: `/ws` has no ping method and browsers hide WebSocket pings, so the
 * client asks to unsubscribe a subscription that does not exist; the node's 404 answer is
 * the proof of life. */
const PROBE_ID = "keepalive";
const PROBE = JSON.stringify({
  id: PROBE_ID,
  method: "unsubscribe",
  params: { subscription: PROBE_ID },
});

export interface WebSocketTransportOptions {
  /** The WebSocket implementation; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

/** Streams over `ws(s)://HOST:PORT/ws`. */
export class WebSocketTransport implements Transport {
  readonly name = "websocket";
  private readonly ctor: WebSocketConstructor | undefined;

  constructor(options: WebSocketTransportOptions = {}) {
    this.ctor =
      options.WebSocket ??
      ((globalThis as { WebSocket?: WebSocketConstructor }).WebSocket as WebSocketConstructor | undefined);
  }

  open(request: OpenRequest, handlers: StreamHandlers): StreamHandle {
    return new WsStream(this.ctor, request, handlers);
  }
}

/** The `/ws` error code of a refused subscribe or an ended subscription, as a failure:
 * 410 `gone`; 400 `invalid` (but a `since_height` ahead of this node is `retry`); 403 (the
 * token does not allow the stream) `invalid`; 401 (no token, an invalid or expired one: the
 * next attempt gets a new one) and anything else `retry`. */
export function wsFailure(code: number, message: string): Failure {
  const text = `${code}: ${message}`;
  if (code === 410) return { kind: "gone", message: text };
  if (code === 403) return { kind: "invalid", message: text };
  // A since_height above this node's latest height: it is behind the node that served the
  // stream before (failover); retry.
  if (code === 400 && !message.startsWith("since_height")) return { kind: "invalid", message };
  return { kind: "retry", message: text };
}

/** The URL of `/ws` on `request`'s endpoint, with `?token=` when it has one. */
export function wsUrl(request: Pick<OpenRequest, "endpoint" | "token">): string {
  const url = `${request.endpoint.replace(/\/+$/, "")}/ws`;
  return request.token === undefined ? url : `${url}?token=${encodeURIComponent(request.token)}`;
}

/** A close of the socket as a failure: 4410 `gone`; 4001 (the token expired) and anything
 * else `retry`. */
export function closeFailure(code: number, reason: string): Failure {
  if (code === CLOSE_GONE) return { kind: "gone", message: `close ${code}: ${reason}` };
  if (code === CLOSE_TOKEN_EXPIRED) {
    return { kind: "retry", message: `close ${code} (token expired): ${reason}` };
  }
  return { kind: "retry", message: `closed: ${code} ${reason}`.trim() };
}

class WsStream extends StreamBase {
  private socket: WebSocketLike | undefined;
  private subscription: string | undefined;
  private lastReceived = Date.now();
  private probeSent: number | undefined;

  constructor(
    ctor: WebSocketConstructor | undefined,
    private readonly request: OpenRequest,
    handlers: StreamHandlers,
  ) {
    super(handlers);
    if (!ctor) {
      this.later(0, () =>
        this.finish({
          kind: "invalid",
          message: "no WebSocket implementation: pass one (e.g. the ws package) as `WebSocket`",
        }),
      );
      return;
    }
    const url = wsUrl(request);
    try {
      this.socket = new ctor(url);
    } catch (e) {
      const shown = url.replace(/\?token=.*$/, "?token=...");
      this.later(0, () => this.finish({ kind: "retry", message: `WebSocket ${shown}: ${String(e)}` }));
      return;
    }
    const socket = this.socket;
    this.later(request.connectTimeoutMs, () => {
      if (this.subscription === undefined) {
        this.finish({
          kind: "retry",
          message: `the subscription did not open within ${request.connectTimeoutMs} ms`,
        });
      }
    });
    socket.onopen = () => {
      const params: Record<string, unknown> = { ...request.topic.params };
      if (request.since !== undefined) params["since_height"] = request.since;
      socket.send(
        JSON.stringify({ id: SUBSCRIBE_ID, method: "subscribe", stream: request.topic.stream, params }),
      );
    };
    socket.onmessage = (event) => this.message(event.data);
    socket.onclose = (event) => this.finish(closeFailure(event.code, event.reason));
    socket.onerror = () => this.finish({ kind: "retry", message: "WebSocket error" });
    this.keepalive();
  }

  private message(raw: unknown): void {
    if (this.done) return;
    this.lastReceived = Date.now();
    this.probeSent = undefined;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(typeof raw === "string" ? raw : String(raw)) as Record<string, unknown>;
    } catch {
      this.finish({ kind: "retry", message: "a message that is not JSON" });
      return;
    }
    const error = msg["error"] as { code?: unknown; message?: unknown } | undefined;
    if (msg["id"] === SUBSCRIBE_ID) {
      if (error) {
        this.finish(wsFailure(Number(error.code), String(error.message)));
        return;
      }
      const result = msg["result"] as { subscription?: unknown } | undefined;
      this.subscription = String(result?.subscription);
      this.handlers.open();
      return;
    }
    if (msg["id"] === PROBE_ID) return;
    if (this.subscription !== undefined && msg["subscription"] === this.subscription) {
      if (error) {
        this.finish(wsFailure(Number(error.code), String(error.message)));
      } else {
        this.handlers.update(msg["data"]);
      }
    }
  }

  /** Stale detection: after `keepaliveIntervalMs` without a message, probe; nothing within
   * `keepaliveTimeoutMs` after that: stale. */
  private keepalive(): void {
    const { keepaliveIntervalMs: interval, keepaliveTimeoutMs: timeout } = this.request;
    const tick = Math.max(20, Math.min(interval, timeout) / 4);
    const check = () => {
      if (this.done) return;
      const now = Date.now();
      if (this.probeSent !== undefined) {
        if (now - this.probeSent >= timeout) {
          this.finish({
            kind: "retry",
            message: `stale: no answer to a keepalive probe within ${timeout} ms`,
          });
          return;
        }
      } else if (now - this.lastReceived >= interval && this.subscription !== undefined) {
        this.probeSent = now;
        try {
          this.socket?.send(PROBE);
        } catch {
          this.finish({ kind: "retry", message: "could not send a keepalive probe" });
          return;
        }
      }
      this.later(tick, check);
    };
    this.later(tick, check);
  }

  protected override release(): void {
    const socket = this.socket;
    if (socket) {
      socket.onopen = null;
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = () => {};
      try {
        socket.close(1000);
      } catch {
        // already closed
      }
    }
  }
}
