// The live console in a real browser (Debian's Chromium through playwright-core), against a real
// gateway process, the real broker and the CLU-style test actor: loading without errors, the
// stream and its colours, commands with their lifecycle, filters in the URL, the actors panel,
// pause and scroll-back, night mode, and the token prompt. Screenshots go to test-artifacts/;
// with CLU_WS_DOCS_SCREENSHOT=1 the day view is also written to docs/console.png.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import {
  type Browser,
  contrastProblems,
  launchBrowser,
  openPage,
  type Page,
  type PageDocument,
  type PageMutationObserver,
  type PageStyle,
  screenshot,
  type WatchedPage,
} from "./helpers/browser.ts";

// Functions passed to page.evaluate run in Chromium; see PageDocument.
declare const document: PageDocument;
declare function getComputedStyle(element: unknown): PageStyle;
declare const MutationObserver: new (
  callback: (records: unknown[], observer: PageMutationObserver) => void,
) => PageMutationObserver;

const DOCS_SCREENSHOT = new URL("../docs/console.png", import.meta.url).pathname;

/** Day-theme colours from web/console.html, as getComputedStyle reports them. */
const DAY = {
  warning: "rgb(125, 78, 0)",
  info: "rgb(31, 35, 40)",
  failedBackground: "rgb(207, 34, 46)",
  background: "rgb(255, 255, 255)",
};
const NIGHT = { foreground: "rgb(255, 0, 0)", background: "rgb(0, 0, 0)" };

interface World {
  gateway: GatewayProcess;
  ecp: TestActor;
  apogee: TestActor;
  browser: Browser;
}

async function withWorld(
  options: { env?: Record<string, string> },
  body: (world: World) => Promise<void>,
): Promise<void> {
  const exchange = uniqueExchange("console");
  await using gateway = await startGateway({ exchange, env: options.env });
  // The browser first: if it cannot start, no actor is left holding its queue
  // (the next test would fail on RESOURCE_LOCKED instead of saying why).
  const browser = await launchBrowser();
  const ecp = await startActor(exchange, "lvm.ecp");
  const apogee = await startActor(exchange, "apogee");
  try {
    await body({ gateway, ecp, apogee, browser });
  } finally {
    await browser.close();
    await ecp.close();
    await apogee.close();
  }
}

/** Opens the console and waits until it is connected with the broker link up. */
async function openConsole(world: World, path = "/"): Promise<WatchedPage> {
  const watched = await openPage(world.browser);
  await watched.page.goto(world.gateway.httpUrl(path));
  await connected(watched.page);
  return watched;
}

async function connected(page: Page): Promise<void> {
  await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
  await page.locator("#broker-state[data-state='up']").waitFor({ timeout: 10_000 });
}

/** The stream row whose body contains `text`, once it is there. */
async function rowWith(
  page: Page,
  text: string,
  actor?: string,
  timeoutMs = 10_000,
): Promise<ReturnType<Page["locator"]>> {
  const row = page.locator(`#stream .row${actor ? `[data-actor='${actor}']` : ""}`, { hasText: text });
  try {
    await row.first().waitFor({ timeout: timeoutMs });
  } catch (err) {
    const counts = await page.textContent("#counts").catch(() => "?");
    const last = await page.locator("#stream .row").last().textContent().catch(() => "?");
    throw new Error(`no row with "${text}" (counts: ${counts}; last row: ${last})`, { cause: err });
  }
  return row.first();
}

function style(page: Page, selector: string, property: string): Promise<string> {
  return page.locator(selector).first().evaluate(
    (element, name) => getComputedStyle(element).getPropertyValue(name),
    property,
  );
}

async function sendCommand(page: Page, actor: string, command: string): Promise<void> {
  await page.fill("#command-actor", actor);
  await page.fill("#command-text", command);
  await page.press("#command-text", "Enter");
}

function assertNoProblems(watched: WatchedPage, allowed: RegExp[] = []): void {
  const problems = watched.problems.filter((p) => !allowed.some((re) => re.test(p)));
  assert.deepEqual(problems, [], `the page reported problems:\n${problems.join("\n")}`);
}

