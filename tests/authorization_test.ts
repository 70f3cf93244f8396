// Authorization and hostile globs through real sockets and the real RabbitMQ (issue 11): which actors
// a command reaches (every dot-prefix of its consumer, as CLU actors bind `command.<actor>.#`) and
// that the rules cover each of them; empty actor lists; and actor globs from clients that must be
// matched in linear time, so no client can freeze the gateway. Waits are for frames and log records;
// the only "nothing arrived" windows are bounded and follow an event that proves the path is live.

import assert from "node:assert/strict";
import { globMatch } from "../lib/glob.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { type Frame, replyTo, WsClient } from "./helpers/ws_client.ts";
import { launchBrowser, openPage, type PageDocument } from "./helpers/browser.ts";

// Functions passed to page.evaluate run in Chromium; see PageDocument.
declare const document: PageDocument;

const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;

/** Actor queues (`<name>_commands`) are exclusive across exchanges: each test names its own. */
function actorName(label: string): string {
  return `authz-${RUN}-${label}-${++actorCount}`;
}

type Json = Record<string, unknown>;

/** Matches the control frame `{"clu-ws": kind, …}` for which `match` holds. */
function control(kind: string, match: (frame: Json) => boolean = () => true): (frame: Frame) => boolean {
  return (frame) => (frame as unknown as Json)["clu-ws"] === kind && match(frame as unknown as Json);
}

interface World {
  exchange: string;
  gateway: GatewayProcess;
  /** Opens a client; `v1` offers clu-ws.v1 and waits for the welcome. */
  client(options?: { v1?: boolean; token?: string }): Promise<WsClient>;
}

/**
 * Runs `body` with a gateway of its own. Clients are closed after it; a gateway that no longer
 * answers (what this file guards against) is killed first, so a failure never hangs the run.
 */
async function withGateway(
  label: string,
  options: { args?: string[]; env?: Record<string, string> },
  body: (world: World) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange(label);
  await using gateway = await startGateway({ exchange, ...options });
  const clients: WsClient[] = [];
  const world: World = {
    exchange,
    gateway,
    async client({ v1 = false, token } = {}) {
      const protocols = [v1 ? "clu-ws.v1" : "clu-ws", ...(token ? [`token.${token}`] : [])];
      const client = await WsClient.connect(gateway.url(), { protocols });
      clients.push(client);
      if (v1) await client.next("the welcome", control("welcome"));
      return client;
    },
  };
  try {
    await body(world);
  } finally {
    const closing = Promise.all(clients.map((c) => c.close()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      closing.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5_000)),
    ]);
    clearTimeout(timer);
    if (!closed) await gateway.stop("SIGKILL");
    await closing;
  }
}

