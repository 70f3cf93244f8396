/**
 * Unit tests of the client module's stream position (web/client/position.ts):
 * replies seen twice are dropped, and while a resume is answered live replies
 * and command ends wait for the replay.
 */

import assert from "node:assert/strict";
import { StreamPosition } from "../web/client/position.ts";
import type { Frame } from "../web/client/types.ts";

function at(seq: number | undefined): Frame {
  return {
    ...(seq === undefined ? {} : { seq }),
    headers: { message_code: "i" },
    exchange: "x",
    message_id: null,
    routing_key: "r",
    timestamp: null,
    body: {},
  };
}

Deno.test("client position: advance drops what was seen; frames without a position always pass", () => {
  const position = new StreamPosition();
  assert.equal(position.epoch, undefined);
  position.restart("e1", 10);
  assert.equal(position.epoch, "e1");
  assert.equal(position.advance(at(10)), false);
  assert.equal(position.advance(at(11)), true);
  assert.equal(position.advance(at(11)), false);
  assert.equal(position.advance(at(undefined)), true);
  assert.equal(position.lastSeq, 11);
  position.restart("e2", 0);
  assert.equal(position.advance(at(1)), true);
});

Deno.test("client position: held replies come out sorted, then the held command ends", () => {
  const position = new StreamPosition();
  const order: string[] = [];
  assert.equal(position.holdReply(at(5)), false);
  position.holdSettle(() => order.push("settled at once"));
  position.hold();
  assert.equal(position.holdReply(at(7)), true);
  assert.equal(position.holdReply(at(undefined)), false);
  assert.equal(position.holdReply(at(6)), true);
  position.holdSettle(() => order.push("settled"));
  position.release((reply) => order.push(`reply ${reply.seq}`));
  assert.deepEqual(order, ["settled at once", "reply 6", "reply 7", "settled"]);
  assert.equal(position.holdReply(at(8)), false);
});

Deno.test("client position: stopHolding drops replies but keeps ends; dropHeld drops both", () => {
  const position = new StreamPosition();
  const order: string[] = [];
  position.hold();
  position.holdReply(at(1));
  position.holdSettle(() => order.push("end"));
  position.stopHolding();
  position.hold();
  position.release((reply) => order.push(`reply ${reply.seq}`));
  assert.deepEqual(order, ["end"]);
  position.hold();
  position.holdSettle(() => order.push("dropped"));
  position.dropHeld();
  position.release(() => order.push("nothing"));
  assert.deepEqual(order, ["end"]);
});