Deno.test("console: live stream, commands, filters, actors and night mode in Chromium", async (t) => {
  await withWorld({}, async (world) => {
    const { ecp, apogee } = world;
    const watched = await openConsole(world);
    const { page } = watched;

    await t.step("the page loads with no console errors and shows both links", async () => {
      assert.equal(await page.textContent("#gateway-state"), "Gateway: connected");
      assert.equal(await page.textContent("#broker-state"), "RabbitMQ: up");
      assert.equal(await page.getAttribute("#status", "aria-live"), "polite");
      assert.match(await page.textContent("#info") ?? "", /role command/);
      assert.equal(await style(page, "body", "background-color"), DAY.background);
      assertNoProblems(watched);
    });

    await t.step("broadcasts appear with their code colours", async () => {
      await ecp.broadcast({ text: "Dome opening", dome_status: "0x10" }, { code: "w" });
      await ecp.broadcast({ temperature: 11.5 }, { code: "i" });
      const warning = await rowWith(page, "Dome opening", "lvm.ecp");
      assert.equal(await warning.getAttribute("data-code"), "w");
      assert.match(await warning.getAttribute("class") ?? "", /\bc-warning\b/);
      assert.equal(await warning.locator(".code").evaluate((e) => getComputedStyle(e).color), DAY.warning);
      assert.match(await warning.locator(".time").textContent() ?? "", /^\d\d:\d\d:\d\d$/);
      assert.match(
        await warning.locator(".body").textContent() ?? "",
        /text="Dome opening"; dome_status="0x10"/,
      );
      const info = await rowWith(page, "temperature=11.5", "lvm.ecp");
      assert.equal(await info.locator(".code").evaluate((e) => getComputedStyle(e).color), DAY.info);
      // Expandable to the full JSON, and collapsible again.
      await info.locator(".expand").click();
      const json = JSON.parse(await info.locator("pre").textContent() ?? "");
      assert.deepEqual(json.body, { temperature: 11.5 });
      assert.equal(json.headers.sender, "lvm.ecp");
      assert.equal(await info.locator(".expand").getAttribute("aria-expanded"), "true");
      await info.locator(".expand").click();
      assert.equal(await info.locator("pre").count(), 0);
    });

    await t.step("ping from the command bar shows sent → running → done with elapsed times", async () => {
      await sendCommand(page, "lvm.ecp", "ping");
      const item = page.locator("#commands li[data-state='done']").first();
      await item.waitFor({ timeout: 10_000 });
      assert.match(await item.locator(".what").textContent() ?? "", /^lvm\.ecp ping$/);
      assert.match(await item.locator(".trail").textContent() ?? "", /^sent → running \d+ ms → done \d+ ms$/);
      assert.match(await item.locator(".elapsed").textContent() ?? "", /^\d+ ms$/);
      const id = await item.getAttribute("data-command-id");
      assert.ok(id);
      assert.equal(ecp.received.at(-1)?.headers.command_id, id, "the actor got the console's command id");
      // Its replies, grouped on demand.
      await item.locator(".replies-toggle").click();
      assert.equal(await item.locator(".replies-toggle").textContent(), "Replies (2)");
      assert.deepEqual(
        await item.locator(".replies .row").evaluateAll((rows) => rows.map((r) => r.dataset.code)),
        [
          ">",
          ":",
        ],
      );
      assert.match(await item.locator(".replies").textContent() ?? "", /text="Pong\."/);
      // The same replies are in the stream, with the command id.
      await rowWith(page, "Pong.", "lvm.ecp");
      assert.equal(await page.locator(`#stream .row[data-command-id='${id}']`).count(), 2);
    });

    await t.step("a failing command ends failed with its error; the up arrow recalls commands", async () => {
      await sendCommand(page, "lvm.ecp", "fail");
      const item = page.locator("#commands li[data-state='failed']").first();
      await item.waitFor({ timeout: 10_000 });
      assert.equal(await item.locator(".command-error").textContent(), "failed on purpose");
      assert.equal(
        await item.locator(".state").evaluate((e) => getComputedStyle(e).backgroundColor),
        DAY.failedBackground,
      );
      const failRow = await rowWith(page, "failed on purpose", "lvm.ecp");
      assert.equal(
        await failRow.locator(".code").evaluate((e) => getComputedStyle(e).backgroundColor),
        DAY.failedBackground,
      );
      await page.fill("#command-actor", "");
      await page.focus("#command-text");
      await page.keyboard.press("ArrowUp");
      assert.equal(await page.inputValue("#command-text"), "fail");
      assert.equal(await page.inputValue("#command-actor"), "lvm.ecp");
      await page.keyboard.press("ArrowUp");
      assert.equal(await page.inputValue("#command-text"), "ping");
      await page.keyboard.press("ArrowDown");
      await page.keyboard.press("ArrowDown");
      assert.equal(await page.inputValue("#command-text"), "", "back to the empty draft");
      await screenshot(page, "console-day");
      assert.deepEqual(await contrastProblems(page), [], "day theme: text below 4.5:1");
    });

    await t.step("an actor filter hides other actors and is kept in the URL", async () => {
      await apogee.broadcast({ text: "apogee before the filter" });
      await rowWith(page, "apogee before the filter", "apogee");
      await page.fill("#filter-actor", "lvm.*");
      await page.waitForFunction(() =>
        document.querySelectorAll("#stream .row[data-actor='apogee']").length === 0
      );
      await page.waitForFunction(() => new URL(location.href).searchParams.get("actor") === "lvm.*");
      await apogee.broadcast({ text: "apogee after the filter" });
      await ecp.broadcast({ text: "ecp after the filter" });
      await rowWith(page, "ecp after the filter", "lvm.ecp");
      assert.equal(await page.locator("#stream .row", { hasText: "apogee after the filter" }).count(), 0);
      // Codes and free text too; a bookmarked URL brings the same view back.
      await page.locator("#filter-codes input[value='i']").uncheck();
      await page.fill("#filter-text", "dome");
      await page.waitForFunction(() => new URL(location.href).searchParams.get("q") === "dome");
      const url = new URL(page.url());
      assert.equal(url.searchParams.get("codes"), ">:f!ewd");
      await screenshot(page, "console-filtered");
      const other = await openPage(world.browser);
      await other.page.goto(url.href);
      await connected(other.page);
      assert.equal(await other.page.inputValue("#filter-actor"), "lvm.*");
      assert.equal(await other.page.inputValue("#filter-text"), "dome");
      assert.equal(await other.page.locator("#filter-codes input[value='i']").isChecked(), false);
      assert.equal(await other.page.locator("#filter-codes input[value='w']").isChecked(), true);
      await ecp.broadcast({ text: "dome info, filtered out by code" }, { code: "i" });
      await ecp.broadcast({ text: "dome warning, shown" }, { code: "w" });
      await apogee.broadcast({ text: "dome warning from apogee, filtered out by actor" }, { code: "w" });
      await rowWith(other.page, "dome warning, shown", "lvm.ecp");
      assert.equal(await other.page.locator("#stream .row").count(), 1);
      assertNoProblems(other);
      await other.close();
      await page.click("#filter-clear");
      await page.waitForFunction(() => location.search === "");
      await rowWith(page, "apogee after the filter", "apogee");
    });

    await t.step("the actors panel lists every actor and shows keyword updates", async () => {
      const item = page.locator("#actors li[data-actor='lvm.ecp']");
      await item.waitFor();
      assert.deepEqual(
        await page.locator("#actors li").evaluateAll((items) => items.map((i) => i.dataset.actor)),
        ["apogee", "lvm.ecp"],
      );
      await item.locator("summary").click();
      const temperature = item.locator("tr[data-keyword='temperature'] td");
      assert.equal(await temperature.textContent(), "11.5");
      await ecp.broadcast({ temperature: 12.25 });
      await page.waitForFunction(() =>
        document.querySelector("#actors li[data-actor='lvm.ecp'] tr[data-keyword='temperature'] td")
          ?.textContent === "12.25"
      );
      assert.equal(await item.locator("tr[data-keyword='dome_status'] td").textContent(), '"0x10"');
      // A page opened now gets the same keywords from the gateway's state, before any new reply.
      const other = await openConsole(world);
      const otherItem = other.page.locator("#actors li[data-actor='lvm.ecp']");
      await otherItem.locator("summary").click();
      await other.page.waitForFunction(() =>
        document.querySelector("#actors li[data-actor='lvm.ecp'] tr[data-keyword='temperature'] td")
          ?.textContent === "12.25"
      );
      assertNoProblems(other);
      await other.close();
      // "Show only" filters the stream to that actor.
      await item.locator(".actor-filter").click();
      assert.equal(await page.inputValue("#filter-actor"), "lvm.ecp");
      await page.click("#filter-clear");
    });

    await t.step("hundreds of replies a second: rows stay bounded and the newest is shown", async () => {
      // Long tasks (over 50 ms of main-thread work at once) would make the page stutter.
      await page.evaluate(() => {
        const longTasks: number[] = [];
        (globalThis as unknown as { longTasks: number[] }).longTasks = longTasks;
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longTasks.push(entry.duration);
        }).observe({ type: "longtask" });
      });
      const total = 2600;
      const started = performance.now();
      for (let i = 0; i < total; i += 200) {
        await Promise.all(
          Array.from({ length: 200 }, (_, j) => apogee.broadcast({ burst: i + j }, { code: "d" })),
        );
      }
      const seconds = (performance.now() - started) / 1000;
      await rowWith(page, `burst=${total - 1}`, "apogee", 30_000);
      const rows = await page.locator("#stream .row").count();
      assert.ok(rows <= 2000, `${rows} rows on the page`);
      assert.ok(rows >= 1900, `${rows} rows on the page`);
      const last = await page.locator("#stream .row").last().locator(".body").textContent();
      assert.equal(last, `burst=${total - 1}`);
      const atBottom = await page.locator("#stream").evaluate((s) =>
        s.scrollHeight - s.scrollTop - s.clientHeight < 24
      );
      assert.ok(atBottom, "it followed the newest row");
      const longTasks = await page.evaluate(() =>
        (globalThis as unknown as { longTasks: number[] }).longTasks
      );
      const longest = Math.max(0, ...longTasks);
      console.log(
        `${total} replies in ${seconds.toFixed(2)} s (${Math.round(total / seconds)}/s); ` +
          `${longTasks.length} long tasks, the longest ${Math.round(longest)} ms`,
      );
      assert.ok(longest < 1000, `the page froze for ${Math.round(longest)} ms`);
    });

    await t.step("pause and scrolling up hold new rows until resumed", async () => {
      await page.click("#pause");
      assert.equal(await page.getAttribute("#pause", "aria-pressed"), "true");
      await ecp.broadcast({ text: "while paused" });
      await page.waitForFunction(() => /1 new/.test(document.querySelector("#counts")?.textContent ?? ""));
      assert.equal(await page.locator("#stream .row", { hasText: "while paused" }).count(), 0);
      await page.keyboard.press("p");
      await rowWith(page, "while paused");
      // Scrolled up to read: new rows wait, and a button says how many.
      await page.locator("#stream").evaluate((s) => s.scrollTo(0, 0));
      await page.locator("#jump").waitFor();
      await ecp.broadcast({ text: "while scrolled up" });
      await page.waitForFunction(() => /1 new/.test(document.querySelector("#jump")?.textContent ?? ""));
      assert.equal(await page.locator("#stream .row", { hasText: "while scrolled up" }).count(), 0);
      assert.equal(await page.locator("#stream").evaluate((s) => s.scrollTop), 0, "the view stayed put");
      await page.click("#jump");
      await rowWith(page, "while scrolled up");
      assert.equal(await page.locator("#jump").isHidden(), true);
    });

    await t.step("night mode toggles by click and key, and persists across a reload", async () => {
      await page.click("#night");
      assert.equal(await page.getAttribute("html", "data-theme"), "night");
      assert.equal(await page.getAttribute("#night", "aria-pressed"), "true");
      assert.equal(await style(page, "body", "background-color"), NIGHT.background);
      assert.equal(await style(page, "body", "color"), NIGHT.foreground);
      await ecp.broadcast({ text: "Dome closing", dome_status: "0x20" }, { code: "w" });
      await sendCommand(page, "lvm.ecp", "status");
      await page.locator("#commands li[data-state='done']", { hasText: "status" }).waitFor();
      await page.locator("#actors li[data-actor='lvm.ecp'] tr[data-keyword='dome']").waitFor();
      await screenshot(page, "console-night");
      assert.deepEqual(await contrastProblems(page), [], "night theme: text below 4.5:1");
      await page.reload();
      await connected(page);
      assert.equal(await page.getAttribute("html", "data-theme"), "night");
      assert.equal(await style(page, "body", "background-color"), NIGHT.background);
      await page.keyboard.press("n");
      assert.equal(await page.getAttribute("html", "data-theme"), "day");
      await page.reload();
      await connected(page);
      assert.equal(await page.getAttribute("html", "data-theme"), "day");
    });

    await t.step(
      "a changed keyword's flash is readable in both themes and ends with a theme change",
      async () => {
        // Each flash is frozen at its brightest the moment its row changes, so
        // the checks see the worst case however slow the machine is.
        const frozenFlash = async (value: number) => {
          await page.evaluate((expected) => {
            const scope = globalThis as unknown as { flashed?: Promise<void> };
            scope.flashed = new Promise<void>((resolve) => {
              const cell = () =>
                document.querySelector("#actors li[data-actor='lvm.ecp'] tr[data-keyword='temperature'] td");
              new MutationObserver((_, observer) => {
                if (cell()?.textContent !== expected) return;
                observer.disconnect();
                for (const animation of cell()!.getAnimations()) animation.pause();
                resolve();
              }).observe(document.querySelector("#actors")!, {
                subtree: true,
                childList: true,
                characterData: true,
              });
            });
          }, String(value));
          await ecp.broadcast({ temperature: value });
          await page.evaluate(() => (globalThis as unknown as { flashed: Promise<void> }).flashed);
        };
        const flashes = () =>
          page.evaluate(() =>
            document.getAnimations().filter((a) => a.id === "keyword-flash" && a.playState === "paused")
              .length
          );
        // The step before reloaded the page: open the actor's keywords again.
        const item = page.locator("#actors li[data-actor='lvm.ecp']");
        await item.locator("summary").click();
        await item.locator("tr[data-keyword='temperature'] td").waitFor();
        assert.equal(await page.getAttribute("html", "data-theme"), "day");
        await frozenFlash(13.5);
        assert.equal(await flashes(), 1, "the day flash is held at its start");
        assert.deepEqual(await contrastProblems(page), [], "day flash: text below 4.5:1");
        await page.click("#night");
        assert.equal(await flashes(), 0, "the day flash ended with the switch to night");
        assert.deepEqual(await contrastProblems(page), [], "night theme after a day flash: text below 4.5:1");
        await frozenFlash(14.5);
        assert.equal(await flashes(), 1, "the night flash is held at its start");
        assert.deepEqual(await contrastProblems(page), [], "night flash: text below 4.5:1");
        await page.click("#night");
        assert.equal(await flashes(), 0);
      },
    );

    await t.step(
      "keyboard: / focuses the filter, arrows move through the replies, focus is visible",
      async () => {
        await page.locator("body").press("/");
        assert.equal(await page.evaluate(() => document.activeElement?.id), "filter-text");
        await page.keyboard.press("Tab");
        const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
        assert.equal(outline, "solid");
        // The stream is one tab stop; arrows move between rows, Enter opens the JSON.
        await ecp.broadcast({ text: "first row for the keyboard" });
        await ecp.broadcast({ text: "second row for the keyboard" });
        await rowWith(page, "second row for the keyboard");
        await page.focus("#stream");
        await page.keyboard.press("ArrowUp");
        await page.keyboard.press("ArrowUp");
        const focused = page.locator("#stream .row:focus");
        assert.equal(await focused.count(), 1);
        assert.equal(await focused.evaluate((row) => row === row.parentElement?.lastElementChild), false);
        await page.keyboard.press("Enter");
        assert.equal(await focused.locator("pre").count(), 1);
        assert.equal(await style(page, "#stream .row:focus", "outline-style"), "solid");
        await page.keyboard.press("Enter");
        assert.equal(await focused.locator("pre").count(), 0);
        const tabStops = await page.evaluate(() =>
          [...document.querySelectorAll("#stream *")].filter((e) => e.tabIndex >= 0).length
        );
        assert.equal(tabStops, 0, "no tab stops inside the stream");
        assertNoProblems(watched);
      },
    );

    if (Deno.env.get("CLU_WS_DOCS_SCREENSHOT") === "1") {
      await t.step("docs screenshot", async () => {
        // A fresh page with a little of everything: broadcasts of each code, commands, keywords.
        const docs = await openConsole(world);
        const shot = docs.page;
        await ecp.broadcast({ text: "Opening the dome", dome_status: "0x08", wind_speed: 4.2 }, {
          code: ">",
        });
        await apogee.broadcast({ exposure_state: "integrating", exptime: 900, ditherpos: [0.5, 0.5] });
        await ecp.broadcast({ dome_status: "0x10", text: "Dome open" }, { code: "i" });
        await apogee.broadcast({ text: "Dewar temperature rising", dewar_temp: -182.4 }, { code: "w" });
        await apogee.broadcast({ collimator: "home", pitch: 0.01 }, { code: "d" });
        await ecp.broadcast({ error: "E-stop engaged on the enclosure" }, { code: "e" });
        for (const [actor, command] of [["lvm.ecp", "status"], ["apogee", "ping"], ["lvm.ecp", "fail"]]) {
          await sendCommand(shot, actor, command);
          await shot.locator(`#commands li:not([data-state='sent']):not([data-state='running'])`, {
            hasText: command,
          }).waitFor();
        }
        await ecp.broadcast({ wind_speed: 5.1, text: "Enclosure ventilators on" }, { code: "i" });
        await shot.locator("#actors li[data-actor='lvm.ecp'] summary").click();
        await shot.locator("#commands li", { hasText: "status" }).locator(".replies-toggle").click();
        await shot.fill("#command-actor", "lvm.ecp");
        await shot.fill("#command-text", "telescope goto --ra 10.5 --dec -30");
        await rowWith(shot, "Enclosure ventilators on");
        await shot.screenshot({ path: DOCS_SCREENSHOT, animations: "disabled" });
        await docs.close();
      });
    }
    await watched.close();
  });
});