/** Resolves with `promise`'s value and how long it took, in milliseconds. */
async function timed<T>(promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await promise;
  return { value, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------------------
// Hostile globs

/** 40 stars and a Z: a backtracking matcher needs hours for it against a 40-character name. */
const STARS_40 = "*".repeat(40) + "Z";
const STARS_24 = "*".repeat(24) + "Z";

/** The glob semantics by brute force (exponential, for short inputs only): the reference to compare with. */
function referenceMatch(pattern: string, name: string): boolean {
  if (pattern === "") return name === "";
  if (pattern[0] === "*") {
    for (let i = 0; i <= name.length; i++) if (referenceMatch(pattern.slice(1), name.slice(i))) return true;
    return false;
  }
  return name !== "" && (pattern[0] === "?" || pattern[0] === name[0]) &&
    referenceMatch(pattern.slice(1), name.slice(1));
}

Deno.test("glob: the linear matcher agrees with the brute-force definition on 20,000 random cases", () => {
  const alphabet = ["a", "b", ".", "*", "?"];
  const pick = (n: number, chars: string[]) =>
    Array.from(
      { length: Math.floor(Math.random() * n) },
      () => chars[Math.floor(Math.random() * chars.length)],
    )
      .join("");
  for (let i = 0; i < 20_000; i++) {
    const pattern = pick(8, alphabet);
    // Names may hold * and ? too: in a name they are ordinary characters.
    const name = pick(9, alphabet);
    assert.equal(globMatch(pattern, name), referenceMatch(pattern, name), `${pattern} vs ${name}`);
  }
  assert.equal(globMatch(STARS_40, "a".repeat(255)), false);
  assert.equal(globMatch(STARS_40, "a".repeat(255) + "Z"), true);
});

/** A gateway that answers within this is not frozen (the old matcher took 6 s for 24 stars). */
const PROMPT_MS = 3_000;

Deno.test("a v1 state request with 24- and 40-star globs answers promptly, and other clients keep their replies", async () => {
  await withGateway("redos-state", {}, async ({ exchange, client }) => {
    // A long actor name is what made the backtracking explode.
    const actor = await startActor(exchange, `${actorName("state")}.with.a.rather.long.name`);
    try {
      const attacker = await client({ v1: true });
      const bystander = await client();
      // The actor must be in the state for the globs to be tried against its name.
      await actor.broadcast({ temperature: 1 });
      await attacker.next("the broadcast", (f) => f.body?.temperature === 1);
      for (const [id, glob] of [["s24", STARS_24], ["s40", STARS_40]]) {
        attacker.send({ "clu-ws": "state", id, actors: [glob] });
        bystander.send({ consumer: actor.name, command_string: "ping", command_id: `ping-${id}` });
        const [state, pong] = await Promise.all([
          timed(
            attacker.next(`the state ${id}`, control("state", (f) => f.id === id), { timeoutMs: PROMPT_MS }),
          ),
          timed(bystander.next(`Pong ${id}`, replyTo(`ping-${id}`, ":"), { timeoutMs: PROMPT_MS })),
        ]);
        assert.deepEqual((state.value as unknown as Json).actors, {}, "no actor name ends in Z");
        console.log(
          `${glob.length - 1} stars: state in ${state.ms.toFixed(0)} ms, Pong in ${pong.ms.toFixed(0)} ms`,
        );
      }
    } finally {
      await actor.close();
    }
  });
});

Deno.test("a v1 subscribe with a 40-star glob costs nothing per reply: replies keep flowing to everyone", async () => {
  await withGateway("redos-subscribe", {}, async ({ exchange, client }) => {
    const actor = await startActor(exchange, `${actorName("sub")}.with.a.rather.long.name`);
    try {
      const attacker = await client({ v1: true });
      const bystander = await client();
      attacker.send({
        "clu-ws": "subscribe",
        id: 1,
        actors: [STARS_40, STARS_24],
        keys: ["reply.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.z"],
      });
      await attacker.next("subscribed", control("subscribed", (f) => f.id === 1));
      for (let i = 0; i < 5; i++) {
        bystander.send({ consumer: actor.name, command_string: "ping", command_id: `sub-${i}` });
        const pong = await timed(
          bystander.next(`Pong ${i}`, replyTo(`sub-${i}`, ":"), { timeoutMs: PROMPT_MS }),
        );
        assert.ok(pong.ms < PROMPT_MS);
      }
      // The attacker's own filter matched none of them; a later subscribe still answers at once.
      attacker.send({ "clu-ws": "subscribe", id: 2 });
      await attacker.next("subscribed again", control("subscribed", (f) => f.id === 2), {
        timeoutMs: PROMPT_MS,
      });
      assert.equal(attacker.frames.filter((f) => f.headers?.sender === actor.name).length, 0);
    } finally {
      await actor.close();
    }
  });
});

Deno.test("v1 glob lists are bounded: more than 64 globs or one over 255 bytes gets an error frame", async () => {
  await withGateway("glob-bounds", {}, async ({ client }) => {
    const v1 = await client({ v1: true });
    const many = Array.from({ length: 65 }, (_, i) => `actor${i}`);
    const long = "a".repeat(256);
    const cases: Array<{ send: Json; error: RegExp }> = [
      {
        send: { "clu-ws": "state", id: "many-state", actors: many },
        error: /"actors" has 65 entries; at most 64/,
      },
      {
        send: { "clu-ws": "subscribe", id: "many-sub", actors: many },
        error: /"actors" has 65 entries; at most 64/,
      },
      {
        send: { "clu-ws": "state", id: "long-state", actors: ["lvm", long] },
        error: /"actors" entry #2 is longer than 255 bytes/,
      },
      {
        send: { "clu-ws": "subscribe", id: "long-sub", actors: [long] },
        error: /"actors" entry #1 is longer than 255 bytes/,
      },
      {
        send: { "clu-ws": "subscribe", id: "long-key", keys: [`reply.${long}`] },
        error: /"keys" entry #1 is longer/,
      },
    ];
    for (const { send, error } of cases) {
      v1.send(send);
      const answer = await v1.next(`the error for ${send.id}`, control("error", (f) => f.id === send.id));
      assert.match(String((answer as unknown as Json).error), error);
    }
    // 64 globs of 255 bytes are fine.
    v1.send({ "clu-ws": "state", id: "max", actors: Array.from({ length: 64 }, () => "b".repeat(255)) });
    await v1.next("the state for 64 globs", control("state", (f) => f.id === "max"));
  });
});

Deno.test("console: a crafted ?actor= link with 40-star globs leaves the page responsive, and the filter words still work", async () => {
  await withGateway("redos-console", {}, async ({ exchange, gateway }) => {
    const base = actorName("console");
    const shown = await startActor(exchange, `${base}.shown.with.a.rather.long.name`);
    const hidden = await startActor(exchange, `${base}.hidden.with.a.rather.long.name`);
    const browser = await launchBrowser();
    try {
      const watched = await openPage(browser);
      const { page } = watched;
      // Include the actors of this test, exclude one by a plain word and one by the hostile glob.
      const filter = `${base}.* !*.hidden.* !${STARS_40} -${STARS_24}`;
      await page.goto(gateway.httpUrl(`/?actor=${encodeURIComponent(filter)}`));
      await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
      assert.equal(await page.inputValue("#filter-actor"), filter);
      await hidden.broadcast({ text: "hidden by the ! word" });
      await shown.broadcast({ text: "shown despite the hostile globs" });
      // Every reply goes through the filter: with a backtracking matcher the page froze on the first.
      const row = page.locator(`#stream .row[data-actor='${shown.name}']`, {
        hasText: "shown despite the hostile globs",
      });
      await row.first().waitFor({ timeout: PROMPT_MS * 2 });
      const started = performance.now();
      const title = await page.evaluate(() => document.querySelector("title")?.textContent ?? "");
      assert.ok(title.length > 0);
      assert.ok(performance.now() - started < PROMPT_MS, "the page answers at once");
      assert.equal(await page.locator(`#stream .row[data-actor='${hidden.name}']`).count(), 0);
      assert.deepEqual(watched.problems, []);
      await watched.close();
    } finally {
      await browser.close();
      await shown.close();
      await hidden.close();
    }
  });
});
