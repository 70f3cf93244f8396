// Access control, TLS and metrics through real sockets: who may watch, who may
// command what, origins, token reload, wss://, and Prometheus metrics that move.

import assert from "node:assert/strict";
import parsePrometheus from "parse-prometheus-text-format";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { ChildClient } from "./helpers/ws_child.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";

const WATCHER = "watcher-token-0123456789";
const OPERATOR = "operator-token-0123456789";
const ADMIN = "admin-token-0123456789ab";

async function tokensJson(): Promise<string> {
  return JSON.stringify({
    tokens: [
      { name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(WATCHER)) },
      {
        name: "dome-ops",
        role: "command",
        actors: ["lvm", "lvm.*"],
        sha256: bytesToHex(await sha256(OPERATOR)),
      },
      { name: "admin", role: "command", sha256: bytesToHex(await sha256(ADMIN)) },
    ],
  });
}

interface World {
  exchange: string;
  gateway: GatewayProcess;
  actors: TestActor[];
}

async function withWorld(
  options: { args?: string[]; env?: Record<string, string>; actors?: string[] },
  body: (world: World) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange("sec");
  await using gateway = await startGateway({ exchange, args: options.args, env: options.env });
  const actors = await Promise.all((options.actors ?? []).map((name) => startActor(exchange, name)));
  try {
    await body({ exchange, gateway, actors });
  } finally {
    await Promise.all(actors.map((a) => a.close()));
  }
}

function connect(gateway: GatewayProcess, token: string): Promise<WsClient> {
  return WsClient.connect(gateway.url(), { protocols: ["clu-ws", `token.${token}`] });
}

Deno.test("a watch token receives replies but cannot command; the denial is logged with its name", async () => {
  await withWorld(
    { env: { CLU_WS_TOKENS: await tokensJson() }, actors: ["lvm.ecp"] },
    async ({ gateway, actors }) => {
      const client = await connect(gateway, WATCHER);
      try {
        assert.equal(client.protocol, "clu-ws");
        await actors[0].broadcast({ dome: "open" });
        await client.next("the broadcast", (f) => f.body.dome === "open");
        client.send({ consumer: "lvm.ecp", command_string: "ping", command_id: "w-1" });
        const denied = await client.next("f for w-1", replyTo("w-1", "f"));
        assert.equal(
          denied.body.error,
          `token 'dashboard' may only watch (role "watch"); the command was not sent`,
        );
        const logged = await gateway.waitForLog("the denial", (r) => r.outcome === "denied");
        assert.equal(logged.token, "dashboard");
        assert.match(String(logged.peer), /^127\.0\.0\.1:\d+$/);
        assert.equal(actors[0].received.length, 0, "nothing was published");
      } finally {
        await client.close();
      }
    },
  );
});

Deno.test("a command token may command only the actors it names", async () => {
  await withWorld(
    { env: { CLU_WS_TOKENS: await tokensJson() }, actors: ["lvm.ecp", "apogee"] },
    async ({ gateway, actors }) => {
      const client = await connect(gateway, OPERATOR);
      try {
        client.send({ consumer: "lvm.ecp", command_string: "ping", command_id: "o-1" });
        await client.next("Pong from lvm.ecp", replyTo("o-1", ":"));
        client.send({ consumer: "apogee", command_string: "ping", command_id: "o-2" });
        const denied = await client.next("f for o-2", replyTo("o-2", "f"));
        assert.equal(
          denied.body.error,
          "token 'dome-ops' may not command actor 'apogee' (it may command lvm, lvm.*); the command was not sent",
        );
        assert.equal(actors[1].received.length, 0);
      } finally {
        await client.close();
      }
    },
  );
});

Deno.test("no token or a wrong one is refused with 401 before the upgrade; the token is never logged", async () => {
  await withWorld({ env: { CLU_WS_TOKENS: await tokensJson() } }, async ({ gateway }) => {
    await assert.rejects(RawWebSocket.connect(gateway.port), /upgrade refused: HTTP\/1\.1 401/);
    const wrong = "not-a-valid-token-at-all-42";
    await assert.rejects(WsClient.connect(gateway.url(`/?token=${wrong}`)));
    await gateway.waitForLog("the refusal", (r) => /unknown token/.test(String(r.why)));
    // The other ways a client can present a token.
    const byQuery = await WsClient.connect(gateway.url(`/?token=${ADMIN}`));
    const byBearer = await WsClient.connect(gateway.url(), { headers: { authorization: `Bearer ${ADMIN}` } });
    await byQuery.close();
    await byBearer.close();
    await gateway.stop();
    const log = JSON.stringify(gateway.logs);
    for (const secret of [wrong, ADMIN, WATCHER]) assert.ok(!log.includes(secret), "no token in the log");
    assert.ok(log.includes('"token":"admin"'), "the token's name is logged");
  });
});

