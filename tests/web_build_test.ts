// The browser bundles in web/dist/ are generated (`deno task web`) and
// committed, so `deno task start` works in a fresh checkout; this proves they
// are what the sources build to today, with the same flags as the `web` task.

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

for (const name of ["client", "console"]) {
  Deno.test(`web/dist/${name}.js is up to date with web/${name}.ts`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "clu-ws-web-" });
    try {
      const out = `${dir}/${name}.js`;
      const bundle = await new Deno.Command(Deno.execPath(), {
        args: ["bundle", "--quiet", "--minify", "--platform", "browser", `web/${name}.ts`, "-o", out],
        cwd: ROOT.pathname,
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(bundle.code, 0, new TextDecoder().decode(bundle.stderr));
      const built = await Deno.readTextFile(out);
      const committed = await Deno.readTextFile(new URL(`web/dist/${name}.js`, ROOT));
      assert.ok(built === committed, `web/dist/${name}.js is stale: run \`deno task web\` and commit it`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
