// End-to-end tests of the numeric keywords' recent history (lib/replies/keyword_series.ts): the v1
// `series` operation and `GET /actors/<name>/series`, through the gateway process, the real RabbitMQ and a
// CLU-style actor. Each test has its own exchange and actor; waits are for frames, never for time.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { type Frame, WsClient } from "./helpers/ws_client.ts";

const V1 = ["clu-ws.v1"];
const RUN = crypto.randomUUID().slice(0, 8);
let actorCount = 0;

type Json = Record<string, unknown>;
type Points = Record<string, { t: number[]; v: number[] }>;

function actorName(label: string): string {
  return `series-${RUN}-${label}-${++actorCount}`;
}

function control(kind: string, id: unknown): (frame: Frame) => boolean {
  return (frame) => (frame as unknown as Json)["clu-ws"] === kind && (frame as unknown as Json).id === id;
}

/** Sends a `series` request and resolves with its answer (or the `error` frame for its id). */
async function series(client: WsClient, id: number, fields: Json): Promise<Json> {
  client.send({ "clu-ws": "series", id, ...fields });
  const answer = await client.next(
    `the answer to series #${id}`,
    (frame) => control("series", id)(frame) || control("error", id)(frame),
  );
  return answer as unknown as Json;
}

/** Publishes `bodies` as broadcasts of `actor` and waits until `client` has the last one. */
async function publish(actor: TestActor, client: WsClient, bodies: Json[]): Promise<Frame> {
  const marker = crypto.randomUUID();
  for (const body of bodies) await actor.broadcast(body);
  await actor.broadcast({ marker });
  return await client.next("the marker", (f) => f.body?.marker === marker);
}

async function withGateway(
  label: string,
  options: { args?: string[]; env?: Record<string, string> },
  body: (world: { gateway: GatewayProcess; actor: TestActor; client: WsClient }) => Promise<void>,
  protocols = V1,
): Promise<void> {
  const exchange = uniqueExchange(label);
  await using gateway = await startGateway({ exchange, ...options });
  const actor = await startActor(exchange, actorName(label));
  const client = await WsClient.connect(gateway.url(), { protocols });
  try {
    await client.next("the welcome", (f) => (f as unknown as Json)["clu-ws"] === "welcome");
    await body({ gateway, actor, client });
  } finally {
    await client.close();
    await actor.close();
  }
}

Deno.test("series: the newest points of numbers and numeric array elements, over v1 and HTTP, bounded per series", async () => {
  await withGateway(
    "points",
    { args: ["--series-points", "5"] },
    async ({ gateway, actor, client }) => {
      const before = Date.now();
      const bodies = Array.from({ length: 8 }, (_, i) => ({
        temperature: 10 + i,
        position: [180 + i, 45 - i, "parked"],
        status: `s${i}`,
        on: true,
      }));
      const last = await publish(actor, client, bodies);
      const after = Date.now();

      const answer = await series(client, 1, {
        actor: actor.name,
        keywords: ["temperature", "position", "status"],
      });
      assert.deepEqual(Object.keys(answer), ["clu-ws", "id", "seq", "now", "actor", "series"]);
      assert.equal(answer.seq, (last as unknown as Json).seq, "as of the latest reply");
      assert.equal(answer.actor, actor.name);
      assert.ok(Number(answer.now) >= before, "the gateway's clock");
      const points = answer.series as Points;
      assert.deepEqual(
        Object.keys(points).sort(),
        ["position[0]", "position[1]", "temperature"],
        "strings: no series",
      );
      assert.deepEqual(
        points.temperature.v,
        [13, 14, 15, 16, 17],
        "the 5 newest (--series-points 5)",
      );
      assert.deepEqual(points["position[0]"].v, [183, 184, 185, 186, 187]);
      assert.deepEqual(points["position[1]"].v, [42, 41, 40, 39, 38]);
      const times = points.temperature.t;
      assert.ok(
        times.every((t, i) => t >= before - 1000 && t <= after + 1000 && (i === 0 || t >= times[i - 1])),
      );

      const one = await series(client, 2, { actor: actor.name, keywords: ["position[1]"], points: 2 });
      assert.deepEqual(one.series, { "position[1]": { t: points["position[1]"].t.slice(-2), v: [39, 38] } });
      const since = await series(client, 3, {
        actor: actor.name,
        keywords: ["temperature"],
        since: times[3],
      });
      assert.deepEqual((since.series as Points).temperature.v.at(-1), 17);
      assert.ok(
        (since.series as Points).temperature.t.every((t) => t >= times[3]),
        "only points at or after since",
      );
      const unknown = await series(client, 4, { actor: `nobody-${RUN}`, keywords: ["x"] });
      assert.deepEqual(unknown.series, {}, "an actor never heard: no series, not an error");

      const http = await fetch(
        gateway.httpUrl(`/actors/${actor.name}/series?keyword=temperature,position[0]`),
      );
      assert.equal(http.status, 200);
      assert.match(String(http.headers.get("content-type")), /application\/json/);
      const viaHttp = await http.json();
      assert.equal(viaHttp.name, actor.name);
      assert.deepEqual(viaHttp.series, {
        temperature: points.temperature,
        "position[0]": points["position[0]"],
      });
      const newest = await (await fetch(
        gateway.httpUrl(`/actors/${actor.name}/series?keyword=temperature&points=1`),
      )).json();
      assert.deepEqual(newest.series.temperature.v, [17]);
    },
  );
});

