// Origins and browsers through real sockets, a real gateway process and the real broker: DNS rebinding
// against --allow-origin, --public-url, the open-gateway warning, the console's framing and connect
// policy, and what other gateways' failed-routing replies and a full actor state do to /actors.

import assert from "node:assert/strict";
import { ConfigError, parseCli } from "../lib/config/config.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { chromium } from "playwright-core";
import { CHROMIUM, launchBrowser, openPage } from "./helpers/browser.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";

const encoder = new TextEncoder();

// Actors' queues (`<name>_commands`) are per vhost, not per exchange: names unique to this run keep
// parallel test runs on the same broker from locking each other out.
const RUN = crypto.randomUUID().slice(0, 6);
const DOME = `dome-${RUN}`;
const LATECOMER = `latecomer-${RUN}`;
const decoder = new TextDecoder();

/**
 * Sends one HTTP/1.1 request over a plain TCP socket, with exactly the `Host`
 * and `Origin` a browser on a rebinding domain would send (fetch and
 * WebSocket would set Host themselves), and returns the status code.
 */
async function rawStatus(
  port: number,
  request: { method?: string; path?: string; headers: Record<string, string>; body?: string },
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const body = request.body ?? "";
    const head = [
      `${request.method ?? "GET"} ${request.path ?? "/"} HTTP/1.1`,
      ...Object.entries({ connection: "close", ...request.headers }).map(([k, v]) => `${k}: ${v}`),
      ...(body ? [`content-length: ${encoder.encode(body).length}`] : []),
    ].join("\r\n");
    const bytes = encoder.encode(`${head}\r\n\r\n${body}`);
    for (let written = 0; written < bytes.length;) written += await conn.write(bytes.subarray(written));
    let text = "";
    const buffer = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error(`connection closed before a status line: ${JSON.stringify(text)}`);
      text += decoder.decode(buffer.subarray(0, n));
    }
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
    if (!status) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
    return Number(status[1]);
  } finally {
    conn.close();
  }
}

/** The status of a websocket upgrade with these headers (101 when admitted). */
function upgradeStatus(gateway: GatewayProcess, headers: Record<string, string>): Promise<number> {
  return rawStatus(gateway.port, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))),
      "sec-websocket-version": "13",
      ...headers,
    },
  });
}

/** The status of `POST /commands` sending `command_string` to `consumer`, with these headers. */
function postStatus(
  gateway: GatewayProcess,
  headers: Record<string, string>,
  consumer: string,
  commandString: string,
): Promise<number> {
  return rawStatus(gateway.port, {
    method: "POST",
    path: "/commands",
    headers: { "content-type": "text/plain", ...headers },
    body: JSON.stringify({ consumer, command_string: commandString, timeout: 5 }),
  });
}

async function actorNames(gateway: GatewayProcess): Promise<string[]> {
  const response = await fetch(gateway.httpUrl("/actors"));
  assert.equal(response.status, 200);
  const { actors } = await response.json() as { actors: Array<{ name: string }> };
  return actors.map((a) => a.name);
}

// ---------------------------------------------------------------- DNS rebinding

