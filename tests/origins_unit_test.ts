/**
 * Unit tests for lib/access/origins.ts: which browser pages may talk to the
 * gateway. The end-to-end cases (a real gateway, raw sockets, Chromium) are in
 * tests/origins_test.ts; tests/auth_test.ts covers the pattern forms of
 * originAllowed. Here: the DNS rebinding cases, and the Sec-Fetch-Site rule
 * for requests that carry no Origin.
 */

import assert from "node:assert/strict";
import { originAllowed, refusedOrigin } from "../lib/access/origins.ts";

const ALLOWED = ["https://ops.example.org"];

/** A request as it reaches the gateway, with exactly these headers. */
function request(headers: Record<string, string>): Request {
  return new Request("http://gw/actors", { headers });
}

// ---------------------------------------------------------------- originAllowed: DNS rebinding

Deno.test("origins: a name that only looks like an address can be rebound and does not pass by Host", () => {
  for (const host of ["127.0.0.1.nip.io:9876", "10.0.0.1.evil.test:9876", "localhost.evil.test:9876"]) {
    assert.equal(originAllowed(`http://${host}`, host, ALLOWED), false, host);
  }
});

Deno.test("origins: the gateway's own address passes by Host over http and https only", () => {
  assert.equal(originAllowed("http://127.0.0.1:9876", "127.0.0.1:9876", ALLOWED), true);
  assert.equal(originAllowed("https://127.0.0.1:9876", "127.0.0.1:9876", ALLOWED), true);
  assert.equal(originAllowed("http://localhost:9876", "localhost:9876", ALLOWED), true);
  assert.equal(originAllowed("http://[::1]:9876", "[::1]:9876", ALLOWED), true);
  assert.equal(originAllowed("http://[fe80::1]:9876", "[FE80::1]:9876", ALLOWED), true, "IPv6 in any case");
  for (const scheme of ["ws:", "wss:", "ftp:"]) {
    assert.equal(originAllowed(`${scheme}//127.0.0.1:9876`, "127.0.0.1:9876", ALLOWED), false, scheme);
  }
});

Deno.test("origins: an address Host vouches for that exact address and port only", () => {
  assert.equal(originAllowed("http://127.0.0.1:9876", "127.0.0.2:9876", ALLOWED), false, "another address");
  assert.equal(originAllowed("http://127.0.0.1:9876", "127.0.0.1", ALLOWED), false, "no port in Host");
  assert.equal(originAllowed("http://127.0.0.1", "127.0.0.1:9876", ALLOWED), false, "no port in Origin");
  assert.equal(originAllowed("http://localhost:9876", "127.0.0.1:9876", ALLOWED), false, "another name");
});

Deno.test("origins: a wildcard needs at least one label before the domain and the same scheme", () => {
  const allowed = ["http://*.example.org:80"];
  assert.equal(originAllowed("http://a.example.org", "gw", allowed), true, "default port left out");
  assert.equal(originAllowed("http://a.b.example.org", "gw", allowed), true);
  assert.equal(originAllowed("http://.example.org", "gw", allowed), false);
  assert.equal(originAllowed("http://example.org", "gw", allowed), false);
  assert.equal(originAllowed("https://a.example.org", "gw", allowed), false);
  assert.equal(originAllowed("http://aexample.org", "gw", allowed), false);
});

// ---------------------------------------------------------------- refusedOrigin

Deno.test("origins: with no allowed origins nothing is refused, whatever the headers", () => {
  for (
    const headers of [
      {},
      { origin: "https://evil.net" },
      { origin: "null" },
      { host: "evil.test:9876", "sec-fetch-site": "same-origin" },
    ] as Record<string, string>[]
  ) {
    assert.equal(refusedOrigin(request(headers), []), undefined, JSON.stringify(headers));
  }
});

Deno.test("origins: an Origin header is checked and named as sent when refused", () => {
  assert.equal(refusedOrigin(request({ origin: "https://ops.example.org" }), ALLOWED), undefined);
  assert.equal(refusedOrigin(request({ origin: "https://evil.net" }), ALLOWED), "https://evil.net");
  assert.equal(refusedOrigin(request({ origin: "null" }), ALLOWED), "null");
  // The rebinding page: its Origin matches its Host, a DNS name, which proves nothing.
  assert.equal(
    refusedOrigin(request({ origin: "http://evil.test:9876", host: "evil.test:9876" }), ALLOWED),
    "http://evil.test:9876",
  );
  assert.equal(
    refusedOrigin(request({ origin: "http://10.0.0.1:9876", host: "10.0.0.1:9876" }), ALLOWED),
    undefined,
  );
});

Deno.test("origins: without Origin, a script or tool (no Sec-Fetch-Site, or not same-origin) is not an origin check", () => {
  for (const site of [undefined, "none", "same-site", "cross-site"]) {
    const headers: Record<string, string> = { host: "evil.test:9876" };
    if (site) headers["sec-fetch-site"] = site;
    assert.equal(refusedOrigin(request(headers), ALLOWED), undefined, String(site));
  }
});

Deno.test("origins: without Origin, a same-origin browser request is checked by its Host, with either scheme", () => {
  const sameOrigin = (host: string) => request({ host, "sec-fetch-site": "same-origin" });
  // A rebinding page's fetch("/actors") sends no Origin: its Host names it.
  assert.equal(refusedOrigin(sameOrigin("evil.test:9876"), ALLOWED), "http(s)://evil.test:9876");
  // The console opened by an address, or by an allowed name over http or https, passes.
  assert.equal(refusedOrigin(sameOrigin("127.0.0.1:9876"), ALLOWED), undefined);
  assert.equal(refusedOrigin(sameOrigin("localhost:9876"), ALLOWED), undefined);
  assert.equal(refusedOrigin(sameOrigin("ops.example.org"), ALLOWED), undefined);
  assert.equal(refusedOrigin(sameOrigin("gw.lco.cl:9876"), ["http://gw.lco.cl:9876"]), undefined);
  assert.equal(refusedOrigin(sameOrigin("a.example.org"), ["https://*.example.org"]), undefined);
  assert.equal(
    refusedOrigin(sameOrigin("ops.example.org:8443"), ALLOWED),
    "http(s)://ops.example.org:8443",
    "another port",
  );
});
