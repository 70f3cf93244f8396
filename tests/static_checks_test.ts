// The static checks as a test, so that `deno task test` (what CI runs) guards
// them too: `deno task check` (formatting, lint, types of the code, tests,
// bench, tools and web files, and the public API's documentation).

import assert from "node:assert/strict";

Deno.test("static checks: `deno task check` passes (fmt, lint, types, doc lint)", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "check"],
    cwd: new URL("../", import.meta.url).pathname,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const output = `${decode(stdout)}${decode(stderr)}`
    .split("\n")
    .filter((line) => !/^(Download|Warning Failed resolving types|\s+at file:)/.test(line))
    .join("\n");
  assert.equal(code, 0, `deno task check failed; run it to see the same:\n${output}`);
});
