// The WebSocket transport against a hand-driven socket: the /ws subscribe request with
// since_height, refusals and ends mapped to failures, close 4410, the keepalive probe.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Failure, OpenRequest } from "../src/transport.js";
import { WebSocketTransport, wsFailure } from "../src/websocket.js";
import { ADDRESS, FakeSocket, openRecorded, sleep } from "./fakes.js";

function open(since: number | undefined, extra: Partial<OpenRequest> = {}) {
  const transport = new WebSocketTransport({ WebSocket: FakeSocket });
  const { events, handle } = openRecorded(transport, "ws://node:1317/", since, extra);
  const socket = FakeSocket.last as FakeSocket;
  return { events, handle, socket };
}

test("subscribes on /ws with since_height and delivers its subscription's data", () => {
  const { events, handle, socket } = open(41);
  assert.equal(socket.url, "ws://node:1317/ws");
  socket.onopen?.({});
  assert.deepEqual(socket.sent, [
    {
      id: 1,
      method: "subscribe",
      stream: "bank/balance",
      params: { address: ADDRESS, denom: "ujuno", since_height: 41 },
    },
  ]);
  socket.receive({ id: 1, result: { subscription: "s1" } });
  socket.receive({ subscription: "s1", data: { denom: "ujuno", amount: "5", height: 42 } });
  socket.receive({ subscription: "s9", data: { denom: "x", amount: "1", height: 43 } });
  assert.deepEqual(events, [["open"], ["update", { denom: "ujuno", amount: "5", height: 42 }]]);
  handle.close();
  assert.equal(socket.closedWith, 1000);
});

test("refusals and ends become failures", () => {
  assert.equal(wsFailure(410, "since_height 3 is outside the replay window").kind, "gone");
  assert.equal(wsFailure(400, "address: invalid bech32").kind, "invalid");
  assert.equal(wsFailure(400, "since_height 99 is above the latest height 50").kind, "retry");
  assert.equal(wsFailure(429, "limit").kind, "retry");
  assert.equal(wsFailure(503, "shutting down").kind, "retry");

  const refused = open(3);
  refused.socket.onopen?.({});
  refused.socket.receive({ id: 1, error: { code: 410, message: "since_height 3 is outside the replay window" } });
  assert.deepEqual(refused.events, [
    ["end", { kind: "gone", message: "410: since_height 3 is outside the replay window" }],
  ]);

  const ended = open(undefined);
  ended.socket.onopen?.({});
  ended.socket.receive({ id: 1, result: { subscription: "s1" } });
  ended.socket.receive({ subscription: "s1", error: { code: 503, message: "the node is shutting down" } });
  assert.deepEqual(ended.events.at(-1), ["end", { kind: "retry", message: "503: the node is shutting down" }]);

  const gone = open(7);
  gone.socket.onclose?.({ code: 4410, reason: "fell behind" });
  assert.deepEqual(gone.events, [["end", { kind: "gone", message: "close 4410: fell behind" }]]);

  const cut = open(7);
  cut.socket.onclose?.({ code: 1006, reason: "" });
  cut.socket.onclose?.({ code: 1006, reason: "" });
  assert.deepEqual(cut.events, [["end", { kind: "retry", message: "closed: 1006" }]]);
});

test("silence is probed, a probe answer is life, an unanswered probe is stale", async () => {
  const { events, socket, handle } = open(undefined, { keepaliveIntervalMs: 60, keepaliveTimeoutMs: 80 });
  socket.onopen?.({});
  socket.receive({ id: 1, result: { subscription: "s1" } });
  await sleep(100);
  const probe = { id: "keepalive", method: "unsubscribe", params: { subscription: "keepalive" } };
  assert.deepEqual(socket.sent.at(-1), probe);
  socket.receive({ id: "keepalive", error: { code: 404, message: 'no subscription "keepalive"' } });
  await sleep(40);
  assert.deepEqual(events, [["open"]], "answered: still open");
  await sleep(200);
  assert.equal(events.length, 2);
  assert.equal(events[1]?.[0], "end");
  assert.match((events[1] as ["end", Failure])[1].message, /^stale/);
  handle.close();
});

test("a subscription that never opens times out", async () => {
  const { events } = open(undefined, { connectTimeoutMs: 30 });
  await sleep(80);
  assert.deepEqual(events, [["end", { kind: "retry", message: "the subscription did not open within 30 ms" }]]);
});
