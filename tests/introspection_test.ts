// The gateway's introspection end to end: a gateway process, the real broker and test actors that
// answer get-command-model, get_schema and help as a CLU click actor does (or fail, or stay silent).
// The gateway asks each actor once, when it first hears from it, only if its own command rules let it
// command it; clients read the answers (v1 `describe`, GET /actors/<name>/model|schema|help) and never
// see the gateway's own commands nor their replies. Waits are for log records and frames.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";

const V1 = ["clu-ws.v1"];
const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;
type Json = Record<string, unknown>;

/** An actor name of its own: actors' queues are broker-wide and exclusive. */
function actorName(label: string): string {
  return `intro-${RUN}-${label}-${++actorCount}`;
}

function json(frame: Frame): Json {
  return frame as unknown as Json;
}

/** The log record saying the gateway is done asking `actor`. */
function asked(gateway: GatewayProcess, actor: string, after = 0): Promise<LogRecord> {
  return gateway.waitForLog(
    `introspection of ${actor}`,
    (r) => r.actor === actor && /^asked .* for its commands|did not answer get-command-model/.test(r.message),
    { after },
  );
}

/** Sends v1 `describe` for `actor` and resolves with the answer. */
async function describe(client: WsClient, actor: string): Promise<Json> {
  const id = `d-${crypto.randomUUID().slice(0, 8)}`;
  client.send({ "clu-ws": "describe", id, actor });
  return json(await client.next(`describe ${actor}`, (f) => json(f).id === id));
}

function commandsOf(actor: TestActor): string[] {
  return actor.introspection.map((c) => String(c.body.command_string));
}