Deno.test("origins: with --allow-origin a rebinding page (Origin = its DNS-name Host) gets 403 on upgrade and POST /commands", async () => {
  const exchange = uniqueExchange("rebind");
  await using gateway = await startGateway({ exchange, args: ["--allow-origin", "https://ops.example.org"] });
  const actor = await startActor(exchange, DOME);
  try {
    const rebound = `evil.test:${gateway.port}`;
    const page = { host: rebound, origin: `http://${rebound}` };
    assert.equal(await upgradeStatus(gateway, page), 403, "websocket upgrade");
    assert.equal(await postStatus(gateway, page, DOME, "status"), 403, "POST /commands");
    await gateway.waitForLog("the refusal", (r) => /origin .* is not allowed/.test(r.message));

    // A listed origin passes, whatever the Host; so does a client that sends no Origin.
    const listed = { host: rebound, origin: "https://ops.example.org" };
    assert.equal(await upgradeStatus(gateway, listed), 101);
    assert.equal(await upgradeStatus(gateway, { host: rebound }), 101);
    assert.equal(await postStatus(gateway, listed, DOME, "from-listed"), 200);
    assert.equal(await postStatus(gateway, { host: rebound }, DOME, "from-script"), 200);
    // A Host that is an IP address cannot be rebound: a page with exactly that origin is the console.
    const local = `127.0.0.1:${gateway.port}`;
    assert.equal(await upgradeStatus(gateway, { host: local, origin: `http://${local}` }), 101);
    assert.equal(
      await upgradeStatus(gateway, { host: `localhost:${gateway.port}`, origin: `http://${local}` }),
      403,
    );

    // A same-origin GET carries no Origin; the browser's Sec-Fetch-Site still tells a page from a script.
    const sameOrigin = { "sec-fetch-site": "same-origin" };
    assert.equal(
      await rawStatus(gateway.port, { path: "/actors", headers: { host: rebound, ...sameOrigin } }),
      403,
    );
    assert.equal(
      await rawStatus(gateway.port, { path: "/actors", headers: { host: local, ...sameOrigin } }),
      200,
    );
    assert.equal(
      await rawStatus(gateway.port, { path: "/actors", headers: { host: rebound } }),
      200,
      "a script",
    );
    assert.equal(
      await rawStatus(gateway.port, {
        path: "/actors",
        headers: { host: rebound, "sec-fetch-site": "none" },
      }),
      200,
      "the user typed the address",
    );

    // The refused command never reached the actor; the admitted ones did.
    assert.deepEqual(actor.received.map((c) => c.body.command_string), ["from-listed", "from-script"]);
  } finally {
    await actor.close();
  }
});

Deno.test("origins: --public-url lets the console's origin in, and by itself refuses other origins", async () => {
  const exchange = uniqueExchange("public");
  await using gateway = await startGateway({
    exchange,
    args: ["--public-url", "https://gw.example.org:9443/clu/", "--public-url", "http://gw.local"],
  });
  const actor = await startActor(exchange, DOME);
  try {
    for (const origin of ["https://gw.example.org:9443", "http://gw.local"]) {
      const consolePage = { host: new URL(origin).host, origin };
      assert.equal(await upgradeStatus(gateway, consolePage), 101, origin);
      assert.equal(await postStatus(gateway, consolePage, DOME, `from ${origin}`), 200, origin);
    }
    const rebound = `evil.test:${gateway.port}`;
    assert.equal(await upgradeStatus(gateway, { host: rebound, origin: `http://${rebound}` }), 403);
    assert.equal(await postStatus(gateway, { host: rebound, origin: `http://${rebound}` }, DOME, "x"), 403);
    // Same name, other scheme or port: another origin.
    assert.equal(
      await upgradeStatus(gateway, { host: "gw.example.org:9443", origin: "http://gw.example.org:9443" }),
      403,
    );
    assert.equal(
      await upgradeStatus(gateway, { host: "gw.example.org", origin: "https://gw.example.org" }),
      403,
    );
    assert.equal(await upgradeStatus(gateway, { host: rebound }), 101, "no Origin: not a browser");
    // The console's own same-origin GETs (no Origin) pass by the listed name; a rebinding page's do not.
    for (const [host, status] of [["gw.example.org:9443", 200], ["gw.local", 200], [rebound, 403]] as const) {
      const headers = { host, "sec-fetch-site": "same-origin" };
      assert.equal(await rawStatus(gateway.port, { path: "/actors", headers }), status, host);
    }
    assert.deepEqual(actor.received.map((c) => c.body.command_string), [
      "from https://gw.example.org:9443",
      "from http://gw.local",
    ]);
  } finally {
    await actor.close();
  }
});

