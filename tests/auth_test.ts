/**
 * Unit tests for access control: tokens (lib/access/tokens.ts), actor globs
 * (lib/protocol/glob.ts), command rules (lib/access/rules.ts), origins
 * (lib/access/origins.ts), and the door and ops guard that combine them
 * (lib/access/admission.ts). No sockets: requests are
 * constructed, tokens come from text, and the only file I/O is in the tests of
 * --tokens-file, which are skipped without read/write permission.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { resetSync } from "@logtape/logtape";
import {
  authenticate,
  bytesToHex,
  parseTokens,
  sha256,
  type TokenEntry,
  TokensError,
  type TokenSet,
} from "../lib/access/tokens.ts";
import { offeredProtocols, presentedToken, SUBPROTOCOL } from "../lib/access/credentials.ts";
import { compileGlobs } from "../lib/protocol/glob.ts";
import { commandDenial, commandRules } from "../lib/access/rules.ts";
import { originAllowed } from "../lib/access/origins.ts";
import { Access, type Grant } from "../lib/access/admission.ts";
import type { AccessConfig } from "../lib/config/config.ts";
import type { Admission } from "../lib/http/server.ts";
import { setupLogging } from "../lib/log.ts";

// ---------------------------------------------------------------- helpers

/** SHA-256 hex as `printf %s TEXT | sha256sum` prints it, computed independently of lib/auth.ts. */
function refHex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

const OPS_TOKEN = "ops-secret-0123456789";
const WATCH_TOKEN = "watch-secret-0123456789";
const LVM_TOKEN = "lvm-secret-0123456789";
const OPS_HEX = refHex(OPS_TOKEN);
const WATCH_HEX = refHex(WATCH_TOKEN);
const LVM_HEX = refHex(LVM_TOKEN);

/** A TOML tokens file with three entries, all stored as hashes. */
const TOKENS_TOML = `
# clu-ws access tokens
[[tokens]]
name = "ops"
role = "command"
sha256 = "${OPS_HEX}"

[[tokens]]
name = "viewer"
role = "watch"
sha256 = "${WATCH_HEX}"

[[tokens]]
name = "lvm-operator"
role = "command"
actors = ["lvm.*", "lvmecp"]
sha256 = "${LVM_HEX}"
`;

const TOKENS_LIST = [
  { name: "ops", role: "command", sha256: OPS_HEX },
  { name: "viewer", role: "watch", sha256: WATCH_HEX },
  { name: "lvm-operator", role: "command", actors: ["lvm.*", "lvmecp"], sha256: LVM_HEX },
];

/** The parts of a token set that can be compared with deepEqual. */
function summary(set: TokenSet) {
  return set.entries.map((e) => ({
    name: e.name,
    role: e.role,
    actors: e.actors && [...e.actors.patterns],
    digest: bytesToHex(e.digest),
  }));
}

const EXPECTED_SUMMARY = [
  { name: "ops", role: "command", actors: undefined, digest: OPS_HEX },
  { name: "viewer", role: "watch", actors: undefined, digest: WATCH_HEX },
  { name: "lvm-operator", role: "command", actors: ["lvm.*", "lvmecp"], digest: LVM_HEX },
];

/** Asserts parseTokens rejects with a TokensError and returns its message. */
async function tokensError(text: string, source = "tokens.toml"): Promise<string> {
  let caught: unknown;
  try {
    await parseTokens(text, source);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, `expected a TokensError for ${text}, got none`);
  assert.ok(caught instanceof TokensError, `expected a TokensError for ${text}, got ${String(caught)}`);
  assert.equal(caught.name, "TokensError");
  return caught.message;
}

/** A JSON document with one token entry. */
function oneJson(entry: Record<string, unknown>): string {
  return JSON.stringify({ tokens: [entry] });
}

/** A TokenEntry built by hand, for the policy tests (no `actors`: every actor). */
function entry(name: string, role: "watch" | "command", actors?: string[]): TokenEntry {
  return { name, role, actors: actors && compileGlobs(actors), digest: new Uint8Array(32) };
}

/** A request as the gateway sees an upgrade. */
function request(
  query = "",
  headers: Record<string, string> = {},
): Request {
  return new Request(`http://gw:9876/${query}`, { headers: { host: "gw:9876", ...headers } });
}

function accessConfig(overrides: Partial<AccessConfig> = {}): AccessConfig {
  return { allowOrigins: [], readOnly: false, allowActors: [], denyActors: [], ...overrides };
}

async function loadedAccess(overrides: Partial<AccessConfig> = {}): Promise<Access> {
  const access = new Access(accessConfig(overrides));
  await access.load();
  return access;
}

const WITH_TOKENS = { tokensText: { text: TOKENS_TOML, source: "CLU_WS_TOKENS" } };

function assertAdmission(result: Admission<Grant> | Response): Admission<Grant> {
  if (result instanceof Response) {
    throw new assert.AssertionError({ message: `expected an Admission, got HTTP ${result.status}` });
  }
  return result;
}

function assertResponse(result: Admission<Grant> | Response, status: number): Response {
  if (!(result instanceof Response)) {
    throw new assert.AssertionError({ message: `expected HTTP ${status}, got an Admission` });
  }
  assert.equal(result.status, status);
  return result;
}

/** Runs `body` with logging captured (no secret masking, so a leak would show). */
async function captureLogs(body: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  setupLogging({ level: "debug", format: "json", write: (line) => lines.push(line) });
  try {
    await body();
  } finally {
    resetSync();
  }
  return lines.join("");
}

// ---------------------------------------------------------------- sha256

