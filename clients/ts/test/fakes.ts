// Test doubles: a transport whose streams a test drives by hand, and a WebSocket that records
// what is sent and lets a test deliver messages and closes.

import * as topics from "../src/topics.js";
import type { Failure, OpenRequest, StreamHandle, StreamHandlers, Transport } from "../src/transport.js";
import type { WebSocketLike } from "../src/websocket.js";

/** The address the tests stream. */
export const ADDRESS = "juno1ccwqzcnvkdvxp7yql57gyxyy853vz4s36rn0am";

/** What a stream's handlers were told, in order. */
export type Recorded = ["open"] | ["update", unknown] | ["end", Failure];

/** Opens the ujuno balance of `ADDRESS` on `transport` at `endpoint` from `since` (1 s
 * deadlines unless `extra` says otherwise), recording what its handlers are told. */
export function openRecorded(
  transport: Transport,
  endpoint: string,
  since: number | undefined,
  extra: Partial<OpenRequest> = {},
) {
  const events: Recorded[] = [];
  const handle = transport.open(
    {
      endpoint,
      topic: topics.balance(ADDRESS, "ujuno") as never,
      since,
      connectTimeoutMs: 1000,
      keepaliveIntervalMs: 1000,
      keepaliveTimeoutMs: 1000,
      ...extra,
    },
    {
      open: () => events.push(["open"]),
      update: (d) => events.push(["update", d]),
      end: (f) => events.push(["end", f]),
    },
  );
  return { events, handle };
}

/** One stream the client opened on a `FakeTransport`. */
export class FakeStream implements StreamHandle {
  closed = false;
  constructor(
    readonly request: OpenRequest,
    readonly handlers: StreamHandlers,
    readonly openedAt: number,
  ) {}
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.handlers.open();
  }
  update(height: number, data: Record<string, unknown> = {}): void {
    this.handlers.update({ ...data, height });
  }
  end(kind: Failure["kind"], message: string = kind): void {
    this.handlers.end({ kind, message });
  }
}

export class FakeTransport implements Transport {
  readonly name = "fake";
  readonly streams: FakeStream[] = [];
  private waiters: Array<() => void> = [];

  open(request: OpenRequest, handlers: StreamHandlers): StreamHandle {
    const s = new FakeStream(request, handlers, Date.now());
    this.streams.push(s);
    for (const w of this.waiters.splice(0)) w();
    return s;
  }

  /** The `n`th stream (0-based), once opened. */
  async stream(n: number, timeoutMs = 2000): Promise<FakeStream> {
    const deadline = Date.now() + timeoutMs;
    while (this.streams.length <= n) {
      if (Date.now() > deadline) throw new Error(`stream ${n} never opened (${this.streams.length} so far)`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
    return this.streams[n] as FakeStream;
  }
}

/** A WebSocket that a test drives. */
export class FakeSocket implements WebSocketLike {
  static last: FakeSocket | undefined;
  readonly sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
  }
  receive(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