Deno.test("series: hostile or malformed requests get an error naming the field; the connection stays", async () => {
  await withGateway("hostile", {}, async ({ gateway, actor, client }) => {
    await publish(actor, client, [{ temperature: 1 }]);
    const cases: Array<[Json, RegExp]> = [
      [{ keywords: ["temperature"] }, /"actor"/],
      [{ actor: actor.name }, /"keywords": a list of 1 to 64/],
      [{ actor: actor.name, keywords: Array(65).fill("temperature") }, /1 to 64/],
      [{ actor: actor.name, keywords: ["k".repeat(100_000).slice(0, 60_000)] }, /1 to 255 characters/],
      [{ actor: actor.name, keywords: [{ evil: true }] }, /"keywords" holds/],
      [{ actor: actor.name, keywords: ["temperature"], points: 10 ** 9 }, /"points"/],
      [{ actor: actor.name, keywords: ["temperature"], since: "yesterday" }, /"since"/],
    ];
    let id = 10;
    for (const [fields, pattern] of cases) {
      const answer = await series(client, ++id, fields);
      assert.equal(answer["clu-ws"], "error", JSON.stringify(fields).slice(0, 80));
      assert.match(String(answer.error), pattern);
    }
    const fine = await series(client, ++id, { actor: actor.name, keywords: ["temperature"] });
    assert.deepEqual((fine.series as Points).temperature.v, [1], "the connection still answers");

    const noKeyword = await fetch(gateway.httpUrl(`/actors/${actor.name}/series`));
    assert.equal(noKeyword.status, 400);
    assert.match(
      String((await noKeyword.json()).error),
      /needs keyword: a list of 1 to 64 .*e\.g\. series\?keyword=temperature/,
    );
    const tooMany = await fetch(
      gateway.httpUrl(`/actors/${actor.name}/series?keyword=${Array(65).fill("a").join(",")}`),
    );
    assert.equal(tooMany.status, 400);
    await tooMany.body?.cancel();
    const badPoints = await fetch(gateway.httpUrl(`/actors/${actor.name}/series?keyword=a&points=lots`));
    assert.equal(badPoints.status, 400);
    await badPoints.body?.cancel();
    const unknown = await fetch(gateway.httpUrl(`/actors/nobody-${RUN}/series?keyword=a`));
    assert.equal(unknown.status, 404);
    assert.match(String((await unknown.json()).error), /no reply from an actor named/);
    const post = await fetch(gateway.httpUrl(`/actors/${actor.name}/series?keyword=a`), { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  });
});

Deno.test("series: --series-count bounds the series in all; the one updated the longest ago goes", async () => {
  await withGateway(
    "count",
    { args: ["--series-count", "2"] },
    async ({ gateway, actor, client }) => {
      await publish(actor, client, [{ a: 1 }, { b: 2 }, { a: 3 }, { c: 4 }]);
      const answer = await (await fetch(
        gateway.httpUrl(`/actors/${actor.name}/series?keyword=a&keyword=b&keyword=c`),
      )).json();
      assert.deepEqual(Object.keys(answer.series).sort(), ["a", "c"], "b was the stalest when c came");
      assert.deepEqual(answer.series.a.v, [1, 3]);
    },
  );
});

Deno.test("series: points older than --series-age are not served", async () => {
  // 4 s: the first fetch, which must still see the point, has that long on a loaded machine.
  await withGateway("age", { args: ["--series-age", "4"] }, async ({ gateway, actor, client }) => {
    await publish(actor, client, [{ temperature: 5 }]);
    const url = gateway.httpUrl(`/actors/${actor.name}/series?keyword=temperature`);
    const fresh = await (await fetch(url)).json();
    assert.deepEqual(fresh.series.temperature.v, [5]);
    // No event marks a point ageing out: poll, bounded, until it is gone (4 s after it arrived).
    await until(
      "the point to age out",
      async () => (await (await fetch(url)).json()).series.temperature.v.length === 0,
    );
  });
});

const WATCHER = "watcher-token-series-0123456789";

Deno.test("series: with tokens, GET /actors/<name>/series needs one as GET /actors/<name> does; a watch token may read", async () => {
  const tokens = JSON.stringify({
    tokens: [{ name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(WATCHER)) }],
  });
  await withGateway("auth", { env: { CLU_WS_TOKENS: tokens } }, async ({ gateway, actor, client }) => {
    await publish(actor, client, [{ temperature: 7 }]);
    const path = `/actors/${actor.name}/series?keyword=temperature`;
    const none = await fetch(gateway.httpUrl(path));
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const wrong = await fetch(gateway.httpUrl(path), {
      headers: { authorization: "Bearer not-a-token-0000000" },
    });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const byHeader = await fetch(gateway.httpUrl(path), { headers: { authorization: `Bearer ${WATCHER}` } });
    assert.equal(byHeader.status, 200);
    assert.deepEqual((await byHeader.json()).series.temperature.v, [7]);
    const byQuery = await fetch(gateway.httpUrl(`${path}&token=${WATCHER}`));
    assert.equal(byQuery.status, 200);
    await byQuery.body?.cancel();
    const answer = await series(client, 1, { actor: actor.name, keywords: ["temperature"] });
    assert.deepEqual((answer.series as Points).temperature.v, [7], "a watch-only v1 client may read series");
  }, ["clu-ws.v1", `token.${WATCHER}`]);
});