Deno.test("origins: --public-url is a flag, a variable and a config key, checked with errors that say what to give", () => {
  const options = {
    randomHex: () => "0".repeat(12),
    readTextFile: () => 'public-url = ["https://file.org"]',
  };
  const origins = (args: string[], env: Record<string, string> = {}) => {
    const request = parseCli(args, env, options);
    assert.equal(request.kind, "run");
    return request.kind === "run" ? request.config.access.allowOrigins : [];
  };
  assert.deepEqual(origins(["--public-url", "https://GW.example.org:443/console"]), [
    "https://gw.example.org",
  ]);
  assert.deepEqual(origins(["--public-url", "wss://gw.example.org:9876"]), ["https://gw.example.org:9876"]);
  assert.deepEqual(
    origins(["--allow-origin", "https://ops.example.org", "--public-url", "http://10.0.0.5:9876"]),
    ["https://ops.example.org", "http://10.0.0.5:9876"],
  );
  assert.deepEqual(origins([], { CLU_WS_PUBLIC_URL: "http://a.org, http://b.org:8080" }), [
    "http://a.org",
    "http://b.org:8080",
  ]);
  assert.deepEqual(origins(["--config", "c.toml"]), ["https://file.org"]);
  for (
    const bad of [
      "gw.example.org",
      "ftp://gw.example.org",
      "https://*.example.org",
      "https://u:p@gw.org",
      "https://gw.org/?a=1",
    ]
  ) {
    assert.throws(() => parseCli(["--public-url", bad], {}, options), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^--public-url: /);
      assert.match(err.message, /e\.g\. https:\/\/gw\.example\.org:9876/);
      return true;
    }, bad);
  }
});

// ---------------------------------------------------------------- the open-gateway warning

Deno.test("origins: an open gateway warns once, on loopback too, that any web page can command, naming the flags that close it", async () => {
  const warnings = async (args: string[], env: Record<string, string> = {}) => {
    await using gateway = await startGateway({ exchange: uniqueExchange("warn"), args, env });
    // The warning is written when the port is bound, before the link comes up (which startGateway awaited).
    return gateway.logs.filter((r) => r.level === "WARN" && /web page/.test(r.message)).map((r) => r.message);
  };
  const open = await warnings([]);
  assert.equal(open.length, 1, open.join("\n"));
  for (const flag of ["--allow-origin", "--public-url", "--tokens-file", "POST /commands"]) {
    assert.ok(open[0].includes(flag), `the warning names ${flag}: ${open[0]}`);
  }
  const exposed = await warnings(["--host", "0.0.0.0"]);
  assert.equal(exposed.length, 1, exposed.join("\n"));
  assert.match(exposed[0], /anyone who reaches port/);
  assert.deepEqual(await warnings(["--allow-origin", "https://ops.example.org"]), []);
  assert.deepEqual(await warnings(["--public-url", "https://gw.example.org"]), []);
  assert.deepEqual(await warnings(["--read-only"]), []);
  const tokens = JSON.stringify({ tokens: [{ name: "t", role: "command", token: "0123456789abcdef0123" }] });
  assert.deepEqual(await warnings([], { CLU_WS_TOKENS: tokens }), []);
});

// ---------------------------------------------------------------- the console

