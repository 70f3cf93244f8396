/**
 * Unit tests for the one constant-time compare (lib/access/tokens.ts) and the
 * tokens in force (lib/access/token_store.ts): lookup by digest, and reloads
 * that never overlap, where the last file read wins. tests/auth_test.ts covers
 * parsing and the door; tests/revocation_test.ts what a reload does to open
 * sessions of a running gateway.
 */

import assert from "node:assert/strict";
import { bytesToHex, constantTimeEqual, sha256 } from "../lib/access/tokens.ts";
import { TokenStore } from "../lib/access/token_store.ts";

const A = "alpha-secret-0123456789";
const B = "bravo-secret-0123456789";
const C = "charlie-secret-0123456789";

/** A tokens file with one command token per `name: token` pair. */
async function tokensFile(tokens: Record<string, string>): Promise<string> {
  const entries = await Promise.all(
    Object.entries(tokens).map(async ([name, token]) => ({
      name,
      role: "command",
      sha256: bytesToHex(await sha256(token)),
    })),
  );
  return JSON.stringify({ tokens: entries });
}

/** Runs `body` with a store on a temporary tokens file holding `tokens`. */
async function withStore(
  tokens: Record<string, string>,
  body: (store: TokenStore, path: string) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, await tokensFile(tokens));
    const store = new TokenStore({ tokensFile: path });
    await store.load();
    await body(store, path);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

async function names(store: TokenStore, ...tokens: string[]): Promise<Array<string | undefined>> {
  return await Promise.all(tokens.map(async (token) => (await store.authenticate(token))?.name));
}

// ---------------------------------------------------------------- constantTimeEqual

Deno.test("tokens: constantTimeEqual is equality of bytes, lengths included", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  assert.equal(constantTimeEqual(bytes(""), bytes("")), true);
  assert.equal(constantTimeEqual(bytes("secret"), bytes("secret")), true);
  assert.equal(constantTimeEqual(bytes("secret"), bytes("secreT")), false);
  assert.equal(constantTimeEqual(bytes("secret"), bytes("Secret")), false);
  assert.equal(constantTimeEqual(bytes("secret"), bytes("secret\0")), false, "a trailing zero byte");
  assert.equal(constantTimeEqual(bytes("secret\0"), bytes("secret")), false);
  assert.equal(constantTimeEqual(bytes(""), bytes("secret")), false);
  assert.equal(constantTimeEqual(new Uint8Array(32), new Uint8Array(32)), true);
});

// ---------------------------------------------------------------- TokenStore

Deno.test("tokens: a store without a file or document has no tokens and admits no token", async () => {
  const store = new TokenStore({});
  await store.load();
  assert.equal(store.inUse, false);
  assert.equal(await store.authenticate(A), undefined);
  await store.reload();
  assert.equal(store.inUse, false);
});

Deno.test("tokens: a store from a document finds entries by token and by digest", async () => {
  const store = new TokenStore({ tokensText: { text: await tokensFile({ a: A, b: B }), source: "test" } });
  await store.load();
  assert.equal(store.inUse, true);
  assert.deepEqual(await names(store, A, B, C), ["a", "b", undefined]);
  assert.equal(store.entry(bytesToHex(await sha256(B)))?.name, "b");
  assert.equal(store.entry(bytesToHex(await sha256(C))), undefined);
});

Deno.test("tokens: a reload replaces the tokens and then calls every listener, even after one throws", async () => {
  await withStore({ a: A }, async (store, path) => {
    const seen: string[] = [];
    const digestOfB = bytesToHex(await sha256(B));
    store.onReload(() => {
      throw new Error("a broken listener");
    });
    store.onReload(() => seen.push(store.entry(digestOfB)?.name ?? "none"));
    await Deno.writeTextFile(path, await tokensFile({ b: B }));
    await store.reload();
    assert.deepEqual(seen, ["b"], "the listener sees the new tokens");
    assert.deepEqual(await names(store, A, B), [undefined, "b"]);
  });
});

Deno.test("tokens: a bad or missing file keeps the tokens in use and calls no listener", async () => {
  await withStore({ a: A }, async (store, path) => {
    let calls = 0;
    store.onReload(() => calls++);
    await Deno.writeTextFile(path, "not = [valid");
    await store.reload();
    await Deno.remove(path);
    await store.reload();
    assert.equal(calls, 0);
    assert.deepEqual(await names(store, A), ["a"]);
  });
});

Deno.test("tokens: reloads run one after another and each reads the file when it starts", async () => {
  await withStore({ a: A }, async (store, path) => {
    const loaded: string[][] = [];
    const next = await tokensFile({ c: C });
    const digests = await Promise.all([A, B, C].map(async (t) => bytesToHex(await sha256(t))));
    store.onReload(() => {
      loaded.push((["a", "b", "c"] as const).filter((_, i) => store.entry(digests[i]) !== undefined));
      // Written while the first reload finishes: the second must read this, not what the first read.
      if (loaded.length === 1) Deno.writeTextFileSync(path, next);
    });
    await Deno.writeTextFile(path, await tokensFile({ b: B }));
    const first = store.reload();
    // Requests before the first one starts share it; let it start (it then waits for the file).
    assert.equal(store.reload(), first);
    await Promise.resolve();
    const second = store.reload();
    const third = store.reload();
    assert.notEqual(first, second, "a request while one runs waits for it");
    assert.equal(second, third, "a request while one waits shares it");
    await Promise.all([first, second, third]);
    assert.deepEqual(loaded, [["b"], ["c"]]);
    assert.deepEqual(await names(store, A, B, C), [undefined, undefined, "c"]);
    // And a reload after those starts afresh.
    await Deno.writeTextFile(path, await tokensFile({ a: A }));
    await store.reload();
    assert.deepEqual(loaded.at(-1), ["a"]);
  });
});
