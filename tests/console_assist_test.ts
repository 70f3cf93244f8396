// The console's command completion and checking, and the keywords' descriptions and units, in Chromium
// (playwright-core) against a real gateway process, the real broker and test actors: one answers the
// introspection commands as a CLU click actor does, one fails them as an actor with another parser does.
// The gateway asks each actor once; the console reads what it learnt (v1 `describe`). With
// CLU_WS_DOCS_SCREENSHOT=1 the completion view is also written to docs/console-completion.png.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, startGateway } from "./helpers/gateway_process.ts";
import {
  type Browser,
  contrastProblems,
  launchBrowser,
  openPage,
  type Page,
  type PageDocument,
  screenshot,
  type WatchedPage,
} from "./helpers/browser.ts";

// Functions passed to page.evaluate run in Chromium; see PageDocument.
declare const document: PageDocument;

const DOCS_SCREENSHOT = new URL("../docs/console-completion.png", import.meta.url).pathname;
const RUN = crypto.randomUUID().slice(0, 6);

async function openConsole(browser: Browser, gateway: GatewayProcess): Promise<WatchedPage> {
  const watched = await openPage(browser);
  await watched.page.goto(gateway.httpUrl("/"));
  await watched.page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
  await watched.page.locator("#broker-state[data-state='up']").waitFor({ timeout: 10_000 });
  return watched;
}

/** The completions offered under the command bar now. */
function suggestions(page: Page): Promise<string[]> {
  return page.locator("#command-suggestions button").evaluateAll((buttons) =>
    buttons.map((b) => b.dataset.value ?? "")
  );
}

/** Waits until the completions are exactly `expected`. */
async function offered(page: Page, expected: string[]): Promise<void> {
  try {
    await page.waitForFunction(
      (want) =>
        JSON.stringify(
          [...document.querySelectorAll("#command-suggestions button")].map((b) => b.dataset.value),
        ) === want,
      JSON.stringify(expected),
      { timeout: 10_000 },
    );
  } catch (err) {
    throw new Error(
      `completions are ${JSON.stringify(await suggestions(page))}, not ${JSON.stringify(expected)}`,
      {
        cause: err,
      },
    );
  }
}

/** Puts `actor` in the bar and waits for its command tree to be there (the usage line shows it). */
async function chooseActor(page: Page, actor: string): Promise<void> {
  await page.fill("#command-actor", actor);
  await page.fill("#command-text", "");
  await page.focus("#command-text");
  await page.locator("#command-usage", { hasText: `Usage: ${actor} [OPTIONS] COMMAND [ARGS]...` }).waitFor({
    timeout: 10_000,
  });
}

function assertNoProblems(watched: WatchedPage): void {
  assert.deepEqual(watched.problems, [], `the page reported problems:\n${watched.problems.join("\n")}`);
}

