// tools/prerequisites.ts, which `deno task test` runs first: its decisions
// for the machines it cannot be tried on here (not root, no apt-get, no
// broker), starting RabbitMQ with fake steps (the shared broker is never
// stopped), and the script itself stopping at once, with the fix, when
// something cannot be installed.

import assert from "node:assert/strict";
import {
  brokerAddress,
  type BrokerStart,
  type Facts,
  findExecutable,
  installCommand,
  plan,
  startBrokerCommand,
  startRabbitmq,
  tcpOpen,
} from "../tools/prerequisites.ts";

/** A machine with everything, as root with apt-get; `change` takes some of it away. */
function facts(change: (f: Facts) => void = () => {}): Facts {
  const f: Facts = {
    chromium: { path: "/usr/bin/chromium", overridden: false, present: true },
    openssl: true,
    broker: { host: "127.0.0.1", port: 5672, local: true, up: true },
    rabbitmqServer: true,
    root: true,
    aptGet: true,
  };
  change(f);
  return f;
}

Deno.test("prerequisites: AMQP URLs give the host, port and whether it is this machine", () => {
  assert.deepEqual(brokerAddress("amqp://guest:guest@127.0.0.1:5672"), {
    host: "127.0.0.1",
    port: 5672,
    local: true,
  });
  assert.deepEqual(brokerAddress("amqp://localhost"), { host: "localhost", port: 5672, local: true });
  assert.deepEqual(brokerAddress("amqps://u:p@[::1]/vhost"), { host: "::1", port: 5671, local: true });
  assert.deepEqual(brokerAddress("amqp://broker.example:5673"), {
    host: "broker.example",
    port: 5673,
    local: false,
  });
  assert.throws(() => brokerAddress("http://u:secret@127.0.0.1"), (err: Error) => {
    assert.ok(!err.message.includes("secret"));
    return true;
  });
});

Deno.test("prerequisites: nothing to do when everything is there", () => {
  assert.deepEqual(plan(facts()), { install: [], startBroker: false, problems: [] });
});

Deno.test("prerequisites: as root with apt-get, what is missing is installed and RabbitMQ started", () => {
  const p = plan(facts((f) => {
    f.chromium.present = false;
    f.openssl = false;
    f.broker.up = false;
    f.rabbitmqServer = false;
  }));
  assert.deepEqual(p, {
    install: ["chromium", "openssl", "rabbitmq-server"],
    startBroker: true,
    problems: [],
  });
});

Deno.test("prerequisites: an installed RabbitMQ that is down is started as root", () => {
  const p = plan(facts((f) => {
    f.broker.up = false;
  }));
  assert.deepEqual(p, { install: [], startBroker: true, problems: [] });
});

Deno.test("prerequisites: not root, an installed RabbitMQ that is down stops the tests at once with the command", () => {
  // Debian's rabbitmq-server refuses anyone but root and its own user; trying would only delay the news.
  const p = plan(facts((f) => {
    f.broker.up = false;
    f.root = false;
  }));
  assert.deepEqual(p.install, []);
  assert.equal(p.startBroker, false);
  assert.equal(p.problems.length, 1);
  assert.match(p.problems[0], /RabbitMQ is installed but not accepting connections at 127\.0\.0\.1:5672/);
  assert.ok(p.problems[0].endsWith("start it with `sudo rabbitmq-server -detached`"), p.problems[0]);
});

/** Fake steps of starting RabbitMQ that record which ran. */
function steps(outcome: { start: boolean; node: boolean; port: boolean }): BrokerStart & { ran: string[] } {
  const ran: string[] = [];
  return {
    ran,
    start: () => {
      ran.push("start");
      return Promise.resolve(outcome.start);
    },
    nodeRunning: () => {
      ran.push("ping");
      return Promise.resolve(outcome.node);
    },
    portOpen: () => {
      ran.push("wait for the port");
      return Promise.resolve(outcome.port);
    },
  };
}

Deno.test("prerequisites: a failed `rabbitmq-server -detached` with no node running is said at once, without waiting", async () => {
  const failed = steps({ start: false, node: false, port: false });
  const problem = await startRabbitmq(failed, "127.0.0.1:5672");
  assert.deepEqual(failed.ran, ["start", "ping"], "the port is not waited for");
  assert.match(String(problem), /^`rabbitmq-server -detached` failed and no RabbitMQ node is running/);
  assert.ok(String(problem).endsWith("start it with `rabbitmq-server -detached`"), problem);
});

