// Revoking and changing tokens on SIGHUP, through a real gateway process, real sockets and the real
// broker: a removed token's sockets are closed and it is refused from then on; a changed role or actor
// list applies to open sessions at the very next command; reloads do not race; a bad file changes
// nothing. Waits are for log lines, close events and frames, never for time.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { CluClient, type ConnectionState } from "../web/client.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import { RawWebSocket } from "./helpers/raw_ws.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";

const OPS = "ops-token-0123456789abcdef";
const OPS_ROTATED = "ops-token-rotated-0123456789";
const ADMIN = "admin-token-0123456789abcd";
const VIEWER = "viewer-token-0123456789abc";
const SECRETS = [OPS, OPS_ROTATED, ADMIN, VIEWER];

const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;

/** An actor name of its own (actors' command queues are per broker, not per exchange). */
function actorName(label: string): string {
  return `revoke-${RUN}-${label}-${++actorCount}`;
}

interface Entry {
  name: string;
  role: "watch" | "command";
  token: string;
  actors?: string[];
}

async function tokensToml(entries: Entry[]): Promise<string> {
  const tables = await Promise.all(
    entries.map(async ({ name, role, token, actors }) =>
      `[[tokens]]\nname = "${name}"\nrole = "${role}"\n` +
      (actors ? `actors = ${JSON.stringify(actors)}\n` : "") +
      `sha256 = "${bytesToHex(await sha256(token))}"\n`
    ),
  );
  return tables.join("\n");
}

interface World {
  gateway: GatewayProcess;
  file: string;
  actors: TestActor[];
}

/** A gateway on its own exchange reading `--tokens-file` (first `entries`), with test actors. */
async function withWorld(
  entries: Entry[],
  actorNames: string[],
  body: (world: World) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/tokens.toml`;
  const exchange = uniqueExchange("revoke");
  try {
    await Deno.writeTextFile(file, await tokensToml(entries));
    await using gateway = await startGateway({ exchange, args: ["--tokens-file", file] });
    const actors = await Promise.all(actorNames.map((name) => startActor(exchange, name)));
    try {
      await body({ gateway, file, actors });
    } finally {
      await Promise.all(actors.map((a) => a.close()));
    }
    await gateway.stop();
    const log = JSON.stringify(gateway.logs);
    for (const secret of SECRETS) assert.ok(!log.includes(secret), "no token in the log");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Replaces the file as configuration tools do (write aside, then rename), so no read sees half of it. */
async function replaceFile(file: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${file}.new`, text);
  await Deno.rename(`${file}.new`, file);
}

/** Makes `file` a symlink to `target`, switched at once (as deployment tools switch versions). */
async function pointTo(file: string, target: string): Promise<void> {
  await Deno.symlink(target, `${file}.link`);
  await Deno.rename(`${file}.link`, file);
}

/**
 * Rewrites the tokens file, sends SIGHUP and resolves once the gateway has
 * loaded it (the "access tokens loaded" line, which comes after the new
 * tokens are in force).
 */
async function reload(gateway: GatewayProcess, file: string, text: string): Promise<void> {
  await replaceFile(file, text);
  const after = gateway.logs.length;
  Deno.kill(gateway.pid, "SIGHUP");
  await gateway.waitForLog("the reload", (r) => /access tokens loaded/.test(r.message), { after });
}

function connect(gateway: GatewayProcess, token: string, protocol = "clu-ws"): Promise<WsClient> {
  return WsClient.connect(gateway.url(), { protocols: [protocol, `token.${token}`] });
}

let commandCount = 0;

/** Sends a command and resolves with the frame that ends it (`:` or `f`). */
async function command(client: WsClient, consumer: string, text = "ping"): Promise<Frame> {
  const id = `c-${++commandCount}`;
  client.send({ consumer, command_string: text, command_id: id });
  // v1 control frames (the welcome) have no headers.
  return await client.next(
    `the end of ${id}`,
    (f) => f.headers !== undefined && (replyTo(id, ":")(f) || replyTo(id, "f")(f)),
  );
}

function ids(actor: TestActor): string[] {
  return actor.received.map((c) => String(c.headers.command_id));
}

