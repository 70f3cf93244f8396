/// <reference lib="dom" />
/**
 * Day or night (red on black, kept across visits), and the colour the actors
 * panel flashes a changed keyword with, which depends on it.
 *
 * @module
 */

import { byId, load, save } from "./dom.ts";

const THEME_KEY = "clu-ws.theme";

/** The theme switch: applies the remembered theme when made. */
export class Theme {
  #button = byId<HTMLButtonElement>("night");
  #flash = "";

  /** Applies the remembered theme and listens to the night button. */
  constructor() {
    this.set(load("local", THEME_KEY) === "night");
    this.#button.addEventListener("click", () => this.toggle());
  }

  /** The theme's flash colour (`--flash`), read when the theme was set. */
  get flashColor(): string {
    return this.#flash;
  }

  /** Night (true) or day, remembered for the next visit. */
  set(night: boolean): void {
    document.documentElement.dataset.theme = night ? "night" : "day";
    this.#button.setAttribute("aria-pressed", String(night));
    save("local", THEME_KEY, night ? "night" : "day");
    this.#flash = getComputedStyle(document.documentElement).getPropertyValue("--flash").trim();
  }

  /** Night if it was day, day if it was night. */
  toggle(): void {
    this.set(this.#button.getAttribute("aria-pressed") !== "true");
  }
}
