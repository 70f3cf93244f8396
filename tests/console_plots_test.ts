// The console's plots in a real browser (Chromium through playwright-core), against a real gateway process,
// the real broker and the CLU-style test actor: a plotted keyword shows the points the actor published before
// the page was opened (from the gateway's keyword history), then new ones live; several plots at once; the
// toggles in the actors panel; the plots in the URL; both themes. Points are read from each plot's uPlot
// instance (what it draws), never from pixels. With CLU_WS_DOCS_SCREENSHOT=1 a view is written to
// docs/plots.png.

import assert from "node:assert/strict";
import { uniqueExchange, until } from "./helpers/broker.ts";
import { type ActorOptions, startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import {
  type Browser,
  contrastProblems,
  launchBrowser,
  openPage,
  type Page,
  type PageElement,
  screenshot,
  type WatchedPage,
} from "./helpers/browser.ts";

// Functions passed to page.evaluate run in Chromium; see PageDocument.
declare const document: { querySelector(selector: string): (PageElement & { uplot?: UPlotLike }) | null };

/** What the tests read of a uPlot instance: its data, `[xs, ys]`. */
interface UPlotLike {
  data: [number[], number[]];
}

const RUN = crypto.randomUUID().slice(0, 8);
const DOCS_SCREENSHOT = new URL("../docs/plots.png", import.meta.url).pathname;

interface World {
  gateway: GatewayProcess;
  actor: TestActor;
  browser: Browser;
}

async function withWorld(
  label: string,
  body: (world: World) => Promise<void>,
  actorOptions: ActorOptions = {},
): Promise<void> {
  const exchange = uniqueExchange(`plots-${label}`);
  await using gateway = await startGateway({ exchange });
  const actor = await startActor(exchange, `plots-${RUN}-${label}`, actorOptions);
  const browser = await launchBrowser();
  try {
    await body({ gateway, actor, browser });
  } finally {
    await browser.close();
    await actor.close();
  }
}

async function openConsole(world: World, path = "/"): Promise<WatchedPage> {
  const watched = await openPage(world.browser);
  await watched.page.goto(world.gateway.httpUrl(path));
  await watched.page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
  await watched.page.locator("#broker-state[data-state='up']").waitFor({ timeout: 10_000 });
  return watched;
}

/** Waits until the gateway's keyword history holds `count` points of `series` (the replies reached it). */
function gatewayHas(world: World, series: string, count: number): Promise<void> {
  return gatewayHasOf(world, world.actor.name, series, count);
}

async function gatewayHasOf(world: World, actor: string, series: string, count: number): Promise<void> {
  const url = world.gateway.httpUrl(`/actors/${actor}/series?keyword=${encodeURIComponent(series)}`);
  await until(`${count} points of ${series} in the gateway`, async () => {
    const response = await fetch(url);
    if (response.status !== 200) return (await response.body?.cancel(), false);
    return (await response.json()).series[series]?.v.length === count;
  });
}

function plotSelector(actor: string, series: string): string {
  return `#plots .plot[data-actor='${actor}'][data-series='${series}']`;
}

/** The values the plot of `series` draws, once it draws `count` of them. */
async function plottedValues(page: Page, actor: string, series: string, count: number): Promise<number[]> {
  const selector = plotSelector(actor, series);
  try {
    // Drawn, not only received: the points go into the plot's arrays as they come, and the plot (its
    // `data-points`, its last value) is redrawn at the next animation frame.
    await page.waitForFunction(
      ([s, n]) => {
        const card = document.querySelector(s as string);
        return card?.uplot?.data[1].length === n && card.dataset.points === String(n);
      },
      [selector, count] as const,
      { timeout: 10_000 },
    );
  } catch (err) {
    const now = await page.evaluate((s) => document.querySelector(s)?.uplot?.data[1], selector);
    throw new Error(`the plot of ${series} did not reach ${count} points (it has ${JSON.stringify(now)})`, {
      cause: err,
    });
  }
  return await page.evaluate((s) => [...document.querySelector(s)!.uplot!.data[1]], selector);
}

function assertNoProblems(watched: WatchedPage): void {
  assert.deepEqual(watched.problems, [], `the page reported problems:\n${watched.problems.join("\n")}`);
}

Deno.test("console plots: points from before the page opened, then live ones, several at once, from the URL", async () => {
  await withWorld("history", async (world) => {
    const { actor } = world;
    const before = Date.now();
    for (const [i, temperature] of [10, 11.5, 12].entries()) {
      await actor.broadcast({ temperature, position: [180 + i, 45 - i], dome: "open" });
    }
    await gatewayHas(world, "temperature", 3);

    const watched = await openConsole(
      world,
      `/?plot=${actor.name}:temperature&plot=${actor.name}:position[1]`,
    );
    const { page } = watched;
    assert.deepEqual(
      await plottedValues(page, actor.name, "temperature", 3),
      [10, 11.5, 12],
      "the recent past",
    );
    assert.deepEqual(await plottedValues(page, actor.name, "position[1]", 3), [45, 44, 43]);
    const times = await page.evaluate(
      (s) => [...document.querySelector(s)!.uplot!.data[0]],
      plotSelector(actor.name, "temperature"),
    );
    assert.ok(
      times.every((t, i) =>
        t * 1000 >= before - 2000 && t * 1000 <= Date.now() + 2000 && (i === 0 || t >= times[i - 1])
      ),
      `times in seconds, in order, when they were published: ${times}`,
    );

    await actor.broadcast({ temperature: 13, position: [183, 42] });
    await actor.broadcast({ temperature: 14.25 });
    assert.deepEqual(
      await plottedValues(page, actor.name, "temperature", 5),
      [10, 11.5, 12, 13, 14.25],
      "then live",
    );
    assert.deepEqual(await plottedValues(page, actor.name, "position[1]", 4), [45, 44, 43, 42]);
    assert.equal(await page.textContent(`${plotSelector(actor.name, "temperature")} .plot-last`), "14.25");
    assert.equal(await page.locator("#plots .plot").count(), 2, "several plots at once");
    assertNoProblems(watched);
    await watched.close();
  });
});

Deno.test("console plots: toggles next to numeric keywords in the actors panel, kept in the URL; both themes", async () => {
  await withWorld("toggles", async (world) => {
    const { actor } = world;
    const watched = await openConsole(world);
    const { page } = watched;
    assert.equal(await page.locator("#plots-area").isHidden(), true, "no plots, no panel");
    await actor.broadcast({ voltage: 5, position: [1, 2, "x"], status: "ok" });
    const item = page.locator(`#actors li[data-actor='${actor.name}']`);
    await item.locator("summary").click();
    const row = (keyword: string) => item.locator(`tr[data-keyword='${keyword}']`);
    await row("voltage").waitFor();
    assert.deepEqual(await row("voltage").locator("button.plot-toggle").allTextContents(), ["plot"]);
    assert.deepEqual(await row("position").locator("button.plot-toggle").allTextContents(), ["[0]", "[1]"]);
    assert.equal(await row("status").locator("button.plot-toggle").count(), 0, "a string has no plot");
    assert.equal(
      await row("voltage").locator("td").textContent(),
      "5",
      "the value's cell is still text only",
    );

    const voltage = row("voltage").locator("button.plot-toggle");
    await voltage.click();
    assert.equal(await voltage.getAttribute("aria-pressed"), "true");
    assert.deepEqual(
      await plottedValues(page, actor.name, "voltage", 1),
      [5],
      "the point published before the click",
    );
    await row("position").locator("button.plot-toggle", { hasText: "[0]" }).click();
    assert.deepEqual(await plottedValues(page, actor.name, "position[0]", 1), [1]);
    await actor.broadcast({ voltage: 5.5, position: [3, 4] });
    assert.deepEqual(await plottedValues(page, actor.name, "voltage", 2), [5, 5.5]);
    assert.deepEqual(await plottedValues(page, actor.name, "position[0]", 2), [1, 3]);
    const search = new URLSearchParams(await page.evaluate(() => location.search));
    assert.deepEqual(search.getAll("plot"), [`${actor.name}:voltage`, `${actor.name}:position[0]`]);

    // Both themes: the plot takes the theme's colours (line, axes, grid) and keeps its points.
    const card = page.locator(plotSelector(actor.name, "voltage"));
    const colors = async () => ({
      line: await card.getAttribute("data-line-color"),
      axis: await card.getAttribute("data-axis-color"),
      grid: await card.getAttribute("data-grid-color"),
    });
    assert.deepEqual(await colors(), { line: "#0550ae", axis: "#57606a", grid: "#d0d7de" }, "day");
    assert.deepEqual(await contrastProblems(page), [], "day theme: text below 4.5:1");
    await screenshot(page, "plots-day");
    await page.click("#night");
    await page.waitForFunction(() => document.querySelector("#plots .plot")?.dataset.lineColor === "#ff0000");
    assert.deepEqual(
      await colors(),
      { line: "#ff0000", axis: "#ee0000", grid: "#4a0000" },
      "night: red on black",
    );
    assert.deepEqual(
      await plottedValues(page, actor.name, "voltage", 2),
      [5, 5.5],
      "redrawn with its points",
    );
    assert.deepEqual(await contrastProblems(page), [], "night theme: text below 4.5:1");
    await screenshot(page, "plots-night");
    await actor.broadcast({ voltage: 6 });
    assert.deepEqual(
      await plottedValues(page, actor.name, "voltage", 3),
      [5, 5.5, 6],
      "live after the redraw",
    );
    await page.click("#night");

    // Dragging across a plot zooms in; live points then keep that time range, until a double-click.
    const overlay = card.locator(".u-over");
    const box = (await overlay.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.05, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    const range = () =>
      card.evaluate((e) => {
        const u = (e as unknown as { uplot: { scales: { x: { max: number } }; data: number[][] } }).uplot;
        return { max: u.scales.x.max, last: u.data[0][u.data[0].length - 1] };
      });
    const zoomed = await range();
    assert.ok(zoomed.max < zoomed.last, `zoomed in: ${JSON.stringify(zoomed)}`);
    await actor.broadcast({ voltage: 6.5 });
    await plottedValues(page, actor.name, "voltage", 4);
    const still = await range();
    assert.equal(still.max, zoomed.max, "a live point does not undo the zoom");
    await overlay.dblclick();
    await page.waitForFunction((s) => {
      const u = (document.querySelector(s) as unknown as {
        uplot: { scales: { x: { max: number } }; data: number[][] };
      })
        .uplot;
      return u.scales.x.max === u.data[0][u.data[0].length - 1];
    }, plotSelector(actor.name, "voltage"));

    // Closing a plot from its card releases its toggle and leaves the URL.
    await card.locator(".plot-close").click();
    await card.waitFor({ state: "detached" });
    assert.equal(await voltage.getAttribute("aria-pressed"), "false");
    assert.deepEqual(new URLSearchParams(await page.evaluate(() => location.search)).getAll("plot"), [
      `${actor.name}:position[0]`,
    ]);

    // A reload opens the plots of the URL again, with their recent past.
    await page.reload();
    assert.deepEqual(await plottedValues(page, actor.name, "position[0]", 2), [1, 3]);
    assertNoProblems(watched);

    if (Deno.env.get("CLU_WS_DOCS_SCREENSHOT") === "1") await docsScreenshot(world);
    await watched.close();
  });
});

Deno.test("console plots: the unit comes from the actor's schema (v1 describe), on the plot and its axis", async () => {
  await withWorld("unit", async (world) => {
    const { actor } = world;
    await actor.broadcast({ temperature: 8.5, position: [10, 20] });
    await gatewayHas(world, "temperature", 1);
    // The gateway asked the actor for its schema when it first heard from it (get_schema, as CLU answers it);
    // the page reads it with v1 describe. Its schema gives temperature a unit, position none.
    const watched = await openConsole(
      world,
      `/?plot=${actor.name}:temperature&plot=${actor.name}:position[0]`,
    );
    const { page } = watched;
    assert.deepEqual(await plottedValues(page, actor.name, "temperature", 1), [8.5]);
    const card = page.locator(`${plotSelector(actor.name, "temperature")}[data-unit='degC']`);
    await card.waitFor({ timeout: 15_000 });
    assert.equal(await card.locator(".plot-unit").textContent(), "[degC]");
    assert.equal(
      await card.evaluate((e) =>
        (e as unknown as { uplot: { axes: { label?: string }[] } }).uplot.axes[1].label
      ),
      "degC",
      "the y axis",
    );
    assert.deepEqual(await plottedValues(page, actor.name, "position[0]", 1), [10]);
    assert.equal(
      await page.locator(`${plotSelector(actor.name, "position[0]")} .plot-unit`).textContent(),
      "",
      "no unit where the schema gives none",
    );
    assert.equal(actor.introspection.filter((c) => c.body.command_string === "get_schema").length, 1);
    assertNoProblems(watched);
    await watched.close();
  }, { introspection: "clu" });
});

/**
 * docs/plots.png: an enclosure's keywords over a few seconds, then a fresh console opened on their plots
 * (their past comes from the gateway). The replies are spaced out so that the plots have a shape to show.
 */
async function docsScreenshot(world: World): Promise<void> {
  const sender = "lvm.enclosure";
  const publish = (body: Record<string, unknown>) =>
    world.actor.publishRaw("reply.broadcast", JSON.stringify(body), {
      headers: { command_id: null, commander_id: null, internal: false, message_code: "i", sender },
      timestamp: Math.floor(Date.now() / 1000),
    });
  for (let i = 0; i < 80; i++) {
    await publish({
      dome_temperature: Number((11.2 - i / 40 + Math.sin(i / 3) / 8).toFixed(2)),
      wind_speed: Number((4 + 2 * Math.abs(Math.sin(i / 9)) + (i % 7) / 10).toFixed(1)),
      position: [Number((120 + i * 0.75).toFixed(2)), Number((62 - 10 * Math.sin(i / 25)).toFixed(2))],
      dome_status: "open",
    });
    await new Promise((resolve) => setTimeout(resolve, 40)); // a shape over time, not a synchronisation
  }
  await gatewayHasOf(world, sender, "wind_speed", 80);
  const plots = ["dome_temperature", "wind_speed", "position[0]", "position[1]"];
  // Units as the actor's schema will give them once the gateway answers `describe` (routed, as above).
  const docs = await openPage(world.browser);
  await docs.page.routeWebSocket(/.*/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = typeof message === "string" ? JSON.parse(message) : undefined;
      if (frame?.["clu-ws"] !== "describe") return server.send(message);
      const properties = {
        dome_temperature: { type: "number", unit: "degC" },
        wind_speed: { type: "number", unit: "m/s" },
        position: { type: "array", items: { type: "number" }, unit: "deg" },
      };
      ws.send(JSON.stringify({ "clu-ws": "describe", id: frame.id, schema: { properties } }));
    });
  });
  await docs.page.goto(world.gateway.httpUrl(`/?${plots.map((p) => `plot=${sender}:${p}`).join("&")}`));
  await docs.page.locator(`${plotSelector(sender, "wind_speed")}[data-unit='m/s']`).waitFor();
  for (const series of plots) await plottedValues(docs.page, sender, series, 80);
  await docs.page.locator(`#actors li[data-actor='${sender}'] summary`).click();
  await docs.page.locator(`#actors li[data-actor='${sender}'] tr[data-keyword='wind_speed']`).waitFor();
  await docs.page.screenshot({ path: DOCS_SCREENSHOT, animations: "disabled" });
  await docs.close();
}
