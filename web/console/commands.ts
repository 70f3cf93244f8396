/// <reference lib="dom" />
/**
 * The command bar and the commands panel: send a command to an actor, follow
 * its lifecycle (sent → running → done, failed or timeout) with the time it
 * took, open its replies; the up and down arrows walk the history of commands
 * sent, kept across visits. For an actor whose commands the gateway knows,
 * `command_assist.ts` completes and checks what is typed.
 *
 * @module
 */

import { type CluClient, CommandError, type CommandResult, type Frame, type Welcome } from "../client.ts";
import { CommandHistory } from "./command_history.ts";
import { createCommandAssist } from "./command_assist.ts";
import type { Descriptions } from "./descriptions.ts";
import { byId, el, load, save } from "./dom.ts";
import { duration, entryOf, jsonText, newCommandId } from "./format.ts";
import { rowFor } from "./rows.ts";

/** Commands kept in the commands panel. */
const MAX_COMMANDS = 50;
const HISTORY_KEY = "clu-ws.history";

type CommandState = "sent" | "running" | "done" | "failed" | "timeout";

interface CommandView {
  id: string;
  started: number;
  state: CommandState;
  trail: string[];
  replies: Frame[];
  item: HTMLLIElement;
  stateEl: HTMLElement;
  elapsedEl: HTMLElement;
  trailEl: HTMLElement;
  errorEl: HTMLElement;
  toggle: HTMLButtonElement;
  repliesBox?: HTMLElement;
}

/** Options for {@linkcode createCommands}. */
export interface CommandsOptions {
  /** The connected client, if any. */
  client: () => CluClient | undefined;
  /** Clicks on the rows of a command's replies (`{…}` and command ids). */
  onRowClick: (event: MouseEvent) => void;
  /** The actors' command trees, as the gateway learnt them. */
  descriptions: Descriptions;
}

/** The command bar and the commands panel. */
export interface Commands {
  /** Puts `actor` in the bar, ready for a command. */
  target(actor: string): void;
  /** Turns the bar off for a watch-only token. */
  setRole(role: Welcome["role"] | undefined): void;
  /** Adds a reply to its command, if it answers one of ours; the first `>` marks it running. */
  onReply(frame: Frame): void;
}

