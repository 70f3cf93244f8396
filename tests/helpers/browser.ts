/**
 * A real browser for the console's tests: Playwright (`playwright-core`, no
 * bundled browsers) driving Debian's Chromium, with every console error, page
 * error and failed request of a page collected so a test can insist on none.
 *
 * @module
 */

import { type Browser, chromium, type ConsoleMessage, type Page } from "playwright-core";

export type { Browser, Page };

/**
 * The few DOM types that functions run inside the page (`page.evaluate`) use.
 * Deno type-checks those functions without the DOM library: a `lib="dom"`
 * reference in a test would change the types of every other test checked
 * with it. A test declares `document` and `getComputedStyle` with these.
 */
export interface PageElement {
  /** The element's id. */
  id: string;
  /** Its tag name. */
  tagName: string;
  /** Its tab index. */
  tabIndex: number;
  /** Its text. */
  textContent: string | null;
  /** Its classes. */
  classList: Iterable<string>;
  /** Its data attributes. */
  dataset: Record<string, string | undefined>;
  /** Its parent. */
  parentElement: PageElement | null;
  /** Its last child element. */
  lastElementChild: PageElement | null;
  /** Its child nodes (type 3: text). */
  childNodes: Iterable<{ nodeType: number; textContent: string | null }>;
  /** The nearest ancestor (or itself) matching `selector`. */
  closest(selector: string): PageElement | null;
  /** Its box. */
  getBoundingClientRect(): { width: number; height: number };
  /** Whether it is rendered and visible. */
  checkVisibility(options?: { visibilityProperty?: boolean }): boolean;
  /** Its running, paused or pending animations. */
  getAnimations(): PageAnimation[];
}

/** A Web Animation, as far as tests use it. */
export interface PageAnimation {
  /** The id its script gave it. */
  id: string;
  /** "running", "paused", "finished" or "idle". */
  playState: string;
  /** Holds it where it is. */
  pause(): void;
}

/** The page's document, as far as tests use it. */
export interface PageDocument {
  /** The focused element. */
  activeElement: PageElement | null;
  /** The first element matching `selector`. */
  querySelector(selector: string): PageElement | null;
  /** Every element matching `selector`. */
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
  /** Every animation on the page. */
  getAnimations(): PageAnimation[];
}

/** A `MutationObserver`, as far as tests use it. */
export interface PageMutationObserver {
  /** Watches `target` for the changes `options` name. */
  observe(
    target: PageElement,
    options: { subtree?: boolean; childList?: boolean; characterData?: boolean },
  ): void;
  /** Stops watching. */
  disconnect(): void;
}

/** A computed style, as far as tests use it. */
export interface PageStyle {
  /** Any property by its CSS name. */
  getPropertyValue(name: string): string;
  /** Text colour. */
  color: string;
  /** Background colour. */
  backgroundColor: string;
  /** Outline style. */
  outlineStyle: string;
  /** Font size. */
  fontSize: string;
  /** Font weight. */
  fontWeight: string;
}

declare const document: PageDocument;
declare function getComputedStyle(element: unknown): PageStyle;

/** Where Chromium is; `CLU_WS_CHROMIUM` overrides Debian's `/usr/bin/chromium`. */
export const CHROMIUM = Deno.env.get("CLU_WS_CHROMIUM") ?? "/usr/bin/chromium";

/** Where screenshots go (gitignored). */
export const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);

/** Starts a headless Chromium, or throws an error that says how to install it. */
export async function launchBrowser(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is not at ${CHROMIUM}; the console tests drive a real browser: install it with ` +
        "`apt-get update && apt-get install -y chromium` (or set CLU_WS_CHROMIUM to its path).",
    );
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
}

/** A page and what went wrong on it. */
export interface WatchedPage {
  /** The page. */
  page: Page;
  /** Console errors and warnings, uncaught exceptions and failed requests, as text. */
  problems: string[];
  /** Closes the page's browser context. */
  close(): Promise<void>;
}

/** Opens a page in a fresh context (its own storage) and records every problem on it. */
export async function openPage(
  browser: Browser,
  options: { viewport?: { width: number; height: number } } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1360, height: 820 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`console ${message.type()}: ${message.text()} (${message.location().url})`);
    }
  });
  page.on("pageerror", (error: Error) => problems.push(`uncaught: ${error.message}`));
  page.on("requestfailed", (request) => {
    problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ""}`);
  });
  return { page, problems, close: () => context.close() };
}

/** Saves a full-window screenshot as test-artifacts/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const path = new URL(`${name}.png`, ARTIFACTS).pathname;
  await page.screenshot({ path, animations: "disabled" });
  return path;
}

/**
 * Text on the page whose contrast with its background is below WCAG AA (4.5:1,
 * or 3:1 for large text), as "selector text: ratio" lines. Backgrounds are
 * found by walking up to the first opaque one; disabled controls are exempt,
 * as WCAG has it.
 */
export function contrastProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    function rgba(text: string): number[] {
      const parts = text.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0, 0];
      return [parts[0], parts[1], parts[2], parts[3] ?? 1];
    }
    function luminance([r, g, b]: number[]): number {
      const [lr, lg, lb] = [r, g, b].map((v) => {
        const c = v / 255;
        return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * lr + 0.7152 * lg + 0.0722 * lb;
    }
    function blend(top: number[], bottom: number[]): number[] {
      const a = top[3];
      return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
    }
    function background(element: PageElement | null): number[] {
      const layers: number[][] = [];
      for (let e = element; e; e = e.parentElement) {
        const color = rgba(getComputedStyle(e).backgroundColor);
        if (color[3] > 0) layers.push(color);
        if (color[3] >= 1) break;
      }
      let result = [255, 255, 255, 1];
      for (const layer of layers.reverse()) result = blend(layer, result);
      return result;
    }
    const problems: string[] = [];
    for (const element of document.querySelectorAll("body *")) {
      const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent?.trim());
      if (!own) continue;
      const rect = element.getBoundingClientRect();
      if (rect.width <= 1 || rect.height <= 1 || !element.checkVisibility({ visibilityProperty: true })) {
        continue;
      }
      if (element.closest(":disabled, [aria-disabled='true']")) continue;
      const style = getComputedStyle(element);
      const fg = blend(rgba(style.color), background(element));
      const bg = background(element);
      const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        const name = `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ""}.${
          [...element.classList].join(".")
        }`;
        problems.push(`${name} "${element.textContent?.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
      }
    }
    return problems;
  });
}
