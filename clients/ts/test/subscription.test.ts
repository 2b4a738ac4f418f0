// The subscription's semantics against a hand-driven transport: snapshot first, resume from
// the last height delivered, no duplicate, an explicit resync, failover, backoff, states.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff } from "../src/backoff.js";
import { StreamClient } from "../src/client.js";
import type { ConnectionState, Update } from "../src/types.js";
import { StreamError } from "../src/types.js";
import { ADDRESS, FakeTransport, sleep } from "./fakes.js";

function client(transport: FakeTransport, extra: Partial<ConstructorParameters<typeof StreamClient>[0]> = {}) {
  return new StreamClient({
    endpoints: ["ws://a", "ws://b"],
    transport,
    backoff: { initialMs: 10, maxMs: 40, jitter: 0.2 },
    ...extra,
  });
}

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    assert.equal(r.done, false);
    out.push(r.value as T);
  }
  return out;
}

const coin = (amount: string) => ({ denom: "ujuno", amount });

test("snapshot first, then changes; a cut resumes after the last height without a duplicate", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).balance(ADDRESS, "ujuno");
  const it = sub[Symbol.asyncIterator]();
  const s0 = await transport.stream(0);
  assert.equal(s0.request.since, undefined);
  assert.equal(s0.request.endpoint, "ws://a");
  assert.deepEqual(s0.request.topic.params, { address: ADDRESS, denom: "ujuno" });
  s0.open();
  assert.deepEqual(sub.state, { status: "live", endpoint: "ws://a" });
  s0.update(5, coin("10"));
  s0.update(7, coin("11"));
  const first = await take(it, 2);
  assert.deepEqual(
    first.map((u) => [u.height, u.kind, u.value.amount]),
    [
      [5, "snapshot", "10"],
      [7, "change", "11"],
    ],
  );
  s0.end("retry", "cut");
  assert.deepEqual(sub.state, { status: "reconnecting", attempt: 1 });
  const s1 = await transport.stream(1);
  assert.equal(s1.request.since, 7, "resumes after the last height delivered");
  assert.equal(s1.request.endpoint, "ws://b", "a failed attempt moves to the next endpoint");
  s1.open();
  s1.update(7, coin("11")); // a duplicate is never delivered
  s1.update(9, coin("12"));
  const [next] = await take(it, 1);
  assert.deepEqual([next?.height, next?.kind], [9, "change"]);
  sub.close();
  assert.equal((await it.next()).done, true);
});

test("a resume the node cannot serve becomes an explicit resynced snapshot", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).balances(ADDRESS);
  const it = sub[Symbol.asyncIterator]();
  const s0 = await transport.stream(0);
  s0.open();
  s0.update(5, { balances: [coin("1")] });
  await take(it, 1);
  s0.end("retry");
  const s1 = await transport.stream(1);
  assert.equal(s1.request.since, 5);
  s1.end("gone", "410: since_height 5 is outside the replay window");
  const s2 = await transport.stream(2);
  assert.equal(s2.request.since, undefined, "a fresh snapshot");
  s2.open();
  s2.update(50, { balances: [coin("2")] });
  s2.update(51, { balances: [coin("3")] });
  const got = await take(it, 2);
  assert.deepEqual(
    got.map((u) => [u.height, u.kind, u.lastHeight]),
    [
      [50, "resynced", 5],
      [51, "change", undefined],
    ],
  );
  sub.close();
});

test("a resumed stream that fell behind resumes again at once from the new last height", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).delegations(ADDRESS);
  const it = sub[Symbol.asyncIterator]();
  const s0 = await transport.stream(0);
  s0.open();
  s0.update(3, { delegations: [] });
  await take(it, 1);
  s0.end("retry");
  const s1 = await transport.stream(1);
  s1.open();
  s1.update(4, { delegations: [] });
  await take(it, 1);
  s1.end("gone", "410: the client fell behind");
  const s2 = await transport.stream(2);
  assert.equal(s2.request.since, 4);
  assert.equal(s2.request.endpoint, s1.request.endpoint, "same endpoint");
  assert.ok(s2.openedAt - s1.openedAt < 1000);
  sub.close();
});