Deno.test("console: the token prompt when the gateway uses access tokens", async () => {
  const operator = "operator-token-0123456789";
  const watcher = "watcher-token-0123456789";
  const tokens = JSON.stringify({
    tokens: [
      { name: "ops", role: "command", sha256: bytesToHex(await sha256(operator)) },
      { name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(watcher)) },
    ],
  });
  await withWorld({ env: { CLU_WS_TOKENS: tokens } }, async (world) => {
    // The probe of `actors` without a token and with a wrong one answers 401, which Chromium logs.
    const expected401 = [/status of 401/];
    const watched = await openPage(world.browser);
    const { page } = watched;
    await page.goto(world.gateway.httpUrl("/"));
    await page.locator("#token-dialog[open]").waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "token-input");
    await screenshot(page, "console-token");
    await page.fill("#token-input", "not-a-token-0123456789");
    await page.press("#token-input", "Enter");
    await page.waitForFunction(() =>
      /refused/.test(document.querySelector("#token-error")?.textContent ?? "")
    );
    assert.equal(await page.locator("#token-dialog[open]").count(), 1);
    await page.fill("#token-input", operator);
    await page.press("#token-input", "Enter");
    await connected(page);
    assert.equal(await page.locator("#token-dialog[open]").count(), 0);
    assert.match(await page.textContent("#info") ?? "", /role command/);
    await sendCommand(page, "lvm.ecp", "ping");
    await page.locator("#commands li[data-state='done']").waitFor();
    // Kept for this tab's session only.
    const stored = await page.evaluate(() => ({
      session: { ...sessionStorage },
      local: { ...localStorage },
    }));
    assert.equal(stored.session["clu-ws.token"], operator);
    assert.ok(!JSON.stringify(stored.local).includes(operator), "the token is not in localStorage");
    await page.reload();
    await connected(page);
    assert.equal(await page.locator("#token-dialog[open]").count(), 0, "no prompt again in the same tab");
    assert.equal(await page.isVisible("#forget-token"), true);
    assertNoProblems(watched, expected401);
    await watched.close();

    // A watch token: connected, commands off.
    const viewer = await openPage(world.browser);
    await viewer.page.goto(world.gateway.httpUrl("/"));
    await viewer.page.locator("#token-dialog[open]").waitFor();
    await viewer.page.fill("#token-input", watcher);
    await viewer.page.press("#token-input", "Enter");
    await connected(viewer.page);
    assert.match(await viewer.page.textContent("#info") ?? "", /role watch/);
    assert.equal(await viewer.page.locator("#command-text").isDisabled(), true);
    assert.equal(await viewer.page.locator("#command-send").isDisabled(), true);
    assert.match(await viewer.page.textContent("#command-note") ?? "", /may only watch/);
    await world.ecp.broadcast({ text: "seen with a watch token" });
    await rowWith(viewer.page, "seen with a watch token");
    assertNoProblems(viewer, expected401);
    await viewer.close();
  });
});

