/// <reference lib="dom" />
/**
 * The command bar's help while typing, for an actor whose command tree the
 * gateway knows: the usage and help of the command being typed, the
 * candidates for the word being typed (Tab or a click fills it in), and what
 * is wrong with it. A command with a problem is held back once, with a note;
 * sending it again sends it anyway (the actor has the last word). Without a
 * command tree the bar is the free text it always was, and shows nothing.
 *
 * The thinking is in `command_line.ts`; this file only writes it down.
 *
 * @module
 */

import { type Analysis, analyze, commonPrefix, complete, problemsOnSend } from "./command_line.ts";
import { argumentLabel, type CommandSpec, optionLabel, usageLine } from "./command_model.ts";
import { byId, el } from "./dom.ts";

/** Candidates shown at most under the bar. */
const SHOWN_CANDIDATES = 20;

/** The assistance of the command bar. */
export interface CommandAssist {
  /** The command tree of the actor in the bar, or undefined for free text. */
  setModel(actor: string, model: CommandSpec | undefined): void;
  /** The text changed: writes the usage, candidates and problems again. */
  update(): void;
  /** Tab: fills in the word being typed; false when there is nothing to fill (Tab then moves on). */
  tab(): boolean;
  /** Whether to send `text` now: false the first time a command with problems is sent (it says why). */
  allowSend(text: string): boolean;
}

/** Assistance for the `#command-text` input, written into `#command-assist`. */
export function createCommandAssist(input: HTMLInputElement): CommandAssist {
  const box = byId("command-assist");
  const usage = byId("command-usage");
  const about = byId("command-about");
  const list = byId<HTMLUListElement>("command-suggestions");
  const problemList = byId<HTMLUListElement>("command-problems");
  let actor = "";
  let model: CommandSpec | undefined;
  let analysis: Analysis | undefined;
  /** The text the user was told has problems: sending it again sends it. */
  let heldBack: string | undefined;

  list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the input's focus
  input.addEventListener("blur", () => {
    list.hidden = true;
  });
  list.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-value]");
    if (!button || !analysis) return;
    fill(complete(input.value, analysis, button.dataset.value!));
  });

  function fill(text: string): void {
    input.value = text;
    input.setSelectionRange(text.length, text.length);
    input.focus();
    update();
  }

  function update(): void {
    if (!model) {
      box.hidden = true;
      input.removeAttribute("aria-invalid");
      delete box.dataset.check;
      return;
    }
    box.hidden = false;
    analysis = analyze(model, input.value);
    const { command, path, focus, candidates, problems } = analysis;
    usage.textContent = usageLine(actor, path, command);
    const lines: string[] = [];
    if (command.help) lines.push(command.help);
    if (focus) {
      const label = focus.kind === "argument" ? argumentLabel(focus) : optionLabel(focus);
      lines.push(
        `${label}${focus.help ? `: ${focus.help}` : ""}${
          focus.default !== undefined && !focus.flag ? ` [default: ${focus.default}]` : ""
        }`,
      );
    }
    about.textContent = lines.join(" — ");
    list.replaceChildren(
      ...candidates.slice(0, SHOWN_CANDIDATES).map((candidate) => {
        const item = el("li");
        const button = el("button", `suggestion k-${candidate.kind}`);
        button.type = "button";
        button.dataset.value = candidate.value;
        button.append(el("span", "value", candidate.value));
        if (candidate.help) button.append(el("span", "help", candidate.help));
        button.title = candidate.help ?? candidate.value;
        item.append(button);
        return item;
      }),
    );
    // Candidates only while typing: a bar left with an actor in it does not keep a row of buttons.
    list.hidden = candidates.length === 0 || document.activeElement !== input;
    problemList.replaceChildren(
      ...problems.map((problem) => el("li", `problem ${problem.kind}`, problem.message)),
    );
    const wrong = problems.some((p) => p.kind === "wrong");
    if (wrong) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    box.dataset.check = wrong ? "wrong" : problems.length ? "missing" : "ok";
    if (heldBack !== undefined && heldBack !== input.value.trim()) heldBack = undefined;
  }

  return {
    setModel(name, spec) {
      actor = name;
      model = spec;
      heldBack = undefined;
      update();
    },
    update,
    tab() {
      if (!model || !analysis || analysis.candidates.length === 0) return false;
      const { candidates, current } = analysis;
      if (candidates.length === 1) {
        fill(complete(input.value, analysis, candidates[0].value));
        return true;
      }
      const prefix = commonPrefix(candidates);
      if (prefix.length <= current.length) return false;
      fill(input.value.slice(0, analysis.currentStart) + prefix);
      return true;
    },
    allowSend(text) {
      if (!model) return true;
      const problems = problemsOnSend(model, text);
      if (problems.length === 0 || heldBack === text) {
        heldBack = undefined;
        return true;
      }
      heldBack = text;
      problemList.replaceChildren(
        ...problems.map((problem) => el("li", `problem ${problem.kind}`, problem.message)),
        el(
          "li",
          "problem held",
          "Not sent: press Enter again to send it anyway (the actor has the last word).",
        ),
      );
      box.dataset.check = "held";
      return false;
    },
  };
}
