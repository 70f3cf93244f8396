// How declaring the history stream fails (lib/broker/stream.ts): each refusal RabbitMQ can give becomes
// an error that names the option to change.
//
// A broker with the stream_queue feature flag disabled is real: a node of the tests' own
// (tests/helpers/cluster.ts, startLoneNode) initialised with every flag but that one, as a broker upgraded
// from 3.8 that never enabled it. A broker older than 3.9 cannot be run here (only 3.10 is installed): its
// refusal and its server properties are fed through a stand-in connection, with RabbitMQ 3.8's own text
// (rabbit_amqqueue:check_queue_type, "invalid_queue_type"). The stand-in also pins the decision for the
// flag's text (the connection closed with 541, the text the real node gives), and what stays a passing
// failure.

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import {
  type ChannelOpener,
  declareStream,
  type DeclaringChannel,
  streamArguments,
  StreamSetupError,
} from "../lib/broker/stream.ts";
import type { StreamHistoryConfig } from "../lib/config/config.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { rabbitmqctl, startLoneNode } from "./helpers/cluster.ts";
import { startGateway } from "./helpers/gateway_process.ts";
import { streamArgs, uniqueStream } from "./helpers/stream.ts";

const CONFIG: StreamHistoryConfig = {
  name: "sdss_exchange.history",
  maxAge: "24h",
  maxBytes: 1024 ** 3,
  segmentBytes: 64 * 1024 ** 2,
  maxReplay: 100_000,
  replays: 16,
};

/** What the test broker (3.10.8) says of itself in `connection.start`. */
const RABBITMQ_3_10 = { product: "RabbitMQ", version: "3.10.8" };

/**
 * A stand-in connection whose declare is refused: `refuse` rejects it, and
 * may first close the connection as amqplib does for a connection error
 * (`close` with the server's reason, then the declare rejected with
 * "Channel ended"). It counts the channels it opened and closed.
 */
class StandIn extends EventEmitter implements ChannelOpener {
  readonly connection: { serverProperties: { product?: string; version?: string } };
  opened = 0;
  closed = 0;
  readonly #refuse: (model: StandIn) => Promise<never>;

  constructor(refuse: (model: StandIn) => Promise<never>, server = RABBITMQ_3_10) {
    super();
    this.#refuse = refuse;
    this.connection = { serverProperties: server };
  }

  createChannel(): Promise<DeclaringChannel> {
    this.opened++;
    return Promise.resolve({
      on: () => {},
      assertQueue: () => this.#refuse(this),
      close: () => {
        this.closed++;
        return Promise.resolve();
      },
    });
  }
}

/** A declare refused on the channel (406), with `message` as amqplib words it. */
function channelRefusal(message: string): (model: StandIn) => Promise<never> {
  return () => Promise.reject(new Error(message));
}

/** A declare answered by closing the connection with `code` and `text`, as amqplib reports it. */
function connectionClose(code: number, text: string): (model: StandIn) => Promise<never> {
  return (model) => {
    const reason = Object.assign(new Error(`Connection closed: ${text}`), { code });
    model.emit("close", reason);
    return Promise.reject(new Error("Channel ended, no reply will be forthcoming"));
  };
}

async function refusal(model: StandIn): Promise<Error> {
  const error = await declareStream(model, CONFIG).then(() => undefined, (err: Error) => err);
  assert.ok(error, "the declare fails");
  assert.equal(model.closed, model.opened, "the throwaway channel is closed");
  assert.equal(model.listenerCount("close"), 0, "no listener is left on the connection");
  return error;
}

