// How declaring the history stream fails (lib/broker/stream.ts): each refusal RabbitMQ can give becomes
// an error that names the option to change. The refusals of brokers without streams cannot be produced
// by the test broker (3.10, streams on), so their texts are fed through a stand-in channel: the first
// is what our broker answers for a queue type it does not know, which is what RabbitMQ 3.8 answers for
// "stream"; the second is a 3.9 broker with the stream_queue feature flag off.

import assert from "node:assert/strict";
import {
  type ChannelOpener,
  declareStream,
  streamArguments,
  StreamSetupError,
} from "../lib/broker/stream.ts";
import type { StreamHistoryConfig } from "../lib/config/config.ts";

const CONFIG: StreamHistoryConfig = {
  name: "sdss_exchange.history",
  maxAge: "24h",
  maxBytes: 1024 ** 3,
  segmentBytes: 64 * 1024 ** 2,
  maxReplay: 100_000,
  replays: 16,
};

/** A channel model whose declare fails with `message`, and that counts the channels it closed. */
function refusing(message: string): { model: ChannelOpener; closed: () => number } {
  let closed = 0;
  const channel = {
    on() {},
    assertQueue: () => Promise.reject(new Error(message)),
    close: () => {
      closed++;
      return Promise.resolve();
    },
  };
  const model: ChannelOpener = { createChannel: () => Promise.resolve(channel) };
  return { model, closed: () => closed };
}

async function refusal(message: string): Promise<Error> {
  const { model, closed } = refusing(message);
  const error = await declareStream(model, CONFIG).then(() => undefined, (err: Error) => err);
  assert.ok(error, "the declare fails");
  assert.equal(closed(), 1, "the throwaway channel is closed");
  return error;
}

Deno.test("declaring the history stream: a broker without streams is a clear error naming --history", async () => {
  for (
    const message of [
      `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'sdss_exchange.history' in vhost '/': "unsupported queue type 'stream'""`,
      `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - feature flag stream_queue is not enabled"`,
    ]
  ) {
    const error = await refusal(message);
    assert.ok(error instanceof StreamSetupError);
    assert.match(
      error.message,
      /--history stream needs RabbitMQ 3\.9 or later with the stream_queue feature flag/,
    );
    assert.match(error.message, /or use --history memory/);
  }
});

Deno.test("declaring the history stream: another retention or segment size names the option; a passing failure is rethrown", async () => {
  const cases: Array<[string, RegExp]> = [
    ["x-max-age", /give --history-max-age the stream's value/],
    ["x-max-length-bytes", /give --history-max-bytes the stream's value/],
    ["x-stream-max-segment-size-bytes", /give --history-segment-bytes the stream's value/],
    ["x-queue-type", /not a stream made by clu-ws: name another one with --history-stream/],
  ];
  for (const [arg, expected] of cases) {
    const error = await refusal(
      `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg '${arg}' for queue 'sdss_exchange.history' in vhost '/': received '1' but current is '2'"`,
    );
    assert.ok(error instanceof StreamSetupError, arg);
    assert.match(error.message, expected);
    assert.match(error.message, /received '1' but current is '2'/);
  }
  const passing = await refusal("Channel ended, no reply will be forthcoming");
  assert.ok(!(passing instanceof StreamSetupError), "a lost connection is retried, not fatal");
  assert.deepEqual(streamArguments(CONFIG), {
    "x-queue-type": "stream",
    "x-max-age": "24h",
    "x-max-length-bytes": 1024 ** 3,
    "x-stream-max-segment-size-bytes": 64 * 1024 ** 2,
  });
});
