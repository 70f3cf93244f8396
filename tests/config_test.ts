/**
 * Unit tests for lib/config.ts: defaults, flags, environment variables, the
 * broker URL, the password sources and every ConfigError a user can meet.
 * No I/O: file reads and randomness are injected.
 */

import assert from "node:assert/strict";
import {
  type BrokerConfig,
  brokerDisplayUrl,
  type Config,
  ConfigError,
  helpText,
  parseCli,
  type ParseCliOptions,
} from "../lib/config/config.ts";

type Env = Record<string, string | undefined>;

/** A readTextFile that fails the test if parseCli reads a file it should not. */
function noFileRead(path: string): string {
  throw new Error(`test did not expect a read of ${path}`);
}

const FIXED_HEX = "0123456789ab";

function cliOptions(options: ParseCliOptions = {}): ParseCliOptions {
  return { randomHex: () => FIXED_HEX, readTextFile: noFileRead, ...options };
}

/** Parses a run request and returns its config, failing on help/version. */
function run(args: string[], env: Env = {}, options: ParseCliOptions = {}): Config {
  const request = parseCli(args, env, cliOptions(options));
  if (request.kind !== "run") throw new Error(`expected a run request, got ${request.kind}`);
  return request.config;
}

/** Asserts parseCli throws a ConfigError and returns its message. */
function configError(args: string[], env: Env = {}, options: ParseCliOptions = {}): string {
  let caught: unknown;
  try {
    parseCli(args, env, cliOptions(options));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected a ConfigError for ${JSON.stringify(args)}, got none`);
  assert.ok(
    caught instanceof ConfigError,
    `expected a ConfigError for ${JSON.stringify(args)}, got ${String(caught)}`,
  );
  assert.equal(caught.name, "ConfigError");
  return caught.message;
}

/** Every option: long flag, short flag, environment variable. */
const ALL_OPTIONS: { flag: string; short?: string; env?: string }[] = [
  { flag: "port", short: "p", env: "CLU_WS_PORT" },
  { flag: "host", env: "CLU_WS_HOST" },
  { flag: "rabbitmq-host", short: "H", env: "CLU_WS_RABBITMQ_HOST" },
  { flag: "rabbitmq-port", short: "P", env: "CLU_WS_RABBITMQ_PORT" },
  { flag: "url", env: "CLU_WS_URL" },
  { flag: "user", env: "CLU_WS_USER" },
  { flag: "password", env: "CLU_WS_PASSWORD" },
  { flag: "password-file", env: "CLU_WS_PASSWORD_FILE" },
  { flag: "vhost", env: "CLU_WS_VHOST" },
  { flag: "exchange", env: "CLU_WS_EXCHANGE" },
  { flag: "name", env: "CLU_WS_NAME" },
  { flag: "heartbeat", env: "CLU_WS_HEARTBEAT" },
  { flag: "log-level", env: "CLU_WS_LOG_LEVEL" },
  { flag: "log-format", env: "CLU_WS_LOG_FORMAT" },
  { flag: "client-buffer", env: "CLU_WS_CLIENT_BUFFER" },
  { flag: "slow-client", env: "CLU_WS_SLOW_CLIENT" },
  { flag: "max-message-size", env: "CLU_WS_MAX_MESSAGE_SIZE" },
  { flag: "max-clients", env: "CLU_WS_MAX_CLIENTS" },
  { flag: "command-rate", env: "CLU_WS_COMMAND_RATE" },
  { flag: "command-burst", env: "CLU_WS_COMMAND_BURST" },
  { flag: "idle-timeout", env: "CLU_WS_IDLE_TIMEOUT" },
  { flag: "header-timeout", env: "CLU_WS_HEADER_TIMEOUT" },
  { flag: "max-pending", env: "CLU_WS_MAX_PENDING" },
  { flag: "history-size", env: "CLU_WS_HISTORY_SIZE" },
  { flag: "history-age", env: "CLU_WS_HISTORY_AGE" },
  { flag: "history-bytes", env: "CLU_WS_HISTORY_BYTES" },
  { flag: "series-points", env: "CLU_WS_SERIES_POINTS" },
  { flag: "series-age", env: "CLU_WS_SERIES_AGE" },
  { flag: "series-count", env: "CLU_WS_SERIES_COUNT" },
  { flag: "history", env: "CLU_WS_HISTORY" },
  { flag: "history-stream", env: "CLU_WS_HISTORY_STREAM" },
  { flag: "history-max-age", env: "CLU_WS_HISTORY_MAX_AGE" },
  { flag: "history-max-bytes", env: "CLU_WS_HISTORY_MAX_BYTES" },
  { flag: "history-segment-bytes", env: "CLU_WS_HISTORY_SEGMENT_BYTES" },
  { flag: "history-max-replay", env: "CLU_WS_HISTORY_MAX_REPLAY" },
  { flag: "history-replays", env: "CLU_WS_HISTORY_REPLAYS" },
  { flag: "config", env: "CLU_WS_CONFIG" },
  { flag: "tokens-file", env: "CLU_WS_TOKENS_FILE" },
  { flag: "allow-origin", env: "CLU_WS_ALLOW_ORIGIN" },
  { flag: "public-url", env: "CLU_WS_PUBLIC_URL" },
  { flag: "read-only", env: "CLU_WS_READ_ONLY" },
  { flag: "allow-actor", env: "CLU_WS_ALLOW_ACTOR" },
  { flag: "deny-actor", env: "CLU_WS_DENY_ACTOR" },
  { flag: "introspection", env: "CLU_WS_INTROSPECTION" },
  { flag: "introspection-timeout", env: "CLU_WS_INTROSPECTION_TIMEOUT" },
  { flag: "introspection-max-bytes", env: "CLU_WS_INTROSPECTION_MAX_BYTES" },
  { flag: "introspection-cache-bytes", env: "CLU_WS_INTROSPECTION_CACHE_BYTES" },
  { flag: "tls-cert", env: "CLU_WS_TLS_CERT" },
  { flag: "tls-key", env: "CLU_WS_TLS_KEY" },
  { flag: "version", short: "V" },
  { flag: "help", short: "h" },
];

// ---------------------------------------------------------------- defaults

Deno.test("config: no flags and no environment give CLU's defaults", () => {
  const { brokers, ...config } = run([], {});
  assert.deepEqual(brokers, [config.broker]);
  assert.deepEqual(config, {
    host: "0.0.0.0",
    port: 9876,
    broker: {
      protocol: "amqp",
      hostname: "localhost",
      port: 5672,
      username: "guest",
      password: "guest",
      vhost: "/",
      heartbeat: 5,
    },
    exchange: "sdss_exchange",
    name: `amqp-client-${FIXED_HEX}`,
    logLevel: "info",
    logFormat: "text",
    limits: {
      clientBufferBytes: 1048576,
      slowClient: "close",
      maxMessageBytes: 65536,
      maxClients: 10000,
      commandRate: 20,
      commandBurst: 40,
      idleTimeoutSeconds: 40,
      historySize: 10000,
      historyAgeSeconds: 600,
      historyBytes: 8388608,
      seriesPoints: 1000,
      seriesAgeSeconds: 3600,
      seriesCount: 1000,
      headerTimeoutSeconds: 10,
      maxPending: 1000,
    },
    access: {
      tokensFile: undefined,
      tokensText: undefined,
      allowOrigins: [],
      readOnly: false,
      allowActors: [],
      denyActors: [],
      metricsToken: undefined,
    },
    introspection: { enabled: true, timeoutSeconds: 10, maxAnswerBytes: 1048576, cacheBytes: 33554432 },
    stream: undefined,
    tls: undefined,
    warnings: [],
  });
});

Deno.test("config: the default client name asks for 12 random hex digits", () => {
  const lengths: number[] = [];
  const config = run([], {}, {
    randomHex: (length) => {
      lengths.push(length);
      return "fedcba987654";
    },
  });
  assert.deepEqual(lengths, [12]);
  assert.equal(config.name, "amqp-client-fedcba987654");
});

Deno.test("config: without an injected random source the name is amqp-client-<12 hex>, new each run", () => {
  const a = parseCli([], {}, { readTextFile: noFileRead });
  const b = parseCli([], {}, { readTextFile: noFileRead });
  if (a.kind !== "run" || b.kind !== "run") throw new Error("expected run requests");
  assert.match(a.config.name, /^amqp-client-[0-9a-f]{12}$/);
  assert.match(b.config.name, /^amqp-client-[0-9a-f]{12}$/);
  assert.notEqual(a.config.name, b.config.name);
});

Deno.test("config: a given --name does not consume randomness", () => {
  let calls = 0;
  const config = run(["--name", "webgw"], {}, {
    randomHex: () => {
      calls++;
      return FIXED_HEX;
    },
  });
  assert.equal(config.name, "webgw");
  assert.equal(calls, 0);
});

// ---------------------------------------------------------------- flags

Deno.test("config: long flags set every value", () => {
  const config = run([
    "--port",
    "8000",
    "--host",
    "127.0.0.1",
    "--rabbitmq-host",
    "rabbit.example",
    "--rabbitmq-port",
    "5673",
    "--user",
    "bob",
    "--vhost",
    "lvm",
    "--exchange",
    "my_exchange",
    "--name",
    "gw-1",
    "--heartbeat",
    "30",
    "--log-level",
    "debug",
    "--log-format",
    "json",
  ]);
  assert.equal(config.port, 8000);
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.broker.hostname, "rabbit.example");
  assert.equal(config.broker.port, 5673);
  assert.equal(config.broker.username, "bob");
  assert.equal(config.broker.password, "guest");
  assert.equal(config.broker.vhost, "lvm");
  assert.equal(config.broker.protocol, "amqp");
  assert.equal(config.exchange, "my_exchange");
  assert.equal(config.name, "gw-1");
  assert.equal(config.broker.heartbeat, 30);
  assert.equal(config.logLevel, "debug");
  assert.equal(config.logFormat, "json");
  assert.deepEqual(config.warnings, []);
});

Deno.test("config: --flag=value form works", () => {
  const config = run(["--port=8001", "--rabbitmq-host=r1", "--log-level=error"]);
  assert.equal(config.port, 8001);
  assert.equal(config.broker.hostname, "r1");
  assert.equal(config.logLevel, "error");
});

Deno.test("config: short flags -p -H -P as in `clu websocket`", () => {
  const config = run(["-p", "1234", "-H", "broker.local", "-P", "5999"]);
  assert.equal(config.port, 1234);
  assert.equal(config.broker.hostname, "broker.local");
  assert.equal(config.broker.port, 5999);
});

Deno.test("config: -h and --help return the help text", () => {
  for (const flag of ["-h", "--help"]) {
    const request = parseCli([flag], {}, cliOptions());
    assert.deepEqual(request, { kind: "help", text: helpText() }, flag);
  }
});

Deno.test("config: -V and --version ask for the version", () => {
  for (const flag of ["-V", "--version"]) {
    assert.deepEqual(parseCli([flag], {}, cliOptions()), { kind: "version" }, flag);
  }
});

Deno.test("config: --help wins over --version and ignores otherwise bad values", () => {
  assert.equal(parseCli(["--version", "--help"], {}, cliOptions()).kind, "help");
  // A bad variable must not stop the user from reading the help.
  assert.equal(parseCli(["--help"], { CLU_WS_PORT: "abc" }, cliOptions()).kind, "help");
  assert.equal(parseCli(["-V"], { CLU_WS_LOG_LEVEL: "loud" }, cliOptions()).kind, "version");
});

Deno.test("config: a repeated flag takes its last value", () => {
  assert.equal(run(["-p", "1000", "--port", "2000"]).port, 2000);
});

Deno.test("config: port 0 (pick a free one) is accepted for the websocket port", () => {
  assert.equal(run(["--port", "0"]).port, 0);
  assert.equal(run(["--port", "65535"]).port, 65535);
});

// ---------------------------------------------------------------- environment

Deno.test("config: every CLU_WS_* variable sets its value", () => {
  const { brokers, ...config } = run([], {
    CLU_WS_PORT: "7000",
    CLU_WS_HOST: "::",
    CLU_WS_RABBITMQ_HOST: "mq",
    CLU_WS_RABBITMQ_PORT: "5680",
    CLU_WS_USER: "alice",
    CLU_WS_PASSWORD: "s3cret",
    CLU_WS_VHOST: "dev",
    CLU_WS_EXCHANGE: "other_exchange",
    CLU_WS_NAME: "gw-env",
    CLU_WS_HEARTBEAT: "0",
    CLU_WS_LOG_LEVEL: "warning",
    CLU_WS_LOG_FORMAT: "json",
    CLU_WS_CLIENT_BUFFER: "2MiB",
    CLU_WS_SLOW_CLIENT: "drop",
    CLU_WS_MAX_MESSAGE_SIZE: "1000",
    CLU_WS_MAX_CLIENTS: "5",
    CLU_WS_COMMAND_RATE: "0",
    CLU_WS_COMMAND_BURST: "3",
    CLU_WS_IDLE_TIMEOUT: "0",
    CLU_WS_SERIES_POINTS: "20",
    CLU_WS_INTROSPECTION: "off",
    CLU_WS_INTROSPECTION_TIMEOUT: "3",
    CLU_WS_INTROSPECTION_MAX_BYTES: "64KiB",
    CLU_WS_INTROSPECTION_CACHE_BYTES: "1MiB",
  });
  assert.deepEqual(brokers, [config.broker]);
  assert.deepEqual(config, {
    host: "::",
    port: 7000,
    broker: {
      protocol: "amqp",
      hostname: "mq",
      port: 5680,
      username: "alice",
      password: "s3cret",
      vhost: "dev",
      heartbeat: 0,
    },
    exchange: "other_exchange",
    name: "gw-env",
    logLevel: "warning",
    logFormat: "json",
    limits: {
      clientBufferBytes: 2097152,
      slowClient: "drop",
      maxMessageBytes: 1000,
      seriesAgeSeconds: 3600,
      seriesPoints: 20,
      seriesCount: 1000,
      maxClients: 5,
      commandRate: 0,
      commandBurst: 3,
      idleTimeoutSeconds: 0,
      historySize: 10000,
      historyAgeSeconds: 600,
      historyBytes: 8388608,
      headerTimeoutSeconds: 10,
      maxPending: 1000,
    },
    access: {
      tokensFile: undefined,
      tokensText: undefined,
      allowOrigins: [],
      readOnly: false,
      allowActors: [],
      denyActors: [],
      metricsToken: undefined,
    },
    introspection: { enabled: false, timeoutSeconds: 3, maxAnswerBytes: 65536, cacheBytes: 1048576 },
    stream: undefined,
    tls: undefined,
    warnings: [],
  });
});

Deno.test("config: CLU_WS_URL and CLU_WS_PASSWORD_FILE are read from the environment", () => {
  const config = run([], { CLU_WS_URL: "amqps://u@mq.example/v", CLU_WS_PASSWORD_FILE: "/run/pw" }, {
    readTextFile: (path) => {
      assert.equal(path, "/run/pw");
      return "from-file\n";
    },
  });
  assert.equal(config.broker.protocol, "amqps");
  assert.equal(config.broker.hostname, "mq.example");
  assert.equal(config.broker.username, "u");
  assert.equal(config.broker.password, "from-file");
  assert.equal(config.broker.vhost, "v");
});

Deno.test("config: flags win over environment variables", () => {
  const env: Env = {
    CLU_WS_PORT: "7000",
    CLU_WS_HOST: "10.0.0.1",
    CLU_WS_RABBITMQ_HOST: "env-mq",
    CLU_WS_RABBITMQ_PORT: "5680",
    CLU_WS_USER: "env-user",
    CLU_WS_VHOST: "env-vhost",
    CLU_WS_EXCHANGE: "env_exchange",
    CLU_WS_NAME: "env-name",
    CLU_WS_HEARTBEAT: "10",
    CLU_WS_LOG_LEVEL: "error",
    CLU_WS_LOG_FORMAT: "json",
  };
  const config = run([
    "-p",
    "7001",
    "--host",
    "10.0.0.2",
    "-H",
    "flag-mq",
    "-P",
    "5681",
    "--user",
    "flag-user",
    "--vhost",
    "flag-vhost",
    "--exchange",
    "flag_exchange",
    "--name",
    "flag-name",
    "--heartbeat",
    "20",
    "--log-level",
    "debug",
    "--log-format",
    "text",
  ], env);
  assert.equal(config.port, 7001);
  assert.equal(config.host, "10.0.0.2");
  assert.equal(config.broker.hostname, "flag-mq");
  assert.equal(config.broker.port, 5681);
  assert.equal(config.broker.username, "flag-user");
  assert.equal(config.broker.vhost, "flag-vhost");
  assert.equal(config.exchange, "flag_exchange");
  assert.equal(config.name, "flag-name");
  assert.equal(config.broker.heartbeat, 20);
  assert.equal(config.logLevel, "debug");
  assert.equal(config.logFormat, "text");
});

Deno.test("config: --url flag wins over CLU_WS_URL", () => {
  const config = run(["--url", "amqp://flag-host/"], { CLU_WS_URL: "amqp://env-host/" });
  assert.equal(config.broker.hostname, "flag-host");
});

Deno.test("config: --password flag wins over CLU_WS_PASSWORD", () => {
  const config = run(["--password", "flag-pw"], { CLU_WS_PASSWORD: "env-pw" });
  assert.equal(config.broker.password, "flag-pw");
});

Deno.test("config: an empty environment variable counts as unset", () => {
  const config = run([], {
    CLU_WS_PORT: "",
    CLU_WS_RABBITMQ_HOST: "",
    CLU_WS_PASSWORD: "",
    CLU_WS_NAME: "",
    CLU_WS_LOG_LEVEL: "",
  });
  assert.equal(config.port, 9876);
  assert.equal(config.broker.hostname, "localhost");
  assert.equal(config.broker.password, "guest");
  assert.equal(config.name, `amqp-client-${FIXED_HEX}`);
  assert.equal(config.logLevel, "info");
});

Deno.test("config: variables outside CLU_WS_* are ignored", () => {
  const config = run([], { PORT: "1", RABBITMQ_HOST: "x", AMQP_URL: "amqp://elsewhere/" });
  assert.equal(config.port, 9876);
  assert.equal(config.broker.hostname, "localhost");
});

// ---------------------------------------------------------------- --url

Deno.test("config: --url amqp:// sets host, port, user, password and vhost", () => {
  const config = run(["--url", "amqp://alice:pw@mq.example:5700/lvm"]);
  assert.deepEqual(config.broker, {
    protocol: "amqp",
    hostname: "mq.example",
    port: 5700,
    username: "alice",
    password: "pw",
    vhost: "lvm",
    heartbeat: 5,
  });
});

Deno.test("config: --url default ports are 5672 for amqp and 5671 for amqps", () => {
  const plain = run(["--url", "amqp://mq/"]).broker;
  assert.equal(plain.protocol, "amqp");
  assert.equal(plain.port, 5672);
  const tls = run(["--url", "amqps://mq/"]).broker;
  assert.equal(tls.protocol, "amqps");
  assert.equal(tls.port, 5671);
});

Deno.test("config: --url overrides --rabbitmq-host and --rabbitmq-port", () => {
  const broker = run(["-H", "other", "-P", "6000", "--url", "amqps://mq/"]).broker;
  assert.equal(broker.hostname, "mq");
  assert.equal(broker.port, 5671);
});

Deno.test("config: --url percent-decodes user and password", () => {
  const broker = run(["--url", "amqp://us%40er:p%40ss%3Aw%2Frd@mq/"]).broker;
  assert.equal(broker.username, "us@er");
  assert.equal(broker.password, "p@ss:w/rd");
});

Deno.test("config: --url vhost comes from the path, %2F-decoded", () => {
  assert.equal(run(["--url", "amqp://mq/%2F"]).broker.vhost, "/");
  assert.equal(run(["--url", "amqp://mq/%2Fprod"]).broker.vhost, "/prod");
  assert.equal(run(["--url", "amqp://mq/my%20vhost"]).broker.vhost, "my vhost");
  assert.equal(run(["--url", "amqp://mq/lvm"]).broker.vhost, "lvm");
});

Deno.test("config: --url with a bare / path means vhost /, even over --vhost", () => {
  assert.equal(run(["--vhost", "v", "--url", "amqp://mq/"]).broker.vhost, "/");
});

Deno.test("config: --url without a path keeps --vhost", () => {
  assert.equal(run(["--vhost", "v", "--url", "amqp://mq"]).broker.vhost, "v");
  assert.equal(run(["--url", "amqp://mq"]).broker.vhost, "/");
});

Deno.test("config: --url without credentials keeps --user and --password", () => {
  const broker = run(["--user", "bob", "--password", "pw", "--url", "amqp://mq:5700/v"]).broker;
  assert.equal(broker.username, "bob");
  assert.equal(broker.password, "pw");
  assert.equal(broker.hostname, "mq");
  assert.equal(broker.port, 5700);
});

Deno.test("config: --url with only a user keeps CLU_WS_PASSWORD", () => {
  const broker = run(["--url", "amqp://carol@mq/"], { CLU_WS_PASSWORD: "env-pw" }).broker;
  assert.equal(broker.username, "carol");
  assert.equal(broker.password, "env-pw");
});

Deno.test("config: --url password wins over CLU_WS_PASSWORD", () => {
  const broker = run([], { CLU_WS_URL: "amqp://u:url-pw@mq/", CLU_WS_PASSWORD: "env-pw" }).broker;
  assert.equal(broker.password, "url-pw");
});

Deno.test("config: --url IPv6 host loses its brackets", () => {
  const broker = run(["--url", "amqp://[::1]:5700/"]).broker;
  assert.equal(broker.hostname, "::1");
  assert.equal(broker.port, 5700);
});

Deno.test("config: --url heartbeat query parameter sets the heartbeat", () => {
  assert.equal(run(["--url", "amqp://mq/?heartbeat=17"]).broker.heartbeat, 17);
  assert.equal(run(["--url", "amqp://mq/?heartbeat=0"]).broker.heartbeat, 0);
  // Without the parameter, --heartbeat still applies.
  assert.equal(run(["--heartbeat", "9", "--url", "amqp://mq/"]).broker.heartbeat, 9);
});

Deno.test("config: a bad heartbeat in --url is a ConfigError", () => {
  for (const value of ["abc", "-1", "3601", ""]) {
    const message = configError(["--url", `amqp://mq/?heartbeat=${value}`]);
    assert.match(message, /--url/, value);
    assert.match(message, /heartbeat/, value);
  }
});

