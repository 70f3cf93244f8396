/**
 * Which browser pages may talk to the gateway: the `--allow-origin` patterns
 * and the `--public-url` origins, checked so that a DNS rebinding page (a
 * domain of its own resolving to the gateway) is refused even though its
 * `Origin` matches the `Host` it sends.
 *
 * @module
 */

/**
 * The origin to name in a refusal when `request` comes from a browser page
 * that may not connect (see {@linkcode originAllowed}), or undefined when it
 * may; a request without `Origin` is a script or a tool and may, unless
 * `Sec-Fetch-Site` gives it away as a same-origin browser request.
 */
export function refusedOrigin(request: Request, allowed: readonly string[]): string | undefined {
  const host = request.headers.get("host");
  const origin = request.headers.get("origin");
  if (origin !== null) return originAllowed(origin, host, allowed) ? undefined : origin;
  // Browsers send no Origin on a same-origin GET, so a DNS rebinding page's fetch("/actors") would
  // pass as a script. Sec-Fetch-Site, which the browser sets and no page can, gives it away; the
  // page's origin is then the Host it sent, with either scheme.
  if (allowed.length === 0 || request.headers.get("sec-fetch-site") !== "same-origin") return undefined;
  if (host !== null && ["http:", "https:"].some((s) => originAllowed(`${s}//${host}`, host, allowed))) {
    return undefined;
  }
  return `http(s)://${host}`;
}

/**
 * Whether a browser `origin` may connect, given the request's `Host` header
 * and the allowed origins (`--allow-origin` patterns and the `--public-url`
 * origins). With none, every origin may (CLU's behaviour). Otherwise only an
 * allowed origin passes, and the gateway's own origin when `Host` names it by
 * an IP address or `localhost`.
 *
 * `Host` is not proof of anything when it is a DNS name: a page on a DNS
 * rebinding domain (`evil.test` resolving to the gateway) sends
 * `Host: evil.test:9876` and `Origin: http://evil.test:9876`, a perfect match.
 * An IP literal or `localhost` cannot be rebound, so a page whose origin is
 * exactly that host was loaded from this very address and port: the console.
 */
export function originAllowed(origin: string, host: string | null, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (
    host !== null && (url.protocol === "http:" || url.protocol === "https:") &&
    url.host === host.toLowerCase() && cannotBeRebound(url.hostname)
  ) {
    return true;
  }
  const normalized = `${url.protocol}//${url.host}`;
  return allowed.map(withoutDefaultPort).some((pattern) => {
    if (!pattern.includes("*.")) return pattern === normalized;
    const [scheme, rest] = pattern.split("//");
    return scheme === url.protocol && url.host.endsWith(rest.slice(1)) && url.host.length > rest.length - 1;
  });
}

/**
 * Whether a URL host name (as `URL` normalizes it) is one that no DNS answer
 * can point elsewhere: an IPv4 or bracketed IPv6 literal, or `localhost`
 * (browsers resolve it to loopback themselves).
 */
function cannotBeRebound(hostname: string): boolean {
  return hostname === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) ||
    /^\[[0-9a-f:.]+\]$/.test(hostname);
}

/** Browsers leave the scheme's default port out of Origin, so patterns must too. */
function withoutDefaultPort(pattern: string): string {
  return pattern.replace(/^(https:\/\/.*):443$/, "$1").replace(/^(http:\/\/.*):80$/, "$1");
}
