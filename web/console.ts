/// <reference lib="dom" />
/**
 * The live console that the gateway serves at `/`: the connection state, a
 * live stream of replies with filters kept in the URL, the actors and their
 * keywords, a command bar with each command's lifecycle, a token prompt and a
 * red-on-black night mode. Plain DOM, no framework: everything from the bus is
 * written with `textContent`, never parsed as HTML.
 *
 * This entry only wires the panels of web/console/ together (each keeps its
 * own state) and holds the page-wide keys:
 * - connection.ts: the client module's connection, the indicators, the token prompt
 * - stream.ts (rows.ts): the stream, batched per animation frame, pause and scroll-back
 * - filters.ts (filter_query.ts): the filters, kept in the URL
 * - actors.ts: the actors panel (plot_buttons.ts: its plot toggles)
 * - plots.ts (plot_data.ts, plot_units.ts): numeric keywords plotted over time, with uPlot
 * - commands.ts (command_history.ts): the command bar and each command's lifecycle
 * - command_assist.ts (command_model.ts, command_line.ts): completion and checks in the command bar
 * - descriptions.ts: the actors' commands and keyword schemas, as the gateway learnt them
 * - history.ts: the "Last 10 min" button (the gateway's history stream)
 * - theme.ts, dom.ts, format.ts: night mode, DOM and storage helpers, text
 *
 * @module
 */

import { createActors } from "./console/actors.ts";
import { createCommands } from "./console/commands.ts";
import { createConnection } from "./console/connection.ts";
import { createDescriptions } from "./console/descriptions.ts";
import { createFilters } from "./console/filters.ts";
import { entryOf } from "./console/format.ts";
import { rowClicks } from "./console/rows.ts";
import { createStream } from "./console/stream.ts";
import { createHistoryButton } from "./console/history.ts";
import { createTheme } from "./console/theme.ts";
import { createPlots } from "./console/plots.ts";
import { refreshPlotToggles } from "./console/plot_buttons.ts";

const theme = createTheme();
document.documentElement.classList.remove("loading");

// The panels call each other only through these closures (made once, called after all are made).
const filters = createFilters({ onChange: () => stream.rerender() });
const onRowClick = rowClicks((id) => filters.showText(id));
const stream = createStream({
  matches: (entry) => filters.matches(entry),
  beforeRender: () => actors.render(),
  onRowClick,
});
const descriptions = createDescriptions(() => connection.client());
const commands = createCommands({ client: () => connection.client(), onRowClick, descriptions });
const plots = createPlots({
  client: () => connection.client(),
  onChange: () => refreshPlotToggles(document, plots),
  note: (text) => stream.note(text),
  descriptions,
});
const actors = createActors({
  plots,
  flashColor: theme.flashColor,
  onShowOnly: (actor) => filters.showActor(actor),
  onCommand: (actor) => commands.target(actor),
  requestRender: () => stream.schedule(),
  descriptions,
});
const connection = createConnection({
  onReply: (frame) => {
    stream.add(entryOf(frame));
    actors.fromReply(frame);
    plots.fromReply(frame);
    commands.onReply(frame);
    if (actors.changed()) stream.schedule();
  },
  onWelcome: (hello, client) => {
    descriptions.clear();
    history.onWelcome(hello);
    commands.setRole(hello.role);
    actors.load(client);
    plots.load(client);
  },
  onGap: () => {
    actors.forgetPositions();
    plots.forgetPositions();
  },
  note: (text) => stream.note(text),
});
const history = createHistoryButton({
  client: () => connection.client(),
  addHistory: (entries) => stream.addHistory(entries),
  note: (text) => stream.note(text),
});
stream.rerender();

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || connection.asking()) return;
  const target = event.target as HTMLElement;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  if (event.key === "/") {
    event.preventDefault();
    filters.focusText();
  } else if (event.key === "p") {
    stream.togglePause();
  } else if (event.key === "n") {
    theme.toggle();
  } else if (event.key === "End" && target.closest("button, summary") === null) {
    event.preventDefault();
    stream.jumpToLatest();
  }
});
setInterval(() => {
  connection.showRate();
  actors.refreshLastSeen();
}, 1000);

connection.start();