Deno.test("--read-only, --deny-actor and --allow-actor refuse commands naming the rule", async () => {
  await withWorld(
    { args: ["--deny-actor", "lvm.*", "--allow-actor", "lvm.*", "--allow-actor", "apogee"] },
    async ({ gateway }) => {
      const client = await WsClient.connect(gateway.url());
      try {
        client.send({ consumer: "lvm.ecp", command_string: "open", command_id: "d-1" });
        client.send({ consumer: "boss", command_string: "open", command_id: "d-2" });
        const denied = await client.next("f for d-1", replyTo("d-1", "f"));
        assert.equal(
          denied.body.error,
          "actor 'lvm.ecp' is denied by --deny-actor 'lvm.*'; the command was not sent",
        );
        const notAllowed = await client.next("f for d-2", replyTo("d-2", "f"));
        assert.match(
          String(notAllowed.body.error),
          /actor 'boss' is not allowed by --allow-actor \(lvm\.\*, apogee\)/,
        );
      } finally {
        await client.close();
      }
    },
  );
  await withWorld({ args: ["--read-only"], actors: ["apogee"] }, async ({ gateway, actors }) => {
    const client = await WsClient.connect(gateway.url());
    try {
      client.send({ consumer: "apogee", command_string: "ping", command_id: "ro-1" });
      const denied = await client.next("f for ro-1", replyTo("ro-1", "f"));
      assert.equal(denied.body.error, "clu-ws is read-only (--read-only); the command was not sent");
      assert.equal(actors[0].received.length, 0);
    } finally {
      await client.close();
    }
  });
});

Deno.test("--allow-origin refuses other browser origins with 403 and admits the allowed ones", async () => {
  await withWorld(
    { args: ["--allow-origin", "https://*.lco.cl", "--allow-origin", "http://ops.local:8080"] },
    async ({ gateway }) => {
      await assert.rejects(
        WsClient.connect(gateway.url(), { headers: { origin: "https://evil.example" } }),
      );
      await gateway.waitForLog("the refusal", (r) => /origin .* is not allowed/.test(r.message));
      for (const origin of ["https://console.lco.cl", "http://ops.local:8080"]) {
        const client = await WsClient.connect(gateway.url(), { headers: { origin } });
        await client.close();
      }
      const noOrigin = await WsClient.connect(gateway.url());
      await noOrigin.close();
    },
  );
});

Deno.test("SIGHUP reloads the tokens file: a new token works, a removed one is refused", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/tokens.toml`;
  const entry = async (name: string, token: string) =>
    `[[tokens]]\nname = "${name}"\nrole = "command"\nsha256 = "${bytesToHex(await sha256(token))}"\n`;
  try {
    await Deno.writeTextFile(file, await entry("first", ADMIN));
    await withWorld({ args: ["--tokens-file", file] }, async ({ gateway }) => {
      (await connect(gateway, ADMIN)).close();
      await Deno.writeTextFile(file, await entry("second", OPERATOR));
      const before = gateway.logs.length;
      Deno.kill(gateway.pid, "SIGHUP");
      await gateway.waitForLog("the reload", (r) => /1 access tokens loaded/.test(r.message), {
        after: before,
      });
      const client = await connect(gateway, OPERATOR);
      await client.close();
      await assert.rejects(connect(gateway, ADMIN));
      // A broken file keeps the tokens in use.
      await Deno.writeTextFile(file, "[[tokens]]\nname = 3\n");
      const again = gateway.logs.length;
      Deno.kill(gateway.pid, "SIGHUP");
      await gateway.waitForLog("the refused reload", (r) => /kept the tokens in use/.test(r.message), {
        after: again,
      });
      (await connect(gateway, OPERATOR)).close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an open gateway on a non-loopback address warns at start", async () => {
  await withWorld({ args: ["--host", "0.0.0.0"] }, async ({ gateway }) => {
    await gateway.waitForLog(
      "the warning",
      (r) => r.level === "WARN" && /no access tokens/.test(r.message),
    );
  });
});

Deno.test("with --tls-cert and --tls-key the same port serves wss:// and https:// to clients that trust it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A private CA and a server certificate it signs, as a site would make them.
    const run = async (args: string[]) => {
      const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
        .output();
      assert.equal(out.code, 0, `openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    };
    await run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
    await run([
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-days",
      "1",
      "-subj",
      "/CN=clu-ws test CA",
      "-out",
      "ca.pem",
    ]);
    await run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"]);
    await run(["req", "-new", "-key", "key.pem", "-subj", "/CN=localhost", "-out", "server.csr"]);
    await Deno.writeTextFile(
      `${dir}/ext.cnf`,
      "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    await run([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
      "-out",
      "cert.pem",
    ]);
    await withWorld(
      { args: ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`], actors: ["apogee"] },
      async ({ gateway, actors }) => {
        await gateway.waitForLog("wss listening", (r) => r.scheme === "wss");
        const ca = await Deno.readTextFile(`${dir}/ca.pem`);
        const http = Deno.createHttpClient({ caCerts: [ca] });
        try {
          const response = await fetch(`https://localhost:${gateway.port}/healthz`, { client: http });
          assert.equal(response.status, 200);
          assert.equal((await response.json()).broker, "up");
        } finally {
          http.close();
        }
        const url = `wss://localhost:${gateway.port}/`;
        await using trusted = await ChildClient.open(url, { denoArgs: ["--cert", `${dir}/ca.pem`] });
        assert.ok(trusted.lines.includes("open"));
        // Replies reach a wss:// client too: written as shared frame bytes to ws's TLS socket, corked per turn.
        for (let n = 1; n <= 3; n++) await actors[0].broadcast({ tls_reply: n });
        await trusted.waitFor("the third reply", (line) => line.includes('"tls_reply":3'));
        const replies = trusted.lines.filter((line) => line.includes('"tls_reply"'));
        assert.deepEqual(replies.map((line) => JSON.parse(line).body.tls_reply), [1, 2, 3]);
        const untrusted = await ChildClient.failing(url);
        assert.ok(
          !untrusted.includes("open"),
          `a client that does not trust it fails: ${untrusted.join(" | ")}`,
        );
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

type Family = {
  name: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; count?: string }>;
};

