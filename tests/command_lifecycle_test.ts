// One command's life without a broker: decide → publish → outcome → what the sender is told,
// with a fake publisher (our own small interface; the real broker path is covered end to end).

import assert from "node:assert/strict";
import type { Grant } from "../lib/access/admission.ts";
import type { PublishOutcome, PublishProperties } from "../lib/broker/link.ts";
import {
  type CommandAccess,
  CommandLifecycle,
  type Publisher,
  type Recipient,
  type RunOptions,
  socketFrame,
  type Told,
} from "../lib/commands/lifecycle.ts";
import { Ledger, LINK_LOST_WARNING } from "../lib/commands/ledger.ts";
import { TokenBucket } from "../lib/commands/rate_limit.ts";
import type { CommandOutcome } from "../lib/commands/lifecycle.ts";
import { failedRoutingText } from "../lib/protocol/clu.ts";
import { type ClientCommand, parseClientCommand } from "../lib/protocol/clu_input.ts";

const IDENTITY = { name: "gw", exchange: "sdss_exchange" };
const GRANT = { name: "ops" } as unknown as Grant;

class FakePublisher implements Publisher {
  published: Array<{ routingKey: string; content: string; properties: PublishProperties }> = [];
  outcomes: PublishOutcome[] = [];
  publish(routingKey: string, content: string, properties: PublishProperties): Promise<PublishOutcome> {
    this.published.push({ routingKey, content, properties });
    return Promise.resolve(this.outcomes.shift() ?? { ok: true, returned: false });
  }
}

/** Remembers what each sender is told. */
class Heard implements Recipient<string> {
  heard: Array<[string, Told]> = [];
  tell(to: string, _command: ClientCommand, told: Told): void {
    this.heard.push([to, told]);
  }
  kinds(): string[] {
    return this.heard.map(([, told]) => told.kind);
  }
}

function world(options: { denial?: string; stopping?: boolean } = {}) {
  const publisher = new FakePublisher();
  const ledger = new Ledger();
  const outcomes: CommandOutcome[] = [];
  let received = 0;
  const access: CommandAccess = {
    commandDenial: () => options.denial,
    tokenName: (grant) => grant.name,
  };
  const lifecycle = new CommandLifecycle({
    publisher,
    identity: IDENTITY,
    access,
    metrics: { commandReceived: () => received++, command: (outcome) => outcomes.push(outcome) },
    ledger,
    rate: { commandRate: 1, commandBurst: 1 },
    stopping: () => options.stopping ?? false,
  });
  const recipient = new Heard();
  const run = (command: ClientCommand, runOptions?: RunOptions, allowance?: TokenBucket) =>
    lifecycle.run(
      command,
      { grant: GRANT, allowance, client: 1, peer: "127.0.0.1:1", to: "c1", recipient },
      runOptions,
    );
  return { publisher, ledger, outcomes, received: () => received, recipient, run };
}

function command(id: string, consumer = "lvm"): ClientCommand {
  const parsed = parseClientCommand(JSON.stringify({ consumer, command_string: "status", command_id: id }));
  assert.equal(parsed.kind, "command");
  return parsed as ClientCommand;
}

Deno.test("published: sent as CLU does, acknowledged, confirmed in the ledger, warned on link loss", async () => {
  const w = world();
  await w.run(command("c-1"), { ack: true, warn: true });
  assert.deepEqual(w.recipient.kinds(), ["accepted", "published"]);
  assert.deepEqual(w.outcomes, ["published"]);
  assert.equal(w.received(), 1);
  const [sent] = w.publisher.published;
  assert.equal(sent.routingKey, "command.lvm");
  assert.equal(sent.content, '{"command_string":"status"}');
  assert.equal(sent.properties.correlationId, "c-1");
  assert.equal(sent.properties.replyTo, "gw_replies");
  assert.equal(sent.properties.mandatory, true);
  assert.equal(sent.properties.headers?.commander_id, "gw.lvm");
  assert.equal(w.ledger.size, 1);
  assert.equal(w.ledger.lost(), 1);
  assert.deepEqual(w.recipient.kinds(), ["accepted", "published", "lost"]);
});

Deno.test("tracked: the end comes from the reply path through the ledger, with the frames collected", async () => {
  const w = world();
  await w.run(command("t-1"), { track: { timeoutSeconds: 5, collect: true } });
  assert.deepEqual(w.recipient.kinds(), []);
  w.ledger.observe("t-1", "gw.lvm", "i", '{"a":1}');
  w.ledger.observe("t-1", "gw.lvm", ":", '{"b":2}');
  const [[to, told]] = w.recipient.heard;
  assert.equal(to, "c1");
  assert.ok(told.kind === "ended");
  assert.equal(told.end.status, "done");
  assert.deepEqual(told.frames, ['{"a":1}', '{"b":2}']);
});

Deno.test("refused: a tracked id in use is refused before anything is counted or sent", async () => {
  const w = world();
  await w.run(command("dup"), { track: {} });
  await w.run(command("dup"), { track: {}, ack: true });
  assert.deepEqual(w.recipient.kinds(), ["refused"]);
  assert.equal(w.received(), 1);
  assert.equal(w.publisher.published.length, 1);
  w.ledger.failAll("done");
});

