/**
 * A websocket client in its own process, for tests that must freeze a real
 * client (SIGSTOP) so that it stops reading, then thaw it (SIGCONT). It prints
 * one line per frame received on stdout: the frame as sent.
 *
 * Run: deno run --allow-net tests/helpers/ws_child.ts ws://127.0.0.1:PORT/
 *
 * @module
 */

if (import.meta.main) {
  const socket = new WebSocket(Deno.args[0]);
  const encoder = new TextEncoder();
  socket.onopen = () => Deno.stdout.writeSync(encoder.encode("open\n"));
  socket.onmessage = (event) => {
    const bytes = encoder.encode(`${event.data}\n`);
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  };
  socket.onclose = (event) => {
    Deno.stdout.writeSync(encoder.encode(`close ${event.code} ${event.reason}\n`));
    Deno.exit(0);
  };
}