async function scrape(
  gateway: GatewayProcess,
  headers: Record<string, string> = {},
): Promise<Map<string, Family>> {
  const response = await fetch(gateway.httpUrl("/metrics"), { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  const families: Family[] = parsePrometheus(await response.text());
  return new Map(families.map((f) => [f.name, f]));
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  assert.ok(family, `metric ${name} is exported`);
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  assert.ok(sample, `${name}${JSON.stringify(labels)} has a sample`);
  return Number(sample.value ?? sample.count);
}

Deno.test("/metrics is valid Prometheus text and moves when traffic moves", async () => {
  await withWorld({ actors: ["apogee"] }, async ({ gateway, actors }) => {
    const before = await scrape(gateway);
    assert.equal(value(before, "cluws_broker_link_up"), 1);
    assert.equal(value(before, "cluws_clients"), 0);
    const client = await WsClient.connect(gateway.url());
    try {
      client.send({ consumer: "apogee", command_string: "ping", command_id: "m-1" });
      await client.next("Pong", replyTo("m-1", ":"));
      client.send({ consumer: "nobody", command_string: "ping", command_id: "m-2" });
      await client.next("f for m-2", replyTo("m-2", "f"));
      await actors[0].broadcast({ n: 1 });
      await client.next("broadcast", (f) => f.body.n === 1);
      const after = await scrape(gateway);
      assert.equal(value(after, "cluws_clients"), 1);
      assert.equal(value(after, "cluws_commands_total", { outcome: "published" }), 1);
      assert.equal(value(after, "cluws_commands_total", { outcome: "unroutable" }), 1);
      assert.equal(value(after, "cluws_commands_received_total"), 2);
      assert.ok(value(after, "cluws_frames_sent_total") >= client.frames.length);
      assert.ok(value(after, "cluws_bytes_sent_total") > value(before, "cluws_bytes_sent_total"));
      assert.ok(value(after, "cluws_replies_received_total", { result: "forwarded" }) >= 4);
      assert.ok(value(after, "cluws_reply_latency_seconds") >= 1, "the latency histogram counts replies");
      assert.ok(after.has("cluws_event_loop_lag_seconds"));
      assert.ok(after.has("cluws_slow_client_closes_total"));
      assert.ok(after.has("cluws_broker_reconnects_total"));
    } finally {
      await client.close();
    }
  });
});

Deno.test("a metrics token protects /metrics and /healthz", async () => {
  await withWorld({ env: { CLU_WS_METRICS_TOKEN: "scrape-secret-123" } }, async ({ gateway }) => {
    for (const path of ["/metrics", "/healthz"]) {
      const refused = await fetch(gateway.httpUrl(path));
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
    }
    await scrape(gateway, { authorization: "Bearer scrape-secret-123" });
    await until("healthz with the token", async () => {
      const response = await fetch(gateway.httpUrl("/healthz"), {
        headers: { authorization: "Bearer scrape-secret-123" },
      });
      await response.body?.cancel();
      return response.status === 200;
    });
  });
});