function postCommand(gateway: GatewayProcess, token: string, consumer: string): Promise<Response> {
  return fetch(gateway.httpUrl("/commands"), {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ consumer, command_string: "ping", timeout: 10 }),
  });
}

/** `promise`'s value, or an error after `timeoutMs` (a deadline, not a wait for time). */
async function within<T>(promise: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The socket's close event, or an error after 10 s. */
function closeOf(client: WsClient, what: string): Promise<CloseEvent> {
  return within(client.closed, `close of ${what}`);
}

function isClosedLog(token: string) {
  return (r: LogRecord) => /sockets of token .* revoked/.test(r.message) && r.token === token;
}

const REVOKED_REASON = "token 'ops' was revoked (tokens file reloaded)";

Deno.test("revocation: a removed token's open sockets are closed (1008, naming it) and it is refused from then on", async () => {
  const actor = actorName("removed");
  await withWorld(
    [{ name: "ops", role: "command", token: OPS }, { name: "admin", role: "command", token: ADMIN }],
    [actor],
    async ({ gateway, file }) => {
      const clu = await connect(gateway, OPS);
      const v1 = await connect(gateway, OPS, "clu-ws.v1");
      const admin = await connect(gateway, ADMIN);
      try {
        assert.equal((await command(clu, actor)).headers.message_code, ":");
        await reload(gateway, file, await tokensToml([{ name: "admin", role: "command", token: ADMIN }]));
        for (const [what, client] of [["the CLU socket", clu], ["the v1 socket", v1]] as const) {
          const closed = await closeOf(client, what);
          assert.equal(closed.code, 1008);
          assert.equal(closed.reason, REVOKED_REASON);
        }
        const logged = await gateway.waitForLog("the closing", isClosedLog("ops"));
        assert.equal(logged.count, 2);
        assert.equal(logged.level, "WARN");
        // Refused from now on, on every path.
        await assert.rejects(
          RawWebSocket.connect(gateway.port, { path: `/?token=${OPS}` }),
          /upgrade refused: HTTP\/1\.1 401/,
        );
        const refused = await postCommand(gateway, OPS, actor);
        assert.equal(refused.status, 401);
        await refused.body?.cancel();
        // The other token's session is untouched.
        assert.equal(admin.readyState, WebSocket.OPEN);
        assert.equal((await command(admin, actor)).headers.message_code, ":");
      } finally {
        await Promise.all([clu.close(), v1.close(), admin.close()]);
      }
    },
  );
});

Deno.test("revocation: a token demoted to watch gets f for its very next command, which no actor receives", async () => {
  const actor = actorName("demoted");
  await withWorld(
    [{ name: "ops", role: "command", token: OPS }, { name: "admin", role: "command", token: ADMIN }],
    [actor],
    async ({ gateway, file, actors }) => {
      const clu = await connect(gateway, OPS);
      const v1 = await connect(gateway, OPS, "clu-ws.v1");
      const admin = await connect(gateway, ADMIN);
      try {
        const before = await command(clu, actor);
        assert.equal(before.headers.message_code, ":");
        await reload(
          gateway,
          file,
          await tokensToml([
            { name: "ops", role: "watch", token: OPS },
            { name: "admin", role: "command", token: ADMIN },
          ]),
        );
        const watchOnly = `token 'ops' may only watch (role "watch"); the command was not sent`;
        for (const client of [clu, v1]) {
          const denied = await command(client, actor);
          assert.equal(denied.headers.message_code, "f");
          assert.equal(denied.body.error, watchOnly);
        }
        const http = await postCommand(gateway, OPS, actor);
        assert.equal(http.status, 403);
        assert.equal((await http.json()).error, watchOnly);
        // The path to the actor is live: another token's command arrives, and it is the only one since.
        const allowed = await command(admin, actor);
        assert.equal(allowed.headers.message_code, ":");
        assert.deepEqual(ids(actors[0]), [before.headers.command_id, allowed.headers.command_id]);
        // Demoted, not removed: the sessions stay and keep receiving.
        assert.equal(clu.readyState, WebSocket.OPEN);
        assert.equal(v1.readyState, WebSocket.OPEN);
        await actors[0].broadcast({ after: "demotion" });
        await clu.next("the broadcast", (f) => f.body.after === "demotion");
      } finally {
        await Promise.all([clu.close(), v1.close(), admin.close()]);
      }
    },
  );
});

Deno.test("revocation: a changed actors list applies to an open session at its next command", async () => {
  const first = actorName("first");
  const second = actorName("second");
  await withWorld(
    [{ name: "ops", role: "command", token: OPS, actors: [first] }],
    [first, second],
    async ({ gateway, file, actors }) => {
      const clu = await connect(gateway, OPS);
      const v1 = await connect(gateway, OPS, "clu-ws.v1");
      try {
        assert.equal((await command(clu, first)).headers.message_code, ":");
        assert.equal((await command(clu, second)).headers.message_code, "f");
        await reload(
          gateway,
          file,
          await tokensToml([{ name: "ops", role: "command", token: OPS, actors: [second] }]),
        );
        for (const client of [clu, v1]) {
          const denied = await command(client, first);
          assert.equal(denied.headers.message_code, "f");
          assert.equal(
            denied.body.error,
            `token 'ops' may not command actor '${first}' (it may command ${second}); the command was not sent`,
          );
          assert.equal((await command(client, second)).headers.message_code, ":");
        }
        assert.equal(
          actors[0].received.length,
          1,
          `only the command from before the reload reached ${first}`,
        );
        assert.equal(actors[1].received.length, 2);
      } finally {
        await Promise.all([clu.close(), v1.close()]);
      }
    },
  );
});

Deno.test("revocation: a secret replaced under the same name closes the old secret's sessions; the new one works", async () => {
  const actor = actorName("rotated");
  await withWorld([{ name: "ops", role: "command", token: OPS }], [actor], async ({ gateway, file }) => {
    const old = await connect(gateway, OPS);
    try {
      await reload(gateway, file, await tokensToml([{ name: "ops", role: "command", token: OPS_ROTATED }]));
      const closed = await closeOf(old, "the old secret's socket");
      assert.equal(closed.code, 1008);
      assert.equal(closed.reason, REVOKED_REASON);
      assert.equal((await gateway.waitForLog("the closing", isClosedLog("ops"))).count, 1);
      await assert.rejects(
        RawWebSocket.connect(gateway.port, { path: `/?token=${OPS}` }),
        /upgrade refused: HTTP\/1\.1 401/,
      );
      const renewed = await connect(gateway, OPS_ROTATED);
      try {
        assert.equal((await command(renewed, actor)).headers.message_code, ":");
      } finally {
        await renewed.close();
      }
    } finally {
      await old.close();
    }
  });
});

Deno.test("revocation: two quick SIGHUPs with the file rewritten between them end with the second file in force", async () => {
  const actor = actorName("race");
  const admin: Entry = { name: "admin", role: "command", token: ADMIN };
  await withWorld([admin], [actor], async ({ gateway, file }) => {
    // The tokens file is a symlink switched to each new version, as deployment tools do. The first
    // version is a named pipe: reading it lasts until the test writes it, as on a slow disk, so the
    // second SIGHUP surely comes while the first reload is still reading.
    const slow = `${file}.first`;
    const made = await new Deno.Command("mkfifo", { args: [slow] }).output();
    assert.equal(made.code, 0, "mkfifo");
    const second = `${file}.second`;
    await Deno.writeTextFile(second, await tokensToml([admin, { name: "ops", role: "command", token: OPS }]));
    const after = gateway.logs.length;
    await pointTo(file, slow);
    Deno.kill(gateway.pid, "SIGHUP");
    // Opening a pipe for writing completes once the other end is open: the first reload is reading.
    const pipe = await within(Deno.open(slow, { write: true }), "read of the first version");
    try {
      await pointTo(file, second);
      const between = gateway.logs.length;
      Deno.kill(gateway.pid, "SIGHUP");
      await gateway.waitForLog("the second SIGHUP", (r) => /SIGHUP received/.test(r.message), {
        after: between,
      });
      const first = await tokensToml([admin, { name: "viewer", role: "watch", token: VIEWER }]);
      await pipe.write(new TextEncoder().encode(first));
    } finally {
      pipe.close();
    }
    // Both reloads done, each having loaded one version.
    const loaded = (r: LogRecord) => /access tokens loaded/.test(r.message);
    const once = await gateway.waitForLog("the first reload", loaded, { after });
    await gateway.waitForLog("the second reload", loaded, { after: gateway.logs.indexOf(once) + 1 });
    // The second version is in force: ops (only in it) connects and commands; viewer (only in the first) is refused.
    const ops = await connect(gateway, OPS);
    try {
      assert.equal((await command(ops, actor)).headers.message_code, ":");
    } finally {
      await ops.close();
    }
    await assert.rejects(
      RawWebSocket.connect(gateway.port, { path: `/?token=${VIEWER}` }),
      /upgrade refused: HTTP\/1\.1 401/,
    );
  });
});

Deno.test("revocation: a bad file after a reload keeps the reloaded tokens and closes nothing", async () => {
  const actor = actorName("bad");
  const admin: Entry = { name: "admin", role: "command", token: ADMIN };
  await withWorld(
    [{ name: "ops", role: "command", token: OPS }, admin, { name: "viewer", role: "watch", token: VIEWER }],
    [actor],
    async ({ gateway, file, actors }) => {
      const ops = await connect(gateway, OPS);
      const adminClient = await connect(gateway, ADMIN);
      const viewer = await connect(gateway, VIEWER);
      try {
        await reload(gateway, file, await tokensToml([{ name: "ops", role: "watch", token: OPS }, admin]));
        assert.equal((await closeOf(viewer, "the removed viewer's socket")).code, 1008);
        const after = gateway.logs.length;
        await replaceFile(file, '[[tokens]]\nname = "ops"\nrole = "boss"\n');
        Deno.kill(gateway.pid, "SIGHUP");
        const kept = await gateway.waitForLog(
          "the refused reload",
          (r) => /kept the tokens in use/.test(r.message),
          {
            after,
          },
        );
        assert.equal(kept.level, "ERROR");
        // Everything as after the good reload: ops only watches, admin commands, both stay connected.
        assert.equal((await command(ops, actor)).headers.message_code, "f");
        const allowed = await command(adminClient, actor);
        assert.equal(allowed.headers.message_code, ":");
        assert.deepEqual(ids(actors[0]), [allowed.headers.command_id]);
        assert.equal(ops.readyState, WebSocket.OPEN);
        assert.ok(!gateway.logs.slice(after).some(isClosedLog("ops")), "no socket closed by the bad file");
        await assert.rejects(
          RawWebSocket.connect(gateway.port, { path: `/?token=${VIEWER}` }),
          /upgrade refused: HTTP\/1\.1 401/,
        );
      } finally {
        await Promise.all([ops.close(), adminClient.close(), viewer.close()]);
      }
    },
  );
});

Deno.test("revocation: the client module backs off after its token is revoked instead of reconnecting in a loop", async () => {
  await withWorld([{ name: "ops", role: "command", token: OPS }], [], async ({ gateway, file }) => {
    const client = await CluClient.connect(gateway.url(), { token: OPS, minDelayMs: 100, maxDelayMs: 5_000 });
    const states: ConnectionState[] = [];
    client.on("connection", (state) => states.push(state));
    try {
      const after = gateway.logs.length;
      await reload(gateway, file, '{"tokens": []}');
      await gateway.waitForLog("the closing", isClosedLog("ops"), { after });
      // Each attempt is refused with 401; the attempts come further and further apart.
      const refusal = (r: LogRecord) => /refused a client/.test(r.message) && r.why === "unknown token";
      const times: number[] = [];
      let from = after;
      for (let i = 0; i < 4; i++) {
        const record = await gateway.waitForLog(`refused attempt ${i + 1}`, refusal, { after: from });
        from = gateway.logs.indexOf(record) + 1;
        times.push(Date.parse(String(record["@timestamp"])));
      }
      // Delays double from 100 ms with ±30 % jitter: attempt n+1 follows attempt n by at least 0.7 × 200 × 2ⁿ⁻¹ ms.
      for (let i = 1; i < times.length; i++) {
        const gap = times[i] - times[i - 1];
        const least = 0.7 * 100 * 2 ** i;
        assert.ok(
          gap >= least,
          `attempt ${i + 1} came ${gap} ms after the one before; at least ${least} expected`,
        );
      }
      assert.ok(!states.includes("open"), "never admitted again");
    } finally {
      client.close();
    }
  });
});