Deno.test("config: --url query parameters other than heartbeat are rejected", () => {
  const message = configError(["--url", "amqp://mq/?channel_max=10"]);
  assert.match(message, /--url/);
  assert.match(message, /channel_max/);
  const fromEnv = configError([], { CLU_WS_URL: "amqps://mq/?heartbeat=5&verify=false" });
  assert.match(fromEnv, /CLU_WS_URL/);
  assert.match(fromEnv, /verify/);
});

Deno.test("config: --url with a scheme other than amqp/amqps is rejected", () => {
  for (const url of ["http://mq/", "https://mq:5671/", "amqpx://mq/", "mq:5672"]) {
    const message = configError(["--url", url]);
    assert.match(message, /--url/, url);
    assert.match(message, /amqp:\/\//, url);
  }
});

Deno.test("config: a malformed --url is a ConfigError naming the flag or variable", () => {
  for (const url of ["not a url", "amqp://[broken/", "amqp://mq:99999/", "amqp://mq:port/", "amqp:mq"]) {
    const message = configError(["--url", url]);
    assert.match(message, /--url/, url);
  }
  assert.match(configError([], { CLU_WS_URL: "::::" }), /CLU_WS_URL/);
});

Deno.test("config: a --url with a malformed %-escape is a ConfigError, not a crash", () => {
  for (const url of ["amqp://us%ZZer:pw@mq/", "amqp://u:p%E0%A4%A@mq/", "amqp://mq/%E0%A4%A"]) {
    const message = configError(["--url", url]);
    assert.match(message, /--url/, url);
  }
});

Deno.test("config: --url port 0 is rejected like --rabbitmq-port 0", () => {
  assert.match(configError(["--rabbitmq-port", "0"]), /--rabbitmq-port/);
  assert.match(configError(["--url", "amqp://mq:0/"]), /--url/);
});

Deno.test("config: errors about --url never show its password", () => {
  const urls = [
    "http://u:hunter2secret@mq/",
    "amqp://u:hunter2secret@mq/?x=1",
    "amqp://u:hunter2secret@mq/?heartbeat=zz",
    "amqp://u:hunter2secret@mq:notaport/",
    "amqp://u:hunter2secret@:5672/",
  ];
  for (const url of urls) {
    const message = configError(["--url", url]);
    assert.ok(!message.includes("hunter2secret"), `${url} -> ${message}`);
  }
});

// ---------------------------------------------------------------- passwords

Deno.test("config: CLU_WS_PASSWORD sets the password without a warning", () => {
  const config = run([], { CLU_WS_PASSWORD: "env-pw" });
  assert.equal(config.broker.password, "env-pw");
  assert.deepEqual(config.warnings, []);
});

Deno.test("config: --password on the command line works but warns, without echoing it", () => {
  const config = run(["--password", "argv-secret"]);
  assert.equal(config.broker.password, "argv-secret");
  assert.equal(config.warnings.length, 1);
  assert.match(config.warnings[0], /--password/);
  assert.match(config.warnings[0], /CLU_WS_PASSWORD|--password-file/);
  assert.ok(!config.warnings[0].includes("argv-secret"));
});

Deno.test("config: a password inside --url on the command line warns; in CLU_WS_URL it does not", () => {
  const fromFlag = run(["--url", "amqp://u:url-secret@mq/"]);
  assert.equal(fromFlag.warnings.length, 1);
  assert.match(fromFlag.warnings[0], /--url/);
  assert.ok(!fromFlag.warnings[0].includes("url-secret"));
  assert.deepEqual(run([], { CLU_WS_URL: "amqp://u:url-secret@mq/" }).warnings, []);
  assert.deepEqual(run(["--url", "amqp://u@mq/"]).warnings, []);
});

Deno.test("config: --password-file uses the file's first line", () => {
  const reads: string[] = [];
  const readTextFile = (path: string) => {
    reads.push(path);
    return "file-secret\nsecond line\n";
  };
  const config = run(["--password-file", "/etc/clu-ws/pw"], {}, { readTextFile });
  assert.deepEqual(reads, ["/etc/clu-ws/pw"]);
  assert.equal(config.broker.password, "file-secret");
  assert.deepEqual(config.warnings, []);
});

Deno.test("config: --password-file handles CRLF and a file without a newline", () => {
  assert.equal(
    run(["--password-file", "/p"], {}, { readTextFile: () => "crlf-secret\r\nx\r\n" }).broker.password,
    "crlf-secret",
  );
  assert.equal(
    run(["--password-file", "/p"], {}, { readTextFile: () => "bare-secret" }).broker.password,
    "bare-secret",
  );
});

Deno.test("config: an unreadable password file is a ConfigError with the path", () => {
  const readTextFile = () => {
    throw new Error("No such file or directory (os error 2)");
  };
  const message = configError(["--password-file", "/missing/pw.txt"], {}, { readTextFile });
  assert.match(message, /--password-file/);
  assert.ok(message.includes("/missing/pw.txt"), message);
  const fromEnv = configError([], { CLU_WS_PASSWORD_FILE: "/missing/env.txt" }, { readTextFile });
  assert.match(fromEnv, /CLU_WS_PASSWORD_FILE/);
  assert.ok(fromEnv.includes("/missing/env.txt"), fromEnv);
});

Deno.test("config: an empty password file is a ConfigError with the path", () => {
  for (const content of ["", "\n", "\r\n", "\nsecond-line"]) {
    const message = configError(["--password-file", "/etc/empty-pw"], {}, {
      readTextFile: () => content,
    });
    assert.ok(message.includes("/etc/empty-pw"), `${JSON.stringify(content)} -> ${message}`);
    assert.match(message, /empty/);
  }
});

Deno.test("config: --password on the command line wins over --password-file, which is then not read", () => {
  const config = run(["--password", "direct", "--password-file", "/p"], {}, { readTextFile: noFileRead });
  assert.equal(config.broker.password, "direct");
});

Deno.test("config: --password-file on the command line wins over CLU_WS_PASSWORD (flags win over env)", () => {
  const config = run(["--password-file", "/run/secrets/pw"], { CLU_WS_PASSWORD: "env-pw" }, {
    readTextFile: () => "file-pw\n",
  });
  assert.equal(config.broker.password, "file-pw");
});

Deno.test("config: CLU_WS_PASSWORD wins over CLU_WS_PASSWORD_FILE", () => {
  const config = run([], { CLU_WS_PASSWORD: "env-pw", CLU_WS_PASSWORD_FILE: "/p" }, {
    readTextFile: noFileRead,
  });
  assert.equal(config.broker.password, "env-pw");
});

// ---------------------------------------------------------------- bad values

Deno.test("config: a bad --port is a ConfigError naming the flag", () => {
  for (
    const args of [["--port", "70000"], ["--port=-1"], ["--port", "abc"], ["--port", ""], ["-p", "80.5"]]
  ) {
    const message = configError(args);
    assert.match(message, /--port/, args.join(" "));
    assert.match(message, /0 to 65535/, args.join(" "));
  }
});

Deno.test("config: -p followed by a negative number is a ConfigError naming the flag", () => {
  assert.match(configError(["-p", "-1"]), /-p\b/);
});

Deno.test("config: a bad CLU_WS_PORT is a ConfigError naming the variable", () => {
  for (const value of ["70000", "-1", "abc", "1e3", "0x50"]) {
    const message = configError([], { CLU_WS_PORT: value });
    assert.match(message, /CLU_WS_PORT/, value);
    assert.ok(message.includes(`'${value}'`), message);
  }
});

Deno.test("config: a bad RabbitMQ port is a ConfigError naming the flag or variable", () => {
  for (const value of ["70000", "abc", "", "0"]) {
    const message = configError(["--rabbitmq-port", value]);
    assert.match(message, /--rabbitmq-port/, value);
    assert.match(message, /1 to 65535/, value);
  }
  assert.match(configError(["-P", "65536"]), /--rabbitmq-port/);
  assert.match(configError([], { CLU_WS_RABBITMQ_PORT: "-1" }), /CLU_WS_RABBITMQ_PORT/);
});

Deno.test("config: a flag without its value is a ConfigError", () => {
  assert.match(configError(["--port"]), /--port/);
  assert.match(configError(["--url"]), /--url/);
});

Deno.test("config: a bad heartbeat is a ConfigError naming the flag or variable", () => {
  for (const value of ["abc", "3601", "1.5", ""]) {
    assert.match(configError(["--heartbeat", value]), /--heartbeat/, value);
  }
  assert.match(configError([], { CLU_WS_HEARTBEAT: "-5" }), /CLU_WS_HEARTBEAT/);
  assert.equal(run(["--heartbeat", "3600"]).broker.heartbeat, 3600);
});

Deno.test("config: an unknown flag is a ConfigError that points to --help", () => {
  for (const flag of ["--bogus", "-x", "--rabbitmq_host", "--Port"]) {
    const message = configError([flag, "1"]);
    assert.match(message, /--help/, flag);
    assert.ok(message.includes(flag), `${flag} -> ${message}`);
  }
});

Deno.test("config: a stray argument is a ConfigError that points to --help", () => {
  const message = configError(["localhost"]);
  assert.match(message, /localhost/);
  assert.match(message, /--help/);
});

Deno.test("config: log level and format are case-insensitive choices", () => {
  assert.equal(run(["--log-level", "DEBUG"]).logLevel, "debug");
  assert.equal(run(["--log-level", "Warning"]).logLevel, "warning");
  assert.equal(run(["--log-format", "JSON"]).logFormat, "json");
});

Deno.test("config: a bad log level is a ConfigError listing the choices", () => {
  const message = configError(["--log-level", "verbose"]);
  assert.match(message, /--log-level/);
  assert.match(message, /verbose/);
  for (const level of ["debug", "info", "warning", "error"]) assert.ok(message.includes(level), message);
  assert.match(configError([], { CLU_WS_LOG_LEVEL: "warn" }), /CLU_WS_LOG_LEVEL/);
});

Deno.test("config: a bad log format is a ConfigError listing the choices", () => {
  const message = configError(["--log-format", "xml"]);
  assert.match(message, /--log-format/);
  assert.match(message, /text/);
  assert.match(message, /json/);
  assert.match(configError([], { CLU_WS_LOG_FORMAT: "pretty" }), /CLU_WS_LOG_FORMAT/);
});

Deno.test("config: exchange names with letters, digits, - _ . : are accepted", () => {
  assert.equal(run(["--exchange", "a-b_c.d:e9"]).exchange, "a-b_c.d:e9");
  assert.equal(run(["--exchange", "x".repeat(127)]).exchange, "x".repeat(127));
});

Deno.test("config: a bad exchange name is a ConfigError naming the flag or variable", () => {
  for (const name of ["", "with space", "amq#", "ünï", "x".repeat(128)]) {
    const message = configError(["--exchange", name]);
    assert.match(message, /--exchange/, name);
    assert.match(message, /exchange name/, name);
  }
  assert.match(configError([], { CLU_WS_EXCHANGE: "a/b" }), /CLU_WS_EXCHANGE/);
});

Deno.test("config: client names allow dots and dashes", () => {
  assert.equal(run(["--name", "lvm.web-gw_1"]).name, "lvm.web-gw_1");
  assert.equal(run(["--name", "n".repeat(200)]).name, "n".repeat(200));
});

Deno.test("config: a bad client name is a ConfigError naming the flag or variable", () => {
  for (const name of ["", "has space", "tab\there", "wild#", "star*", "n".repeat(201)]) {
    const message = configError(["--name", name]);
    assert.match(message, /--name/, JSON.stringify(name));
    assert.match(message, /client name/, JSON.stringify(name));
  }
  assert.match(configError([], { CLU_WS_NAME: "a b" }), /CLU_WS_NAME/);
});

Deno.test("config: ConfigError is an Error named ConfigError", () => {
  const err = new ConfigError("boom");
  assert.ok(err instanceof Error);
  assert.equal(err.name, "ConfigError");
  assert.equal(err.message, "boom");
});

// ---------------------------------------------------------------- brokerDisplayUrl

function broker(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    protocol: "amqp",
    hostname: "localhost",
    port: 5672,
    username: "guest",
    password: "guest",
    vhost: "/",
    heartbeat: 5,
    ...overrides,
  };
}

