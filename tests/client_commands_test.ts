/**
 * Unit tests of the client module's command bookkeeping (web/client/commands.ts):
 * how replies and `done` frames end a command, the timeout, and failing all.
 */

import assert from "node:assert/strict";
import { CommandError, newCommandId, PendingCommands } from "../web/client/commands.ts";
import type { Frame } from "../web/client/types.ts";

function reply(commandId: string, code: string, body: Record<string, unknown> = {}): Frame {
  return {
    seq: 1,
    headers: { message_code: code, sender: "act", command_id: commandId },
    exchange: "sdss_exchange",
    message_id: null,
    routing_key: "reply.test",
    timestamp: null,
    body,
  };
}

Deno.test("client commands: ':' resolves with every reply in order", async () => {
  const commands = new PendingCommands();
  const result = commands.start("c1", { consumer: "act", timeoutSeconds: 30 });
  commands.reply(reply("c1", ">"));
  commands.reply(reply("other", ":"));
  commands.reply(reply("c1", "i", { x: 1 }));
  commands.reply(reply("c1", ":"));
  const done = await result;
  assert.equal(done.commandId, "c1");
  assert.equal(done.consumer, "act");
  assert.equal(done.status, "done");
  assert.equal(done.code, ":");
  assert.equal("error" in done, false);
  assert.deepEqual(done.replies.map((r) => r.headers.message_code), [">", "i", ":"]);
  assert.ok(done.elapsedMs >= 0);
});

Deno.test("client commands: 'f' and '!' reject with CommandError naming the error, any case", async () => {
  const commands = new PendingCommands();
  const failed = commands.start("c1", { consumer: "act", timeoutSeconds: 30 });
  commands.reply(reply("c1", "F", { error: "no such command" }));
  await assert.rejects(failed, (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.message, "act failed: no such command");
    assert.equal(err.result.status, "failed");
    assert.equal(err.result.code, "F");
    return true;
  });
  const bang = commands.start("c2", { consumer: "act", timeoutSeconds: 30 });
  commands.reply(reply("c2", "!", { error: { text: "boom" } }));
  await assert.rejects(bang, (err: CommandError) => err.result.error === '{"text":"boom"}');
  const silent = commands.start("c3", { consumer: "act", timeoutSeconds: 30 });
  commands.reply(reply("c3", "f", { text: "no error key" }));
  await assert.rejects(silent, (err: CommandError) => {
    assert.equal("error" in err.result, false);
    assert.equal(err.message, 'act failed: {"text":"no error key"}');
    return true;
  });
});

Deno.test("client commands: settle ends a command once; later replies and ends are ignored", async () => {
  const commands = new PendingCommands();
  const result = commands.start("c1", { consumer: "act", timeoutSeconds: 30 });
  commands.settle("c1", { status: "done", code: ":" });
  commands.settle("c1", { status: "failed", code: null, error: "late" });
  commands.reply(reply("c1", "f"));
  const done = await result;
  assert.equal(done.status, "done");
  assert.equal(done.replies.length, 0);
});

Deno.test("client commands: the timeout fires 5 s after the command's own timeout", async () => {
  const commands = new PendingCommands();
  // -4.95 s + 5 s: a 50 ms timer, so the test does not wait five seconds.
  const result = commands.start("c1", { consumer: "act", timeoutSeconds: -4.95 });
  await assert.rejects(result, (err: CommandError) => {
    assert.equal(err.result.status, "timeout");
    assert.equal(err.result.error, "no end within -4.95 s");
    assert.match(err.message, /^act timed out: /);
    return true;
  });
});

Deno.test("client commands: failAll fails every command in flight and clears its timer", async () => {
  const commands = new PendingCommands();
  const a = commands.start("a", { consumer: "one", timeoutSeconds: 30 });
  const b = commands.start("b", { consumer: "two", timeoutSeconds: 30 });
  commands.failAll("the connection closed");
  for (const promise of [a, b]) {
    await assert.rejects(promise, (err: CommandError) => err.result.error === "the connection closed");
  }
});

Deno.test("client commands: ids are UUIDs", () => {
  assert.match(newCommandId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(newCommandId(), newCommandId());
});
