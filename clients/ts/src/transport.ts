// The seam between a subscription and a wire: a transport opens one stream and reports what
// happens to it: WebSocket (`/ws`, websocket.ts) and Server-Sent Events (`/sse/subscribe/...`,
// sse.ts).

import type { Topic } from "./topics.js";

/**
 * Why a stream ended (or never opened), as far as the subscription cares:
 * - `retry`: cut, refused, stale, node shutting down, a limit, a missing, invalid or expired
 *   token (HTTP 401, close 4001, SSE error 401): back off, next endpoint (with a new token);
 * - `gone`: the node cannot continue a resume without a gap (gRPC OUT_OF_RANGE, HTTP 410,
 *   close 4410, `/ws` error 410): resume from the last height delivered, or resynchronise;
 * - `invalid`: the request itself is bad (400), or the token does not allow it (403): give
 *   up.
 */
export interface Failure {
  kind: "retry" | "gone" | "invalid";
  message: string;
  /** For `retry`: the node asked to wait at least this long (HTTP `Retry-After`), ms; the
   * backoff's delay applies when it is longer. */
  retryAfterMs?: number;
}

/** What a transport opens. */
export interface OpenRequest {
  /** The endpoint, as configured (e.g. `ws://127.0.0.1:1317`, `http://127.0.0.1:1317`). */
  endpoint: string;
  topic: Topic<unknown>;
  /** Resume after this height; undefined: snapshot first. */
  since: number | undefined;
  /** The JWT to present (`?token=`), fresh from the client's `token` option; undefined: none. */
  token?: string | undefined;
  /** Longest time until the node accepts the subscription, ms. */
  connectTimeoutMs: number;
  /** Silence after which the transport probes the connection, ms (SSE cannot probe: it
   * waits the longer of this and the node's ping interval, plus `keepaliveTimeoutMs`). */
  keepaliveIntervalMs: number;
  /** A probe unanswered this long marks the connection stale, ms. */
  keepaliveTimeoutMs: number;
}

/** Callbacks of one stream. After `end`, or after the caller's `close()`, none is called. */
export interface StreamHandlers {
  /** The node accepted the subscription. */
  open(): void;
  /** One update's JSON, as the node sent it (with `"height"`). */
  update(data: unknown): void;
  /** The stream ended; called at most once. */
  end(failure: Failure): void;
}

/** An open (or opening) stream. */
export interface StreamHandle {
  /** Closes it; no handler is called afterwards. */
  close(): void;
}

/** A wire the client can stream over. */
export interface Transport {
  readonly name: string;
  open(request: OpenRequest, handlers: StreamHandlers): StreamHandle;
}

/**
 * What both transports' streams share: timers that die with the stream, and one end. A
 * subclass opens its wire in its constructor, reports through `handlers` and `finish`, and
 * lets go of the wire in `release`.
 */
export abstract class StreamBase implements StreamHandle {
  /** Set by `finish` or `close`: nothing more is reported. */
  protected done = false;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  protected constructor(protected readonly handlers: StreamHandlers) {}

  close(): void {
    this.done = true;
    this.cleanup();
  }

  /** Calls `f` after `ms`, unless the stream has ended by then. */
  protected later(ms: number, f: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      f();
    }, ms);
    this.timers.add(timer);
  }

  /** Ends the stream with `failure` (the first call only). */
  protected finish(failure: Failure): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    this.handlers.end(failure);
  }

  /** Lets go of the wire (closes the socket, aborts the request). */
  protected abstract release(): void;

  private cleanup(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.release();
  }
}