Deno.test("console: the link states follow the gateway and RabbitMQ, and it recovers on its own", async () => {
  const exchange = uniqueExchange("console-links");
  await using brokerProxy = TcpProxy.reserve();
  brokerProxy.up();
  await using gateway = await startGateway({
    exchange,
    env: { CLU_WS_URL: `amqp://guest:guest@127.0.0.1:${brokerProxy.port}` },
  });
  // The browser reaches the gateway through a proxy too, so the test can cut its connection.
  await using front = TcpProxy.reserve(gateway.port);
  front.up();
  const actor = await startActor(exchange, "lvm.ecp");
  const browser = await launchBrowser();
  try {
    const watched = await openPage(browser);
    const { page } = watched;
    await page.goto(`http://127.0.0.1:${front.port}/`);
    await connected(page);
    await actor.broadcast({ text: "before the faults" });
    await rowWith(page, "before the faults");

    await brokerProxy.down();
    await page.locator("#broker-state:not([data-state='up'])").waitFor({ timeout: 10_000 });
    assert.equal(await page.getAttribute("#gateway-state", "data-state"), "open");
    await page.locator("#stream .note", { hasText: "RabbitMQ link" }).first().waitFor();
    await screenshot(page, "console-broker-down");
    brokerProxy.up();
    await page.locator("#broker-state[data-state='up']").waitFor({ timeout: 30_000 });

    await front.down();
    await page.locator("#gateway-state:not([data-state='open'])").waitFor({ timeout: 10_000 });
    assert.equal(await page.getAttribute("#broker-state", "data-state"), "unknown");
    assert.match(await page.title(), /connecting|disconnected/);
    await page.locator("#stream .note", { hasText: "Connection to the gateway lost" }).waitFor();
    await actor.broadcast({ text: "sent while the console was cut off" });
    await screenshot(page, "console-disconnected");
    front.up();
    await connected(page);
    // Resumed from where it was: the reply sent during the outage is there, once.
    await rowWith(page, "sent while the console was cut off");
    assert.equal(
      await page.locator("#stream .row", { hasText: "sent while the console was cut off" }).count(),
      1,
    );
    await page.locator("#stream .note", { hasText: "Reconnected" }).waitFor();
    const uncaught = watched.problems.filter((p) => p.startsWith("uncaught"));
    assert.deepEqual(uncaught, []);
    await watched.close();
  } finally {
    await browser.close();
    await actor.close();
  }
});

