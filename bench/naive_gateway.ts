/**
 * A naive gateway, for reference only: what the "naive 30-line Deno
 * gateway" anchor measured (`Deno.upgradeWebSocket` + amqplib, no acks, one
 * `JSON.stringify` per message, no limits, no confirms). Run the benchmark
 * against it with `deno task bench --gateway bench/naive_gateway.ts` to see
 * the anchor on this machine, in the same conditions as clu-ws.
 *
 * It accepts the flags the harness passes (`--host --port --exchange --name`;
 * others are ignored) and logs the two JSON lines the harness waits for.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { connect } from "amqplib";

const text = { type: "string" } as const;
const { values } = parseArgs({
  args: Deno.args,
  strict: false,
  options: { host: text, port: text, exchange: text, name: text, "log-format": text, "log-level": text },
});
const exchange = String(values.exchange ?? "sdss_exchange");
const name = String(values.name ?? "naive");
const log = (message: string, extra: Record<string, unknown> = {}) =>
  console.error(JSON.stringify({ level: "INFO", message, ...extra }));

const sockets = new Set<WebSocket>();
const connection = await connect(Deno.env.get("CLU_WS_URL") ?? "amqp://guest:guest@127.0.0.1:5672");
const channel = await connection.createChannel();

Deno.serve({
  hostname: String(values.host ?? "0.0.0.0"),
  port: Number(values.port ?? 9876),
  onListen: ({ port }) => log(`naive gateway listening on ${port}`, { port }),
}, (request) => {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  socket.onmessage = (event) => {
    const { consumer, command_string, command_id = crypto.randomUUID() } = JSON.parse(String(event.data));
    channel.publish(exchange, `command.${consumer}`, Buffer.from(JSON.stringify({ command_string })), {
      headers: { command_id, commander_id: `${name}.${consumer}`, internal: false, write_to_log: true },
      correlationId: command_id,
      replyTo: `${name}_replies`,
      contentType: "text/json",
    });
  };
  return response;
});

await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
await channel.assertQueue(`${name}_replies`, { exclusive: true, autoDelete: true });
await channel.bindQueue(`${name}_replies`, exchange, "reply.#");
await channel.consume(`${name}_replies`, (message) => {
  if (!message) return;
  const { properties, fields } = message;
  const frame = JSON.stringify({
    headers: properties.headers,
    exchange: fields.exchange,
    message_id: properties.messageId ?? null,
    routing_key: fields.routingKey,
    timestamp: properties.timestamp ? new Date(properties.timestamp * 1000).toISOString() : null,
    body: JSON.parse(message.content.toString()),
  });
  for (const socket of sockets) socket.send(frame);
}, { noAck: true });
log("RabbitMQ link up (naive gateway)");
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
