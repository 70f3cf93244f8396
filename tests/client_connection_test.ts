/**
 * Unit tests of the client module's connection (web/client/connection.ts):
 * the subprotocols it offers, reconnecting with backoff after a loss, and
 * closing for good. A fake WebSocket stands in for the platform's.
 */

import assert from "node:assert/strict";
import { Connection, type ConnectionEvents } from "../web/client/connection.ts";

class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static made: FakeSocket[] = [];
  readyState = FakeSocket.CONNECTING;
  sent: string[] = [];
  closedWith: [number, string] | undefined;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string, readonly protocols: string[]) {
    if (url === "bad") throw new SyntaxError("invalid URL");
    FakeSocket.made.push(this);
  }
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number, reason: string): void {
    this.closedWith = [code, reason];
    this.readyState = FakeSocket.CLOSING;
  }
  /** What the platform does when the socket goes away. */
  drop(code = 1006): void {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason: "" });
  }
}

/** Runs `body` with the fake in place of WebSocket; records what the connection reports. */
async function withFake(
  body: (log: string[], events: ConnectionEvents) => Promise<void> | void,
): Promise<void> {
  const real = globalThis.WebSocket;
  FakeSocket.made = [];
  globalThis.WebSocket = FakeSocket as unknown as typeof WebSocket;
  const log: string[] = [];
  const events: ConnectionEvents = {
    connecting: () => log.push("connecting"),
    failed: (error) => log.push(`failed ${error.message}`),
    message: (text) => log.push(`message ${text}`),
    lost: (event) => log.push(`lost ${event.code}`),
    ended: () => log.push("ended"),
  };
  try {
    await body(log, events);
  } finally {
    globalThis.WebSocket = real;
  }
}

Deno.test("client connection: offers clu-ws.v1 and the token, and sends only while open", () =>
  withFake((log, events) => {
    const connection = new Connection("ws://gw/", { token: "s3cret", events });
    connection.open();
    const socket = FakeSocket.made[0];
    assert.deepEqual(socket.protocols, ["clu-ws.v1", "token.s3cret"]);
    assert.equal(connection.isOpen, false);
    assert.equal(connection.send("early"), false);
    socket.readyState = FakeSocket.OPEN;
    assert.equal(connection.isOpen, true);
    assert.equal(connection.send("hello"), true);
    assert.deepEqual(socket.sent, ["hello"]);
    socket.onmessage?.({ data: "frame" });
    assert.equal(connection.close(), true);
    assert.deepEqual(socket.closedWith, [1000, "client closed"]);
    socket.drop(1000);
    assert.deepEqual(log, ["connecting", "message frame", "lost 1000", "ended"]);
  }));

Deno.test("client connection: no token, no token subprotocol; a socket that cannot be made fails", () =>
  withFake((log, events) => {
    new Connection("ws://gw/", { events }).open();
    assert.deepEqual(FakeSocket.made[0].protocols, ["clu-ws.v1"]);
    new Connection("bad", { events }).open();
    assert.deepEqual(log, ["connecting", "connecting", "failed invalid URL"]);
  }));

Deno.test("client connection: after a loss it opens a new socket, with a doubling delay", () =>
  withFake(async (log, events) => {
    const connection = new Connection("ws://gw/", { minDelayMs: 20, maxDelayMs: 40, events });
    connection.open();
    const lostAt: number[] = [];
    const reopened = async (count: number) => {
      while (FakeSocket.made.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    for (let i = 1; i <= 3; i++) {
      lostAt.push(performance.now());
      FakeSocket.made[i - 1].drop();
      await reopened(i + 1);
      lostAt[i - 1] = performance.now() - lostAt[i - 1];
    }
    // 20 ms, then 40, then 40 (the maximum), each ±30 %.
    assert.ok(lostAt[0] >= 12, `first retry after ${lostAt[0]} ms`);
    assert.ok(lostAt[1] >= 25 && lostAt[2] >= 25, `later retries after ${lostAt.slice(1)} ms`);
    // A stale socket's close is not a loss.
    FakeSocket.made[0].drop();
    connection.close();
    FakeSocket.made[3].drop();
    assert.deepEqual(log, [
      "connecting",
      ...Array(3).fill(["lost 1006", "connecting"]).flat(),
      "lost 1006",
      "ended",
    ]);
  }));

Deno.test("client connection: reconnect false ends after the first loss; close() while waiting stops the retry", () =>
  withFake(async (log, events) => {
    new Connection("ws://gw/", { reconnect: false, events }).open();
    FakeSocket.made[0].drop();
    assert.deepEqual(log, ["connecting", "lost 1006", "ended"]);
    log.length = 0;
    const connection = new Connection("ws://gw/", { minDelayMs: 10, events });
    connection.open();
    FakeSocket.made[1].drop();
    assert.equal(connection.close(), false);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(FakeSocket.made.length, 2);
    assert.deepEqual(log, ["connecting", "lost 1006"]);
  }));
