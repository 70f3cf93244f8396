/**
 * The `--help` text, read off the option table.
 *
 * @module
 */

import { OPTIONS, type OptionSpec } from "./options.ts";

/** The `--help` text: every option with its default and its variable. */
export function helpText(): string {
  const rows = (OPTIONS as readonly OptionSpec[]).map((o) => {
    const flags = o.noFlag
      ? `    (${o.flag}: env or file)`
      : (o.short ? `-${o.short}, ` : "    ") + `--${o.flag}` + (o.boolean ? "" : " <value>") +
        (o.multiple ? " …" : "");
    const shown = o.shown ?? o.default;
    const extra = [
      shown ? `default ${shown}` : "",
      o.env ? `env ${o.env}` : "",
    ].filter(Boolean).join("; ");
    return `  ${flags.padEnd(30)} ${o.help}${extra ? ` [${extra}]` : ""}`;
  });
  return [
    "clu-ws: a websocket gateway to a CLU actor system over RabbitMQ",
    "",
    "Usage: clu-ws [options]",
    "",
    "Options (flags win over environment variables, which win over a --config file, which wins over defaults):",
    ...rows,
    "",
  ].join("\n");
}
