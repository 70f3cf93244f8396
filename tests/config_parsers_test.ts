/**
 * Unit tests for lib/config/parsers.ts: each value parser alone, on raw text
 * with a source, as flags, variables, the config file and defaults reach it.
 */

import assert from "node:assert/strict";
import { ConfigError } from "../lib/config/config.ts";
import {
  parseBoolean,
  parseChoice,
  parseClientName,
  parseCount,
  parseExchange,
  parseGlobs,
  parseHeartbeat,
  parseList,
  parseOriginPatterns,
  parsePort,
  parsePublicOrigins,
  parseSize,
  type RawValue,
} from "../lib/config/parsers.ts";
import { MAX_CONFIG_GLOBS } from "../lib/protocol/glob.ts";

function raw(value: string, source = "--opt"): RawValue {
  return { value, source };
}

/** The ConfigError message `fn` throws (fails the test if it throws nothing else). */
function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("parseSize: bytes and units, binary for k/m/g and KiB/MiB/GiB, decimal for kB/MB/GB", () => {
  const cases: [string, number][] = [
    ["65536", 65536],
    ["0", 0],
    ["12b", 12],
    ["64k", 64 * 1024],
    ["64KiB", 64 * 1024],
    ["64kB", 64_000],
    ["1m", 1024 ** 2],
    ["1MiB", 1024 ** 2],
    ["1MB", 1_000_000],
    ["1g", 1024 ** 3],
    ["1GiB", 1024 ** 3],
    ["2GB", 2_000_000_000],
    ["1.5MB", 1_500_000],
    ["1.5k", 1536],
    [" 8 MiB ", 8 * 1024 ** 2],
    ["2.0001", 2],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(raw(text)), bytes, text);
});

Deno.test("parseSize: refuses text, unknown units, negatives, sizes under min and over 2 GiB", () => {
  for (const text of ["", "big", "1x", "-1", "1 MiB 2", "1e6", "2.5GiB", "3GiB"]) {
    assert.equal(
      problem(() => parseSize(raw(text, "CLU_WS_CLIENT_BUFFER"))),
      `CLU_WS_CLIENT_BUFFER: '${text}' is not a size; use bytes or a unit, e.g. 65536, 64KiB, 1MiB (at least 0 bytes)`,
    );
  }
  assert.equal(parseSize(raw("2GiB")), 2 ** 31);
  assert.match(problem(() => parseSize(raw("1023"), { min: 1024 })), /\(at least 1024 bytes\)$/);
  assert.equal(parseSize(raw("1KiB"), { min: 1024 }), 1024);
});

Deno.test("parseCount: whole numbers within bounds, 0 to 10,000,000 unless told", () => {
  assert.equal(parseCount(raw("0")), 0);
  assert.equal(parseCount(raw(" 42 ")), 42);
  assert.equal(parseCount(raw("10000000")), 10_000_000);
  assert.equal(parseCount(raw("30"), { min: 1, max: 30 }), 30);
  for (const text of ["", "-1", "1.5", "1e3", "x", "10000001"]) {
    assert.equal(
      problem(() => parseCount(raw(text))),
      `--opt: '${text}' is not a whole number from 0 to 10000000`,
    );
  }
  assert.equal(
    problem(() => parseCount(raw("31", "gw.toml: header-timeout"), { min: 1, max: 30 })),
    "gw.toml: header-timeout: '31' is not a whole number from 1 to 30",
  );
  assert.match(problem(() => parseCount(raw("0"), { min: 1 })), /from 1 to 10000000$/);
});

Deno.test("parsePort: 0 to 65535, or 1 to 65535 when 0 is not allowed", () => {
  assert.equal(parsePort(raw("0")), 0);
  assert.equal(parsePort(raw("65535")), 65535);
  assert.equal(parsePort(raw(" 80 ")), 80);
  for (const text of ["65536", "-1", "80.5", "http", ""]) {
    assert.equal(
      problem(() => parsePort(raw(text, "--port"))),
      `--port: '${text}' is not a port; use a whole number from 0 to 65535`,
    );
  }
  assert.equal(
    problem(() => parsePort(raw("0", "-P"), { allowZero: false })),
    "-P: '0' is not a port; use a whole number from 1 to 65535",
  );
});

Deno.test("parseHeartbeat: whole seconds from 0 (off) to 3600", () => {
  assert.equal(parseHeartbeat(raw("0")), 0);
  assert.equal(parseHeartbeat(raw("3600")), 3600);
  for (const text of ["3601", "-1", "1.5", "fast"]) {
    assert.equal(
      problem(() => parseHeartbeat(raw(text, "--heartbeat"))),
      `--heartbeat: '${text}' is not a heartbeat; use whole seconds from 0 (off) to 3600`,
    );
  }
});

