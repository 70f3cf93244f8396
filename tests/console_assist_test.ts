// The console's command completion and checking, and the keywords' descriptions and units, in Chromium
// (playwright-core) against a real gateway process, the real broker and test actors: one answers the
// introspection commands as a CLU click actor does, one fails them as an actor with another parser does.
// The gateway asks each actor once; the console reads what it learnt (v1 `describe`). With
// CLU_WS_DOCS_SCREENSHOT=1 the completion view is also written to docs/console-completion.png.

import assert from "node:assert/strict";
import { bytesToHex, sha256 } from "../lib/access/tokens.ts";
import { uniqueExchange } from "./helpers/broker.ts";
import { startActor, type TestActor } from "./helpers/actor.ts";
import { type GatewayProcess, type LogRecord, startGateway } from "./helpers/gateway_process.ts";
import { replyTo, WsClient } from "./helpers/ws_client.ts";
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
/** Waits until the command bar flags a wrong value with `message`, and marks the text invalid. */
async function flaggedWrong(page: Page, message: string): Promise<void> {
  const problem = page.locator("#command-problems .problem.wrong");
  await problem.waitFor();
  assert.equal(await problem.textContent(), message);
  assert.equal(await page.getAttribute("#command-text", "aria-invalid"), "true");
}

async function chooseActor(page: Page, actor: string): Promise<void> {
  await page.fill("#command-actor", actor);
  await page.fill("#command-text", "");
  await page.focus("#command-text");
  await page.locator("#command-usage", { hasText: `Usage: ${actor} [OPTIONS] COMMAND [ARGS]...` }).waitFor({
    timeout: 10_000,
  });
}

function assertNoProblems(watched: WatchedPage, allowed: RegExp[] = []): void {
  const problems = watched.problems.filter((p) => !allowed.some((re) => re.test(p)));
  assert.deepEqual(problems, [], `the page reported problems:\n${problems.join("\n")}`);
}

/** The texts of the commands `actor` received from clients (the gateway's introspection apart). */
function commandsTo(actor: TestActor): Array<string | undefined> {
  return actor.received.map((c) => c.body.command_string);
}

/** The introspection commands `actor` received. */
function introspectionOf(actor: TestActor): Array<string | undefined> {
  return actor.introspection.map((c) => c.body.command_string);
}

const ASKED_ONCE = ["get-command-model", "get_schema", "help"];

/** Resolves with the gateway's log record of the next client to connect after log record `after`. */
function connection(gateway: GatewayProcess, after: number, token?: string): Promise<LogRecord> {
  return gateway.waitForLog(
    `a client connecting${token ? ` with token ${token}` : ""}`,
    (r) => /^client \S+ connected from/.test(r.message) && (token === undefined || r.token === token),
    { after },
  );
}

/**
 * Resolves with the gateway's log record of `client`'s disconnection: the gateway handles a socket's frames
 * in order, so by then it has handled every frame that client sent (the record counts its commands).
 */