Deno.test("brokerDisplayUrl: shows everything but the password", () => {
  assert.equal(brokerDisplayUrl(broker()), "amqp://guest:***@localhost:5672/");
  assert.equal(
    brokerDisplayUrl(
      broker({ protocol: "amqps", hostname: "mq", port: 5671, username: "bob", vhost: "lvm" }),
    ),
    "amqps://bob:***@mq:5671/lvm",
  );
});

Deno.test("brokerDisplayUrl: never contains the password", () => {
  for (const password of ["hunter2", "p@ss:w/rd", "guest2", "%2F", "***x"]) {
    const shown = brokerDisplayUrl(broker({ username: "u", password }));
    assert.ok(!shown.includes(password), `${password} -> ${shown}`);
    assert.ok(!shown.includes(encodeURIComponent(password)), `${password} -> ${shown}`);
  }
});

Deno.test("brokerDisplayUrl: escapes the user and vhost and brackets IPv6 hosts", () => {
  assert.equal(
    brokerDisplayUrl(broker({ username: "us@er", vhost: "/prod", hostname: "::1" })),
    "amqp://us%40er:***@[::1]:5672/%2Fprod",
  );
});

Deno.test("brokerDisplayUrl: the shown URL, with the password put back, parses to the same broker", () => {
  const original = run(["--url", "amqps://us%40er:pw@[::1]:5700/%2Fprod?heartbeat=7"]).broker;
  const shown = brokerDisplayUrl(original).replace("***", "pw");
  const reparsed = run(["--heartbeat", "7", "--url", shown]).broker;
  assert.deepEqual(reparsed, original);
});

