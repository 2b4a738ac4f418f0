// @juno-stream/client: typed async iterators over the stream module's WebSocket or SSE API that
// reconnect, resume by height and fail over, so a consumer sees every change exactly once.
//
//   const client = new StreamClient({ endpoints: ["ws://127.0.0.1:1317"] });
//   const balance = client.balance("juno1...", "ujuno");
//   balance.onStateChange((s) => console.log(s.status));
//   for await (const u of balance) console.log(u.height, u.value.amount, u.kind);
//
//   // Server-Sent Events instead of WebSocket:
//   new StreamClient({ endpoints: ["http://127.0.0.1:1317"], transport: new SseTransport() });

export {
  EventStreamParser,
  type EventStreamHandlers,
  type ServerSentEvent,
} from "./event-stream.js";
export { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { StreamClient, type ClientOptions, type TokenOption } from "./client.js";
export { Subscription, type SubscriptionOptions } from "./subscription.js";
export {
  DEFAULT_PING_INTERVAL_MS,
  type FetchLike,
  httpFailure,
  SseTransport,
  type SseTransportOptions,
  sseUrl,
  retryAfterMs,
  staleAfterMs,
} from "./sse.js";
export * as topics from "./topics.js";
export type { Topic } from "./topics.js";
export type { Failure, OpenRequest, StreamHandle, StreamHandlers, Transport } from "./transport.js";
export {
  type Coin,
  type ConnectionState,
  type Delegation,
  StreamError,
  type UnbondingDelegation,
  type UnbondingEntry,
  type Update,
  type UpdateKind,
} from "./types.js";
export {
  CLOSE_GONE,
  CLOSE_TOKEN_EXPIRED,
  closeFailure,
  WebSocketTransport,
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketTransportOptions,
  wsFailure,
  wsUrl,
} from "./websocket.js";