Deno.test("console: completion and checks from the actor's command model; keyword units", async (t) => {
  const exchange = uniqueExchange("assist");
  await using gateway = await startGateway({ exchange });
  const tel: TestActor = await startActor(exchange, `tel-${RUN}`, { introspection: "clu" });
  const plain: TestActor = await startActor(exchange, `plain-${RUN}`);
  const browser = await launchBrowser();
  try {
    for (const actor of [tel, plain]) {
      await actor.broadcast({ temperature: 11.5, dome: "open" });
      await gateway.waitForLog(
        `introspection of ${actor.name}`,
        (r) => r.actor === actor.name && /^asked .* for its commands/.test(r.message),
      );
    }
    const watched = await openConsole(browser, gateway);
    const { page } = watched;

    await t.step("Tab and clicks complete commands, choices and options; usage and help follow", async () => {
      await chooseActor(page, tel.name);
      assert.ok((await suggestions(page)).includes("move"));
      await page.type("#command-text", "mo");
      await offered(page, ["move"]);
      await page.keyboard.press("Tab");
      assert.equal(await page.inputValue("#command-text"), "move ");
      await offered(page, ["az", "alt", "rot", "--speed", "--force", "--help"]);
      assert.equal(
        await page.textContent("#command-usage"),
        `Usage: ${tel.name} move [OPTIONS] {az|alt|rot} DEGREES`,
      );
      assert.match(
        await page.textContent("#command-about") ?? "",
        /Moves one axis of the test mount by DEGREES/,
      );
      await page.type("#command-text", "a");
      await offered(page, ["az", "alt"]);
      await page.click("#command-suggestions button[data-value='alt']");
      assert.equal(await page.inputValue("#command-text"), "move alt ");
      await page.type("#command-text", "10 ");
      await offered(page, ["--speed", "--force", "--help"]);
      await page.type("#command-text", "--sp");
      await page.keyboard.press("Tab");
      assert.equal(await page.inputValue("#command-text"), "move alt 10 --speed ");
      assert.match(
        await page.textContent("#command-about") ?? "",
        /--speed FLOAT: Slew speed in deg\/s\. \[default: 1\]/,
      );
      // Groups: `lamps` offers its subcommands.
      await page.fill("#command-text", "");
      await page.type("#command-text", "lamps ");
      await offered(page, ["on", "off"]);
      await screenshot(page, "console-completion");
    });

    await t.step("a wrong choice is flagged before sending; Enter again sends it anyway", async () => {
      const before = await page.locator("#commands li.command-item").count();
      await page.fill("#command-text", "");
      await page.type("#command-text", "move sideways 3");
      const problem = page.locator("#command-problems .problem.wrong");
      await problem.waitFor();
      assert.equal(
        await problem.textContent(),
        "Invalid value for '{az|alt|rot}': 'sideways' is not one of 'az', 'alt', 'rot'.",
      );
      assert.equal(await page.getAttribute("#command-text", "aria-invalid"), "true");
      await page.press("#command-text", "Enter");
      assert.equal(await page.locator("#commands li.command-item").count(), before, "held back, not sent");
      assert.match(
        await page.textContent("#command-problems") ?? "",
        /Not sent: press Enter again to send it anyway/,
      );
      assert.equal(await page.inputValue("#command-text"), "move sideways 3");
      await page.press("#command-text", "Enter");
      const item = page.locator("#commands li[data-state='failed']", { hasText: "move sideways 3" });
      await item.waitFor({ timeout: 10_000 });
      assert.equal(
        await item.locator(".command-error").textContent(),
        "Command 'move sideways 3' does not exist or cannot be parsed.",
      );
      assert.deepEqual(tel.received.map((c) => c.body.command_string), ["move sideways 3"]);
    });

    await t.step("a missing argument is flagged on Enter; a good command goes at once", async () => {
      await page.fill("#command-text", "");
      await page.type("#command-text", "move az");
      assert.equal(await page.getAttribute("#command-text", "aria-invalid"), null);
      await page.press("#command-text", "Enter");
      assert.match(
        await page.textContent("#command-problems") ?? "",
        /Missing argument 'DEGREES'\..*Not sent/,
      );
      await page.type("#command-text", " 12.5 --force");
      assert.equal(await page.textContent("#command-problems"), "");
      await page.press("#command-text", "Enter");
      await page.locator("#commands li[data-state='done']", { hasText: "move az 12.5 --force" }).waitFor();
      assert.equal(tel.received.at(-1)?.body.command_string, "move az 12.5 --force");
    });

    await t.step("an actor without a model: free text, no completion and no warning", async () => {
      await page.fill("#command-actor", plain.name);
      await page.fill("#command-text", "");
      await page.type("#command-text", "move sideways 3");
      assert.equal(await page.isHidden("#command-assist"), true);
      assert.equal(await page.getAttribute("#command-text", "aria-invalid"), null);
      await page.press("#command-text", "Enter");
      await page.locator("#commands li", { hasText: `${plain.name} move sideways 3` }).waitFor();
      assert.equal(await page.isHidden("#command-assist"), true);
      // Back to the click actor: completion comes back.
      await chooseActor(page, tel.name);
    });

    await t.step("the actors panel shows each keyword's description and unit from the schema", async () => {
      const item = page.locator(`#actors li[data-actor='${tel.name}']`);
      await item.locator("summary").click();
      const temperature = item.locator("tr[data-keyword='temperature'] th");
      await temperature.locator(".kw-unit").waitFor({ timeout: 10_000 });
      assert.equal(await temperature.locator(".kw-name").textContent(), "temperature");
      assert.equal(await temperature.locator(".kw-unit").textContent(), "[degC]");
      assert.equal(await temperature.locator(".kw-desc").textContent(), "Test enclosure temperature");
      assert.equal(await item.locator("tr[data-keyword='temperature'] td").textContent(), "11.5");
      const dome = item.locator("tr[data-keyword='dome'] th");
      assert.equal(await dome.locator(".kw-desc").textContent(), "Dome state: open or closed");
      assert.equal(await dome.locator(".kw-unit").count(), 0, "no unit where the schema has none");
      const plainItem = page.locator(`#actors li[data-actor='${plain.name}']`);
      await plainItem.locator("summary").click();
      const plainName = plainItem.locator("tr[data-keyword='temperature'] th");
      assert.equal(await plainName.locator(".kw-name").textContent(), "temperature");
      assert.equal(await plainName.locator(".kw-unit, .kw-desc").count(), 0, "no schema, nothing added");
    });

    await t.step("readable in both themes, with the checks shown", async () => {
      await page.fill("#command-text", "");
      await page.type("#command-text", "move sideways ");
      await page.locator("#command-problems .problem.wrong").waitFor();
      assert.deepEqual(await contrastProblems(page), [], "day theme: text below 4.5:1");
      await page.click("#night");
      assert.deepEqual(await contrastProblems(page), [], "night theme: text below 4.5:1");
      await screenshot(page, "console-completion-night");
      await page.click("#night");
    });

    if (Deno.env.get("CLU_WS_DOCS_SCREENSHOT") === "1") {
      await t.step("docs screenshot", async () => {
        await tel.broadcast({ temperature: 12.25, dome: "open", position: [181.5, 62.0] });
        await tel.broadcast({ text: "Slewing" }, { code: "w" });
        await page.locator("#stream .row", { hasText: "Slewing" }).waitFor();
        await page.fill("#command-text", "");
        await page.type("#command-text", "move ");
        await offered(page, ["az", "alt", "rot", "--speed", "--force", "--help"]);
        await page.mouse.move(0, 0);
        await page.screenshot({ path: DOCS_SCREENSHOT, animations: "disabled" });
      });
    }

    await t.step("pages and clients cause no command to the actors", async () => {
      const other = await openConsole(browser, gateway);
      await chooseActor(other.page, tel.name);
      await other.close();
      assert.deepEqual(tel.introspection.map((c) => c.body.command_string), [
        "get-command-model",
        "get_schema",
        "help",
      ]);
      assert.deepEqual(plain.introspection.map((c) => c.body.command_string), [
        "get-command-model",
        "get_schema",
        "help",
      ]);
      assertNoProblems(watched);
    });
    await watched.close();
  } finally {
    await browser.close();
    await tel.close();
    await plain.close();
  }
});