// ---------------------------------------------------------------- helpText

Deno.test("helpText: lists every flag with its short form and its variable", () => {
  const text = helpText();
  const lines = text.split("\n");
  for (const option of ALL_OPTIONS) {
    const line = lines.find((l) => new RegExp(`^\\s+(-\\w, )?--${option.flag}\\b`).test(l));
    assert.ok(line, `--${option.flag} is missing from the help`);
    if (option.short) assert.ok(line.includes(`-${option.short}, --${option.flag}`), line);
    if (option.env) assert.ok(line.includes(`env ${option.env}`), line);
  }
});

Deno.test("helpText: lists no flag that parseCli does not know", () => {
  const listed = helpText().split("\n").flatMap((l) => {
    const m = /^\s+(?:-\w, )?--([a-z-]+)/.exec(l);
    return m ? [m[1]] : [];
  });
  assert.deepEqual(listed.sort(), ALL_OPTIONS.map((o) => o.flag).sort());
});

Deno.test("helpText: shows the defaults and the precedence rule", () => {
  const text = helpText();
  for (const shown of ["9876", "0.0.0.0", "localhost", "5672", "sdss_exchange", "amqp-client-<12 hex>"]) {
    assert.ok(text.includes(`default ${shown}`), shown);
  }
  assert.match(text, /flags win over environment variables/i);
});

