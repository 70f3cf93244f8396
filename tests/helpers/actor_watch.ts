/**
 * Waits, in tests, until a test actor has answered every command it was sent.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import type { TestActor } from "./actor.ts";
import { connectBroker, until } from "./broker.ts";

/**
 * Watches the replies to commands for one actor (`reply.*.<actor>`), so the test
 * can wait until the actor has answered everything before closing it (closing
 * the test actor mid-answer rejects its pending confirms, unhandled).
 */
export class ActorWatch {
  readonly #finished = new Set<string>();
  readonly #connection: ChannelModel;
  readonly #channel: ConfirmChannel;
  readonly #exchange: string;

  private constructor(connection: ChannelModel, channel: ConfirmChannel, exchange: string) {
    this.#connection = connection;
    this.#channel = channel;
    this.#exchange = exchange;
  }

  static async start(exchange: string, actor: string): Promise<ActorWatch> {
    const connection = await connectBroker();
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, exchange, `reply.*.${actor}`);
    const watch = new ActorWatch(connection, channel, exchange);
    await channel.consume(queue, (message) => {
      const headers = message?.properties.headers ?? {};
      if (headers.message_code === ":" || headers.message_code === "f") {
        watch.#finished.add(String(headers.command_id));
      }
    }, { noAck: true });
    return watch;
  }

  /** Resolves once `actor` has answered every command it received, and one more sent now. */
  async settle(actor: TestActor): Promise<void> {
    const id = `settle-${crypto.randomUUID()}`;
    this.#channel.publish(
      this.#exchange,
      `command.${actor.name}`,
      Buffer.from(JSON.stringify({ command_string: "ping" })),
      {
        contentType: "text/json",
        correlationId: id,
        headers: { command_id: id, commander_id: `watch.${actor.name}`, internal: false, write_to_log: true },
      },
    );
    await this.#channel.waitForConfirms();
    await until(
      `${actor.name} answering all ${actor.received.length} commands it received`,
      () =>
        this.#finished.has(id) &&
        actor.received.every((c) => this.#finished.has(String(c.headers.command_id))),
      { timeoutMs: 30_000 },
    );
  }

  async close(): Promise<void> {
    await this.#connection.close().catch(() => {});
  }
}
