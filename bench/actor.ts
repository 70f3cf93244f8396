/**
 * A minimal CLU-style actor for the `commands` scenario (adapted from
 * tests/helpers/actor.ts, kept separate so the benchmark never imports the
 * tests): consumes `<name>_commands` bound to `command.<name>.#` and answers
 * every command with `:` `{"text": "Pong."}` on `reply.<commander_id>`, as a
 * CLU actor answers `ping` — optionally preceded by CLU's `>` (running).
 *
 * It consumes without per-message acks and publishes without waiting for
 * confirms, so that the actor is not what limits the measured rate.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ChannelModel, connect, type ConsumeMessage } from "amqplib";

/** A running benchmark actor. */
export interface BenchActor {
  /** The actor's name (what clients put in `consumer`). */
  readonly name: string;
  /** Commands received so far. */
  readonly received: () => number;
  /**
   * Since the last call: commands received, and for each command whose text
   * is `ping <ms since the epoch>`, the time from that moment to its arrival here.
   */
  takeArrivals(): { count: number; latencies: number[]; first: number; last: number };
  /** Answer commands (the default) or only receive them. */
  replying: boolean;
  /** Stops consuming and closes the connection. */
  close(): Promise<void>;
}

/** Options for {@linkcode startActor}. */
export interface ActorOptions {
  /** Send CLU's `>` (running, internal, empty body) before the `:` reply. */
  running?: boolean;
}

/** Starts actor `name` on `exchange` of the broker at `url`. */
export async function startActor(
  url: string,
  exchange: string,
  name: string,
  options: ActorOptions = {},
): Promise<BenchActor> {
  const connection: ChannelModel = await connect(url);
  // Without a listener an 'error' event (the broker went away) would crash the harness.
  connection.on("error", () => {});
  const channel = await connection.createChannel();
  channel.on("error", () => {});
  await channel.prefetch(1000);
  await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
  const queue = `${name}_commands`;
  await channel.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false });
  await channel.bindQueue(queue, exchange, `command.${name}.#`);
  const pong = Buffer.from(JSON.stringify({ text: "Pong." }));
  const empty = Buffer.from("{}");
  let received = 0;
  let arrivals = { count: 0, latencies: [] as number[], first: 0, last: 0 };
  const decoder = new TextDecoder();

  function reply(command: ConsumeMessage, code: string, body: Buffer, internal: boolean): void {
    const headers = command.properties.headers ?? {};
    const commanderId = String(headers.commander_id);
    channel.publish(exchange, `reply.${commanderId}`, body, {
      contentType: "text/json",
      correlationId: command.properties.correlationId,
      timestamp: Math.floor(Date.now() / 1000),
      messageId: crypto.randomUUID().replaceAll("-", ""),
      headers: {
        command_id: headers.command_id,
        commander_id: commanderId,
        internal,
        message_code: code,
        sender: name,
      },
    });
  }

  const actor: BenchActor = {
    name,
    replying: true,
    received: () => received,
    takeArrivals() {
      const taken = arrivals;
      arrivals = { count: 0, latencies: [], first: 0, last: 0 };
      return taken;
    },
    async close() {
      await connection.close().catch(() => {});
    },
  };

  await channel.consume(queue, (message) => {
    if (!message) return;
    const now = performance.timeOrigin + performance.now();
    received++;
    if (arrivals.count++ === 0) arrivals.first = now;
    arrivals.last = now;
    // `{"command_string":"ping 1764059425123.456"}`: the client's send time.
    const text = decoder.decode(message.content);
    const at = text.indexOf("ping ");
    if (at >= 0) {
      const sent = parseFloat(text.slice(at + 5));
      if (Number.isFinite(sent)) arrivals.latencies.push(now - sent);
    }
    if (!actor.replying) return;
    if (options.running) reply(message, ">", empty, true);
    reply(message, ":", pong, false);
  }, { noAck: true });
  return actor;
}