test("an invalid request fails the subscription: iteration throws and the state says failed", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).balance("juno1bad", "ujuno");
  const states: ConnectionState[] = [];
  sub.onStateChange((s) => states.push(s));
  const s0 = await transport.stream(0);
  s0.end("invalid", "address juno1bad: invalid bech32");
  await assert.rejects(
    (async () => {
      for await (const _ of sub) {
        // nothing arrives
      }
    })(),
    (e: unknown) => e instanceof StreamError && e.code === "invalid_request",
  );
  assert.deepEqual(states.at(-1), { status: "failed", reason: "address juno1bad: invalid bech32" });
  await sleep(50);
  assert.equal(transport.streams.length, 1, "never retried");
});

test("consecutive failures back off within bounds, alternate endpoints, and can give up", async () => {
  const transport = new FakeTransport();
  const backoff = { initialMs: 40, maxMs: 160, multiplier: 2, jitter: 0.2 };
  const sub = client(transport, { backoff, maxAttempts: 5 }).unbondingDelegations(ADDRESS);
  const attempts: number[] = [];
  sub.onStateChange((s) => {
    if (s.status === "reconnecting") attempts.push(s.attempt);
  });
  const b = new Backoff(backoff);
  let previous = (await transport.stream(0)).openedAt;
  (await transport.stream(0)).end("retry");
  for (let n = 1; n <= 4; n++) {
    const s = await transport.stream(n);
    const waited = s.openedAt - previous;
    const [lo, hi] = b.bounds(n);
    assert.ok(waited >= lo - 2 && waited <= hi + 40, `attempt ${n}: waited ${waited} ms, bounds ${lo}..${hi}`);
    assert.equal(s.request.endpoint, n % 2 === 1 ? "ws://b" : "ws://a");
    previous = s.openedAt;
    s.end("retry");
  }
  assert.deepEqual(attempts, [1, 2, 3, 4]);
  await assert.rejects(sub[Symbol.asyncIterator]().next(), (e: unknown) => e instanceof StreamError && e.code === "gave_up");
});

test("default backoff: 1 s doubling to 60 s, each within +-20%", () => {
  const b = new Backoff();
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => b.nominal(n)),
    [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000],
  );
  for (let n = 1; n < 10; n++) {
    const [lo, hi] = b.bounds(n);
    for (let i = 0; i < 100; i++) {
      const d = b.delay(n);
      assert.ok(d >= lo && d <= hi, `${d} outside ${lo}..${hi}`);
    }
  }
  assert.equal(b.delay(1, () => 0), 800);
  assert.ok(b.delay(1, () => 0.999999999) < 1200);
});

test("updates queue in order for a slow consumer", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).balance(ADDRESS, "ujuno");
  const s0 = await transport.stream(0);
  s0.open();
  for (let h = 1; h <= 5; h++) s0.update(h, coin(String(h)));
  const got: Update<{ amount: string }>[] = [];
  for await (const u of sub) {
    got.push(u);
    if (got.length === 5) break;
  }
  assert.deepEqual(
    got.map((u) => u.height),
    [1, 2, 3, 4, 5],
  );
  assert.ok(s0.closed, "leaving the loop closes the stream");
});

test("a Retry-After longer than the backoff delays the next attempt", async () => {
  const transport = new FakeTransport();
  const sub = client(transport).balances(ADDRESS);
  const s0 = await transport.stream(0);
  s0.handlers.end({ kind: "retry", message: "429: too many", retryAfterMs: 150 });
  const s1 = await transport.stream(1);
  const waited = s1.openedAt - s0.openedAt;
  assert.ok(waited >= 148 && waited < 400, `waited ${waited} ms for a 150 ms Retry-After (backoff 10 ms)`);
  sub.close();
});
