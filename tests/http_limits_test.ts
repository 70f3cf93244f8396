// HTTP clients that send too much or too little, through real sockets: huge
// bodies are refused without being read, half-sent requests time out, idle
// connections before the upgrade are capped, and running out of file
// descriptors does not end the listener.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

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
  console.log(
    `a 300 MiB body: 413 after ${ms.toFixed(0)} ms, ${(sent.bytes / 1024 / 1024).toFixed(1)} MiB sent, ` +
      `gateway RSS ${grown >= 0 ? "+" : ""}${(grown / 1024 / 1024).toFixed(1)} MiB`,
  );
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

/** A command actor's name of its own (queues are exclusive, and other runs may share the broker). */
const actorName = `lim-${crypto.randomUUID().slice(0, 8)}`;

/** Sends a ping to `actor` and waits for its end (":") on `client`. */
async function pingThrough(client: WsClient, actor: string, id: string): Promise<void> {
  client.send({ consumer: actor, command_string: "ping", command_id: id });
  await client.next(`the Pong for ${id}`, replyTo(id, ":"), { timeoutMs: 20_000 });
}

Deno.test("a half-sent request is answered 408 near --header-timeout while other clients carry on", async () => {
  const exchange = uniqueExchange("header");
  await using gateway = await startGateway({ exchange, args: ["--header-timeout", "2"] });
  const actor = await startActor(exchange, actorName);
  const client = await WsClient.connect(gateway.url());
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: gateway.port });
  try {
    const started = performance.now();
    await writeAll(conn, encoder.encode(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nX-Slow: `));
    const answer = readStatusLine(conn, { timeoutMs: 15_000 });
    await pingThrough(client, actorName, "while-slow");
    const health = await fetch(gateway.httpUrl("/healthz"));
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const status = await answer;
    const seconds = (performance.now() - started) / 1000;
    console.log(`a half-sent request got '${status || "(closed)"}' after ${seconds.toFixed(1)} s`);
    assert.match(status, /^(HTTP\/1\.1 408 .*)?$/, "answered 408 or closed");
    assert.ok(seconds >= 1.5 && seconds < 6, `after ${seconds.toFixed(1)} s (timeout 2 s)`);
  } finally {
    try {
      conn.close();
    } catch {
      // Closed at the deadline.
    }
    await client.close();
    await actor.close();
  }
});

Deno.test("idle connections over --max-pending are closed on arrival; websocket clients keep being served", async () => {
  const exchange = uniqueExchange("pending");
  await using gateway = await startGateway({ exchange, args: ["--max-pending", "20"] });
  const actor = await startActor(exchange, actorName);
  const client = await WsClient.connect(gateway.url());
  const flood: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      flood.push(await Deno.connect({ hostname: "127.0.0.1", port: gateway.port }));
    }
    await pingThrough(client, actorName, "during-flood");
    // Refused ones are closed at once; the few admitted ones would wait for the header timeout (10 s).
    const answers = await Promise.all(flood.map((conn) => readStatusLine(conn, { timeoutMs: 5000 })));
    const closed = answers.filter((a) => a === "").length;
    console.log(`--max-pending 20: ${closed} of 200 idle connections were closed on arrival`);
    assert.ok(closed >= 170, `${closed} of 200 were closed`);
    await gateway.waitForLog("the warning", (r) => /--max-pending/.test(r.message));
    await pingThrough(client, actorName, "after-flood");
  } finally {
    for (const conn of flood) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    await client.close();
    await actor.close();
  }
});

Deno.test("running out of file descriptors does not end the listener: once they free up, clients connect again", async () => {
  const exchange = uniqueExchange("emfile");
  const main = new URL("../main.ts", import.meta.url).pathname;
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n 96; exec "${Deno.execPath()}" run --allow-all --quiet "${main}" --host 127.0.0.1 --port 0 ` +
      `--log-format json --exchange ${exchange}`,
    ],
    env: { CLU_WS_URL: "amqp://guest:guest@127.0.0.1:5672" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          logs.push(JSON.parse(line));
        } catch {
          logs.push({ message: line });
        }
      }
      for (const wake of waiters.splice(0)) wake();
    }
  })();
  async function waitForLog(what: string, match: (r: Record<string, unknown>) => boolean) {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const found = logs.find(match);
      if (found) return found;
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
    throw new Error(`no log for ${what}; log:\n${logs.slice(-20).map((r) => r.message).join("\n")}`);
  }
  const actor = await startActor(exchange, actorName);
  const flood: Deno.Conn[] = [];
  try {
    const port = Number((await waitForLog("listening", (r) => /listening on/.test(String(r.message)))).port);
    await waitForLog("the broker link", (r) => /RabbitMQ link up/.test(String(r.message)));
    // More connections than the gateway has descriptors: the kernel queues the rest.
    try {
      for (let i = 0; i < 150; i++) flood.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch (err) {
      console.log(`the flood stopped after ${flood.length} connections: ${err}`);
    }
    await waitForLog(
      "the descriptors running out",
      (r) => /file descriptors|stopped accepting/.test(String(r.message)),
    );
    for (const conn of flood.splice(0)) conn.close();
    const client = await until("a client to connect again", async () => {
      try {
        return await WsClient.connect(`ws://127.0.0.1:${port}/`, { timeoutMs: 3000 });
      } catch {
        return undefined;
      }
    }, { timeoutMs: 30_000 });
    try {
      await pingThrough(client, actorName, "after-emfile");
    } finally {
      await client.close();
    }
    const fetched = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(fetched.status, 200);
    await fetched.body?.cancel();
  } finally {
    for (const conn of flood) conn.close();
    child.kill("SIGKILL");
    await child.status;
    await reading;
    await actor.close();
  }
});
