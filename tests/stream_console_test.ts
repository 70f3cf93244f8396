// The console (Chromium) with `--history stream`: on a fresh page, "Last 10 min" loads the replies
// published before the page was opened, from the stream, before the live ones. With the memory
// history the button is not shown.

import assert from "node:assert/strict";
import { uniqueExchange } from "./helpers/broker.ts";
import { startGateway } from "./helpers/gateway_process.ts";
import { launchBrowser, openPage, type Page } from "./helpers/browser.ts";
import { deleteStream, SteadyPublisher, streamArgs, uniqueStream } from "./helpers/stream.ts";

async function connected(page: Page): Promise<void> {
  await page.locator("#gateway-state[data-state='open']").waitFor({ timeout: 10_000 });
  await page.locator("#broker-state[data-state='up']").waitFor({ timeout: 10_000 });
}

/** The bodies' numbers of the rows of `run`'s replies, top to bottom. */
async function numbersShown(page: Page, run: string): Promise<number[]> {
  const bodies = await page.locator("#stream .row[data-actor='steady'] .body").allTextContents();
  return bodies.filter((b) => b.includes(run)).map((b) => Number(/\bn\D+(\d+)/.exec(b)?.[1]));
}

Deno.test("console, --history stream: 'Last 10 min' on a fresh page shows what came before, from the stream", async () => {
  const stream = uniqueStream("console");
  const exchange = uniqueExchange("stream-console");
  try {
    await using gateway = await startGateway({ exchange, args: streamArgs(stream) });
    await using memory = await startGateway({ exchange });
    const publisher = await SteadyPublisher.open(exchange);
    const browser = await launchBrowser();
    try {
      // Published before any page was open: only the stream has them.
      await publisher.burst(30);
      const watched = await openPage(browser);
      const page = watched.page;
      await page.goto(gateway.httpUrl("/"));
      await connected(page);
      await page.locator("#last-minutes").waitFor({ state: "visible", timeout: 10_000 });
      await publisher.burst(1);
      await page.locator("#stream .row[data-actor='steady']").first().waitFor({ timeout: 10_000 });
      assert.deepEqual(await numbersShown(page, publisher.run), [31], "only the live reply so far");

      await page.click("#last-minutes");
      await page.locator("#stream .note", { hasText: "Loaded 30 replies of the last 10 minutes" }).waitFor({
        timeout: 15_000,
      });
      assert.deepEqual(
        await numbersShown(page, publisher.run),
        Array.from({ length: 31 }, (_, i) => i + 1),
        "the thirty from the stream, in order, before the live one",
      );
      await publisher.burst(1);
      await page.locator("#stream .row[data-actor='steady'] .body", { hasText: /\bn\D+32\b/ }).waitFor({
        timeout: 10_000,
      });
      assert.deepEqual(watched.problems, [], "no console errors");

      const other = await openPage(browser);
      await other.page.goto(memory.httpUrl("/"));
      await connected(other.page);
      assert.equal(
        await other.page.locator("#last-minutes").isHidden(),
        true,
        "no button without the stream",
      );
    } finally {
      await browser.close();
      await publisher.close();
    }
  } finally {
    await deleteStream(stream);
  }
});
