/**
 * The gateway embedded in a program (`mod.ts`), as CLU's
 * `await WebsocketServer().start()`: two gateways in this very process, each
 * on its own port and exchange, commanding real actors through the real
 * broker, stopped cleanly (Deno's sanitizers fail the test on any timer,
 * socket or AMQP connection left behind). Bad options throw the message the
 * command line prints.
 */

import assert from "node:assert/strict";
import { ConfigError, type Gateway, type LinkState, startGateway } from "../mod.ts";
import { startActor } from "./helpers/actor.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const ROOT = new URL("../", import.meta.url);

/** Actor queues are named after the actor across the whole broker: one name per test run. */
function actorName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

/** The first value `on` reports that satisfies `wanted` (events are awaited, never slept for). */
function nextEvent<T>(
  subscribe: (listener: (value: T) => void) => () => void,
  wanted: (value: T) => boolean,
): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((value) => {
      if (!wanted(value)) return;
      off();
      resolve(value);
    });
  });
}

function brokerUp(gateway: Gateway): Promise<LinkState> {
  if (gateway.brokerState === "up") return Promise.resolve("up");
  return nextEvent<LinkState>((l) => gateway.on("broker", l), (state) => state === "up");
}

Deno.test("two gateways embedded in one program, each on its own port and exchange, command their actors and stop cleanly", async () => {
  const exchanges = [uniqueExchange("embed-a"), uniqueExchange("embed-b")];
  const names = [actorName("embed-a"), actorName("embed-b")];
  const actors = await Promise.all(exchanges.map((exchange, i) => startActor(exchange, names[i])));
  const gateways: Gateway[] = [];
  const clients: WsClient[] = [];
  try {
    for (const exchange of exchanges) {
      gateways.push(await startGateway({ port: 0, host: "127.0.0.1", exchange, rabbitmqHost: "127.0.0.1" }));
    }
    assert.notEqual(gateways[0].port, gateways[1].port);
    await Promise.all(gateways.map(brokerUp));

    for (const [i, gateway] of gateways.entries()) {
      const counted = nextEvent<number>((l) => gateway.on("clients", l), (count) => count === 1);
      const client = await WsClient.connect(`ws://127.0.0.1:${gateway.port}/`);
      clients.push(client);
      assert.equal(await counted, 1, "the clients event reports the new client");
      assert.equal(gateway.clients, 1);

      client.send({ consumer: names[i], command_string: "ping", command_id: `embed-${i}` });
      const done = await client.next(`Pong through gateway ${i}`, replyTo(`embed-${i}`, ":"));
      assert.deepEqual(done.body, { text: "Pong." });
      assert.equal(done.exchange, exchanges[i], "each gateway speaks on its own exchange");
    }
    // Each actor got exactly its own gateway's command.
    assert.deepEqual(actors.map((a) => a.received.map((c) => c.headers.command_id)), [["embed-0"], [
      "embed-1",
    ]]);

    const gone = nextEvent<number>((l) => gateways[0].on("clients", l), (count) => count === 0);
    await clients[0].close();
    assert.equal(await gone, 0, "the clients event reports the client leaving");
  } finally {
    for (const client of clients) await client.close();
    for (const gateway of gateways) await gateway.stop();
    for (const actor of actors) await actor.close();
  }
  for (const gateway of gateways) assert.equal(gateway.brokerState, "closed");
});

Deno.test("startGateway with no options has every default of the command line, and stop() ends it", async () => {
  // Port 9876 may be taken on a shared machine; the defaults are checked through everything else.
  const gateway = await startGateway({ port: 0 });
  try {
    await brokerUp(gateway); // localhost:5672, guest/guest, as `clu-ws` with no flags
    const response = await fetch(`http://127.0.0.1:${gateway.port}/healthz`);
    const health = await response.json();
    assert.equal(health.exchange, "sdss_exchange");
    assert.match(health.name, /^amqp-client-[0-9a-f]{12}$/);
  } finally {
    await gateway.stop();
  }
});

/** What `clu-ws <args>` prints on stderr, without the `clu-ws: ` prefix, and its exit code. */
async function cliError(args: string[]): Promise<{ code: number; message: string }> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", new URL("main.ts", ROOT).pathname, ...args],
    env: { NO_COLOR: "1" },
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, message: new TextDecoder().decode(stderr).trim().replace(/^clu-ws: /, "") };
}

Deno.test("a bad option throws the message the command line prints, and starts nothing", async () => {
  const cases: [Record<string, unknown>, string[]][] = [
    [{ maxClients: "lots" }, ["--max-clients", "lots"]],
    [{ port: 70000 }, ["--port", "70000"]],
    [{ slowClient: "wait" }, ["--slow-client", "wait"]],
    [{ clientBuffer: "12 parsecs" }, ["--client-buffer", "12 parsecs"]],
    [{ url: "http://broker" }, ["--url", "http://broker"]],
  ];
  for (const [options, args] of cases) {
    const cli = await cliError(args);
    assert.equal(cli.code, 2, `clu-ws ${args.join(" ")} exits 2`);
    await assert.rejects(
      () => startGateway({ port: 0, ...options }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `a ConfigError for ${JSON.stringify(options)}`);
        assert.equal(err.message, cli.message);
        return true;
      },
    );
  }
});

Deno.test("an unknown option, or one of the wrong kind, is named in a clear error", async () => {
  await assert.rejects(
    () => startGateway({ maxClient: 5 } as Record<string, unknown>),
    /unknown option 'maxClient'; the options are the long flag names in camelCase, e\.g\. maxClients for --max-clients/,
  );
  await assert.rejects(
    () => startGateway({ "max-clients": 5 } as Record<string, unknown>),
    /unknown option 'max-clients'/,
  );
  await assert.rejects(
    () => startGateway({ readOnly: "yes" } as Record<string, unknown>),
    /--read-only \(option 'readOnly'\) must be true or false/,
  );
  await assert.rejects(
    () => startGateway({ help: true } as Record<string, unknown>),
    /unknown option 'help'/,
  );
});

Deno.test("tokens given as a list work as a tokens file does: a watch token cannot command", async () => {
  const exchange = uniqueExchange("embed-tokens");
  const name = actorName("embed-watch");
  const actor = await startActor(exchange, name);
  const token = "watch-token-0123456789";
  const gateway = await startGateway({
    port: 0,
    host: "127.0.0.1",
    exchange,
    tokens: [{ name: "status", role: "watch", token }],
  });
  let client: WsClient | undefined;
  try {
    await brokerUp(gateway);
    await assert.rejects(() => WsClient.connect(`ws://127.0.0.1:${gateway.port}/`, { timeoutMs: 5000 }));
    client = await WsClient.connect(`ws://127.0.0.1:${gateway.port}/`, {
      protocols: ["clu-ws", `token.${token}`],
    });
    client.send({ consumer: name, command_string: "ping", command_id: "watch-1" });
    const refused = await client.next("the refusal", replyTo("watch-1", "f"));
    assert.match(String(refused.body.error), /token 'status' may only watch/);
  } finally {
    await client?.close();
    await gateway.stop();
    await actor.close();
  }
  assert.deepEqual(actor.received, []);
});
