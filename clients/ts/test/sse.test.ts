// The SSE transport: the event-stream parser (chunks cut anywhere, multi-line data, comments,
// CR / LF / CRLF, BOM, a last event without its blank line), the URL with since_height,
// refusals and `event: error` mapped to failures, stale detection, close aborting the fetch.

import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamClient } from "../src/client.js";
import { EventStreamParser, type ServerSentEvent } from "../src/event-stream.js";
import { type FetchLike, SseTransport, httpFailure, retryAfterMs, sseUrl, staleAfterMs } from "../src/sse.js";
import * as topics from "../src/topics.js";
import type { Failure, OpenRequest } from "../src/transport.js";
import { ADDRESS, openRecorded, sleep } from "./fakes.js";

function parse(chunks: string[]) {
  const events: ServerSentEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = new EventStreamParser({
    event: (e) => events.push(e),
    comment: (c) => comments.push(c),
    retry: (ms) => retries.push(ms),
  });
  for (const c of chunks) parser.feed(c);
  return { events, comments, retries, parser };
}

/** Every way to cut `text` into two or three chunks. */
function cuts(text: string): string[][] {
  const out: string[][] = [[text]];
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
  }
  return out;
}

const STREAM =
  "\uFEFF: subscribed\r\n\r\n" +
  "id: 41\r\nevent: update\r\ndata: {\"a\":\r\ndata:1}\r\n\r\n" +
  ": keepalive\n\n" +
  "id:42\revent:update\rdata:  two spaces\r\r" +
  "data\n\n" +
  "id: 43\nevent: update\ndata: never dispatched";

test("the parser gives the same events however the stream is cut", () => {
  const want: ServerSentEvent[] = [
    { type: "update", data: '{"a":\n1}', lastEventId: "41" },
    { type: "update", data: " two spaces", lastEventId: "42" },
    { type: "message", data: "", lastEventId: "42" },
  ];
  for (const chunks of cuts(STREAM)) {
    const got = parse(chunks);
    assert.deepEqual(got.events, want, JSON.stringify(chunks));
    assert.deepEqual(got.comments, [" subscribed", " keepalive"], JSON.stringify(chunks));
    // The id of the event left without its blank line is already the last event ID.
    assert.equal(got.parser.lastEventId, "43");
  }
});

test("the parser: fields without a value, unknown fields, retry, ids with NUL, event reset", () => {
  const { events, retries } = parse([
    "retry: 2500\nretry: 2s\nfoo: bar\nevent: error\n\n",
    "id\ndata: x\n\n",
    "id: a\0b\nevent: update\ndata: y\n\n",
    "data: z\n\n",
    ":only a comment\n\n",
  ]);
  assert.deepEqual(retries, [2500]);
  // `event: error` without data is not dispatched, and its type does not leak into the next.
  assert.deepEqual(events, [
    { type: "message", data: "x", lastEventId: "" },
    { type: "update", data: "y", lastEventId: "" },
    { type: "message", data: "z", lastEventId: "" },
  ]);
  // A BOM anywhere but first is text.
  assert.deepEqual(parse(["data: a", "\uFEFF\n\n"]).events[0]?.data, "a\uFEFF");
  assert.deepEqual(parse(["", "\uFEFFdata: b\n\n"]).events[0]?.data, "b");
});

test("the URL: the path route, since_height, ws endpoints read as http", () => {
  const topic = topics.balance(ADDRESS, "ibc/AB") as never;
  assert.equal(
    sseUrl({ endpoint: "http://node:1317/", topic, since: undefined }),
    `http://node:1317/sse/subscribe/bank/balance/${ADDRESS}/ibc%2FAB`,
  );
  assert.equal(
    sseUrl({ endpoint: "wss://node", topic: topics.balances(ADDRESS) as never, since: 41 }),
    `https://node/sse/subscribe/bank/balances/${ADDRESS}?since_height=41`,
  );
});

