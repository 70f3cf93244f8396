/**
 * Fewer system calls on the hot paths, with nothing lost or reordered:
 * batched socket writes merged into one write (`lib/merged_writes.ts`),
 * amqplib's frames coalesced per pass and per interval
 * (`lib/broker/coalesce.ts`), and the publish confirm deadline kept by one
 * timer for every command in flight (`lib/broker/publish.ts`).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { MERGE_LIMIT_BYTES, mergeBatchedWrites } from "../lib/merged_writes.ts";
import { coalesceFrameWrites } from "../lib/broker/coalesce.ts";
import { type ConfirmingChannel, Confirms, type PublishOutcome } from "../lib/broker/publish.ts";
import { connectBroker, uniqueExchange } from "./helpers/broker.ts";

/** A connected pair on loopback: what the client writes, the server's side collects until `bytes` arrived. */
async function socketPair(): Promise<
  { client: net.Socket; received: (bytes: number) => Promise<Buffer>; close(): Promise<void> }
> {
  const chunks: Buffer[] = [];
  let total = 0;
  let waiter: { bytes: number; resolve: (b: Buffer) => void } | undefined;
  let serverSide: net.Socket | undefined;
  const server = net.createServer((socket) => {
    serverSide = socket;
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (waiter && total >= waiter.bytes) waiter.resolve(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => client.once("connect", resolve).once("error", reject));
  return {
    client,
    received: (bytes) =>
      total >= bytes
        ? Promise.resolve(Buffer.concat(chunks))
        : new Promise((resolve) => waiter = { bytes, resolve }),
    close: async () => {
      const ended = new Promise((resolve) => client.once("close", resolve));
      client.end();
      serverSide?.end();
      await ended;
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Counts the socket's `_write` and `_writev` calls (how many system writes a batch became). */
function countWrites(socket: net.Socket): { write: number; writev: number } {
  const counts = { write: 0, writev: 0 };
  const internals = socket as unknown as Record<string, (...args: unknown[]) => unknown>;
  const write = internals._write;
  const writev = internals._writev;
  internals._write = function (this: unknown, ...args: unknown[]) {
    counts.write++;
    return write.apply(this, args);
  };
  internals._writev = function (this: unknown, ...args: unknown[]) {
    counts.writev++;
    return writev.apply(this, args);
  };
  return counts;
}

Deno.test("merged writes: a corked batch of small chunks arrives whole and in order, as one write", async () => {
  const pair = await socketPair();
  try {
    const counts = countWrites(pair.client);
    assert.equal(mergeBatchedWrites(pair.client), true);
    assert.equal(mergeBatchedWrites(pair.client), false, "a socket is set up once");
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.from(`frame ${i};`));
    pair.client.cork();
    for (const part of parts) pair.client.write(part);
    pair.client.uncork();
    const expected = Buffer.concat(parts);
    const got = await pair.received(expected.length);
    assert.equal(got.toString(), expected.toString());
    // The batch reached the socket's own `_write` once, as one buffer, and never its `_writev`.
    assert.deepEqual(counts, { write: 1, writev: 0 });
  } finally {
    await pair.close();
  }
});

Deno.test("merged writes: a batch over the limit keeps the socket's own writev (no copy) and still arrives whole", async () => {
  const pair = await socketPair();
  try {
    mergeBatchedWrites(pair.client);
    const big = Buffer.alloc(MERGE_LIMIT_BYTES, 0x61);
    const tail = Buffer.from("end");
    let writes = 0;
    const internals = pair.client as unknown as Record<string, (...args: unknown[]) => unknown>;
    const write = internals._write;
    internals._write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    pair.client.cork();
    pair.client.write(big);
    pair.client.write(tail);
    pair.client.uncork();
    const got = await pair.received(big.length + tail.length);
    assert.equal(got.length, big.length + tail.length);
    assert.equal(got.subarray(big.length).toString(), "end");
    assert.equal(writes, 0, "the big batch went through writev, not a merged write");
  } finally {
    await pair.close();
  }
});

Deno.test("amqplib frames coalesce: 2,000 confirmed publishes arrive complete and in order", async () => {
  const model = await connectBroker();
  try {
    // The internals it relies on are there in the pinned amqplib (fails loudly after an upgrade that moves them).
    assert.equal(coalesceFrameWrites(model), true);
    const exchange = uniqueExchange("coalesce");
    const channel = await model.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { autoDelete: true, durable: false });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, "n.#");
    const count = 2000;
    const received: number[] = [];
    const all = Promise.withResolvers<void>();
    await channel.consume(queue, (message) => {
      if (!message) return;
      received.push(Number(message.content.toString()));
      if (received.length === count) all.resolve();
    }, { noAck: true });
    for (let i = 0; i < count; i++) channel.publish(exchange, "n.x", Buffer.from(String(i)));
    await channel.waitForConfirms();
    await all.promise;
    assert.deepEqual(received, Array.from({ length: count }, (_, i) => i));
  } finally {
    await model.close();
  }
});

/** A confirm channel that keeps each publish's callback, for the test to confirm or leave unconfirmed. */
function heldChannel(): ConfirmingChannel & { callbacks: Map<string, (err: unknown) => void> } {
  const callbacks = new Map<string, (err: unknown) => void>();
  return {
    callbacks,
    publish(_exchange, _key, _content, options, callback) {
      callbacks.set(options.messageId, callback);
      return true;
    },
  };
}

/** Confirms with `timeoutMs` over `channel`, and a publish of a command with message id `id`. */
function confirmsOver(channel: ReturnType<typeof heldChannel>, timeoutMs: number) {
  const confirms = new Confirms({ timeoutMs });
  const publish = (id: string) =>
    confirms.publish(channel, {
      exchange: "x",
      routingKey: "command.a",
      body: "{}",
      properties: { headers: {}, messageId: id },
    });
  return { confirms, channel, publish };
}

Deno.test("publish confirms: one shared deadline fails each unconfirmed publish after the timeout, in order", async () => {
  const { confirms, channel, publish } = confirmsOver(heldChannel(), 300);
  const ended: string[] = [];
  const started = performance.now();
  const outcomes = ["a", "b", "c"].map((id) =>
    publish(id).then((outcome: PublishOutcome) => {
      ended.push(id);
      return outcome;
    })
  );
  channel.callbacks.get("b")!(null);
  const [a, b, c] = await Promise.all(outcomes);
  assert.deepEqual(b, { ok: true, returned: false });
  for (const failed of [a, c]) {
    assert.equal(failed.ok, false);
    assert.match((failed as { reason: string }).reason, /did not confirm the command within 0\.3 s/);
  }
  assert.deepEqual(ended, ["b", "a", "c"]);
  assert.ok(performance.now() - started >= 290, "not failed before the timeout");
  assert.equal(confirms.size, 0);
  // A confirm after the deadline changes nothing; the test's sanitizers check that no timer is left.
  channel.callbacks.get("a")!(null);
  assert.equal(confirms.size, 0);
});

Deno.test("publish confirms: a publish made later gets its own full timeout, not the first one's", async () => {
  // A gap of half the timeout: a deadline timer would have to fire a whole second late to expire both.
  const { confirms, channel, publish } = confirmsOver(heldChannel(), 2000);
  const first = publish("first");
  await new Promise((resolve) => setTimeout(resolve, 1000)); // a gap between two publishes, not a wait for an event
  const secondAt = performance.now();
  const second = publish("second");
  assert.equal((await first).ok, false);
  assert.equal(confirms.size, 1, "the second is still waiting when the first expires");
  channel.callbacks.get("second")!(null);
  assert.deepEqual(await second, { ok: true, returned: false });
  assert.ok(performance.now() - secondAt < 2000);
});