/** Shows the empty commands panel and listens to the command bar. */
export function createCommands(options: CommandsOptions): Commands {
  const list = byId<HTMLOListElement>("commands");
  const bar = byId<HTMLFormElement>("command-bar");
  const fields = byId<HTMLFieldSetElement>("command-fields");
  const actorInput = byId<HTMLInputElement>("command-actor");
  const textInput = byId<HTMLInputElement>("command-text");
  const note = byId("command-note");
  const views = new Map<string, CommandView>();
  const history = new CommandHistory(load("local", HISTORY_KEY));
  const assist = createCommandAssist(textInput);
  let ticker: ReturnType<typeof setInterval> | undefined;

  /** Completion follows the actor in the bar: its command tree when the gateway knows it, else free text. */
  function followActor(): void {
    const actor = actorInput.value.trim();
    assist.setModel(actor, options.descriptions.get(actor)?.model);
  }
  options.descriptions.onChange((actor) => {
    if (actor === actorInput.value.trim()) followActor();
  });

  /** The up and down arrows walk the history; Tab completes. */
  function onKey(event: KeyboardEvent): void {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.key === "Tab") {
      if (assist.tab()) event.preventDefault();
      return;
    }
    if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
    event.preventDefault();
    const current = { actor: actorInput.value, text: textInput.value };
    const shown = history.move(event.key === "ArrowUp" ? "up" : "down", current);
    if (!shown) return;
    actorInput.value = shown.actor;
    textInput.value = shown.text;
    const end = shown.text.length;
    textInput.setSelectionRange(end, end);
    followActor();
  }

  function send(event: SubmitEvent): void {
    event.preventDefault();
    const actor = actorInput.value.trim();
    const text = textInput.value.trim();
    if (!actor || !text) return;
    if (!assist.allowSend(text)) return;
    history.remember({ actor, text });
    save("local", HISTORY_KEY, JSON.stringify(history));
    textInput.value = "";
    assist.update();
    const view = commandView(newCommandId(), actor, text);
    const client = options.client();
    if (!client) {
      finish(view, undefined, "not connected to the gateway");
      return;
    }
    client.command(actor, text, { commandId: view.id }).then(
      (result) => finish(view, result),
      (err) =>
        finish(
          view,
          err instanceof CommandError ? err.result : undefined,
          err instanceof Error ? err.message : String(err),
        ),
    );
  }

  function commandView(id: string, actor: string, text: string): CommandView {
    const item = el("li", "command-item st-sent");
    item.dataset.commandId = id;
    item.dataset.state = "sent";
    const line = el("div", "command-line");
    const what = el("span", "what", `${actor} ${text}`);
    what.title = `${actor} ${text}\ncommand id ${id}`;
    const stateEl = el("span", "state", "sent");
    const elapsedEl = el("span", "elapsed", "0 ms");
    line.append(what, stateEl, elapsedEl);
    const trailEl = el("div", "trail", "sent");
    const errorEl = el("div", "command-error");
    errorEl.hidden = true;
    const toggle = el("button", "replies-toggle", "Replies (0)");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    item.append(line, trailEl, errorEl, toggle);
    const view: CommandView = {
      id,
      started: performance.now(),
      state: "sent",
      trail: ["sent"],
      replies: [],
      item,
      stateEl,
      elapsedEl,
      trailEl,
      errorEl,
      toggle,
    };
    toggle.addEventListener("click", () => toggleReplies(view));
    views.set(id, view);
    list.querySelector(".panel-empty")?.remove();
    list.prepend(item);
    while (list.childElementCount > MAX_COMMANDS) {
      const last = list.lastElementChild as HTMLElement;
      views.delete(last.dataset.commandId ?? "");
      last.remove();
    }
    ticker ??= setInterval(tick, 100);
    return view;
  }

  function toggleReplies(view: CommandView): void {
    if (view.repliesBox) {
      view.repliesBox.remove();
      view.repliesBox = undefined;
      view.toggle.setAttribute("aria-expanded", "false");
      return;
    }
    const box = el("div", "replies");
    box.addEventListener("click", options.onRowClick);
    for (const frame of view.replies) box.append(rowFor(entryOf(frame), false));
    view.repliesBox = box;
    view.item.append(box);
    view.toggle.setAttribute("aria-expanded", "true");
  }

  /** Moves the elapsed time of commands still going; stops when none is. */
  function tick(): void {
    let running = 0;
    for (const view of views.values()) {
      if (view.state !== "sent" && view.state !== "running") continue;
      running++;
      view.elapsedEl.textContent = duration(performance.now() - view.started);
    }
    if (running === 0) {
      clearInterval(ticker);
      ticker = undefined;
    }
  }

  list.append(el("li", "panel-empty", "Commands you send appear here."));
  bar.addEventListener("submit", send);
  textInput.addEventListener("keydown", onKey);
  textInput.addEventListener("input", () => assist.update());
  textInput.addEventListener("focus", followActor);
  // On change, not on every key: a half-typed name is no actor worth asking the gateway about.
  actorInput.addEventListener("change", followActor);

  return {
    target(actor) {
      actorInput.value = actor;
      textInput.focus();
      followActor();
    },
    setRole(role) {
      const watchOnly = role === "watch";
      fields.disabled = watchOnly;
      bar.dataset.role = role ?? "";
      if (watchOnly) note.textContent = "This access token may only watch: commands are off.";
    },
    onReply(frame) {
      const id = frame.headers.command_id;
      if (id === undefined || id === null) return;
      const view = views.get(String(id));
      if (!view) return;
      view.replies.push(frame);
      view.toggle.textContent = `Replies (${view.replies.length})`;
      if (view.repliesBox) view.repliesBox.append(rowFor(entryOf(frame), false));
      if (view.state === "sent" && frame.headers.message_code === ">") {
        setState(view, "running", performance.now() - view.started);
      }
    },
  };
}

function setState(view: CommandView, state: CommandState, elapsedMs: number): void {
  view.state = state;
  view.trail.push(`${state} ${duration(elapsedMs)}`);
  view.trailEl.textContent = view.trail.join(" → ");
  view.stateEl.textContent = state;
  view.item.className = `command-item st-${state}`;
  view.item.dataset.state = state;
  view.elapsedEl.textContent = duration(elapsedMs);
}

function finish(view: CommandView, result: CommandResult | undefined, error?: string): void {
  const elapsed = result?.elapsedMs ?? performance.now() - view.started;
  setState(view, result?.status ?? "failed", elapsed);
  if (result?.status !== "done") {
    const reason = result?.error ??
      (result?.replies.length ? jsonText(result.replies.at(-1)?.body) : undefined) ?? error ?? "failed";
    view.errorEl.textContent = reason;
    view.errorEl.hidden = false;
  }
}