test("Retry-After: whole seconds only", () => {
  assert.equal(retryAfterMs("2"), 2000);
  assert.equal(retryAfterMs(" 10 "), 10_000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"), undefined);
});

test("refusals become failures", () => {
  assert.equal(httpFailure(410, "since_height 3 is outside the replay window").kind, "gone");
  assert.equal(httpFailure(400, "address: invalid bech32").kind, "invalid");
  assert.equal(httpFailure(400, "since_height 99 is above the latest height 50").kind, "retry");
  assert.equal(httpFailure(403, "origin not allowed").kind, "invalid");
  assert.equal(httpFailure(404, "").kind, "invalid");
  for (const status of [429, 500, 502, 503, 0]) assert.equal(httpFailure(status, "x").kind, "retry");
});

/** A fetch whose answers the test writes: each call gets a body stream it can push to. */
class FakeFetch {
  readonly calls: Array<{ url: string; headers: Record<string, string>; signal: AbortSignal }> = [];
  private body: ReadableStreamDefaultController<Uint8Array> | undefined;
  constructor(private readonly answer: (url: string) => Response | "body" | "hang" | Error = () => "body") {}

  readonly fetch: FetchLike = (url, init) => {
    this.calls.push({ url, headers: init.headers, signal: init.signal });
    const a = this.answer(url);
    if (a instanceof Error) return Promise.reject(a);
    if (a === "hang") {
      return new Promise((_, reject) => init.signal.addEventListener("abort", () => reject(new Error("aborted"))));
    }
    if (a !== "body") return Promise.resolve(a);
    const stream = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.body = c;
      },
    });
    init.signal.addEventListener("abort", () => {
      try {
        this.body?.error(new Error("aborted"));
      } catch {
        // already closed
      }
    });
    return Promise.resolve(
      new Response(stream, { status: 200, headers: { "content-type": "text/event-stream" } }),
    );
  };

  /** Sends `text`; nothing once the client aborted. */
  push(text: string): void {
    try {
      this.body?.enqueue(new TextEncoder().encode(text));
    } catch {
      // aborted: the stream is errored
    }
  }
  end(): void {
    this.body?.close();
  }
  /** The connection dies mid-stream. */
  cut(): void {
    this.body?.error(new TypeError("terminated"));
  }
}

function open(fake: FakeFetch, since: number | undefined, extra: Partial<OpenRequest> = {}) {
  const transport = new SseTransport({ fetch: fake.fetch, pingIntervalMs: 50 });
  return openRecorded(transport, "http://node:1317", since, extra);
}

test("streams updates; an event cut mid-way waits for its end; a stream ending is retry", async () => {
  const fake = new FakeFetch();
  const { events } = open(fake, 41);
  assert.equal(fake.calls[0]?.url, `http://node:1317/sse/subscribe/bank/balance/${ADDRESS}/ujuno?since_height=41`);
  assert.equal(fake.calls[0]?.headers["accept"], "text/event-stream");
  await sleep(10);
  fake.push(': subscribed\n\nid: 42\nevent: update\ndata: {"denom":"ujuno",');
  await sleep(10);
  assert.deepEqual(events, [["open"]]);
  // UTF-8 cut inside a character.
  const bytes = new TextEncoder().encode('"amount":"5","height":42,"memo":"\u00e9"}\n\n');
  fake.push(new TextDecoder().decode(bytes.slice(0, 10)));
  fake.push(new TextDecoder().decode(bytes.slice(10)));
  fake.push('event: message\ndata: {"height":1}\n\nid: 43\nevent: update\ndata: {"denom":"ujuno","amount":"6","height":43}\n\n');
  await sleep(10);
  fake.push("id: 44\nevent: update\ndata: {\"height\":44}");
  fake.end();
  await sleep(10);
  assert.deepEqual(events, [
    ["open"],
    ["update", { denom: "ujuno", amount: "5", height: 42, memo: "\u00e9" }],
    ["update", { denom: "ujuno", amount: "6", height: 43 }],
    ["end", { kind: "retry", message: "the node ended the stream" }],
  ]);
});

test("refusals and `event: error` end the stream with the right failure", async () => {
  const json = { "content-type": "application/json" };
  const refusal = (status: number, body: string) =>
    new FakeFetch(() => new Response(body, { status, headers: json }));
  const url = `http://node:1317/sse/subscribe/bank/balance/${ADDRESS}/ujuno?since_height=3`;
  const html = () => new Response("<html>", { status: 200, headers: { "content-type": "text/html" } });
  const outside = "since_height 3 is outside the replay window; oldest 9";
  const cases: Array<[FakeFetch, Failure]> = [
    [refusal(410, JSON.stringify({ error: outside })), { kind: "gone", message: `410: ${outside}` }],
    [
      refusal(400, '{"error":"address: invalid bech32"}'),
      { kind: "invalid", message: "address: invalid bech32" },
    ],
    [refusal(403, '{"error":"origin not allowed"}'), { kind: "invalid", message: "403: origin not allowed" }],
    [refusal(429, '{"error":"too many"}'), { kind: "retry", message: "429: too many" }],
    [refusal(503, "busy"), { kind: "retry", message: "503: busy" }],
    [
      new FakeFetch(() => new Response("{}", { status: 429, headers: { "retry-after": "3" } })),
      { kind: "retry", message: "429: {}", retryAfterMs: 3000 },
    ],
    [
      new FakeFetch(() => new TypeError("fetch failed")),
      { kind: "retry", message: `${url}: TypeError: fetch failed` },
    ],
    [new FakeFetch(html), { kind: "retry", message: `${url} answered text/html, not an event stream` }],
  ];
  for (const [fake, want] of cases) {
    const { events } = open(fake, 3);
    await sleep(10);
    assert.deepEqual(events, [["end", want]]);
  }

  for (const [code, kind] of [[410, "gone"], [503, "retry"], [400, "invalid"], [500, "retry"]] as const) {
    const fake = new FakeFetch();
    const { events } = open(fake, 7);
    await sleep(10);
    fake.push(`: subscribed\n\nevent: error\ndata: {"code":${code},"error":"why"}\n\n`);
    await sleep(10);
    const message = kind === "invalid" ? "why" : `${code}: why`;
    assert.deepEqual(events, [["open"], ["end", { kind, message }]]);
    assert.equal(fake.calls[0]?.signal.aborted, true, "the fetch is aborted once the stream ended");
  }
});