Deno.test("introspection: asked once per actor, served over v1 and HTTP, hidden from clients", async (t) => {
  const exchange = uniqueExchange("intro");
  const denied = actorName("denied");
  await using gateway = await startGateway({
    exchange,
    args: ["--deny-actor", denied, "--introspection-timeout", "2", "--introspection-max-bytes", "64KiB"],
  });
  const watcher = await WsClient.connect(gateway.url(), { protocols: V1 });
  const clu = await startActor(exchange, actorName("clu"), { introspection: "clu" });
  const plain = await startActor(exchange, actorName("plain"));
  const silent = await startActor(exchange, actorName("silent"), { introspection: "silent" });
  const big = await startActor(exchange, actorName("big"), { introspection: "clu", modelPadding: 100_000 });
  const deniedActor = await startActor(exchange, denied, { introspection: "clu" });
  // A command to `<denied>.child` also reaches actor `<denied>`: the gateway may not command it either.
  const child = await startActor(exchange, `${denied}.child`, { introspection: "clu" });
  try {
    await t.step("a denied actor and its dotted child are never asked", async () => {
      await deniedActor.broadcast({ text: "hello" });
      await child.broadcast({ text: "hello" });
      await clu.broadcast({ text: "hello", version: "1.0" });
      await asked(gateway, clu.name);
      assert.deepEqual(commandsOf(deniedActor), []);
      assert.deepEqual(commandsOf(child), []);
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      const answer = await describe(client, `${denied}.child`);
      assert.equal(answer.status, "none");
      assert.equal(answer.model, null);
      assert.match(String(answer.reason), /does not ask it.*--deny-actor/);
      await client.close();
    });

    await t.step("a click actor is asked get-command-model, get_schema and help once", () => {
      assert.deepEqual(commandsOf(clu), ["get-command-model", "get_schema", "help"]);
      const command = clu.introspection[0];
      assert.equal(command.headers.commander_id, `${gateway.name}.${clu.name}`);
      assert.equal(command.replyTo, `${gateway.name}_replies`);
      assert.match(String(command.headers.command_id), /^clu-ws-introspection-/);
    });

    await t.step("v1 describe answers the model, the schema (parsed) and the help", async () => {
      const clients = await Promise.all(
        [1, 2, 3].map(() => WsClient.connect(gateway.url(), { protocols: V1 })),
      );
      for (const client of clients) {
        const answer = await describe(client, clu.name);
        assert.equal(answer["clu-ws"], "describe");
        assert.equal(answer.actor, clu.name);
        assert.equal(answer.status, "ready");
        const model = answer.model as Json;
        const commands = model.commands as Record<string, Json>;
        assert.ok(commands.move && commands.lamps, "the command tree has move and the lamps group");
        const axis = (commands.move.params as Json[])[0];
        assert.deepEqual((axis.type as Json).choices, ["az", "alt", "rot"]);
        const schema = answer.schema as { properties: Record<string, Json> };
        assert.equal(schema.properties.temperature.unit, "degC");
        assert.equal(schema.properties.temperature.description, "Test enclosure temperature");
        assert.match((answer.help as string[])[0], new RegExp(`^Usage: ${clu.name} `));
        assert.equal(answer.reason, undefined);
      }
      await Promise.all(clients.map((c) => c.close()));
    });

    await t.step("HTTP: /actors/<name>/model, /schema and /help; 404 with a reason otherwise", async () => {
      for (let i = 0; i < 3; i++) {
        const model = await fetch(gateway.httpUrl(`/actors/${clu.name}/model`));
        assert.equal(model.status, 200);
        assert.equal(model.headers.get("content-type"), "application/json");
        assert.equal((await model.json()).name, "command-parser");
      }
      const schema = await (await fetch(gateway.httpUrl(`/actors/${clu.name}/schema`))).json();
      assert.equal(schema.properties.temperature.unit, "degC");
      const help = await (await fetch(gateway.httpUrl(`/actors/${encodeURIComponent(clu.name)}/help`)))
        .json();
      assert.ok(Array.isArray(help) && help.length > 3);
      const unknown = await fetch(gateway.httpUrl(`/actors/nobody-${RUN}/model`));
      assert.equal(unknown.status, 404);
      assert.match((await unknown.json()).error, /no model of actor 'nobody-.*': no reply from this actor/);
      // The plain state of the actor is unchanged, and has no keyword of the gateway's own questions.
      const state = await (await fetch(gateway.httpUrl(`/actors/${clu.name}`))).json();
      assert.deepEqual(Object.keys(state.keywords).sort(), ["text", "version"]);
    });

    await t.step(
      "one round per actor, however many clients and page loads; a new version asks again",
      async () => {
        await clu.broadcast({ text: "again" });
        await clu.broadcast({ version: "1.0" });
        assert.deepEqual(commandsOf(clu), ["get-command-model", "get_schema", "help"]);
        const before = gateway.logs.length;
        await clu.broadcast({ version: "1.1" });
        await asked(gateway, clu.name, before);
        assert.deepEqual(commandsOf(clu), [
          "get-command-model",
          "get_schema",
          "help",
          "get-command-model",
          "get_schema",
          "help",
        ]);
      },
    );

    await t.step("an actor that answers f has no model, and the reason says so", async () => {
      await plain.broadcast({ text: "hi" });
      await asked(gateway, plain.name);
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      const answer = await describe(client, plain.name);
      assert.equal(answer.status, "none");
      assert.equal(answer.model, null);
      assert.match(String(answer.reason), /answered get-command-model with f/);
      const http = await fetch(gateway.httpUrl(`/actors/${plain.name}/model`));
      assert.equal(http.status, 404);
      assert.match((await http.json()).error, /answered get-command-model with f/);
      await client.close();
    });

    await t.step("a silent actor: one command, then the timeout, and no more until its backoff", async () => {
      await silent.broadcast({ text: "hi" });
      const record = await asked(gateway, silent.name);
      assert.match(record.message, /no answer to get-command-model within 2 s; asked again .* after 60 s/);
      await silent.broadcast({ text: "still here" });
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      const answer = await describe(client, silent.name);
      assert.equal(answer.status, "none");
      assert.match(String(answer.reason), /no answer to get-command-model within 2 s/);
      assert.deepEqual(commandsOf(silent), ["get-command-model"]);
      await client.close();
    });

    await t.step("a model over --introspection-max-bytes is refused with a log line", async () => {
      await big.broadcast({ text: "hi" });
      const warning = await gateway.waitForLog(
        "the oversized model's warning",
        (r) => r.actor === big.name && r.level === "WARN" && /over --introspection-max-bytes/.test(r.message),
      );
      assert.ok(Number(warning.bytes) > 100_000);
      await asked(gateway, big.name);
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      const answer = await describe(client, big.name);
      assert.equal(answer.model, null);
      assert.match(String(answer.reason), /over --introspection-max-bytes \(65536\)/);
      assert.equal(
        (answer.schema as { properties: Record<string, Json> }).properties.temperature.unit,
        "degC",
      );
      await client.close();
    });

    await t.step("clients never saw the gateway's own commands' replies", () => {
      const ours = watcher.frames.filter((f) =>
        String(f.headers?.command_id ?? "").startsWith("clu-ws-introspection-") ||
        (json(f).body as Json | undefined)?.command_model !== undefined
      );
      assert.deepEqual(ours, []);
      const broadcasts = watcher.frames.filter((f) => f.headers?.sender === clu.name);
      assert.equal(broadcasts.length, 4, "the actor's own broadcasts all arrived");
    });

    await t.step("a client may not use the gateways' own command ids", async () => {
      const client = await WsClient.connect(gateway.url());
      client.send({ consumer: clu.name, command_string: "ping", command_id: "clu-ws-introspection-x-1" });
      const refused = await client.next("the f", (f) => f.headers.command_id === "clu-ws-introspection-x-1");
      assert.equal(refused.headers.message_code, "f");
      assert.match(String(refused.body.error), /is reserved for the gateways' own questions/);
      await client.close();
    });

    await t.step("bad describe requests get an error frame", async () => {
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      client.send({ "clu-ws": "describe", id: 9 });
      const error = json(await client.next("error", (f) => json(f)["clu-ws"] === "error"));
      assert.equal(error.id, 9);
      assert.match(String(error.error), /describe needs "actor"/);
      await client.close();
    });
  } finally {
    await watcher.close();
    for (const actor of [clu, plain, silent, big, deniedActor, child]) await actor.close();
  }
});

Deno.test("introspection: off, or a read-only gateway, never commands an actor", async () => {
  for (const args of [["--introspection", "off"], ["--read-only"]]) {
    const exchange = uniqueExchange("intro-off");
    await using gateway = await startGateway({ exchange, args });
    const actor = await startActor(exchange, actorName("off"), { introspection: "clu" });
    try {
      const client = await WsClient.connect(gateway.url(), { protocols: V1 });
      await actor.broadcast({ text: "hello" });
      await client.next("the broadcast", (f) => f.headers?.sender === actor.name);
      const answer = await describe(client, actor.name);
      assert.equal(answer.status, "none");
      assert.match(String(answer.reason), args[0] === "--read-only" ? /read-only/ : /introspection is off/);
      assert.deepEqual(commandsOf(actor), []);
      await client.close();
    } finally {
      await actor.close();
    }
  }
});

Deno.test("introspection: another gateway on the exchange keeps the first one's questions from its clients too", async () => {
  const exchange = uniqueExchange("intro-two");
  await using asking = await startGateway({ exchange });
  await using other = await startGateway({ exchange, args: ["--introspection", "off"] });
  const watcher = await WsClient.connect(other.url(), { protocols: V1 });
  const actor = await startActor(exchange, actorName("two"), { introspection: "clu" });
  try {
    await actor.broadcast({ text: "hello" });
    await asked(asking, actor.name);
    assert.deepEqual(commandsOf(actor), ["get-command-model", "get_schema", "help"], "asked by one gateway");
    // The actor's replies arrive in the order it sent them: once this one is here, the answers were too.
    await actor.broadcast({ text: "marker" });
    await watcher.next("the marker", (f) => (f.body as Json | undefined)?.text === "marker");
    const fromActor = watcher.frames.filter((f) => f.headers?.sender === actor.name);
    assert.deepEqual(fromActor.map((f) => (f.body as Json).text), ["hello", "marker"]);
    const state = await (await fetch(other.httpUrl(`/actors/${actor.name}`))).json();
    assert.deepEqual(Object.keys(state.keywords), ["text"]);
  } finally {
    await watcher.close();
    await actor.close();
  }
});
