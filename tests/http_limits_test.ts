// HTTP clients that send too much or too little, through real sockets: huge
// bodies are refused without being read, half-sent requests time out, idle
// connections before the upgrade are capped, and running out of file
// descriptors does not end the listener.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Reads an HTTP response's status line from a raw connection; "" if the server
 * closed it first, "(no answer)" if nothing came within `timeoutMs` (the
 * connection is then closed).
 */
async function readStatusLine(conn: Deno.Conn, { timeoutMs = 15_000 } = {}): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, timeoutMs);
  try {
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    // Reset by the server (as good as closed), or closed here at the deadline.
  } finally {
    clearTimeout(timer);
  }
  return timedOut ? "(no answer)" : text.split("\r\n")[0];
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** A body of `total` bytes made chunk by chunk as it is sent (never held whole). */
function generatedBody(total: number, sent: { bytes: number }): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(256 * 1024).fill(0x20);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent.bytes >= total) {
        controller.close();
        return;
      }
      const part = chunk.subarray(0, Math.min(chunk.length, total - sent.bytes));
      sent.bytes += part.length;
      controller.enqueue(part);
    },
  });
}

async function warmUp(gateway: GatewayProcess): Promise<void> {
  // Parse a few ordinary requests first so the measured growth is the body's, not the heap's warm-up.
  for (let i = 0; i < 20; i++) {
    const response = await fetch(gateway.httpUrl("/commands"), { method: "POST", body: "{}" });
    await response.body?.cancel();
  }
}

Deno.test("POST /commands: a 300 MiB chunked body gets 413 at once and is never held in memory", async () => {
  await using gateway = await startGateway({ exchange: uniqueExchange("body"), waitForBroker: false });
  await warmUp(gateway);
  const before = gateway.rssBytes();
  const total = 300 * 1024 * 1024;
  const sent = { bytes: 0 };
  const started = performance.now();
  const response = await fetch(gateway.httpUrl("/commands"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: generatedBody(total, sent),
  });
  const ms = performance.now() - started;
  assert.equal(response.status, 413);
  assert.match(String((await response.json()).error), /over 64 KiB/);
  const grown = gateway.rssBytes() - before;
  assert.ok(sent.bytes < total, `the client was stopped before sending all of it (${sent.bytes} bytes sent)`);
  assert.ok(ms < 10_000, `answered in ${ms.toFixed(0)} ms`);
  assert.ok(grown < 32 * 1024 * 1024, `RSS grew by ${(grown / 1024 / 1024).toFixed(1)} MiB`);
});

Deno.test("POST /commands: a Content-Length over 64 KiB is refused with 413 before any body is sent", async () => {
  await using gateway = await startGateway({ exchange: uniqueExchange("length"), waitForBroker: false });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: gateway.port });
  try {
    await writeAll(
      conn,
      encoder.encode(
        `POST /commands HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${300 * 1024 * 1024}\r\n\r\n`,
      ),
    );
    assert.match(await readStatusLine(conn), /^HTTP\/1\.1 413/);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed at the deadline.
    }
  }
});