Deno.test("stopping, denied, over the rate: failed with the reason, never published, tracked end follows", async () => {
  for (
    const [options, allowance, outcome, reason] of [
      [{ stopping: true }, undefined, "failed", /shutting down/],
      [{ denial: "token 'ops' may not command lvm" }, undefined, "denied", /may not command lvm/],
      [{}, new TokenBucket(1, 0), "rate_limited", /at most 1 commands a second \(bursts of 1\)/],
    ] as const
  ) {
    const w = world(options);
    await w.run(command("x"), { track: {}, warn: true }, allowance);
    assert.equal(w.publisher.published.length, 0);
    assert.deepEqual(w.outcomes, [outcome]);
    assert.deepEqual(w.recipient.kinds(), ["failed", "ended"]);
    const [[, failed], [, ended]] = w.recipient.heard;
    assert.ok(failed.kind === "failed" && ended.kind === "ended");
    assert.equal(failed.outcome, outcome);
    assert.match(failed.reason, reason);
    assert.equal(ended.end.error, failed.reason);
    assert.equal(w.ledger.size, 0);
  }
});

Deno.test("not confirmed: the broker's reason goes to the sender, and the ledger forgets the command", async () => {
  const w = world();
  w.publisher.outcomes.push({ ok: false, reason: "RabbitMQ is unreachable; the command was not sent" });
  await w.run(command("n-1"), { warn: true });
  assert.deepEqual(w.recipient.heard, [[
    "c1",
    { kind: "failed", outcome: "failed", reason: "RabbitMQ is unreachable; the command was not sent" },
  ]]);
  assert.equal(w.ledger.size, 0);
  assert.equal(w.ledger.lost(), 0);
});

Deno.test("unroutable: CLU's f reply is published; the sender is told directly only if that fails", async () => {
  const announced = world();
  announced.publisher.outcomes.push({ ok: true, returned: true }, { ok: true, returned: false });
  await announced.run(command("u-1", "ghost"), { warn: true, track: {} });
  assert.deepEqual(announced.recipient.kinds(), [], "the f reply on the exchange ends it");
  const reply = announced.publisher.published[1];
  assert.equal(reply.routingKey, "reply.gw");
  assert.equal(reply.content, JSON.stringify({ error: failedRoutingText("ghost") }));
  announced.ledger.observe("u-1", "gw.ghost", "f", "{}");
  assert.deepEqual(announced.recipient.kinds(), ["ended"]);

  const silent = world();
  silent.publisher.outcomes.push({ ok: true, returned: true }, { ok: false, reason: "down" });
  await silent.run(command("u-2", "ghost"), { warn: true, track: {} });
  assert.deepEqual(silent.outcomes, ["unroutable"]);
  const [[, failed], [, ended]] = silent.recipient.heard;
  assert.deepEqual(failed, {
    kind: "failed",
    outcome: "unroutable",
    reason: "Failed routing message to consumer 'ghost'.",
    sender: "ghost",
  });
  assert.ok(ended.kind === "ended" && ended.end.status === "failed");
});

Deno.test("never silence: a publisher that throws is a failed command, told to the sender", async () => {
  const w = world();
  w.publisher.publish = () => Promise.reject(new Error("boom"));
  await w.run(command("boom-1"), { track: {} });
  assert.deepEqual(w.outcomes, ["failed"]);
  assert.deepEqual(w.recipient.heard[0], [
    "c1",
    { kind: "failed", outcome: "failed", reason: "clu-ws failed to send the command; see its log" },
  ]);
  assert.deepEqual(w.recipient.kinds(), ["failed", "ended"], "the tracked end follows at once");

  const throwing = world();
  const recipient = throwing.recipient;
  recipient.tell = (to, _command, told) => {
    if (told.kind === "accepted") throw new Error("socket gone");
    recipient.heard.push([to, told]);
  };
  await throwing.run(command("boom-2"), { ack: true });
  assert.deepEqual(recipient.kinds(), ["published"], "a delivery that throws does not stop the command");
});

Deno.test("the websocket frames for what a sender is told", () => {
  const c = command("f-1");
  const frame = (told: Told) => JSON.parse(socketFrame(IDENTITY, c, told));
  assert.deepEqual(frame({ kind: "accepted" }), { "clu-ws": "accepted", command_id: "f-1", consumer: "lvm" });
  assert.deepEqual(frame({ kind: "published" }), { "clu-ws": "published", command_id: "f-1" });
  assert.deepEqual(
    frame({ kind: "ended", end: { status: "timeout", code: null, elapsedMs: 3, error: "late" }, frames: [] }),
    {
      "clu-ws": "done",
      command_id: "f-1",
      consumer: "lvm",
      status: "timeout",
      code: null,
      elapsed_ms: 3,
      error: "late",
    },
  );
  const lost = frame({ kind: "lost" });
  assert.equal(lost.headers.message_code, "w");
  assert.equal(lost.headers.commander_id, "gw.lvm");
  assert.deepEqual(lost.body, { text: LINK_LOST_WARNING });
  const failed = frame({ kind: "failed", outcome: "unroutable", reason: "no", sender: "lvm" });
  assert.equal(failed.headers.message_code, "f");
  assert.equal(failed.headers.sender, "lvm");
  assert.equal(failed.headers.command_id, "f-1");
  assert.deepEqual(failed.body, { error: "no" });
  assert.equal(frame({ kind: "refused", reason: "taken" }).headers.sender, "gw");
});
