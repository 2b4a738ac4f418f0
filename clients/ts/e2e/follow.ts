// Follows streams with the client under Node and prints one JSON line per event, for the
// end-to-end test that cuts its connections (tests/client_ts.rs):
//   {"sub":0,"height":42,"kind":"change","value":{...}}   value: the update's JSON without
//                                                          "height" (the checker's form)
//   {"sub":0,"state":{"status":"live","endpoint":"ws://..."}}
//   {"sub":0,"error":"..."}
//   {"sub":0,"token":3}                                    the 3rd token minted for it
// Argument: a JSON config {"endpoints":[..],"subs":[{"stream":"bank/balance","params":{..}}],
// "backoff":{..},"keepaliveIntervalMs":..,"keepaliveTimeoutMs":..,"transport":"websocket"|"sse",
// "pingIntervalMs":..} (default websocket; sse uses Node's own fetch; pingIntervalMs: the
// node's ping_interval, for SSE's stale detection).
// With "auth":{"secret":"..","ttlSeconds":3}, each subscription has a client of its own whose
// token function signs a new HS256 token (sub "ts-<i>", exp now + ttlSeconds, plus the
// subscription's "claims") at every call.

import { createHmac } from "node:crypto";

import WebSocket from "ws";

import { SseTransport, StreamClient, type Topic, topics } from "../src/index.js";
import type { WebSocketConstructor } from "../src/websocket.js";

interface Config {
  endpoints: string[];
  subs: Array<{ stream: string; params: Record<string, string>; claims?: Record<string, unknown> }>;
  backoff?: { initialMs?: number; maxMs?: number };
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  transport?: "websocket" | "sse";
  pingIntervalMs?: number;
  auth?: { secret: string; ttlSeconds: number };
}

const config = JSON.parse(process.argv[2] ?? "{}") as Config;

function topicOf(stream: string, p: Record<string, string>): Topic<unknown> {
  const need = (k: string) => {
    const v = p[k];
    if (v === undefined) throw new Error(`${stream} needs ${k}`);
    return v;
  };
  switch (stream) {
    case "bank/balance":
      return topics.balance(need("address"), need("denom"));
    case "bank/balances":
      return topics.balances(need("address"));
    case "staking/delegations":
      return topics.delegations(need("delegator"));
    case "staking/delegation":
      return topics.delegation(need("delegator"), need("validator"));
    case "staking/unbonding-delegations":
      return topics.unbondingDelegations(need("delegator"));
    case "staking/unbonding-delegation":
      return topics.unbondingDelegation(need("delegator"), need("validator"));
    default:
      throw new Error(`unknown stream ${stream}`);
  }
}

/** The same topic, but its value is the update's JSON without "height" (after the real
 * decoding has checked it). */
function raw(topic: Topic<unknown>): Topic<unknown> {
  return {
    ...topic,
    decode(data: unknown): [number, unknown] {
      const [height] = topic.decode(data);
      const { height: _, ...rest } = data as Record<string, unknown>;
      return [height, rest];
    },
  };
}

const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

/** An HS256 JWT of `claims`. */
function sign(claims: Record<string, unknown>, secret: string): string {
  const head = `${base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${base64url(JSON.stringify(claims))}`;
  return `${head}.${base64url(createHmac("sha256", secret).update(head).digest())}`;
}

/** The token function of subscription `sub`: a new token per call, each call printed. */
function tokenFor(sub: number, claims: Record<string, unknown> = {}): (() => Promise<string>) | undefined {
  const auth = config.auth;
  if (!auth) return undefined;
  let minted = 0;
  return async () => {
    minted += 1;
    print({ sub, token: minted });
    const exp = Math.floor(Date.now() / 1000) + auth.ttlSeconds;
    return sign({ sub: `ts-${sub}`, exp, ...claims }, auth.secret);
  };
}

const clientOptions = {
  endpoints: config.endpoints,
  WebSocket: WebSocket as unknown as WebSocketConstructor,
  ...(config.transport === "sse"
    ? { transport: new SseTransport(config.pingIntervalMs ? { pingIntervalMs: config.pingIntervalMs } : {}) }
    : {}),
  ...(config.backoff ? { backoff: config.backoff } : {}),
  ...(config.keepaliveIntervalMs ? { keepaliveIntervalMs: config.keepaliveIntervalMs } : {}),
  ...(config.keepaliveTimeoutMs ? { keepaliveTimeoutMs: config.keepaliveTimeoutMs } : {}),
};
const shared = new StreamClient(clientOptions);

await Promise.all(
  config.subs.map(async ({ stream, params, claims }, sub) => {
    const token = tokenFor(sub, claims);
    const client = token ? new StreamClient({ ...clientOptions, token }) : shared;
    const subscription = client.subscribe(raw(topicOf(stream, params)));
    subscription.onStateChange((state) => print({ sub, state }));
    try {
      for await (const u of subscription) {
        print({ sub, height: u.height, kind: u.kind, lastHeight: u.lastHeight, value: u.value });
      }
    } catch (e) {
      print({ sub, error: String(e) });
    }
  }),
);
