// One subscription: opens streams through a transport, resumes them from the last height
// delivered, resynchronises when the node cannot resume, backs off, fails over, and hands
// the values to an async iterator in height order.

import { Backoff } from "./backoff.js";
import type { Topic } from "./topics.js";
import type { Failure, StreamHandle, Transport } from "./transport.js";
import { type ConnectionState, StreamError, type Update, type UpdateKind } from "./types.js";

/** A stream open this long counts as healthy even without an update (a quiet account): the
 * next failure starts the backoff from the beginning. */
const HEALTHY_AFTER_MS = 30_000;

/** What a subscription needs from its client (all resolved). */
export interface SubscriptionOptions {
  endpoints: readonly string[];
  transport: Transport;
  backoff: Backoff;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxAttempts: number | undefined;
  random: () => number;
  /** A token, or where to get one before each attempt; undefined: none. */
  token?: string | (() => string | Promise<string>) | undefined;
}

/**
 * The updates of one stream, as an async iterator, in strictly increasing height order:
 * the snapshot, then every change exactly once across reconnects (`resynced` when the node
 * could no longer resume). Iteration throws a `StreamError` when the subscription fails
 * for good; `close()` (or leaving a `for await` loop) ends it.
 */
export class Subscription<T> implements AsyncIterable<Update<T>> {
  private readonly queue: Update<T>[] = [];
  private readonly waiting: Array<{
    resolve: (r: IteratorResult<Update<T>>) => void;
    reject: (e: unknown) => void;
  }> = [];
  private readonly listeners = new Set<(state: ConnectionState) => void>();
  private current: ConnectionState = { status: "connecting" };
  private error: StreamError | undefined;
  private closed = false;
  private handle: StreamHandle | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Height of the last value delivered: the next attempt resumes after it. */
  private last: number | undefined;
  /** The node cannot resume from `last`: the next attempt takes a fresh snapshot. */
  private resync = false;
  /** Consecutive failed attempts (what the backoff grows with). */
  private failures = 0;
  /** Attempts since the subscription was last live (what `reconnecting` shows). */
  private reconnects = 0;
  private endpoint = 0;

  constructor(
    private readonly topic: Topic<T>,
    private readonly options: SubscriptionOptions,
  ) {
    this.connect();
  }

  /** The connection state now. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The height of the last value delivered (what a resume starts after). */
  get lastHeight(): number | undefined {
    return this.last;
  }

  /** Ends the subscription: closes its connection; iteration ends after the values queued. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.handle?.close();
    this.handle = undefined;
    this.flush();
  }

  [Symbol.asyncIterator](): AsyncIterator<Update<T>> {
    return {
      next: () => {
        const value = this.queue.shift();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    for (const listener of this.listeners) listener(state);
  }

  /** Starts an attempt: asks for a token (if any), then opens the stream. */
  private connect(): void {
    if (this.closed) return;
    const since = this.resync ? undefined : this.last;
    const token = this.options.token;
    if (token === undefined || typeof token === "string") {
      this.open(since, token);
      return;
    }
    let pending = true;
    const give = (failure: Failure | undefined, value?: string) => {
      if (!pending) return;
      pending = false;
      clearTimeout(timeout);
      if (this.timer === timeout) this.timer = undefined;
      if (this.closed) return;
      if (failure) this.ended(failure, since, 0, 0);
      else this.open(since, value);
    };
    const limit = this.options.connectTimeoutMs;
    const timeout = setTimeout(
      () => give({ kind: "retry", message: `the token function did not answer within ${limit} ms` }),
      limit,
    );
    // close() clears this.timer: a pending token then opens nothing.
    this.timer = timeout;
    new Promise<string>((resolve) => resolve(token())).then(
      (value) =>
        typeof value === "string" && value !== ""
          ? give(undefined, value)
          : give({ kind: "retry", message: "the token function gave no token" }),
      (e: unknown) => give({ kind: "retry", message: `the token function failed: ${String(e)}` }),
    );
  }

  private open(since: number | undefined, token: string | undefined): void {
    const { endpoints, transport } = this.options;
    const endpoint = endpoints[this.endpoint % endpoints.length] as string;
    let delivered = 0;
    let openedAt: number | undefined;
    let ended = false;
    const end = (failure: Failure) => {
      if (ended) return;
      ended = true;
      this.handle = undefined;
      const openFor = openedAt === undefined ? 0 : Date.now() - openedAt;
      this.ended(failure, since, delivered, openFor);
    };
    this.handle = transport.open(
      {
        endpoint,
        topic: this.topic as Topic<unknown>,
        since,
        token,
        connectTimeoutMs: this.options.connectTimeoutMs,
        keepaliveIntervalMs: this.options.keepaliveIntervalMs,
        keepaliveTimeoutMs: this.options.keepaliveTimeoutMs,
      },
      {
        open: () => {
          if (ended) return;
          openedAt = Date.now();
          this.reconnects = 0;
          this.setState({ status: "live", endpoint });
        },
        update: (data) => {
          if (ended) return;
          let height: number;
          let value: T;
          try {
            [height, value] = this.topic.decode(data);
          } catch (e) {
            this.handle?.close();
            end({ kind: "retry", message: String(e) });
            return;
          }
          const kind = this.classify(height);
          if (kind === undefined) return; // not newer than the last value delivered
          const update: Update<T> = { height, value, kind };
          if (kind === "resynced" && this.last !== undefined) update.lastHeight = this.last;
          this.last = height;
          this.resync = false;
          delivered += 1;
          this.deliver(update);
        },
        end,
      },
    );
  }

  private classify(height: number): UpdateKind | undefined {
    if (this.last === undefined) return "snapshot";
    if (height <= this.last) return undefined;
    return this.resync ? "resynced" : "change";
  }

  private ended(failure: Failure, since: number | undefined, delivered: number, openFor: number): void {
    if (this.closed) return;
    if (delivered > 0 || openFor >= HEALTHY_AFTER_MS) this.failures = 0;
    let wait = false;
    if (failure.kind === "invalid") {
      this.fail(new StreamError("invalid_request", failure.message));
      return;
    } else if (failure.kind === "gone" && since !== undefined && delivered > 0) {
      // Resumed, delivered, then ended (fell behind): resume again from the new last height.
    } else if (failure.kind === "gone" && since !== undefined) {
      // The node cannot resume from where we are: a fresh snapshot, delivered as `resynced`.
      this.resync = true;
    } else {
      this.failures += 1;
      const max = this.options.maxAttempts;
      if (max !== undefined && this.failures >= max) {
        this.fail(
          new StreamError(
            "gave_up",
            `gave up after ${this.failures} consecutive failed attempts; the last one: ${failure.message}`,
          ),
        );
        return;
      }
      this.endpoint += 1;
      wait = true;
    }
    this.reconnects += 1;
    this.setState({ status: "reconnecting", attempt: this.reconnects });
    const backoff = wait ? this.options.backoff.delay(this.failures, this.options.random) : 0;
    const delay = wait ? Math.max(backoff, failure.retryAfterMs ?? 0) : 0;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }

  private fail(error: StreamError): void {
    this.error = error;
    this.setState({ status: "failed", reason: error.message });
    this.closed = true;
    this.flush();
  }

  private deliver(update: Update<T>): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve({ value: update, done: false });
    else this.queue.push(update);
  }

  /** Settles the waiting readers once nothing more will come. */
  private flush(): void {
    if (this.queue.length > 0) return;
    for (const waiter of this.waiting.splice(0)) {
      if (this.error) waiter.reject(this.error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }
}