Deno.test("console: when the gateway stops taking the token, the prompt comes back", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/tokens.toml`;
  const entry = async (name: string, token: string) =>
    `[[tokens]]\nname = "${name}"\nrole = "command"\nsha256 = "${bytesToHex(await sha256(token))}"\n`;
  const first = "first-token-0123456789abc";
  const second = "second-token-0123456789ab";
  try {
    await Deno.writeTextFile(file, await entry("first", first));
    await using gateway = await startGateway({
      exchange: uniqueExchange("console-reauth"),
      args: ["--tokens-file", file],
    });
    await using front = TcpProxy.reserve(gateway.port);
    front.up();
    const browser = await launchBrowser();
    try {
      const watched = await openPage(browser);
      const { page } = watched;
      await page.goto(`http://127.0.0.1:${front.port}/`);
      await page.locator("#token-dialog[open]").waitFor();
      await page.fill("#token-input", first);
      await page.press("#token-input", "Enter");
      await connected(page);

      await Deno.writeTextFile(file, await entry("second", second));
      const before = gateway.logs.length;
      Deno.kill(gateway.pid, "SIGHUP");
      await gateway.waitForLog("the reload", (r) => /1 access tokens loaded/.test(r.message), {
        after: before,
      });
      // The next connection attempt is refused: the console asks again instead of retrying forever.
      await front.down();
      front.up();
      await page.locator("#token-dialog[open]").waitFor({ timeout: 15_000 });
      assert.match(await page.textContent("#token-error") ?? "", /no longer accepts/);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("clu-ws.token")), null);
      await page.fill("#token-input", second);
      await page.press("#token-input", "Enter");
      await connected(page);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("clu-ws.token")), second);
      assert.deepEqual(watched.problems.filter((p) => p.startsWith("uncaught")), []);
      await watched.close();
    } finally {
      await browser.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
