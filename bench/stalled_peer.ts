/**
 * Websocket peers that complete the handshake and then never read: the
 * `slow` scenario's stalled clients. Each socket is made through libc (FFI)
 * with a small receive buffer (`SO_RCVBUF`) set before it connects, so that
 * the kernel holds only a few KiB for it and the gateway's own buffering and
 * slow-client policy are reached within seconds, not after the ~4 MB a
 * loopback socket would otherwise soak up.
 *
 * Started by the harness with one JSON argument `{"port", "count",
 * "rcvbuf"?}`; prints `{"event": "ready", "stalled": n}` and then holds the
 * sockets until its stdin closes.
 *
 * @module
 */

const AF_INET = 2;
const SOCK_STREAM = 1;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
});

/** Opens one stalled peer to 127.0.0.1:`port`; returns its file descriptor. */
function stalledPeer(port: number, rcvbuf: number): number {
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw new Error("socket() failed");
  const size = new Uint8Array(4);
  new DataView(size.buffer).setInt32(0, rcvbuf, true);
  if (libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4) !== 0) {
    throw new Error("setsockopt() failed");
  }
  const address = new Uint8Array(16);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_INET, true);
  view.setUint16(2, port, false);
  address.set([127, 0, 0, 1], 4);
  if (libc.symbols.connect(fd, address, 16) !== 0) throw new Error(`connect() to port ${port} failed`);
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request = new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  if (Number(libc.symbols.write(fd, request, BigInt(request.length))) !== request.length) {
    throw new Error("write() of the handshake failed");
  }
  // Read the response head byte by byte, so that no frame byte is consumed.
  let head = "";
  const one = new Uint8Array(1);
  while (!head.endsWith("\r\n\r\n")) {
    if (Number(libc.symbols.read(fd, one, 1n)) !== 1) throw new Error(`closed during the handshake: ${head}`);
    head += String.fromCharCode(one[0]);
  }
  if (!head.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
  return fd;
}

if (import.meta.main) {
  const { port, count, rcvbuf = 4096 } = JSON.parse(Deno.args[0]);
  const fds: number[] = [];
  try {
    for (let i = 0; i < count; i++) fds.push(stalledPeer(port, rcvbuf));
    console.log(JSON.stringify({ event: "ready", stalled: fds.length }));
  } catch (err) {
    console.log(
      JSON.stringify({ event: "error", message: err instanceof Error ? err.message : String(err) }),
    );
    Deno.exit(1);
  }
  // Hold the sockets (never reading them) until the harness closes our stdin.
  for await (const _ of Deno.stdin.readable) {
    // Orders are not needed: closing stdin ends the peers.
  }
  Deno.exit(0);
}