// ---------------------------------------------------------------- history stream

Deno.test("config: --history stream names the stream after the exchange and takes its retention", () => {
  assert.deepEqual(run(["--history", "stream", "--exchange", "lvm"]).stream, {
    name: "lvm.history",
    maxAge: "24h",
    maxBytes: 1024 ** 3,
    segmentBytes: 64 * 1024 ** 2,
    maxReplay: 100_000,
    replays: 16,
  });
  assert.deepEqual(
    run([], {
      CLU_WS_HISTORY: "stream",
      CLU_WS_HISTORY_STREAM: "night.replies",
      CLU_WS_HISTORY_MAX_AGE: "7D",
      CLU_WS_HISTORY_MAX_BYTES: "2GiB",
      CLU_WS_HISTORY_SEGMENT_BYTES: "16MiB",
      CLU_WS_HISTORY_MAX_REPLAY: "5000",
      CLU_WS_HISTORY_REPLAYS: "4",
    }).stream,
    {
      name: "night.replies",
      maxAge: "7D",
      maxBytes: 2 * 1024 ** 3,
      segmentBytes: 16 * 1024 ** 2,
      maxReplay: 5000,
      replays: 4,
    },
  );
  assert.equal(run(["--history-stream", "x"]).stream, undefined, "memory is the default");
  assert.match(configError(["--history", "disk"]), /--history: 'disk' is not one of memory, stream/);
  assert.match(
    configError(["--history", "stream", "--history-max-age", "1 day"]),
    /--history-max-age: '1 day' is not a RabbitMQ stream age; use a number and one of Y, M, D, h, m, s/,
  );
  assert.match(
    configError(["--history", "stream", "--history-stream", "amq.x"]),
    /stream name 'amq.x' is not valid/,
  );
  assert.match(
    configError(["--history", "stream", "--history-max-bytes", "1KiB"]),
    /--history-max-bytes: '1KiB' is not a size/,
  );
});

