/// <reference lib="dom" />
/**
 * Day or night (red on black, kept across visits), and the colour the actors
 * panel flashes a changed keyword with, which depends on it.
 *
 * @module
 */

import { byId, load, save } from "./dom.ts";

const THEME_KEY = "clu-ws.theme";

/** The id of a changed keyword's flash animation, so a theme change can find it. */
export const FLASH_ANIMATION_ID = "keyword-flash";

/** The theme switch. */
export interface Theme {
  /** The theme's flash colour (`--flash`), read when the theme was set. */
  flashColor(): string;
  /** Night (true) or day, remembered for the next visit. */
  set(night: boolean): void;
  /** Night if it was day, day if it was night. */
  toggle(): void;
}

/** Applies the remembered theme and listens to the night button. */
export function createTheme(): Theme {
  const button = byId<HTMLButtonElement>("night");
  let flash = "";

  function set(night: boolean): void {
    document.documentElement.dataset.theme = night ? "night" : "day";
    button.setAttribute("aria-pressed", String(night));
    save("local", THEME_KEY, night ? "night" : "day");
    flash = getComputedStyle(document.documentElement).getPropertyValue("--flash").trim();
    // A flash carries the colour of the theme it started in: a day flash under
    // night text is unreadable (and bright at the telescope), so it ends now.
    for (const animation of document.getAnimations()) {
      if (animation.id === FLASH_ANIMATION_ID) animation.cancel();
    }
  }

  function toggle(): void {
    set(button.getAttribute("aria-pressed") !== "true");
  }

  set(load("local", THEME_KEY) === "night");
  button.addEventListener("click", toggle);
  return { flashColor: () => flash, set, toggle };
}
