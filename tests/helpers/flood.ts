/**
 * Publishes a flood of CLU-style broadcast replies from its own process, so
 * that the test process stays free to read what the gateway sends:
 * `deno run --allow-net --allow-env flood.ts <exchange> <count> <bytes>`.
 * Exits 0 once every reply is handed to the broker.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connectBroker } from "./broker.ts";

/** Publishes `count` replies of about `bytes` each to `reply.broadcast` as fast as the channel drains. */
export async function flood(exchange: string, count: number, bytes: number): Promise<void> {
  const connection = await connectBroker();
  try {
    const channel = await connection.createChannel();
    await channel.assertExchange(exchange, "topic", { durable: false, autoDelete: true });
    const filler = "x".repeat(Math.max(0, bytes - 120));
    const headers = {
      command_id: null,
      commander_id: null,
      internal: false,
      message_code: "i",
      sender: "flood",
    };
    for (let i = 0; i < count; i++) {
      // Varied text, so no two bodies are the same string.
      const body = Buffer.from(JSON.stringify({ n: i, at: Date.now(), text: `${i}:${filler}` }));
      const ok = channel.publish(exchange, "reply.broadcast", body, {
        contentType: "text/json",
        timestamp: Math.floor(Date.now() / 1000),
        messageId: crypto.randomUUID().replaceAll("-", ""),
        headers,
      });
      if (!ok) await new Promise((resolve) => channel.once("drain", resolve));
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Runs {@linkcode flood} in a child process and resolves once it has published everything. */
export async function floodFromChild(exchange: string, count: number, bytes: number): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--quiet",
      new URL(import.meta.url).pathname,
      exchange,
      String(count),
      String(bytes),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`the flood publisher exited ${code}: ${new TextDecoder().decode(stderr)}`);
}

if (import.meta.main) {
  const [exchange, count, bytes] = Deno.args;
  await flood(exchange, Number(count), Number(bytes));
}