Deno.test("prerequisites: RabbitMQ started, or a node already booting, is waited for on its port", async () => {
  const started = steps({ start: true, node: false, port: true });
  assert.equal(await startRabbitmq(started, "127.0.0.1:5672"), undefined);
  assert.deepEqual(started.ran, ["start", "wait for the port"]);
  // A non-zero exit while a node boots (it answers ping before its port opens): the port decides.
  const booting = steps({ start: false, node: true, port: true });
  assert.equal(await startRabbitmq(booting, "127.0.0.1:5672"), undefined);
  assert.deepEqual(booting.ran, ["start", "ping", "wait for the port"]);
  const silent = steps({ start: true, node: true, port: false });
  assert.match(
    String(await startRabbitmq(silent, "127.0.0.1:5672")),
    /^RabbitMQ did not open 127\.0\.0\.1:5672 within 120 s of `rabbitmq-server -detached`/,
  );
});

Deno.test("prerequisites: the command that starts RabbitMQ", () => {
  assert.equal(startBrokerCommand(true), "rabbitmq-server -detached");
  assert.equal(startBrokerCommand(false), "sudo rabbitmq-server -detached");
});

Deno.test("prerequisites: not root, nothing is installed and one command says how", () => {
  const p = plan(facts((f) => {
    f.root = false;
    f.chromium.present = false;
    f.openssl = false;
  }));
  assert.deepEqual(p.install, []);
  assert.equal(p.problems.length, 1);
  assert.match(p.problems[0], /missing chromium, openssl \(not root\)/);
  assert.ok(
    p.problems[0].includes("`sudo apt-get update && sudo apt-get install -y chromium openssl`"),
    p.problems[0],
  );
});

Deno.test("prerequisites: without apt-get, even root is told the command instead", () => {
  const p = plan(facts((f) => {
    f.aptGet = false;
    f.broker.up = false;
    f.rabbitmqServer = false;
  }));
  assert.deepEqual(p.install, []);
  assert.equal(p.startBroker, false);
  assert.match(
    p.problems[0],
    /missing rabbitmq-server \(no apt-get.*`apt-get update && apt-get install -y rabbitmq-server`/,
  );
});

Deno.test("prerequisites: a CLU_WS_CHROMIUM that points nowhere and a remote broker that is down are not fixed here", () => {
  const p = plan(facts((f) => {
    f.chromium = { path: "/opt/nowhere/chrome", overridden: true, present: false };
    f.broker = { host: "broker.example", port: 5672, local: false, up: false };
  }));
  assert.deepEqual(p.install, []);
  assert.equal(p.startBroker, false);
  assert.equal(p.problems.length, 2);
  assert.match(p.problems[0], /CLU_WS_CHROMIUM is \/opt\/nowhere\/chrome/);
  assert.match(p.problems[1], /not accepting connections at broker\.example:5672 \(CLU_WS_TEST_AMQP_URL\)/);
});

Deno.test("prerequisites: install commands", () => {
  assert.equal(installCommand(["chromium"], true), "apt-get update && apt-get install -y chromium");
  assert.equal(installCommand(["openssl"], false), "sudo apt-get update && sudo apt-get install -y openssl");
});

Deno.test("prerequisites: executables are found on a PATH, other files are not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "clu-ws-prereq-path-" });
  try {
    await Deno.writeTextFile(`${dir}/clu-ws-prereq-tool`, "#!/bin/sh\n", { mode: 0o755 });
    await Deno.writeTextFile(`${dir}/clu-ws-prereq-data`, "", { mode: 0o644 });
    await Deno.mkdir(`${dir}/clu-ws-prereq-dir`);
    assert.equal(
      await findExecutable("clu-ws-prereq-tool", ["", "/nonexistent", dir]),
      `${dir}/clu-ws-prereq-tool`,
    );
    assert.equal(await findExecutable("clu-ws-prereq-data", [dir]), undefined);
    assert.equal(await findExecutable("clu-ws-prereq-dir", [dir]), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prerequisites: a listening port is open, a closed one is not", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const accepted = listener.accept().then((conn) => conn.close());
  assert.equal(await tcpOpen("127.0.0.1", port), true);
  await accepted;
  listener.close();
  assert.equal(await tcpOpen("127.0.0.1", port), false);
});

Deno.test("prerequisites: the script stops at once, before any test, naming the fix", async () => {
  const started = Date.now();
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-run",
      "--allow-net",
      "--allow-sys",
      "tools/prerequisites.ts",
    ],
    cwd: new URL("../", import.meta.url).pathname,
    env: { CLU_WS_CHROMIUM: "/nonexistent/clu-ws-prereq-chromium", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1, text);
  assert.match(
    text,
    /prerequisites: CLU_WS_CHROMIUM is \/nonexistent\/clu-ws-prereq-chromium, where there is no executable/,
  );
  assert.ok(!text.includes("installing"), text);
  assert.ok(Date.now() - started < 15_000, "it took more than 15 s");
});