Deno.test("declaring the history stream: a RabbitMQ older than 3.9 is a clear error naming --history, before any declare", async () => {
  for (const version of ["3.8.35", "3.7.28"]) {
    const model = new StandIn(() => Promise.reject(new Error("not reached")), {
      product: "RabbitMQ",
      version,
    });
    const error = await refusal(model);
    assert.ok(error instanceof StreamSetupError, version);
    assert.equal(
      error.message,
      `RabbitMQ ${version} has no streams: --history stream needs RabbitMQ 3.9 or later; ` +
        "upgrade it, or use --history memory",
    );
    // 3.7 would not refuse it: it would make a classic queue of that name.
    assert.equal(model.opened, 0, "nothing declared");
  }
  // A broker that does not say it is an old RabbitMQ is judged by its answer: 3.8's own refusal.
  const error = await refusal(
    new StandIn(
      channelRefusal(
        `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'sdss_exchange.history' in vhost '/': invalid_queue_type"`,
      ),
      { product: "AMQP broker", version: "1.0.0" },
    ),
  );
  assert.ok(error instanceof StreamSetupError);
  assert.match(error.message, /invalid_queue_type"\): --history stream needs RabbitMQ 3\.9 or later/);
  assert.match(error.message, /or use --history memory/);
});

Deno.test("declaring the history stream: the connection closed by the declare is judged by the server's reason", async () => {
  // The text the real node gives (see the end-to-end test below).
  const flagOff = await refusal(
    new StandIn(connectionClose(
      541,
      `541 (INTERNAL-ERROR) with message "INTERNAL_ERROR - Cannot declare a queue 'queue 'sdss_exchange.history' in vhost '/'' of type 'rabbit_stream_queue' on node 'rabbit@localhost': the corresponding feature flag is disabled"`,
    )),
  );
  assert.ok(flagOff instanceof StreamSetupError);
  assert.match(
    flagOff.message,
    /--history stream needs the stream_queue feature flag, disabled on this broker/,
  );
  // A broker shutting down closes the connection too: that is a lost link, retried, with the broker's words.
  const forced = await refusal(
    new StandIn(connectionClose(
      320,
      `320 (CONNECTION-FORCED) with message "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"`,
    )),
  );
  assert.ok(!(forced instanceof StreamSetupError), "a broker shutting down is retried, not fatal");
  assert.match(forced.message, /CONNECTION_FORCED/);
  // A connection lost without a close frame (a socket error): amqplib's words, retried.
  const lost = await refusal(new StandIn(channelRefusal("Channel ended, no reply will be forthcoming")));
  assert.ok(!(lost instanceof StreamSetupError), "a lost connection is retried, not fatal");
});

Deno.test("declaring the history stream: another retention or segment size names the option", async () => {
  const cases: Array<[string, RegExp]> = [
    ["x-max-age", /give --history-max-age the stream's value/],
    ["x-max-length-bytes", /give --history-max-bytes the stream's value/],
    ["x-stream-max-segment-size-bytes", /give --history-segment-bytes the stream's value/],
    ["x-queue-type", /not a stream made by clu-ws: name another one with --history-stream/],
  ];
  for (const [arg, expected] of cases) {
    const error = await refusal(
      new StandIn(channelRefusal(
        `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg '${arg}' for queue 'sdss_exchange.history' in vhost '/': received '1' but current is '2'"`,
      )),
    );
    assert.ok(error instanceof StreamSetupError, arg);
    assert.match(error.message, expected);
    assert.match(error.message, /received '1' but current is '2'/);
  }
  assert.deepEqual(streamArguments(CONFIG), {
    "x-queue-type": "stream",
    "x-max-age": "24h",
    "x-max-length-bytes": 1024 ** 3,
    "x-stream-max-segment-size-bytes": 64 * 1024 ** 2,
  });
});

Deno.test("--history stream on a broker with the stream_queue feature flag disabled: the gateway exits 1 at start, naming --history", async () => {
  // Every feature flag the default node knows but stream_queue.
  const listed = await rabbitmqctl(["list_feature_flags", "-q", "--formatter", "json"]);
  const flags: Array<{ name: string; state: string }> = JSON.parse(listed.stdout);
  await using node = await startLoneNode({
    featureFlags: flags.map((f) => f.name).filter((name) => name !== "stream_queue"),
  });
  const onNode: Array<{ name: string; state: string }> = JSON.parse(
    (await node.ctl(["list_feature_flags", "-q", "--formatter", "json"])).stdout,
  );
  assert.equal(
    onNode.find((f) => f.name === "stream_queue")?.state,
    "disabled",
    "the node has stream_queue disabled (a RabbitMQ that requires the flag enables it anyway: this case " +
      "cannot be made with it)",
  );

  const stream = uniqueStream("noflag");
  await using gateway = await startGateway({
    exchange: uniqueExchange("noflag"),
    args: streamArgs(stream),
    env: { CLU_WS_URL: node.url },
    waitForBroker: false,
  });
  const error = await gateway.waitForLog("the stream error", (r) => r.level === "ERROR", {
    timeoutMs: 30_000,
  });
  // The server's own words, then what to do.
  assert.match(error.message, /of type 'rabbit_stream_queue' .*the corresponding feature flag is disabled/);
  assert.match(
    error.message,
    /--history stream needs the stream_queue feature flag, disabled on this broker: enable it \(rabbitmqctl enable_feature_flag stream_queue/,
  );
  assert.match(error.message, /or use --history memory$/);
  const status = await until("the gateway to exit by itself", () => gateway.status, { timeoutMs: 30_000 });
  assert.equal(status.code, 1, "the gateway exits 1 by itself");
  assert.deepEqual(
    gateway.logs.filter((r) => /cannot reach RabbitMQ/.test(r.message)).map((r) => r.message),
    [],
    "no retry as if RabbitMQ were unreachable",
  );
  // Nothing was made on the broker.
  const queues = await node.ctl(["list_queues", "-q", "name", "--formatter", "json"]);
  assert.deepEqual(JSON.parse(queues.stdout || "[]"), []);
});