Deno.test("origins: the console may not be framed and may connect only to the gateway; it still works in Chromium", async () => {
  const exchange = uniqueExchange("frame");
  // The origin allow-list on: the console, opened by address, must still get in.
  await using gateway = await startGateway({ exchange, args: ["--allow-origin", "https://ops.example.org"] });
  for (const path of ["/", "/console.js"]) {
    const response = await fetch(gateway.httpUrl(path));
    await response.body?.cancel();
    assert.equal(response.headers.get("x-frame-options"), "DENY", path);
    const csp = response.headers.get("content-security-policy") ?? "";
    const directives = new Map(
      csp.split(";").map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values] as const;
      }),
    );
    assert.deepEqual(directives.get("frame-ancestors"), ["'none'"], csp);
    assert.deepEqual(directives.get("connect-src"), ["'self'"], csp);
  }

  const actor = await startActor(exchange, `lvm.ecp-${RUN}`);
  const browser = await launchBrowser();
  try {
    const watched = await openPage(browser);
    const { page } = watched;
    await page.goto(gateway.httpUrl("/"));
    await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 15_000 });
    await actor.broadcast({ framed: "no" });
    await page.locator("#stream .row", { hasText: "framed" }).first().waitFor({ timeout: 15_000 });
    // A page on another origin (another port of the same address, so that Chromium's local network
    // checks do not step in first) that frames the console gets an empty frame.
    await using elsewhere = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response(`<iframe id="console" src="${gateway.httpUrl("/")}"></iframe>`, {
          headers: { "content-type": "text/html" },
        }),
    );
    await page.goto(`http://127.0.0.1:${elsewhere.addr.port}/`, { waitUntil: "load" });
    const frames = page.frames().filter((f) => f !== page.mainFrame());
    assert.equal(frames.length, 1);
    const rendered = await frames[0].locator("#gateway-state").count().catch(() => 0);
    assert.equal(rendered, 0, `the console rendered inside another origin's frame (${frames[0].url()})`);
    const problems = watched.problems.filter((p) =>
      !/frame-ancestors|X-Frame-Options|refused to (display|frame)|ERR_BLOCKED_BY_RESPONSE/i.test(p)
    );
    assert.deepEqual(problems, [], problems.join("\n"));
    await watched.close();
  } finally {
    await browser.close();
    await actor.close();
  }
});

Deno.test("origins: in Chromium, the console opened by its --public-url name connects; the same page on a rebinding name is refused", async () => {
  // The port must be known before the start: it is part of the public URL.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const exchange = uniqueExchange("rebind-browser");
  await using gateway = await startGateway({
    exchange,
    args: ["--port", String(port), "--public-url", `http://gw.test:${port}`],
  });
  const actor = await startActor(exchange, `lvm.ecp-${RUN}`);
  // Both names resolve to the gateway, as a rebinding domain's would after its switch.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--host-resolver-rules=MAP gw.test 127.0.0.1, MAP evil.test 127.0.0.1",
    ],
  });
  try {
    const good = await browser.newPage();
    await good.goto(`http://gw.test:${port}/`);
    await good.locator("#gateway-state[data-state='open']").waitFor({ timeout: 15_000 });
    await good.locator("#broker-state[data-state='up']").waitFor({ timeout: 15_000 });
    await actor.broadcast({ through: "public-url" });
    await good.locator("#stream .row", { hasText: "public-url" }).first().waitFor({ timeout: 15_000 });

    const evil = await browser.newPage();
    const before = gateway.logs.length;
    await evil.goto(`http://evil.test:${port}/`);
    await gateway.waitForLog(
      "the rebinding page's refusal",
      (r) => r.origin === `http://evil.test:${port}` && /is not allowed/.test(r.message),
      { after: before },
    );
    assert.notEqual(await evil.locator("#gateway-state").getAttribute("data-state"), "open");
    assert.equal(await evil.locator("#stream .row", { hasText: "public-url" }).count(), 0);
  } finally {
    await browser.close();
    await actor.close();
  }
});

// ---------------------------------------------------------------- the actor state

