/**
 * Counts how many closed server websockets are still alive after a full GC:
 * `deno run --allow-net --v8-flags=--expose-gc closed_sockets.ts <count> <release|keep>`
 * serves `count` websockets (idle timeout 40 s, as the gateway), each closed by
 * the peer without a close frame, and prints the number still reachable. With
 * `release`, the close handler calls {@linkcode releaseClosedSocket}, as the
 * gateway's sessions do.
 *
 * @module
 */

import { releaseClosedSocket } from "../../lib/ws_release.ts";

if (import.meta.main) {
  const [countText, mode] = Deno.args;
  const count = Number(countText);
  const refs: WeakRef<WebSocket>[] = [];
  let closed = 0;
  let allClosed: () => void = () => {};
  const done = new Promise<void>((resolve) => allClosed = resolve);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout: 40 });
    socket.onclose = () => {
      if (mode === "release") releaseClosedSocket(socket);
      if (++closed === count) allClosed();
    };
    refs.push(new WeakRef(socket));
    return response;
  });
  const encoder = new TextEncoder();
  for (let i = 0; i < count; i++) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(encoder.encode(
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    await conn.read(new Uint8Array(1024));
    conn.close();
  }
  await done;
  // WeakRefs hold their target until the end of the job that made them: collect in later tasks.
  const gc = (globalThis as unknown as { gc: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc();
  }
  console.log(refs.filter((ref) => ref.deref() !== undefined).length);
  await server.shutdown();
  Deno.exit(0);
}
