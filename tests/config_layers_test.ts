/**
 * Unit tests for lib/config/layers.ts and the option table: which layer wins,
 * how each names its source, argv through parseArgs, and the table's defaults.
 */

import assert from "node:assert/strict";
import { ConfigError, DEFAULT_LIMITS, helpText } from "../lib/config/config.ts";
import { Layers, parseFlags } from "../lib/config/layers.ts";
import { OPTIONS, type OptionSpec } from "../lib/config/options.ts";

const FILE = { path: "/etc/clu-ws.toml", values: { port: "3", user: "file-user", vhost: "file" } };

Deno.test("Layers: a flag beats a variable beats the config file beats the default", () => {
  const layers = new Layers({
    flags: { port: "1" },
    env: { CLU_WS_PORT: "2", CLU_WS_USER: "env-user" },
    file: FILE,
  });
  assert.deepEqual(layers.pick("port"), { value: "1", source: "--port", layer: 0 });
  assert.deepEqual(layers.pick("user"), { value: "env-user", source: "CLU_WS_USER", layer: 1 });
  assert.deepEqual(layers.pick("vhost"), { value: "file", source: "/etc/clu-ws.toml: vhost", layer: 2 });
  assert.equal(layers.pick("exchange"), undefined);
  assert.deepEqual(layers.get("exchange"), {
    value: "sdss_exchange",
    source: "the default of --exchange",
    layer: 3,
  });
});

Deno.test("Layers: an empty variable counts as not set; a repeated flag joins with commas; a switch is 'true'", () => {
  const layers = new Layers({
    flags: { url: ["amqp://a/", "amqp://b/"], "read-only": true },
    env: { CLU_WS_PORT: "", CLU_WS_HOST: "::" },
    file: FILE,
  });
  assert.deepEqual(layers.pick("port"), { value: "3", source: "/etc/clu-ws.toml: port", layer: 2 });
  assert.equal(layers.pick("url")?.value, "amqp://a/,amqp://b/");
  assert.deepEqual(layers.pick("read-only"), { value: "true", source: "--read-only", layer: 0 });
});

Deno.test("parseFlags: long and short flags, --a=b and --a b, repeats kept in order", () => {
  assert.deepEqual(
    {
      ...parseFlags([
        "-p",
        "1",
        "--host=::",
        "-H",
        "h",
        "--url",
        "amqp://a/",
        "--url=amqp://b/",
        "--read-only",
      ]),
    },
    { port: "1", host: "::", "rabbitmq-host": "h", url: ["amqp://a/", "amqp://b/"], "read-only": true },
  );
  assert.deepEqual({ ...parseFlags([]) }, {});
});

Deno.test("parseFlags: unknown flags, secrets as flags and stray arguments are ConfigErrors that point to --help", () => {
  const problem = (args: string[]) => {
    try {
      parseFlags(args);
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail("expected a ConfigError");
  };
  assert.equal(problem(["--verbose"]), "unknown option --verbose; run with --help to list the options");
  assert.equal(problem(["--tokens", "x"]), "unknown option --tokens; run with --help to list the options");
  assert.equal(
    problem(["extra"]),
    "unexpected argument extra; options take the form --name value (see --help)",
  );
  assert.equal(
    problem(["--", "--port", "1"]),
    "unexpected argument --port; options take the form --name value (see --help)",
  );
  assert.match(problem(["--port"]), /--port.*; see --help$/);
  assert.match(problem(["--read-only=yes"]), /--read-only.*; see --help$/);
});

Deno.test("options: every default in the table is what --help shows and what the gateway uses", () => {
  assert.deepEqual(DEFAULT_LIMITS, {
    clientBufferBytes: 1024 * 1024,
    slowClient: "close",
    maxMessageBytes: 64 * 1024,
    maxClients: 10_000,
    commandRate: 20,
    commandBurst: 40,
    idleTimeoutSeconds: 40,
    historySize: 10_000,
    historyAgeSeconds: 600,
    historyBytes: 8 * 1024 * 1024,
    seriesPoints: 1000,
    seriesAgeSeconds: 3600,
    seriesCount: 1000,
    headerTimeoutSeconds: 10,
    maxPending: 1000,
  });
  const help = helpText();
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (o.default) assert.ok(help.includes(`[default ${o.default}`), o.flag);
  }
});

Deno.test("options: names, short flags and variables are each used once", () => {
  const options = OPTIONS as readonly OptionSpec[];
  for (const key of ["flag", "short", "env"] as const) {
    const values = options.map((o) => o[key]).filter((v) => v !== undefined);
    assert.equal(new Set(values).size, values.length, key);
  }
});
