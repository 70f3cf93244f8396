// The command line as an operator meets it: --help, --version, and one clear
// line on stderr with exit code 2 for anything wrong.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startGateway } from "./helpers/gateway_process.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN, ...args],
    env,
    stdin: "null",
  }).output();
  return {
    code: output.code,
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

Deno.test("--help lists every option with its default and variable, and exits 0", async () => {
  const { code, stdout } = await run(["--help"]);
  assert.equal(code, 0);
  for (
    const flag of [
      "--port",
      "-p",
      "--rabbitmq-host",
      "-H",
      "--rabbitmq-port",
      "-P",
      "--host",
      "--url",
      "--user",
      "--password",
      "--password-file",
      "--vhost",
      "--exchange",
      "--name",
      "--log-level",
      "--log-format",
      "--version",
    ]
  ) {
    assert.ok(stdout.includes(flag), `--help mentions ${flag}`);
  }
  assert.match(stdout, /--port <value>.*default 9876; env CLU_WS_PORT/);
  assert.match(stdout, /default sdss_exchange; env CLU_WS_EXCHANGE/);
});

Deno.test("--version prints the version", async () => {
  const { code, stdout } = await run(["--version"]);
  assert.equal(code, 0);
  assert.match(stdout, /^clu-ws \d+\.\d+\.\d+/);
});

for (
  const [label, args, env, expected] of [
    ["an unknown flag", ["--frobnicate"], {}, /unknown option --frobnicate; run with --help/],
    ["port 70000", ["--port", "70000"], {}, /--port: '70000' is not a port/],
    ["a port that is not a number", ["-p", "abc"], {}, /--port: 'abc' is not a port/],
    ["a bad port in the environment", [], { CLU_WS_PORT: "99999" }, /CLU_WS_PORT: '99999' is not a port/],
    ["a malformed URL", ["--url", "not a url"], {}, /--url: not a URL/],
    ["a URL of another scheme", ["--url", "http://localhost"], {}, /unsupported scheme 'http:'/],
    ["a bad log level", ["--log-level", "loud"], {}, /is not one of debug, info, warning, error/],
    ["a missing password file", ["--password-file", "/no/such/file"], {}, /cannot read password file/],
    ["a stray argument", ["extra"], {}, /unexpected argument/],
  ] as const
) {
  Deno.test(`${label} is one clear line on stderr and exit 2`, async () => {
    const { code, stderr } = await run([...args], { ...env });
    assert.equal(code, 2, stderr);
    assert.match(stderr, expected);
    assert.equal(stderr.trim().split("\n").length, 1, `one line: ${stderr}`);
    assert.match(stderr, /^clu-ws: /);
  });
}

Deno.test("the RabbitMQ password never appears in the log, even when the broker refuses it", async () => {
  const secret = "s3cret-Pa55word";
  await using gateway = await startGateway({
    exchange: uniqueExchange("secret"),
    env: { CLU_WS_URL: `amqp://guest:${secret}@127.0.0.1:5672/` },
    waitForBroker: false,
  });
  const refused = await gateway.waitForLog(
    "the refused login",
    (r) => /cannot reach RabbitMQ/.test(r.message),
  );
  assert.match(String(refused.url), /amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\//);
  await gateway.stop();
  const all = JSON.stringify(gateway.logs) + gateway.otherLines.join("\n");
  assert.ok(all.includes("ACCESS_REFUSED") || all.includes("403"), "the refusal is logged");
  assert.ok(!all.includes(secret), "the password is not in the log");
});
