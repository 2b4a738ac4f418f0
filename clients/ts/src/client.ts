// The client: options, defaults, and one method per stream type.

import { Backoff, type BackoffOptions } from "./backoff.js";
import { Subscription, type SubscriptionOptions } from "./subscription.js";
import * as topics from "./topics.js";
import type { Topic } from "./topics.js";
import type { Transport } from "./transport.js";
import type { Coin, Delegation, UnbondingDelegation } from "./types.js";
import { type WebSocketConstructor, WebSocketTransport } from "./websocket.js";

export interface ClientOptions {
  /** Endpoints, tried in order: a subscription stays on the one serving it and moves to the
   * next (round robin) when an attempt fails. WebSocket: `ws://HOST:1317` (the API port);
   * SSE: `http://HOST:1317`. */
  endpoints: string[];
  /** The wire; default WebSocket (`/ws`). `new SseTransport()` streams over Server-Sent
   * Events (`/sse/subscribe/...`) instead. */
  transport?: Transport;
  /** The WebSocket implementation for the default transport; default
   * `globalThis.WebSocket`. Under Node 20 pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays; default 1 s doubling to 60 s, +-20%. */
  backoff?: Partial<BackoffOptions>;
  /** Longest time until the node accepts a subscription, ms (default 10000). */
  connectTimeoutMs?: number;
  /** Silence after which the connection is probed, ms (default 15000). */
  keepaliveIntervalMs?: number;
  /** A probe unanswered this long marks the connection stale, ms (default 10000). */
  keepaliveTimeoutMs?: number;
  /** Give up after this many consecutive failed attempts; default: never. */
  maxAttempts?: number;
  /** Random numbers in [0, 1) for the jitter; default Math.random. */
  random?: () => number;
  /**
   * The JWT for a node with token auth (`[stream.auth]`): a token, or a function returning
   * one (or a promise of one), called before every connect and reconnect. It is sent as
   * `?token=` (browsers cannot set headers on WebSocket or EventSource, and an
   * `Authorization` header would cost a cross-origin `fetch` a preflight). When a token
   * expires the node ends the stream (close 4001, SSE error 401): the subscription backs
   * off, gets a new token from the function and resumes from the last height delivered, so
   * nothing is lost; a fixed string keeps being refused (401) after it expires. A token
   * that does not allow the stream (403) fails the subscription. A function that throws
   * or rejects fails that attempt (backoff, then it is asked again).
   */
  token?: TokenOption;
}

/** A token, or a function returning one, called at every (re)connect. */
export type TokenOption = string | (() => string | Promise<string>);

/** Opens subscriptions; each holds its own connection. */
export class StreamClient {
  private readonly options: SubscriptionOptions;

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) {
      throw new Error("no endpoint: give at least one (e.g. ws://127.0.0.1:1317)");
    }
    for (const e of options.endpoints) {
      if (!/^(wss?|https?):\/\//.test(e)) {
        const expected = "ws(s)://HOST:PORT (WebSocket) or http(s)://HOST:PORT (SSE)";
        throw new Error(`endpoint ${JSON.stringify(e)}: expected ${expected}`);
      }
    }
    const transportOptions = options.WebSocket ? { WebSocket: options.WebSocket } : {};
    this.options = {
      endpoints: [...options.endpoints],
      transport: options.transport ?? new WebSocketTransport(transportOptions),
      backoff: new Backoff(options.backoff),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 10_000,
      maxAttempts: options.maxAttempts,
      random: options.random ?? Math.random,
      token: options.token,
    };
  }

  /** One denom of an account ("0" when absent). */
  balance(address: string, denom: string): Subscription<Coin> {
    return this.subscribe(topics.balance(address, denom));
  }

  /** All balances of an account, sorted by denom. */
  balances(address: string): Subscription<Coin[]> {
    return this.subscribe(topics.balances(address));
  }

  /** One delegation (`null` when absent or removed). */
  delegation(delegator: string, validator: string): Subscription<Delegation | null> {
    return this.subscribe(topics.delegation(delegator, validator));
  }

  /** All delegations of a delegator. */
  delegations(delegator: string): Subscription<Delegation[]> {
    return this.subscribe(topics.delegations(delegator));
  }

  /** One unbonding delegation (`null` when absent or completed). */
  unbondingDelegation(delegator: string, validator: string): Subscription<UnbondingDelegation | null> {
    return this.subscribe(topics.unbondingDelegation(delegator, validator));
  }

  /** All unbonding delegations of a delegator. */
  unbondingDelegations(delegator: string): Subscription<UnbondingDelegation[]> {
    return this.subscribe(topics.unbondingDelegations(delegator));
  }

  /** A subscription to any topic (e.g. one built for a transport of your own). */
  subscribe<T>(topic: Topic<T>): Subscription<T> {
    return new Subscription(topic, this.options);
  }
}
