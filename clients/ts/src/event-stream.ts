// The `text/event-stream` format, parsed incrementally as the WHATWG HTML standard's
// "server-sent events" section says an `EventSource` does: text arrives in chunks cut
// anywhere (inside a line, between CR and LF), lines end in CRLF, LF or CR, one leading BOM
// is dropped, `data` lines join with "\n", an event is dispatched by a blank line only (what
// a cut stream left without one is never dispatched).

/** One dispatched event. */
export interface ServerSentEvent {
  /** The `event` field; "message" when none was given. */
  type: string;
  /** The `data` lines joined with "\n". */
  data: string;
  /** The last `id` field seen so far in the stream (it persists across events). */
  lastEventId: string;
}

/** What the parser reports. */
export interface EventStreamHandlers {
  event(event: ServerSentEvent): void;
  /** A comment line's text after the ":" (e.g. " keepalive"). */
  comment?(text: string): void;
  /** A valid `retry` field: the reconnection time the server asks for, ms. */
  retry?(ms: number): void;
}

/** Feeds decoded text in; calls the handlers as lines complete. */
export class EventStreamParser {
  /** Text of a line not yet ended. */
  private pending = "";
  /** The previous chunk ended in CR: a LF starting the next one belongs to it. */
  private afterCr = false;
  /** Nothing has been fed yet (a leading BOM is dropped only there). */
  private start = true;
  private data: string[] = [];
  private type = "";
  private id = "";

  constructor(private readonly handlers: EventStreamHandlers) {}

  /** The last event ID (what an `EventSource` would send as `Last-Event-ID`). */
  get lastEventId(): string {
    return this.id;
  }

  /** Parses `text`, the next piece of the stream (already decoded from UTF-8). */
  feed(text: string): void {
    if (text.length === 0) return;
    if (this.start) {
      this.start = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let from = 0;
    if (this.afterCr && text.startsWith("\n")) from = 1;
    this.afterCr = false;
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      const line = this.pending + text.slice(from, i);
      this.pending = "";
      if (c === 0x0d) {
        if (i + 1 === text.length) this.afterCr = true;
        else if (text.charCodeAt(i + 1) === 0x0a) i += 1;
      }
      from = i + 1;
      this.line(line);
    }
    this.pending += text.slice(from);
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    const colon = line.indexOf(":");
    if (colon === 0) {
      this.handlers.comment?.(line.slice(1));
      return;
    }
    let field = line;
    let value = "";
    if (colon > 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.id = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.handlers.retry?.(Number(value));
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  private dispatch(): void {
    const type = this.type;
    this.type = "";
    if (this.data.length === 0) return;
    const data = this.data.join("\n");
    this.data = [];
    this.handlers.event({ type: type === "" ? "message" : type, data, lastEventId: this.id });
  }
}
