// Token auth in the client: the token (or the token function, asked before every attempt)
// goes out as `?token=` on /ws and SSE URLs; an expired token (close 4001, SSE error 401,
// HTTP 401) is retried with a new token from the last height delivered; 403 fails.

import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamClient } from "../src/client.js";
import { httpFailure, sseUrl } from "../src/sse.js";
import * as topics from "../src/topics.js";
import { StreamError } from "../src/types.js";
import { CLOSE_TOKEN_EXPIRED, closeFailure, WebSocketTransport, wsFailure, wsUrl } from "../src/websocket.js";
import { ADDRESS, FakeSocket, FakeTransport, openRecorded, sleep } from "./fakes.js";

const backoff = { initialMs: 10, maxMs: 40, jitter: 0.2 };

test("URLs carry the token as ?token=, encoded, after since_height", () => {
  assert.equal(wsUrl({ endpoint: "ws://node:1317/", token: "a.b-c_d" }), "ws://node:1317/ws?token=a.b-c_d");
  assert.equal(wsUrl({ endpoint: "ws://node:1317" }), "ws://node:1317/ws");
  assert.equal(wsUrl({ endpoint: "ws://n", token: "a b&c" }), "ws://n/ws?token=a%20b%26c");
  const topic = topics.balances(ADDRESS) as never;
  assert.equal(
    sseUrl({ endpoint: "http://node:1317", topic, since: 41, token: "h.p.s" }),
    `http://node:1317/sse/subscribe/bank/balances/${ADDRESS}?since_height=41&token=h.p.s`,
  );
  assert.equal(
    sseUrl({ endpoint: "http://node:1317", topic, since: undefined, token: "h.p.s" }),
    `http://node:1317/sse/subscribe/bank/balances/${ADDRESS}?token=h.p.s`,
  );
});

test("expiry and missing tokens are retry; a token that does not allow the stream is invalid", () => {
  const expired = "the token expired; reconnect with a new one (and since_height)";
  assert.deepEqual(closeFailure(CLOSE_TOKEN_EXPIRED, expired), {
    kind: "retry",
    message: `close 4001 (token expired): ${expired}`,
  });
  assert.equal(httpFailure(401, "token rejected: expired").kind, "retry", "SSE event: error code 401 / HTTP 401");
  assert.equal(wsFailure(401, "this node requires a token").kind, "retry");
  assert.deepEqual(wsFailure(403, "the token does not allow this address"), {
    kind: "invalid",
    message: "403: the token does not allow this address",
  });
  assert.equal(httpFailure(403, "the token does not allow bank/balances").kind, "invalid");
});

test("the WebSocket transport opens /ws?token= and ends with retry on close 4001", () => {
  const transport = new WebSocketTransport({ WebSocket: FakeSocket });
  const { events } = openRecorded(transport, "ws://node:1317", 9, { token: "jwt-1" });
  const socket = FakeSocket.last as FakeSocket;
  assert.equal(socket.url, "ws://node:1317/ws?token=jwt-1");
  socket.onopen?.({});
  socket.receive({ id: 1, result: { subscription: "s1" } });
  socket.onclose?.({ code: 4001, reason: "token expired" });
  assert.deepEqual(events, [
    ["open"],
    ["end", { kind: "retry", message: "close 4001 (token expired): token expired" }],
  ]);
});

test("a token function is asked at every attempt and an expiry resumes with the new token", async () => {
  const transport = new FakeTransport();
  let minted = 0;
  const sub = new StreamClient({
    endpoints: ["ws://a"],
    transport,
    backoff,
    token: async () => {
      minted += 1;
      await sleep(1);
      return `jwt-${minted}`;
    },
  }).balance(ADDRESS, "ujuno");
  const it = sub[Symbol.asyncIterator]();
  const s0 = await transport.stream(0);
  assert.equal(s0.request.token, "jwt-1");
  s0.open();
  s0.update(5, { denom: "ujuno", amount: "1" });
  assert.equal((await it.next()).value?.height, 5);
  s0.end("retry", "close 4001 (token expired)");
  const s1 = await transport.stream(1);
  assert.deepEqual([s1.request.token, s1.request.since], ["jwt-2", 5], "a new token, resuming after 5");
  s1.open();
  s1.update(6, { denom: "ujuno", amount: "2" });
  const next = (await it.next()).value;
  assert.deepEqual([next?.height, next?.kind], [6, "change"]);
  sub.close();
});

test("a fixed token is sent as is; no token option sends none", async () => {
  const fixed = new FakeTransport();
  new StreamClient({ endpoints: ["ws://a"], transport: fixed, token: "static" }).balances(ADDRESS);
  assert.equal((await fixed.stream(0)).request.token, "static");
  const none = new FakeTransport();
  new StreamClient({ endpoints: ["ws://a"], transport: none }).balances(ADDRESS);
  assert.equal((await none.stream(0)).request.token, undefined);
});

test("a token function that throws fails the attempt, which is retried", async () => {
  const transport = new FakeTransport();
  let calls = 0;
  const sub = new StreamClient({
    endpoints: ["ws://a"],
    transport,
    backoff,
    token: () => {
      calls += 1;
      if (calls === 1) throw new Error("auth server down");
      return "jwt-ok";
    },
  }).balances(ADDRESS);
  const states: string[] = [];
  sub.onStateChange((s) => states.push(s.status));
  const s0 = await transport.stream(0);
  assert.equal(s0.request.token, "jwt-ok");
  assert.equal(calls, 2);
  assert.deepEqual(states, ["reconnecting"]);
  sub.close();
});

test("403 fails the subscription with the reason; close() during a pending token opens nothing", async () => {
  const transport = new FakeTransport();
  const sub = new StreamClient({ endpoints: ["ws://a"], transport, backoff, token: "narrow" }).balances(ADDRESS);
  const it = sub[Symbol.asyncIterator]();
  const s0 = await transport.stream(0);
  s0.handlers.end(wsFailure(403, "the token does not allow this address"));
  await assert.rejects(
    it.next(),
    (e: unknown) => e instanceof StreamError && e.message === "403: the token does not allow this address",
  );
  assert.deepEqual(sub.state, { status: "failed", reason: "403: the token does not allow this address" });
  await sleep(30);
  assert.equal(transport.streams.length, 1, "never retried");

  const slow = new FakeTransport();
  const pending = new StreamClient({
    endpoints: ["ws://a"],
    transport: slow,
    token: () => sleep(20).then(() => "late"),
  }).balances(ADDRESS);
  pending.close();
  await sleep(40);
  assert.equal(slow.streams.length, 0);
});