// ---------------------------------------------------------------- limits

Deno.test("config: sizes take bytes or units", () => {
  assert.equal(run(["--client-buffer", "65536"]).limits.clientBufferBytes, 65536);
  assert.equal(run(["--client-buffer", "64KiB"]).limits.clientBufferBytes, 65536);
  assert.equal(run(["--client-buffer", "1.5MB"]).limits.clientBufferBytes, 1_500_000);
  assert.equal(run(["--max-message-size", "1k"]).limits.maxMessageBytes, 1024);
  assert.equal(run([]).limits.historyBytes, 8 * 1024 * 1024, "--history-bytes defaults to 8 MiB");
  assert.equal(run(["--history-bytes", "16MiB"]).limits.historyBytes, 16 * 1024 * 1024);
  assert.equal(run(["--history-bytes", "0"]).limits.historyBytes, 0, "0 keeps no history");
  assert.equal(run([], { CLU_WS_HISTORY_BYTES: "512KiB" }).limits.historyBytes, 512 * 1024);
});

Deno.test("config: the keyword history for plots takes its bounds from flags and variables", () => {
  const limits = run(["--series-points", "50", "--series-age", "120"], {
    CLU_WS_SERIES_COUNT: "10",
  }).limits;
  assert.equal(limits.seriesPoints, 50);
  assert.equal(limits.seriesAgeSeconds, 120);
  assert.equal(limits.seriesCount, 10);
  assert.equal(run(["--series-points", "0"]).limits.seriesPoints, 0, "0 keeps none");
});

