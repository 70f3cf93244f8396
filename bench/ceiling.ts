/**
 * The reply path's physical limit on this machine: a bare amqplib consumer
 * (prefetch 1000, no per-message ack) in its own process, on the same broker,
 * fed by the same publisher as the gateway. It does what a gateway must do at
 * least — take each message and look at its body — and nothing else.
 *
 * Started by the harness with one JSON argument (a {@linkcode CeilingJob});
 * prints `ready` once its queue is bound, then `result` (the same fields as a
 * `receive` job of bench/clients.ts, for one client).
 *
 * @module
 */

import { connect, type ConsumeMessage } from "amqplib";
import { percentiles, round } from "./stats.ts";
import { scanBodies } from "./wire.ts";

/** What the ceiling consumer is asked to do. */
export interface CeilingJob {
  /** The broker URL. */
  url: string;
  /** The exchange the publisher uses. */
  exchange: string;
  /** Messages to expect. */
  expect: number;
}

const encoder = new TextEncoder();

function emit(event: Record<string, unknown>): void {
  Deno.stdout.writeSync(encoder.encode(`${JSON.stringify(event)}\n`));
}

async function run(job: CeilingJob): Promise<void> {
  const n = job.expect;
  const connection = await connect(job.url);
  connection.on("error", (err: Error) => emit({ event: "error", message: `RabbitMQ: ${err.message}` }));
  const channel = await connection.createChannel();
  await channel.prefetch(1000);
  await channel.assertExchange(job.exchange, "topic", { durable: false, autoDelete: true });
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(queue, job.exchange, "reply.#");
  const seen = new Uint8Array(n);
  const latency = new Float64Array(n);
  let unique = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let lastSeq = -1;
  let firstSent = Infinity;
  let lastRecv = 0;
  let frames = 0;
  const done = Promise.withResolvers<void>();
  const decoder = new TextDecoder();
  await channel.consume(queue, (message: ConsumeMessage | null) => {
    if (message === null) return;
    const now = performance.timeOrigin + performance.now();
    // Warm-up messages carry no bench_seq: neither counted nor timed.
    const counted = scanBodies(decoder.decode(message.content), (seq, sent) => {
      if (seq >= n || seen[seq]) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      if (seq < lastSeq) outOfOrder++;
      else lastSeq = seq;
      if (sent < firstSent) firstSent = sent;
      lastRecv = now;
      latency[unique] = now - sent;
      if (++unique === n) done.resolve();
    });
    if (counted > 0) frames++;
  }, { noAck: true });
  emit({ event: "ready", connected: 1, failed: 0 });
  const stdin = (async () => {
    for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
      if (chunk.includes("stop")) break;
    }
  })();
  const reason = await Promise.race([done.promise.then(() => "complete"), stdin.then(() => "stopped")]);
  const rate = (unique * 1000) / (lastRecv - firstSent);
  emit({
    event: "result",
    reason,
    clients: 1,
    expect: n,
    frames,
    received: unique,
    lost: n - unique,
    duplicates,
    out_of_order: outOfOrder,
    first_sent_ms: firstSent,
    span_ms: round(lastRecv - firstSent, 3),
    rate_per_client: { min: round(rate, 1), median: round(rate, 1), max: round(rate, 1) },
    aggregate_per_s: round(rate, 1),
    latency_ms: percentiles(latency.subarray(0, unique)),
  });
  await connection.close().catch(() => {});
}

if (import.meta.main) {
  run(JSON.parse(Deno.args[0])).then(
    () => Deno.exit(0),
    (err) => {
      emit({ event: "error", message: err instanceof Error ? err.message : String(err) });
      Deno.exit(1);
    },
  );
}