Deno.test("parseChoice: one of the choices in any case, returned in lower case", () => {
  const levels = ["debug", "info"] as const;
  assert.equal(parseChoice(raw("INFO"), levels), "info");
  assert.equal(
    problem(() => parseChoice(raw("trace", "CLU_WS_LOG_LEVEL"), levels)),
    "CLU_WS_LOG_LEVEL: 'trace' is not one of debug, info",
  );
});

Deno.test("parseBoolean: the usual words either way, empty is false, not given is false", () => {
  assert.equal(parseBoolean(undefined), false);
  for (const text of ["1", "true", "YES", " on "]) assert.equal(parseBoolean(raw(text)), true, text);
  for (const text of ["0", "false", "No", "off", "", " "]) assert.equal(parseBoolean(raw(text)), false, text);
  assert.equal(problem(() => parseBoolean(raw("maybe"))), "--opt: 'maybe' is not true or false");
});

Deno.test("parseList: comma-separated, trimmed, empty items dropped", () => {
  assert.deepEqual(parseList(undefined), []);
  assert.deepEqual(parseList(raw("")), []);
  assert.deepEqual(parseList(raw(" a , b,,c ,")), ["a", "b", "c"]);
});

Deno.test("parseGlobs: a list bounded in number and length, with the source named", () => {
  assert.deepEqual(parseGlobs(undefined), []);
  assert.deepEqual(parseGlobs(raw("lvm, lvm.*")), ["lvm", "lvm.*"]);
  const many = Array.from({ length: MAX_CONFIG_GLOBS + 1 }, (_, i) => `a${i}`).join(",");
  assert.match(
    problem(() => parseGlobs(raw(many, "--allow-actor"))),
    /^--allow-actor: the list .*; use fewer or shorter globs$/,
  );
  assert.match(
    problem(() => parseGlobs(raw("*".repeat(256), "--deny-actor"))),
    /^--deny-actor: the list entry #1 is longer than 255 bytes .*; use fewer or shorter globs$/,
  );
});

Deno.test("parseOriginPatterns: exact or wildcard-host origins, lower-cased; anything else refused", () => {
  assert.deepEqual(parseOriginPatterns(undefined), []);
  assert.deepEqual(
    parseOriginPatterns(raw("https://Ops.Example.org, http://*.example.org:8080")),
    ["https://ops.example.org", "http://*.example.org:8080"],
  );
  for (
    const text of ["ops.example.org", "https://a.org/", "ws://a.org", "https://a.*.org", "https://a.org:x"]
  ) {
    assert.equal(
      problem(() => parseOriginPatterns(raw(text, "--allow-origin"))),
      `--allow-origin: '${text}' is not an origin; use e.g. https://ops.example.org or https://*.example.org`,
    );
  }
});

Deno.test("parsePublicOrigins: the origin browsers send for each public URL", () => {
  assert.deepEqual(parsePublicOrigins(undefined), []);
  assert.deepEqual(
    parsePublicOrigins(
      raw("https://GW.example.org:9876/clu/, wss://gw.example.org:443, ws://h:80, http://h:8080"),
    ),
    ["https://gw.example.org:9876", "https://gw.example.org", "http://h", "http://h:8080"],
  );
});

Deno.test("parsePublicOrigins: refuses what is not one plain http(s) or ws(s) address", () => {
  const fix = "use the address browsers open the console at, e.g. https://gw.example.org:9876";
  assert.equal(
    problem(() => parsePublicOrigins(raw("gw.example.org", "--public-url"))),
    `--public-url: 'gw.example.org' is not a URL; ${fix}`,
  );
  assert.equal(
    problem(() => parsePublicOrigins(raw("ftp://gw.example.org"))),
    `--opt: 'ftp://gw.example.org' is not an http:// or https:// URL; ${fix}`,
  );
  for (
    const text of ["https://*.example.org", "https://u:p@gw.org", "https://gw.org/?a=1", "https://gw.org/#x"]
  ) {
    assert.equal(
      problem(() => parsePublicOrigins(raw(text))),
      `--opt: '${text}' must name one host, without wildcards, user, query or fragment; ${fix}`,
    );
  }
});

Deno.test("parseExchange and parseClientName: names RabbitMQ and CLU accept", () => {
  assert.equal(parseExchange(raw("sdss_exchange")), "sdss_exchange");
  assert.equal(parseExchange(raw("a-b.c:d")), "a-b.c:d");
  for (const text of ["", "a b", "x".repeat(128), "é"]) {
    assert.match(
      problem(() => parseExchange(raw(text, "--exchange"))),
      /^--exchange: exchange name '.*' is not valid; use 1 to 127/,
    );
  }
  assert.equal(parseClientName(raw("webgw.1")), "webgw.1");
  for (const text of ["", "a b", "a#", "a*", "x".repeat(201)]) {
    assert.match(
      problem(() => parseClientName(raw(text, "CLU_WS_NAME"))),
      /^CLU_WS_NAME: client name '.*' is not valid; use 1 to 200 characters without spaces, '#' or '\*'$/,
    );
  }
});