function disconnection(gateway: GatewayProcess, client: LogRecord): Promise<LogRecord> {
  return gateway.waitForLog(
    `client ${client.client} disconnecting`,
    (r) => r.client === client.client && /^client \S+ from .* disconnected/.test(r.message),
  );
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
      await flaggedWrong(
        page,
        "Invalid value for '{az|alt|rot}': 'sideways' is not one of 'az', 'alt', 'rot'.",
      );
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
      // All the actor got: the held-back `move az` never reached it (it would have come before this one).
      assert.deepEqual(commandsTo(tel), ["move sideways 3", "move az 12.5 --force"]);
    });

    await t.step(
      "an option's choices are offered after it; a wrong one is flagged and held back",
      async () => {
        const before = await page.locator("#commands li.command-item").count();
        await page.fill("#command-text", "");
        await page.type("#command-text", "lamps on arc ");
        await offered(page, ["--level", "--help"]);
        await page.type("#command-text", "--level ");
        await offered(page, ["low", "high"]);
        assert.match(await page.textContent("#command-about") ?? "", /--level \[low\|high\]: Brightness\./);
        await page.type("#command-text", "max");
        await flaggedWrong(page, "Invalid value for '--level': 'max' is not one of 'low', 'high'.");
        await page.press("#command-text", "Enter");
        await page.locator("#command-problems .problem.held").waitFor();
        assert.equal(await page.locator("#commands li.command-item").count(), before, "held back, not sent");
        // Put right with completion: `h` offers `high` alone, and Tab takes it.
        for (let i = 0; i < "max".length; i++) await page.press("#command-text", "Backspace");
        await page.type("#command-text", "h");
        await offered(page, ["high"]);
        await page.keyboard.press("Tab");
        assert.equal(await page.inputValue("#command-text"), "lamps on arc --level high ");
        assert.equal(await page.getAttribute("#command-text", "aria-invalid"), null);
        await page.press("#command-text", "Enter");
        await page.locator("#commands li[data-state='done']", { hasText: "lamps on arc --level high" })
          .waitFor();
        assert.deepEqual(commandsTo(tel), [
          "move sideways 3",
          "move az 12.5 --force",
          "lamps on arc --level high",
        ]);
      },
    );

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
      const sent = { tel: commandsTo(tel), plain: commandsTo(plain) };
      const logged = gateway.logs.length;
      const other = await openConsole(browser, gateway);
      const otherClient = await connection(gateway, logged);
      await chooseActor(other.page, tel.name);
      await other.page.type("#command-text", "move ");
      await offered(other.page, ["az", "alt", "rot", "--speed", "--force", "--help"]);
      await other.close();
      const gone = await disconnection(gateway, otherClient);
      assert.equal(gone.commands, 0, "the page sent no command");
      // A marker to each actor through the gateway: anything the page made the gateway send them was sent
      // before it, so once the marker is answered, nothing else can still arrive.
      for (const actor of [tel, plain]) {
        await page.fill("#command-actor", actor.name);
        await page.fill("#command-text", "ping");
        await page.press("#command-text", "Enter");
        await page.locator("#commands li[data-state='done']", { hasText: `${actor.name} ping` }).waitFor();
      }
      assert.deepEqual(commandsTo(tel), [...sent.tel, "ping"]);
      assert.deepEqual(commandsTo(plain), [...sent.plain, "ping"]);
      assert.deepEqual(introspectionOf(tel), ASKED_ONCE);
      assert.deepEqual(introspectionOf(plain), ASKED_ONCE);
      assertNoProblems(watched);
    });
    await watched.close();
  } finally {
    await browser.close();
    await tel.close();
    await plain.close();
  }
});

Deno.test("console: a watch-only console causes no command to the actor, introspection included", async () => {
  const operator = `operator-${RUN}-0123456789`;
  const watcher = `watcher-${RUN}-0123456789`;
  const tokens = JSON.stringify({
    tokens: [
      { name: "ops", role: "command", sha256: bytesToHex(await sha256(operator)) },
      { name: "dashboard", role: "watch", sha256: bytesToHex(await sha256(watcher)) },
    ],
  });
  const exchange = uniqueExchange("assist-watch");
  await using gateway = await startGateway({ exchange, env: { CLU_WS_TOKENS: tokens } });
  const tel: TestActor = await startActor(exchange, `watched-${RUN}`, { introspection: "clu" });
  const browser = await launchBrowser();
  let ops: WsClient | undefined;
  try {
    await tel.broadcast({ temperature: 11.5, dome: "open" });
    await gateway.waitForLog(
      `introspection of ${tel.name}`,
      (r) => r.actor === tel.name && /^asked .* for its commands/.test(r.message),
    );
    const logged = gateway.logs.length;
    const watched = await openPage(browser);
    const { page } = watched;
    await page.goto(gateway.httpUrl("/"));
    await page.locator("#token-dialog[open]").waitFor({ timeout: 10_000 });
    await page.fill("#token-input", watcher);
    await page.press("#token-input", "Enter");
    await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
    const client = await connection(gateway, logged, "dashboard");
    assert.match(await page.textContent("#info") ?? "", /role watch/);
    assert.equal(await page.locator("#command-text").isDisabled(), true);
    // The console does read what the gateway learnt of the actor (the schema's unit shows)...
    const item = page.locator(`#actors li[data-actor='${tel.name}']`);
    await item.locator("summary").click();
    await item.locator("tr[data-keyword='temperature'] .kw-unit").waitFor({ timeout: 10_000 });
    assert.equal(await item.locator("tr[data-keyword='temperature'] .kw-unit").textContent(), "[degC]");
    await watched.close();
    const gone = await disconnection(gateway, client);
    assert.equal(gone.commands, 0, "the watch console sent no command");
    // ...and never the actor: a marker from a command token, answered, comes after anything it caused.
    ops = await WsClient.connect(gateway.url(`/?token=${operator}`));
    ops.send({ consumer: tel.name, command_string: "ping", command_id: `marker-${RUN}` });
    await ops.next("the marker's end", replyTo(`marker-${RUN}`, ":"), { timeoutMs: 15_000 });
    assert.deepEqual(commandsTo(tel), ["ping"]);
    assert.deepEqual(introspectionOf(tel), ASKED_ONCE);
    // Without a token, and with the prompt's first probe, the gateway answers 401, which Chromium logs.
    assertNoProblems(watched, [/status of 401/]);
  } finally {
    await ops?.close();
    await browser.close();
    await tel.close();
  }
});
