/**
 * The "Last 10 min" button: shown when the gateway keeps its history on a
 * RabbitMQ stream (its epoch names the stream), it loads the replies of the
 * last ten minutes into the stream panel, before the live ones, on a fresh
 * page as well as later.
 *
 * @module
 */

import type { CluClient, Frame, Welcome } from "../client.ts";
import { byId } from "./dom.ts";
import { type Entry, entryOf } from "./format.ts";

/** How far back the button reaches. */
export const LAST_MINUTES = 10;

/** Options for {@linkcode createHistoryButton}. */
export interface HistoryButtonOptions {
  /** The current client, if any. */
  client(): CluClient | undefined;
  /** Puts the older entries into the stream panel; returns how many were new. */
  addHistory(entries: Entry[]): number;
  /** Adds a note of the console's own. */
  note(text: string): void;
}

/** The button; {@linkcode HistoryButton.onWelcome} shows or hides it. */
export interface HistoryButton {
  /** A welcome: the button is shown when the gateway has a history stream. */
  onWelcome(welcome: Welcome): void;
}

/** An entry for a reply from the history: its time is the reply's own, when it has one. */
function historyEntry(frame: Frame): Entry {
  const entry = entryOf(frame);
  const sent = frame.timestamp ? Date.parse(frame.timestamp) : NaN;
  return Number.isFinite(sent) ? { ...entry, at: sent } : entry;
}

/** Wires the "Last 10 min" button. */
export function createHistoryButton(options: HistoryButtonOptions): HistoryButton {
  const button = byId<HTMLButtonElement>("last-minutes");
  button.addEventListener("click", async () => {
    const client = options.client();
    if (!client) return;
    button.disabled = true;
    try {
      const frames = await client.repliesSince(Date.now() - LAST_MINUTES * 60_000);
      const added = options.addHistory(frames.map(historyEntry));
      options.note(`Loaded ${added} replies of the last ${LAST_MINUTES} minutes from the history stream.`);
    } catch (err) {
      options.note(
        `Could not load the last ${LAST_MINUTES} minutes: ${err instanceof Error ? err.message : err}`,
      );
    } finally {
      button.disabled = false;
    }
  });
  return {
    onWelcome(welcome) {
      button.hidden = !welcome.epoch.startsWith("stream:");
    },
  };
}
