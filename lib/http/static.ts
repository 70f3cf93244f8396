/**
 * The web console and the client module, embedded in the program (text
 * imports land in the bundle and the compiled binary alike), so the gateway
 * serves them with nothing fetched from anywhere else.
 *
 * @module
 */

import clientJs from "../../web/dist/client.js" with { type: "text" };
import consoleJs from "../../web/dist/console.js" with { type: "text" };
import consoleHtml from "../../web/console.html" with { type: "text" };

const FILES: Record<string, { body: string; type: string; cors?: boolean }> = {
  "/": { body: consoleHtml, type: "text/html; charset=utf-8" },
  "/console.js": { body: consoleJs, type: "text/javascript; charset=utf-8" },
  // Web apps on other origins import the client module from the gateway (module scripts need CORS).
  "/client.js": { body: clientJs, type: "text/javascript; charset=utf-8", cors: true },
};

/**
 * The console's content security policy. It talks only to the gateway that
 * served it: `connect-src 'self'` also covers ws:/wss: to the same host and
 * port (CSP Level 3), so an injected script could not send the stream or a
 * token anywhere else. `frame-ancestors 'none'`: no other page may frame it
 * and trick a user into clicking its command bar.
 */
export const CONSOLE_CSP: string =
  "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The embedded file at `pathname`, or undefined. */
export function staticFile(request: Request): Response | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const file = FILES[new URL(request.url).pathname];
  if (!file) return undefined;
  return new Response(request.method === "HEAD" ? null : file.body, {
    headers: {
      "content-type": file.type,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      ...(file.cors ? { "access-control-allow-origin": "*" } : {}),
      "content-security-policy": CONSOLE_CSP,
      // For browsers that predate frame-ancestors: no page may frame the console (clickjacking).
      "x-frame-options": "DENY",
    },
  });
}