Deno.test("state: a failed-routing reply from another gateway or a CLU client creates no actor anywhere", async () => {
  const exchange = uniqueExchange("ghost");
  await using a = await startGateway({ exchange });
  await using b = await startGateway({ exchange });
  const actor = await startActor(exchange, DOME);
  const onA = await WsClient.connect(a.url());
  const onB = await WsClient.connect(b.url());
  // B's console builds its actors panel from live replies too.
  const browser = await launchBrowser();
  try {
    const { page } = await openPage(browser);
    await page.goto(b.httpUrl("/"));
    await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 15_000 });
    onA.send({ consumer: "ghost", command_string: "status", command_id: "g-1" });
    const failed = await onA.next("f for g-1", replyTo("g-1", "f"));
    assert.deepEqual(failed.body, { error: "Failed routing message to consumer 'ghost'." });
    // B receives A's failed-routing reply on the shared exchange, and shows it to its clients as CLU does.
    const seen = await onB.next("A's f for g-1 on B", (f: Frame) => f.headers.command_id === "g-1");
    assert.equal(seen.headers.sender, "ghost");
    // A CLU client publishes the same reply for its own unroutable command.
    await actor.publishRaw(
      "reply.amqp-client-0123456789ab",
      JSON.stringify({
        error: "Failed routing message to consumer 'phantom'.",
      }),
      {
        headers: {
          command_id: "c-1",
          commander_id: "amqp-client-0123456789ab.phantom",
          internal: false,
          write_to_log: true,
          message_code: "f",
          sender: "phantom",
        },
        correlationId: "c-1",
      },
    );
    await onB.next("the CLU client's f", (f: Frame) => f.headers.command_id === "c-1");
    await onA.next("the CLU client's f", (f: Frame) => f.headers.command_id === "c-1");
    // A real actor's replies still make it.
    await actor.broadcast({ dome: "closed" });
    await onB.next("the broadcast on B", (f: Frame) => f.body.dome === "closed");
    await onA.next("the broadcast on A", (f: Frame) => f.body.dome === "closed");
    assert.deepEqual(await actorNames(b), [DOME]);
    assert.deepEqual(await actorNames(a), [DOME]);
    const ghost = await fetch(b.httpUrl("/actors/ghost"));
    await ghost.body?.cancel();
    assert.equal(ghost.status, 404);
    // The console saw all three replies (the broadcast came last) and lists the real actor only.
    await page.locator("#stream .row", { hasText: "closed" }).first().waitFor({ timeout: 15_000 });
    await page.locator(`#actors li[data-actor='${DOME}']`).waitFor({ timeout: 15_000 });
    assert.equal(await page.locator("#stream .row", { hasText: "Failed routing" }).count(), 2);
    assert.deepEqual(
      await page.locator("#actors li").evaluateAll((items) => items.map((i) => i.dataset.actor)),
      [
        DOME,
      ],
    );
  } finally {
    await browser.close();
    await onA.close();
    await onB.close();
    await actor.close();
  }
});

Deno.test("state: when the actor cap is full, a new actor is still recorded and the longest-silent one makes room", async () => {
  const exchange = uniqueExchange("cap");
  await using gateway = await startGateway({ exchange });
  const publisher = await startActor(exchange, `publisher-${RUN}`);
  const real: TestActor = await startActor(exchange, LATECOMER);
  const client = await WsClient.connect(gateway.url());
  const CAP = 1000; // STATE_LIMITS.actors
  const from = (sender: string, body: Record<string, unknown>) =>
    publisher.publishRaw("reply.broadcast", JSON.stringify(body), {
      headers: { command_id: null, commander_id: null, internal: false, message_code: "i", sender },
      timestamp: Math.floor(Date.now() / 1000),
    });
  try {
    for (let i = 0; i < CAP; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => from(`filler-${i + j}`, { n: i + j })));
    }
    // filler-0 speaks again: filler-1 is now the longest silent.
    await from("filler-0", { n: "again" });
    await client.next("filler-0 again", (f: Frame) => f.body.n === "again", { timeoutMs: 30_000 });
    const full = await actorNames(gateway);
    assert.equal(full.length, CAP);

    await real.broadcast({ arrived: true });
    await client.next("the latecomer", (f: Frame) => f.body.arrived === true);
    const names = await actorNames(gateway);
    assert.equal(names.length, CAP);
    assert.ok(names.includes(LATECOMER), "the real actor is in /actors");
    assert.ok(names.includes("filler-0"), "an actor that spoke recently stays");
    assert.ok(!names.includes("filler-1"), "the longest-silent actor made room");
    const keywords = await (await fetch(gateway.httpUrl(`/actors/${LATECOMER}`))).json();
    assert.equal(keywords.keywords.arrived.value, true);
  } finally {
    await client.close();
    await publisher.close();
    await real.close();
  }
});