test("stale after max(keepaliveIntervalMs, the node's ping interval) + keepaliveTimeoutMs", () => {
  const defaults = { keepaliveIntervalMs: 15_000, keepaliveTimeoutMs: 10_000 };
  assert.equal(staleAfterMs(defaults, 30_000), 40_000, "a default node's 30 s keepalive is no stall");
  assert.equal(staleAfterMs({ keepaliveIntervalMs: 500, keepaliveTimeoutMs: 1000 }, 300), 1500);
});

test("silence for keepaliveIntervalMs + keepaliveTimeoutMs is stale; comments are life", async () => {
  const fake = new FakeFetch();
  const { events } = open(fake, undefined, { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 100 });
  await sleep(10);
  fake.push(": subscribed\n\n");
  for (let i = 0; i < 5; i++) {
    await sleep(100);
    fake.push(": keepalive\n\n");
  }
  assert.deepEqual(events, [["open"]], "keepalive comments every 100 ms keep it open");
  const quiet = Date.now();
  while (events.length < 2 && Date.now() - quiet < 1000) await sleep(5);
  const took = Date.now() - quiet;
  assert.deepEqual(events[1], ["end", { kind: "retry", message: "stale: nothing received for 200 ms" }]);
  assert.ok(took >= 190 && took < 400, `stale after ${took} ms`);
  assert.equal(fake.calls[0]?.signal.aborted, true);
});

test("no answer within connectTimeoutMs is retry; close aborts and silences", async () => {
  const hanging = new FakeFetch(() => "hang");
  const slow = open(hanging, undefined, { connectTimeoutMs: 50 });
  await sleep(100);
  assert.deepEqual(slow.events, [["end", { kind: "retry", message: "the stream did not open within 50 ms" }]]);
  assert.equal(hanging.calls[0]?.signal.aborted, true);

  const fake = new FakeFetch();
  const { events, handle } = open(fake, undefined, { keepaliveIntervalMs: 20, keepaliveTimeoutMs: 20 });
  await sleep(10);
  fake.push(": subscribed\n\n");
  await sleep(10);
  handle.close();
  assert.equal(fake.calls[0]?.signal.aborted, true);
  fake.push('event: update\ndata: {"height":5}\n\n');
  await sleep(100);
  assert.deepEqual(events, [["open"]], "nothing after close, not even stale");
});

test("through StreamClient: a cut SSE stream resumes with since_height = the last height delivered", async () => {
  const fake = new FakeFetch();
  const client = new StreamClient({
    endpoints: ["http://node:1317"],
    transport: new SseTransport({ fetch: fake.fetch }),
    backoff: { initialMs: 10, maxMs: 10 },
  });
  const sub = client.balance(ADDRESS, "ujuno");
  const update = (h: number) =>
    `id: ${h}\nevent: update\ndata: {"denom":"ujuno","amount":"${h}","height":${h}}\n\n`;
  await sleep(10);
  fake.push(`: subscribed\n\n${update(41)}${update(42)}id: 43\nevent: upd`);
  await sleep(10);
  fake.cut();
  const deadline = Date.now() + 1000;
  while (fake.calls.length < 2 && Date.now() < deadline) await sleep(5);
  const base = `http://node:1317/sse/subscribe/bank/balance/${ADDRESS}/ujuno`;
  assert.deepEqual(
    fake.calls.map((c) => c.url),
    [base, `${base}?since_height=42`],
  );
  await sleep(10);
  fake.push(`: subscribed\n\n${update(43)}`);
  const got: Array<[number, string, string]> = [];
  for await (const u of sub) {
    got.push([u.height, u.kind, u.value.amount]);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, [
    [41, "snapshot", "41"],
    [42, "change", "42"],
    [43, "change", "43"],
  ]);
  assert.equal(fake.calls[1]?.signal.aborted, true, "leaving the loop closes the stream");
});