Deno.test("auth: sha256 matches the standard test vectors", async () => {
  assert.equal(
    bytesToHex(await sha256("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    bytesToHex(await sha256("")),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal((await sha256("abc")).length, 32);
});

Deno.test("auth: sha256 matches printf %s TOKEN | sha256sum (UTF-8, no newline)", async () => {
  for (const token of [OPS_TOKEN, "päßwörd-ünïcødé-✓-0123", 'with space and "quotes" and\ttab']) {
    assert.equal(bytesToHex(await sha256(token)), refHex(token), token);
  }
  // A trailing newline (echo instead of printf) is a different digest.
  assert.notEqual(bytesToHex(await sha256(OPS_TOKEN + "\n")), OPS_HEX);
});

Deno.test("auth: bytesToHex pads each byte to two lowercase digits", () => {
  assert.equal(bytesToHex(new Uint8Array([0, 1, 15, 16, 171, 255])), "00010f10abff");
  assert.equal(bytesToHex(new Uint8Array([])), "");
});

// ---------------------------------------------------------------- parseTokens: accepted forms

Deno.test("auth: parseTokens reads [[tokens]] tables from TOML", async () => {
  const set = await parseTokens(TOKENS_TOML, "tokens.toml");
  assert.deepEqual(summary(set), EXPECTED_SUMMARY);
  assert.deepEqual(set.warnings, []);
});

Deno.test("auth: parseTokens reads an inline TOML array under tokens", async () => {
  const text = `tokens = [
    { name = "ops", role = "command", sha256 = "${OPS_HEX}" },
    { name = "viewer", role = "watch", sha256 = "${WATCH_HEX}" },
    { name = "lvm-operator", role = "command", actors = ["lvm.*", "lvmecp"], sha256 = "${LVM_HEX}" },
  ]`;
  assert.deepEqual(summary(await parseTokens(text, "tokens.toml")), EXPECTED_SUMMARY);
});

Deno.test('auth: parseTokens reads JSON {"tokens": [...]}', async () => {
  const set = await parseTokens(JSON.stringify({ tokens: TOKENS_LIST }, null, 2), "tokens.json");
  assert.deepEqual(summary(set), EXPECTED_SUMMARY);
  assert.deepEqual(set.warnings, []);
});

Deno.test("auth: parseTokens reads a bare JSON list, with leading whitespace", async () => {
  assert.deepEqual(
    summary(await parseTokens(JSON.stringify(TOKENS_LIST), "CLU_WS_TOKENS")),
    EXPECTED_SUMMARY,
  );
  assert.deepEqual(
    summary(await parseTokens(`\n  ${JSON.stringify(TOKENS_LIST, null, 2)}\n`, "CLU_WS_TOKENS")),
    EXPECTED_SUMMARY,
  );
});

Deno.test("auth: parseTokens accepts upper-case hex and an empty actors list on a watch token", async () => {
  const set = await parseTokens(
    JSON.stringify([{ name: "v", role: "watch", actors: [], sha256: WATCH_HEX.toUpperCase() }]),
    "t.json",
  );
  assert.equal(bytesToHex(set.entries[0].digest), WATCH_HEX);
  assert.deepEqual([...set.entries[0].actors!.patterns], []);
});

Deno.test("auth: parseTokens accepts names of letters, digits and . _ - @ : up to 64 characters", async () => {
  for (const name of ["a", "ops.team_1-x", "alice@lco:night", "x".repeat(64)]) {
    const set = await parseTokens(oneJson({ name, role: "watch", sha256: OPS_HEX }), "t.json");
    assert.equal(set.entries[0].name, name);
  }
});

Deno.test("auth: an empty token list parses to no entries (everyone is then refused)", async () => {
  assert.deepEqual((await parseTokens("[]", "t.json")).entries, []);
  assert.deepEqual((await parseTokens(`{"tokens": []}`, "t.json")).entries, []);
  assert.deepEqual((await parseTokens("tokens = []", "t.toml")).entries, []);
});

Deno.test("auth: a plain-text token is hashed and warned about, showing the sha256 but never the token", async () => {
  const set = await parseTokens(
    `[[tokens]]\nname = "legacy"\nrole = "command"\ntoken = "${OPS_TOKEN}"\n`,
    "/etc/clu-ws/tokens.toml",
  );
  assert.equal(set.entries.length, 1);
  assert.equal(bytesToHex(set.entries[0].digest), OPS_HEX);
  assert.equal(set.warnings.length, 1);
  const [warning] = set.warnings;
  assert.ok(warning.includes("/etc/clu-ws/tokens.toml"), warning);
  assert.ok(warning.includes("token #1"), warning);
  assert.ok(warning.includes("legacy"), warning);
  assert.ok(warning.includes(`sha256 = "${OPS_HEX}"`), warning);
  assert.ok(!warning.includes(OPS_TOKEN), `the warning shows the token: ${warning}`);
  // The hashed entry authenticates with the plain token.
  assert.equal((await authenticate(set, OPS_TOKEN))?.name, "legacy");
});

Deno.test("auth: a plain-text token of exactly 16 characters is accepted", async () => {
  const token = "0123456789abcdef";
  const set = await parseTokens(oneJson({ name: "t", role: "watch", token }), "t.json");
  assert.equal(bytesToHex(set.entries[0].digest), refHex(token));
});

Deno.test("auth: one warning per plain-text token, each naming its entry", async () => {
  const set = await parseTokens(
    JSON.stringify([
      { name: "a", role: "watch", token: OPS_TOKEN },
      { name: "b", role: "watch", sha256: WATCH_HEX },
      { name: "c", role: "command", token: LVM_TOKEN },
    ]),
    "t.json",
  );
  assert.equal(set.warnings.length, 2);
  assert.match(set.warnings[0], /token #1 \(a\)/);
  assert.match(set.warnings[1], /token #3 \(c\)/);
  assert.ok(set.warnings[1].includes(LVM_HEX));
  for (const w of set.warnings) {
    assert.ok(!w.includes(OPS_TOKEN) && !w.includes(LVM_TOKEN), w);
  }
});

// ---------------------------------------------------------------- parseTokens: errors

Deno.test("auth: every bad token entry is a TokensError naming the source, the entry and the fix", async () => {
  const cases: { why: string; entry: unknown; expect: RegExp[] }[] = [
    {
      why: "unknown key",
      entry: { name: "ops", role: "command", sha256: OPS_HEX, roles: "x" },
      expect: [/unknown key 'roles'/, /name, role, actors, sha256/],
    },
    { why: "no name", entry: { role: "watch", sha256: OPS_HEX }, expect: [/'name' must be 1 to 64/] },
    { why: "empty name", entry: { name: "", role: "watch", sha256: OPS_HEX }, expect: [/'name'/] },
    { why: "name with a space", entry: { name: "a b", role: "watch", sha256: OPS_HEX }, expect: [/'name'/] },
    {
      why: "name too long",
      entry: { name: "x".repeat(65), role: "watch", sha256: OPS_HEX },
      expect: [/'name'/],
    },
    { why: "name not a string", entry: { name: 7, role: "watch", sha256: OPS_HEX }, expect: [/'name'/] },
    {
      why: "bad role",
      entry: { name: "ops", role: "admin", sha256: OPS_HEX },
      expect: [/\(ops\)/, /'role' must be "watch" or "command"/],
    },
    { why: "no role", entry: { name: "ops", sha256: OPS_HEX }, expect: [/\(ops\)/, /'role'/] },
    {
      why: "actors on a watch token",
      entry: { name: "v", role: "watch", actors: ["lvmecp"], sha256: OPS_HEX },
      expect: [/\(v\)/, /'actors' only applies to role "command"/],
    },
    {
      why: "actors a string",
      entry: { name: "c", role: "command", actors: "lvm.*", sha256: OPS_HEX },
      expect: [/\(c\)/, /'actors' must be a list of actor names or globs/],
    },
    {
      why: "actors with a number",
      entry: { name: "c", role: "command", actors: ["lvm.*", 3], sha256: OPS_HEX },
      expect: [/'actors' must be a list/],
    },
    {
      why: "actors with an empty name",
      entry: { name: "c", role: "command", actors: [""], sha256: OPS_HEX },
      expect: [/'actors' must be a list/],
    },
    {
      why: "actors a table",
      entry: { name: "c", role: "command", actors: { a: 1 }, sha256: OPS_HEX },
      expect: [/'actors' must be a list/],
    },
    {
      why: "both sha256 and token",
      entry: { name: "b", role: "watch", sha256: OPS_HEX, token: OPS_TOKEN },
      expect: [/\(b\)/, /give sha256 or token, not both/],
    },
    {
      why: "neither sha256 nor token",
      entry: { name: "n", role: "watch" },
      expect: [/\(n\)/, /give 'sha256' \(the token's SHA-256 in hex\) or 'token'/],
    },
    {
      why: "sha256 not a string",
      entry: { name: "n", role: "watch", sha256: 12 },
      expect: [/give 'sha256'/],
    },
    {
      why: "sha256 with a non-hex digit",
      entry: { name: "h", role: "watch", sha256: "g" + OPS_HEX.slice(1) },
      expect: [/\(h\)/, /'sha256' must be 64 hex digits/, /sha256sum/],
    },
    {
      why: "sha256 too short",
      entry: { name: "h", role: "watch", sha256: OPS_HEX.slice(1) },
      expect: [/64 hex digits/],
    },
    {
      why: "sha256 too long",
      entry: { name: "h", role: "watch", sha256: OPS_HEX + "0" },
      expect: [/64 hex digits/],
    },
    {
      why: "sha256 with spaces",
      entry: { name: "h", role: "watch", sha256: ` ${OPS_HEX}` },
      expect: [/64 hex digits/],
    },
    {
      why: "short plain token",
      entry: { name: "s", role: "watch", token: "0123456789abcde" },
      expect: [/\(s\)/, /at least 16 characters/],
    },
  ];
  for (const { why, entry, expect } of cases) {
    const message = await tokensError(oneJson(entry as Record<string, unknown>), "/etc/clu-ws/tokens.json");
    assert.ok(message.startsWith("/etc/clu-ws/tokens.json: token #1"), `${why}: ${message}`);
    for (const re of expect) assert.match(message, re, why);
  }
});

Deno.test("auth: a TokensError names the right entry number in a TOML file", async () => {
  const message = await tokensError(
    `[[tokens]]\nname = "ok"\nrole = "watch"\nsha256 = "${OPS_HEX}"\n\n` +
      `[[tokens]]\nname = "bad"\nrole = "root"\nsha256 = "${WATCH_HEX}"\n`,
    "tokens.toml",
  );
  assert.equal(message, `tokens.toml: token #2 (bad): 'role' must be "watch" or "command"`);
});

Deno.test("auth: a name used twice is a TokensError naming the second entry", async () => {
  const message = await tokensError(
    JSON.stringify([
      { name: "ops", role: "watch", sha256: OPS_HEX },
      { name: "other", role: "watch", sha256: WATCH_HEX },
      { name: "ops", role: "command", sha256: LVM_HEX },
    ]),
    "CLU_WS_TOKENS",
  );
  assert.equal(message, "CLU_WS_TOKENS: token #3: the name 'ops' is used twice");
});

Deno.test("auth: an entry that is not a table is a TokensError", async () => {
  for (const item of ["ops", 3, null, true, [OPS_HEX]]) {
    const message = await tokensError(JSON.stringify({ tokens: [item] }), "t.json");
    assert.equal(message, "t.json: token #1 is not a table", JSON.stringify(item));
  }
  assert.equal(
    await tokensError(`tokens = ["${OPS_HEX}"]`, "t.toml"),
    "t.toml: token #1 is not a table",
  );
});

Deno.test("auth: a document without a token list is a TokensError", async () => {
  const documents = [
    `{}`,
    `{"tokens": {"name": "ops"}}`,
    `{"tokens": "${OPS_HEX}"}`,
    `{"token": []}`,
    `name = "ops"\nrole = "watch"`,
    `tokens = "ops"`,
    ``,
  ];
  for (const text of documents) {
    const message = await tokensError(text, "src");
    assert.equal(message, "src: expected a list of tokens under 'tokens' ([[tokens]] in TOML)", text);
  }
});

Deno.test("auth: a TOML [tokens] table (single brackets) gets the list hint, not a JSON syntax error", async () => {
  // Valid TOML that starts with a table header is taken for JSON by the sniffing in parseTokens.
  const text = `[tokens]\nname = "ops"\nrole = "watch"\nsha256 = "${OPS_HEX}"\n`;
  const message = await tokensError(text, "tokens.toml");
  assert.equal(message, "tokens.toml: expected a list of tokens under 'tokens' ([[tokens]] in TOML)");
});

Deno.test("auth: text that is neither TOML nor JSON is a TokensError naming the source", async () => {
  for (const text of [`{"tokens": [`, `[[tokens]]\nname = `, `tokens = [`, `not toml at all`]) {
    const message = await tokensError(text, "CLU_WS_TOKENS");
    assert.match(message, /^CLU_WS_TOKENS: not valid (TOML|JSON) \(/, text);
    assert.ok(!message.includes("\n"), `one line: ${message}`);
  }
});

Deno.test("auth: TokensError messages never contain the plain token", async () => {
  const entries = [
    { name: "a", role: "watch", token: OPS_TOKEN, extra: 1 },
    { name: "a", role: "admin", token: OPS_TOKEN },
    { name: "a", role: "watch", actors: ["x"], token: OPS_TOKEN },
    { name: "a", role: "watch", sha256: OPS_HEX, token: OPS_TOKEN },
    { name: "bad name", role: "watch", token: OPS_TOKEN },
  ];
  for (const e of entries) {
    const message = await tokensError(oneJson(e), "t.json");
    assert.ok(!message.includes(OPS_TOKEN), message);
  }
  const short = "short-secret";
  assert.ok(!(await tokensError(oneJson({ name: "a", role: "watch", token: short }))).includes(short));
});

// ---------------------------------------------------------------- authenticate

Deno.test("auth: authenticate finds the entry of the presented token among several", async () => {
  const set = await parseTokens(TOKENS_TOML, "tokens.toml");
  assert.equal((await authenticate(set, OPS_TOKEN))?.name, "ops");
  assert.equal((await authenticate(set, WATCH_TOKEN))?.name, "viewer");
  const lvm = await authenticate(set, LVM_TOKEN);
  assert.equal(lvm?.name, "lvm-operator");
  assert.equal(lvm?.role, "command");
  assert.equal(lvm?.actors?.match("lvm.sp1"), "lvm.*");
  assert.equal(lvm, set.entries[2], "the entry itself is returned");
});

Deno.test("auth: authenticate returns undefined for a wrong, empty or near-miss token", async () => {
  const set = await parseTokens(TOKENS_TOML, "tokens.toml");
  for (
    const wrong of [
      "",
      "wrong-token-0123456789",
      OPS_TOKEN.slice(0, -1),
      OPS_TOKEN + "x",
      OPS_TOKEN.toUpperCase(),
      ` ${OPS_TOKEN}`,
      OPS_HEX, // the hash is not the token
    ]
  ) {
    assert.equal(await authenticate(set, wrong), undefined, JSON.stringify(wrong));
  }
});

Deno.test("auth: authenticate with no entries admits nobody", async () => {
  assert.equal(await authenticate({ entries: [], warnings: [] }, OPS_TOKEN), undefined);
  assert.equal(await authenticate({ entries: [], warnings: [] }, ""), undefined);
});

// ---------------------------------------------------------------- presented token

Deno.test('auth: offeredProtocols splits the header as browsers (", ") and Node\'s ws (",") send it', () => {
  assert.deepEqual(
    offeredProtocols(request("", { "sec-websocket-protocol": "clu-ws, token.abc" })),
    ["clu-ws", "token.abc"],
  );
  assert.deepEqual(
    offeredProtocols(request("", { "sec-websocket-protocol": "clu-ws,token.abc" })),
    ["clu-ws", "token.abc"],
  );
  assert.deepEqual(
    offeredProtocols(request("", { "sec-websocket-protocol": " clu-ws ,, token.abc ," })),
    ["clu-ws", "token.abc"],
  );
  assert.deepEqual(offeredProtocols(request("", { "sec-websocket-protocol": "clu-ws" })), ["clu-ws"]);
  assert.deepEqual(offeredProtocols(request()), []);
});

Deno.test("auth: offeredProtocols joins repeated Sec-WebSocket-Protocol headers", () => {
  const headers = new Headers();
  headers.append("sec-websocket-protocol", "clu-ws");
  headers.append("sec-websocket-protocol", "token.abc");
  assert.deepEqual(offeredProtocols(new Request("http://gw/", { headers })), ["clu-ws", "token.abc"]);
});

Deno.test("auth: presentedToken reads a token.<value> subprotocol", () => {
  for (const header of ["clu-ws, token.s3cret-value", "clu-ws,token.s3cret-value", "token.s3cret-value"]) {
    const req = request("", { "sec-websocket-protocol": header });
    assert.equal(presentedToken(req, offeredProtocols(req)), "s3cret-value", header);
  }
});

Deno.test("auth: presentedToken reads ?token=, percent-decoded", () => {
  assert.equal(presentedToken(request("?token=q-secret"), []), "q-secret");
  assert.equal(presentedToken(request("?a=1&token=a%2Bb%20c"), []), "a+b c");
});

Deno.test("auth: presentedToken reads Authorization: Bearer, any case, trimmed", () => {
  assert.equal(presentedToken(request("", { authorization: "Bearer b-secret" }), []), "b-secret");
  assert.equal(presentedToken(request("", { authorization: "bearer   b-secret  " }), []), "b-secret");
  assert.equal(presentedToken(request("", { authorization: "BEARER b-secret" }), []), "b-secret");
});

Deno.test("auth: presentedToken precedence is subprotocol, then query, then bearer", () => {
  const all = request("?token=from-query", {
    "sec-websocket-protocol": "clu-ws, token.from-protocol",
    authorization: "Bearer from-bearer",
  });
  assert.equal(presentedToken(all, offeredProtocols(all)), "from-protocol");
  const noProtocol = request("?token=from-query", {
    "sec-websocket-protocol": "clu-ws",
    authorization: "Bearer from-bearer",
  });
  assert.equal(presentedToken(noProtocol, offeredProtocols(noProtocol)), "from-query");
  const bearerOnly = request("", { authorization: "Bearer from-bearer" });
  assert.equal(presentedToken(bearerOnly, offeredProtocols(bearerOnly)), "from-bearer");
});

Deno.test("auth: presentedToken is undefined when no token is presented", () => {
  assert.equal(presentedToken(request(), []), undefined);
  assert.equal(presentedToken(request("?token="), []), undefined);
  assert.equal(presentedToken(request("?other=x"), ["clu-ws", "tokenx"]), undefined);
  assert.equal(presentedToken(request("", { authorization: "Basic dXNlcjpwdw==" }), []), undefined);
  assert.equal(presentedToken(request("", { authorization: "Bearer" }), []), undefined);
  assert.equal(presentedToken(request("", { authorization: "Bearer   " }), []), undefined);
});

// ---------------------------------------------------------------- glob

Deno.test("glob: * matches any run of characters, dots included, and nothing", () => {
  const globs = compileGlobs(["lvm.*"]);
  assert.equal(globs.match("lvm.sp1.ieb"), "lvm.*");
  assert.equal(globs.match("lvm.sp1"), "lvm.*");
  assert.equal(globs.match("lvm."), "lvm.*");
  assert.equal(globs.match("lvmx"), undefined);
  assert.equal(globs.match("lvm"), undefined);
  assert.equal(compileGlobs(["*"]).match("anything.at.all"), "*");
  assert.equal(compileGlobs(["*"]).match(""), "*");
  assert.equal(compileGlobs(["lvm*ecp"]).match("lvm.sp.ecp"), "lvm*ecp");
});

Deno.test("glob: ? matches exactly one character", () => {
  const globs = compileGlobs(["lvm?cp"]);
  assert.equal(globs.match("lvmecp"), "lvm?cp");
  assert.equal(globs.match("lvm.cp"), "lvm?cp");
  assert.equal(globs.match("lvmcp"), undefined);
  assert.equal(globs.match("lvmeecp"), undefined);
});

Deno.test("glob: patterns are anchored at both ends", () => {
  const globs = compileGlobs(["lvmecp"]);
  assert.equal(globs.match("lvmecp"), "lvmecp");
  assert.equal(globs.match("xlvmecp"), undefined);
  assert.equal(globs.match("lvmecpx"), undefined);
  assert.equal(globs.match("lvm.lvmecp"), undefined);
  assert.equal(compileGlobs(["*ecp"]).match("lvmecp.x"), undefined);
});

Deno.test("glob: regular-expression metacharacters match themselves", () => {
  const cases: [pattern: string, matches: string, notMatches: string[]][] = [
    ["a.b", "a.b", ["axb"]],
    ["a+b", "a+b", ["aab", "ab"]],
    ["(x)|y", "(x)|y", ["y", "x"]],
    ["[ab]", "[ab]", ["a", "b"]],
    ["^a$", "^a$", ["a"]],
    ["a{2}", "a{2}", ["aa"]],
    ["a\\d", "a\\d", ["a1"]],
    ["a/b-c", "a/b-c", ["a/bxc"]],
  ];
  for (const [pattern, yes, nos] of cases) {
    const globs = compileGlobs([pattern]);
    assert.equal(globs.match(yes), pattern, pattern);
    for (const no of nos) assert.equal(globs.match(no), undefined, `${pattern} vs ${no}`);
  }
});

Deno.test("glob: the first matching pattern is returned; the patterns are kept as written", () => {
  const globs = compileGlobs(["lvmecp", "lvm.*", "*"]);
  assert.deepEqual([...globs.patterns], ["lvmecp", "lvm.*", "*"]);
  assert.equal(globs.match("lvmecp"), "lvmecp");
  assert.equal(globs.match("lvm.sp1"), "lvm.*");
  assert.equal(globs.match("jaeger"), "*");
  const empty = compileGlobs([]);
  assert.deepEqual([...empty.patterns], []);
  assert.equal(empty.match("lvmecp"), undefined);
  assert.equal(empty.match(""), undefined);
});

// ---------------------------------------------------------------- commandDenial

const NO_RULES = commandRules({ readOnly: false, allow: [], deny: [] });

Deno.test("policy: an open gateway (no token) with no rules allows every command", () => {
  for (const actor of ["lvmecp", "lvm.sp1.ieb", "jaeger", "x"]) {
    assert.equal(commandDenial(NO_RULES, undefined, actor), undefined);
  }
});

Deno.test("policy: a command token without an actor list, and no rules, may command any actor", () => {
  assert.equal(commandDenial(NO_RULES, entry("ops", "command"), "anything"), undefined);
});

Deno.test("policy: --read-only beats everything", () => {
  const rules = commandRules({ readOnly: true, allow: ["lvmecp"], deny: [] });
  for (const token of [undefined, entry("ops", "command"), entry("lvm", "command", ["lvmecp"])]) {
    const why = commandDenial(rules, token, "lvmecp");
    assert.equal(why, "clu-ws is read-only (--read-only); the command was not sent");
  }
  // Even over a watch token and a denied actor.
  const strict = commandRules({ readOnly: true, allow: [], deny: ["*"] });
  assert.match(commandDenial(strict, entry("v", "watch"), "lvmecp")!, /--read-only/);
});

Deno.test("policy: a watch token cannot command, and the denial names the token", () => {
  const why = commandDenial(NO_RULES, entry("viewer", "watch"), "lvmecp");
  assert.equal(why, `token 'viewer' may only watch (role "watch"); the command was not sent`);
  // The role check comes before the actor rules.
  const rules = commandRules({ readOnly: false, allow: [], deny: ["lvmecp"] });
  assert.match(commandDenial(rules, entry("viewer", "watch"), "lvmecp")!, /may only watch/);
});

Deno.test("policy: --deny-actor beats --allow-actor and names the pattern", () => {
  const rules = commandRules({ readOnly: false, allow: ["lvm", "lvm.*"], deny: ["lvm.sp1.*", "jaeger"] });
  assert.equal(
    commandDenial(rules, undefined, "lvm.sp1.ieb"),
    "actor 'lvm.sp1.ieb' is denied by --deny-actor 'lvm.sp1.*'; the command was not sent",
  );
  assert.equal(commandDenial(rules, undefined, "lvm.sp2.ieb"), undefined);
  assert.match(commandDenial(rules, entry("ops", "command"), "jaeger")!, /--deny-actor 'jaeger'/);
});

Deno.test("policy: --allow-actor allows only the listed actors and names the list", () => {
  const rules = commandRules({ readOnly: false, allow: ["lvm", "lvm.*", "lvmecp"], deny: [] });
  assert.equal(commandDenial(rules, undefined, "lvmecp"), undefined);
  assert.equal(commandDenial(rules, undefined, "lvm.sp1.ieb"), undefined);
  assert.equal(
    commandDenial(rules, undefined, "jaeger"),
    "actor 'jaeger' is not allowed by --allow-actor (lvm, lvm.*, lvmecp); the command was not sent",
  );
  assert.match(commandDenial(rules, undefined, "lvmx")!, /not allowed/);
});

Deno.test("policy: a token's actor list limits it and the denial names the token and its list", () => {
  const token = entry("lvm-operator", "command", ["lvm", "lvm.*", "lvmecp"]);
  assert.equal(commandDenial(NO_RULES, token, "lvmecp"), undefined);
  assert.equal(commandDenial(NO_RULES, token, "lvm.sp1.ieb"), undefined);
  assert.equal(
    commandDenial(NO_RULES, token, "lvmnps"),
    "token 'lvm-operator' may not command actor 'lvmnps' (it may command lvm, lvm.*, lvmecp); the command was not sent",
  );
});

Deno.test("policy: the gateway rules apply on top of a token's actor list", () => {
  const token = entry("lvm-operator", "command", ["lvm", "lvm.*"]);
  const rules = commandRules({
    readOnly: false,
    allow: ["lvm", "lvm.sp1", "lvm.sp1.*"],
    deny: ["lvm.sp1.ieb"],
  });
  assert.match(commandDenial(rules, token, "lvm.sp1.ieb")!, /--deny-actor 'lvm.sp1.ieb'/);
  assert.match(commandDenial(rules, token, "lvm.sp2.ieb")!, /--allow-actor \(lvm, lvm.sp1, lvm.sp1.\*\)/);
  assert.equal(commandDenial(rules, token, "lvm.sp1.agcam"), undefined);
});

// ---------------------------------------------------------------- originAllowed

Deno.test("policy: with no --allow-origin every origin is allowed, even garbage", () => {
  for (const origin of ["https://evil.example", "null", "not a url", ""]) {
    assert.equal(originAllowed(origin, "gw:9876", []), true, origin);
  }
});

Deno.test("policy: an exact origin matches itself only", () => {
  const allowed = ["https://ops.example.org"];
  assert.equal(originAllowed("https://ops.example.org", "gw:9876", allowed), true);
  assert.equal(
    originAllowed("https://OPS.Example.org", "gw:9876", allowed),
    true,
    "hosts are case-insensitive",
  );
  assert.equal(originAllowed("http://ops.example.org", "gw:9876", allowed), false);
  assert.equal(originAllowed("https://ops.example.org:8443", "gw:9876", allowed), false);
  assert.equal(originAllowed("https://x.ops.example.org", "gw:9876", allowed), false);
  assert.equal(originAllowed("https://ops.example.org.evil.net", "gw:9876", allowed), false);
});

Deno.test("policy: an exact origin with a port matches that port only", () => {
  const allowed = ["http://localhost:3000"];
  assert.equal(originAllowed("http://localhost:3000", "gw:9876", allowed), true);
  assert.equal(originAllowed("http://localhost:3001", "gw:9876", allowed), false);
  assert.equal(originAllowed("http://localhost", "gw:9876", allowed), false);
});

Deno.test("policy: a wildcard host matches subdomains at any depth, with the same scheme", () => {
  const allowed = ["https://*.example.org"];
  assert.equal(originAllowed("https://ops.example.org", "gw", allowed), true);
  assert.equal(originAllowed("https://a.b.example.org", "gw", allowed), true);
  assert.equal(originAllowed("https://example.org", "gw", allowed), false);
  assert.equal(originAllowed("http://ops.example.org", "gw", allowed), false);
  assert.equal(originAllowed("https://evil-example.org", "gw", allowed), false);
  assert.equal(originAllowed("https://ops.example.org.evil.net", "gw", allowed), false);
  assert.equal(originAllowed("https://opsexample.org", "gw", allowed), false);
  assert.equal(originAllowed("https://ops.example.org:8443", "gw", allowed), false);
});

Deno.test("policy: a wildcard host with a port needs that port", () => {
  const allowed = ["https://*.example.org:8443"];
  assert.equal(originAllowed("https://ops.example.org:8443", "gw", allowed), true);
  assert.equal(originAllowed("https://ops.example.org", "gw", allowed), false);
  assert.equal(originAllowed("https://ops.example.org:9443", "gw", allowed), false);
});

Deno.test("policy: any of several patterns may match", () => {
  const allowed = ["http://localhost:3000", "https://*.example.org", "https://lco.cl"];
  assert.equal(originAllowed("https://lco.cl", "gw", allowed), true);
  assert.equal(originAllowed("https://a.example.org", "gw", allowed), true);
  assert.equal(originAllowed("http://localhost:3000", "gw", allowed), true);
  assert.equal(originAllowed("https://evil.cl", "gw", allowed), false);
});

Deno.test("policy: the gateway's own origin passes by Host only when Host is an IP address or localhost", () => {
  const allowed = ["https://ops.example.org"];
  assert.equal(originAllowed("http://127.0.0.1:9876", "127.0.0.1:9876", allowed), true);
  assert.equal(originAllowed("https://10.1.2.3:9876", "10.1.2.3:9876", allowed), true);
  assert.equal(originAllowed("http://[::1]:9876", "[::1]:9876", allowed), true);
  assert.equal(originAllowed("http://localhost:9876", "LOCALHOST:9876", allowed), true);
  assert.equal(originAllowed("http://127.0.0.1:9877", "127.0.0.1:9876", allowed), false, "another port");
  assert.equal(originAllowed("http://127.0.0.1:9876", null, allowed), false, "no Host header");
  // A DNS name in Host proves nothing: a rebinding page sends its own name in both headers.
  assert.equal(originAllowed("http://gw.lco.cl:9876", "gw.lco.cl:9876", allowed), false);
  assert.equal(originAllowed("http://evil.test:9876", "evil.test:9876", allowed), false);
  assert.equal(originAllowed("http://a.localhost:9876", "a.localhost:9876", allowed), false);
  // A listed name (--allow-origin or --public-url) passes whatever the Host.
  assert.equal(originAllowed("http://gw.lco.cl:9876", "gw.lco.cl:9876", ["http://gw.lco.cl:9876"]), true);
});

Deno.test("policy: a garbage origin is refused when origins are restricted", () => {
  const allowed = ["https://ops.example.org", "https://*.example.org"];
  for (const origin of ["null", "not a url", "", "ops.example.org", "//ops.example.org"]) {
    assert.equal(originAllowed(origin, "gw:9876", allowed), false, origin);
  }
});

Deno.test("policy: an allowed origin written with the scheme's default port matches the browser's Origin", () => {
  // Browsers never send a default port in Origin (https://ops.example.org, not :443), and
  // --allow-origin accepts https://ops.example.org:443, so the two must compare equal.
  assert.equal(originAllowed("https://ops.example.org", "gw", ["https://ops.example.org:443"]), true);
  assert.equal(originAllowed("http://ops.example.org", "gw", ["http://ops.example.org:80"]), true);
  assert.equal(originAllowed("https://a.example.org", "gw", ["https://*.example.org:443"]), true);
});

// ---------------------------------------------------------------- Access.admit

Deno.test("access: an open gateway admits anyone, answering clu-ws when offered, else the first protocol", async () => {
  const access = await loadedAccess();
  assert.equal(access.usesTokens, false);
  assert.deepEqual(await access.admit(request(), "10.0.0.1:5000"), { protocol: undefined, grant: {} });
  assert.deepEqual(
    await access.admit(request("", { "sec-websocket-protocol": "clu-ws" }), "p"),
    { protocol: SUBPROTOCOL, grant: {} },
  );
  assert.deepEqual(
    await access.admit(request("", { "sec-websocket-protocol": "other, clu-ws" }), "p"),
    { protocol: "clu-ws", grant: {} },
  );
  assert.deepEqual(
    await access.admit(request("", { "sec-websocket-protocol": "v2.json,v1.json" }), "p"),
    { protocol: "v2.json", grant: {} },
  );
  // A token presented to an open gateway is ignored, not checked.
  assert.deepEqual(await access.admit(request("?token=whatever"), "p"), { protocol: undefined, grant: {} });
});

Deno.test("access: with tokens, a missing token is 401 with a helpful body and WWW-Authenticate", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  assert.equal(access.usesTokens, true);
  const response = assertResponse(await access.admit(request(), "10.0.0.1:5000"), 401);
  assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="clu-ws"');
  const body = await response.text();
  assert.ok(body.includes(`["clu-ws", "token.<token>"]`), body);
  assert.ok(body.includes("?token=<token>"), body);
  assert.ok(body.includes("Authorization: Bearer <token>"), body);
});

Deno.test("access: with tokens, a wrong token is 401 and the body does not echo it", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  const wrong = "wrong-token-0123456789";
  for (
    const req of [
      request(`?token=${wrong}`),
      request("", { authorization: `Bearer ${wrong}` }),
      request("", { "sec-websocket-protocol": `clu-ws, token.${wrong}` }),
      request("", { "sec-websocket-protocol": "clu-ws, token." }),
      request(`?token=${OPS_HEX}`),
    ]
  ) {
    const response = assertResponse(await access.admit(req, "peer"), 401);
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="clu-ws"');
    assert.ok(!(await response.text()).includes(wrong));
  }
});

Deno.test("access: a right token is admitted with its entry, by subprotocol, query or bearer", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  const byProtocol = assertAdmission(
    await access.admit(request("", { "sec-websocket-protocol": `clu-ws, token.${OPS_TOKEN}` }), "p"),
  );
  assert.equal(byProtocol.protocol, "clu-ws");
  assert.equal(access.tokenOf(byProtocol.grant)?.name, "ops");
  assert.equal(access.tokenOf(byProtocol.grant)?.role, "command");

  const byNodeWs = assertAdmission(
    await access.admit(request("", { "sec-websocket-protocol": `token.${WATCH_TOKEN},clu-ws` }), "p"),
  );
  assert.equal(byNodeWs.protocol, "clu-ws");
  assert.equal(access.tokenOf(byNodeWs.grant)?.name, "viewer");

  const byQuery = assertAdmission(
    await access.admit(request(`?token=${LVM_TOKEN}`, { "sec-websocket-protocol": "clu-ws" }), "p"),
  );
  assert.equal(byQuery.protocol, "clu-ws");
  assert.equal(access.tokenOf(byQuery.grant)?.name, "lvm-operator");
  assert.deepEqual([...access.tokenOf(byQuery.grant)!.actors!.patterns], ["lvm.*", "lvmecp"]);

  const byBearer = assertAdmission(
    await access.admit(request("", { authorization: `Bearer ${OPS_TOKEN}` }), "p"),
  );
  assert.equal(byBearer.protocol, undefined);
  assert.equal(access.tokenOf(byBearer.grant)?.name, "ops");
});

Deno.test("access: the subprotocol token wins over a wrong query token and bearer", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  const admitted = assertAdmission(
    await access.admit(
      request("?token=nope-nope-nope-nope", {
        "sec-websocket-protocol": `clu-ws, token.${WATCH_TOKEN}`,
        authorization: "Bearer nope-nope-nope-nope",
      }),
      "p",
    ),
  );
  assert.equal(access.tokenOf(admitted.grant)?.name, "viewer");
  // And a wrong subprotocol token is not rescued by a right bearer.
  assertResponse(
    await access.admit(
      request("", { "sec-websocket-protocol": "clu-ws, token.nope", authorization: `Bearer ${OPS_TOKEN}` }),
      "p",
    ),
    401,
  );
});

Deno.test("access: a bad origin is 403 (before the token check); a good or absent one goes on", async () => {
  const access = await loadedAccess({ ...WITH_TOKENS, allowOrigins: ["https://*.example.org"] });
  const refused = assertResponse(
    await access.admit(request("", { origin: "https://evil.net" }), "10.0.0.9:1234"),
    403,
  );
  const body = await refused.text();
  assert.ok(body.includes("https://evil.net"), body);
  assert.ok(body.includes("--allow-origin"), body);
  // Even with a right token, a bad origin is refused.
  assertResponse(
    await access.admit(request(`?token=${OPS_TOKEN}`, { origin: "http://ops.example.org" }), "p"),
    403,
  );
  // A good origin with a right token is admitted; without a token it is 401.
  const ok = assertAdmission(
    await access.admit(request(`?token=${OPS_TOKEN}`, { origin: "https://ops.example.org" }), "p"),
  );
  assert.equal(access.tokenOf(ok.grant)?.name, "ops");
  assertResponse(await access.admit(request("", { origin: "https://ops.example.org" }), "p"), 401);
  // No Origin (a non-browser client) is not an origin check.
  assertAdmission(await access.admit(request(`?token=${OPS_TOKEN}`), "p"));
  // The gateway's own origin is allowed when Host is an address (a DNS name could be a rebinding one).
  assertResponse(await access.admit(request(`?token=${OPS_TOKEN}`, { origin: "http://gw:9876" }), "p"), 403);
  assertAdmission(
    await access.admit(
      request(`?token=${OPS_TOKEN}`, { origin: "http://10.0.0.1:9876", host: "10.0.0.1:9876" }),
      "p",
    ),
  );
});

Deno.test("access: origins are checked on an open gateway too", async () => {
  const access = await loadedAccess({ allowOrigins: ["https://ops.example.org"] });
  assertResponse(await access.admit(request("", { origin: "https://evil.net" }), "p"), 403);
  assert.deepEqual(await access.admit(request("", { origin: "https://ops.example.org" }), "p"), {
    protocol: undefined,
    grant: {},
  });
});

Deno.test("access: refusals are logged with the peer and the reason, never the token", async () => {
  const access = await loadedAccess({ ...WITH_TOKENS, allowOrigins: ["https://ops.example.org"] });
  const wrong = "wrong-token-0123456789";
  const logs = await captureLogs(async () => {
    await access.admit(request(), "10.1.1.1:1111");
    await access.admit(request(`?token=${wrong}`), "10.2.2.2:2222");
    await access.admit(
      request("", { authorization: `Bearer ${OPS_TOKEN}`, origin: "https://x.net" }),
      "10.3.3.3:3",
    );
  });
  assert.match(logs, /10\.1\.1\.1:1111/);
  assert.match(logs, /no token/);
  assert.match(logs, /10\.2\.2\.2:2222/);
  assert.match(logs, /unknown token/);
  assert.match(logs, /10\.3\.3\.3:3/);
  assert.match(logs, /https:\/\/x\.net/);
  assert.ok(!logs.includes(wrong), logs);
  assert.ok(!logs.includes(OPS_TOKEN), logs);
});

Deno.test("access: load() warns about plain-text tokens without logging them", async () => {
  const access = new Access(accessConfig({
    tokensText: {
      text: oneJson({ name: "legacy", role: "command", token: OPS_TOKEN }),
      source: "CLU_WS_TOKENS",
    },
  }));
  const logs = await captureLogs(() => access.load());
  assert.ok(logs.includes(OPS_HEX), logs);
  assert.ok(!logs.includes(OPS_TOKEN), logs);
  assert.match(logs, /1 access tokens loaded|"count":1/);
  const admitted = assertAdmission(await access.admit(request(`?token=${OPS_TOKEN}`), "p"));
  assert.equal(access.tokenOf(admitted.grant)?.name, "legacy");
});

Deno.test("access: load() rejects unusable tokens with a TokensError naming the source", async () => {
  const access = new Access(accessConfig({
    tokensText: { text: oneJson({ name: "x", role: "boss", sha256: OPS_HEX }), source: "CLU_WS_TOKENS" },
  }));
  await assert.rejects(access.load(), (err: unknown) => {
    assert.ok(err instanceof TokensError);
    assert.match(err.message, /^CLU_WS_TOKENS: token #1 \(x\): 'role'/);
    return true;
  });
  assert.equal(access.usesTokens, false, "nothing was loaded");
});

Deno.test("access: an unreadable --tokens-file is a TokensError naming the file", async () => {
  const path = "/nonexistent/clu-ws/tokens.toml";
  const access = new Access(accessConfig({ tokensFile: path }));
  await assert.rejects(access.load(), (err: unknown) => {
    assert.ok(err instanceof TokensError);
    assert.match(err.message, /^cannot read tokens file '\/nonexistent\/clu-ws\/tokens\.toml' \(/);
    return true;
  });
});

Deno.test("access: reload() without --tokens-file keeps the tokens from text", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  await captureLogs(() => access.reload());
  assert.equal(access.usesTokens, true);
  assertAdmission(await access.admit(request(`?token=${OPS_TOKEN}`), "p"));
});

const canUseFiles = Deno.permissions.querySync({ name: "read" }).state === "granted" &&
  Deno.permissions.querySync({ name: "write" }).state === "granted";

Deno.test({
  name: "access: --tokens-file is read at load, re-read on reload, and kept when the new file is bad",
  ignore: !canUseFiles,
  async fn() {
    const path = await Deno.makeTempFile({ suffix: ".toml" });
    try {
      await Deno.writeTextFile(path, TOKENS_TOML);
      const access = await loadedAccess({ tokensFile: path });
      assert.equal(access.usesTokens, true);
      assertAdmission(await access.admit(request(`?token=${OPS_TOKEN}`), "p"));

      // A broken file: the tokens in use stay, and the error is logged with the file name.
      await Deno.writeTextFile(path, `[[tokens]]\nname = "x"\nrole = "boss"\nsha256 = "${OPS_HEX}"\n`);
      const logs = await captureLogs(() => access.reload());
      assert.ok(logs.includes(path), logs);
      assert.match(logs, /kept the tokens in use/);
      assertAdmission(await access.admit(request(`?token=${OPS_TOKEN}`), "p"));

      // A good new file replaces the tokens: ops is gone, a new one works.
      await Deno.writeTextFile(path, oneJson({ name: "new", role: "watch", sha256: LVM_HEX }));
      await captureLogs(() => access.reload());
      assertResponse(await access.admit(request(`?token=${OPS_TOKEN}`), "p"), 401);
      assert.equal(
        access.tokenOf(assertAdmission(await access.admit(request(`?token=${LVM_TOKEN}`), "p")).grant)?.name,
        "new",
      );

      // A file that disappears: the tokens in use stay.
      await Deno.remove(path);
      await captureLogs(() => access.reload());
      assertAdmission(await access.admit(request(`?token=${LVM_TOKEN}`), "p"));
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  },
});

// ---------------------------------------------------------------- Access.commandDenial

Deno.test("access: commandDenial applies the configured rules to the grant's token", async () => {
  const access = await loadedAccess({
    ...WITH_TOKENS,
    denyActors: ["jaeger"],
    allowActors: ["lvm*", "jaeger"],
  });
  const grant = async (token: string) =>
    assertAdmission(await access.admit(request(`?token=${token}`), "p")).grant;
  const ops = await grant(OPS_TOKEN);
  const viewer = await grant(WATCH_TOKEN);
  const lvm = await grant(LVM_TOKEN);
  assert.equal(access.commandDenial(ops, "lvmecp"), undefined);
  assert.match(access.commandDenial(ops, "jaeger")!, /--deny-actor 'jaeger'/);
  assert.match(access.commandDenial(ops, "fliswarm")!, /--allow-actor/);
  assert.match(access.commandDenial(viewer, "lvmecp")!, /token 'viewer' may only watch/);
  assert.equal(access.commandDenial(lvm, "lvmecp"), undefined);
  // Its list has lvm.* but not lvm, and a command to lvm.sp1.ieb reaches actor lvm too.
  assert.match(access.commandDenial(lvm, "lvm.sp1.ieb")!, /also delivered to actor 'lvm' if it runs/);
  assert.match(access.commandDenial(lvm, "lvmnps")!, /token 'lvm-operator' may not command actor 'lvmnps'/);
});

Deno.test("access: --read-only denies every command, on an open gateway too", async () => {
  const access = await loadedAccess({ readOnly: true });
  assert.match(access.commandDenial({}, "lvmecp")!, /read-only/);
  const open = await loadedAccess();
  assert.equal(open.commandDenial({}, "lvmecp"), undefined);
});

// ---------------------------------------------------------------- Access.guardOps

Deno.test("access: without a metrics token /healthz and /metrics are open", async () => {
  const access = await loadedAccess(WITH_TOKENS);
  assert.equal(access.guardOps(new Request("http://gw/metrics")), undefined);
  assert.equal(
    access.guardOps(new Request("http://gw/healthz", { headers: { authorization: "Bearer x" } })),
    undefined,
  );
});

Deno.test("access: with a metrics token, the right bearer passes and anything else is 401", async () => {
  const secret = "metrics-secret-42";
  const access = await loadedAccess({ metricsToken: secret });
  const guard = (headers: Record<string, string> = {}, path = "/metrics") =>
    access.guardOps(new Request(`http://gw${path}`, { headers }));

  assert.equal(guard({ authorization: `Bearer ${secret}` }), undefined);
  assert.equal(guard({ authorization: `bearer ${secret}` }), undefined);
  assert.equal(guard({ authorization: `Bearer   ${secret}  ` }), undefined);
  assert.equal(guard({ authorization: `Bearer ${secret}` }, "/healthz"), undefined);

  const refused: Record<string, string>[] = [
    {},
    { authorization: "" },
    { authorization: "Bearer" },
    { authorization: "Bearer wrong" },
    { authorization: `Bearer ${secret.slice(0, -1)}` },
    { authorization: `Bearer ${secret}x` },
    { authorization: `Bearer ${secret.toUpperCase()}` },
    { authorization: `Basic ${btoa(`user:${secret}`)}` },
    { authorization: secret },
  ];
  for (const headers of refused) {
    const response = guard(headers);
    assert.ok(response instanceof Response, JSON.stringify(headers));
    assert.equal(response.status, 401);
    assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="clu-ws metrics"');
    const body = await response.text();
    assert.match(body, /Authorization: Bearer <metrics token>/);
    assert.ok(!body.includes(secret));
  }
  // Only the header counts: a query token is not accepted for the ops endpoints.
  const query = access.guardOps(new Request(`http://gw/metrics?token=${secret}`));
  assert.equal(query?.status, 401);
  await query?.body?.cancel();
});