for (
  const [args, pattern] of [
    [["--client-buffer", "lots"], /--client-buffer: 'lots' is not a size/],
    [["--client-buffer", "10"], /at least 1024 bytes/],
    [["--max-message-size", "5 parsecs"], /--max-message-size: '5 parsecs' is not a size/],
    [["--history-bytes", "lots"], /--history-bytes: 'lots' is not a size/],
    [["--max-clients", "0"], /--max-clients: '0' is not a whole number from 1/],
    [["--command-rate", "-3"], /--command-rate/],
    [["--slow-client", "ignore"], /--slow-client: 'ignore' is not one of close, drop/],
    [["--idle-timeout", "1.5"], /--idle-timeout: '1.5' is not a whole number/],
    [
      ["--series-points", "200000"],
      /--series-points: '200000' is not a whole number from 0 to 100000/,
    ],
    [["--series-age", "0"], /--series-age: '0' is not a whole number from 1/],
    [["--series-count", "many"], /--series-count: 'many' is not a whole number/],
  ] as const
) {
  Deno.test(`config: ${args.join(" ")} is a clear error`, () => {
    assert.match(configError([...args]), pattern);
  });
}

Deno.test("config: several URLs are a cluster's nodes, tried in order", () => {
  const config = run(["--url", "amqp://a:5672/", "--url", "amqp://b:5673/"], { CLU_WS_PASSWORD: "pw" });
  assert.deepEqual(config.brokers.map((b) => `${b.hostname}:${b.port}:${b.password}`), [
    "a:5672:pw",
    "b:5673:pw",
  ]);
  assert.equal(config.broker, config.brokers[0]);
  const fromEnv = run([], { CLU_WS_URL: "amqp://u:p@a/, amqps://u:p@b/" });
  assert.deepEqual(fromEnv.brokers.map((b) => `${b.protocol}://${b.hostname}:${b.port}`), [
    "amqp://a:5672",
    "amqps://b:5671",
  ]);
});
