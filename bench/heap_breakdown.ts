/**
 * Where an idle connection's JavaScript bytes go: takes a V8 heap snapshot of
 * a fresh gateway before and after C idle websocket connections (each after
 * a full collection, through the inspector), and lists the objects that are
 * new in the second, grouped by kind and by what holds them, in bytes per
 * connection. The bench's `idle` scenario says how much; this says what.
 *
 * ```sh
 * deno run --allow-all bench/heap_breakdown.ts                  # 2,000 connections, a fresh bundle
 * deno run --allow-all bench/heap_breakdown.ts --connections 5000 --gateway dist/clu-ws.js --top 60
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Child } from "./child.ts";
import { buildBundle, GatewayProcess } from "./gateway.ts";

/** The parts of a `.heapsnapshot` read here. */
interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** One group of new objects: their bytes and count, summed. */
interface Group {
  bytes: number;
  count: number;
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "2000" },
    gateway: { type: "string" },
    top: { type: "string", default: "40" },
    "amqp-url": { type: "string", default: "amqp://guest:guest@127.0.0.1:5672" },
  },
});
const connections = Number(flags.connections);
const top = Number(flags.top);
if (!Number.isInteger(connections) || connections < 1 || !Number.isInteger(top) || top < 1) {
  console.error("heap_breakdown: --connections and --top take positive whole numbers");
  Deno.exit(2);
}

let bundle = flags.gateway;
if (bundle === undefined) {
  bundle = `${await Deno.makeTempDir({ prefix: "clu-ws-heap-" })}/clu-ws.js`;
  await buildBundle(bundle);
}
const name = `heap-${Date.now().toString(36)}`;
const gateway = await GatewayProcess.start({
  bundle,
  amqpUrl: flags["amqp-url"],
  exchange: name,
  name,
  args: ["--max-clients", String(connections + 100)],
  inspect: true,
});

try {
  const before = await takeSnapshot(gateway.inspectorUrl!);
  const rssBefore = gateway.rss();
  const clients = new Child("clients.ts", { mode: "idle", url: gateway.url, clients: connections });
  try {
    await clients.waitFor("ready", { timeoutMs: 120_000 });
    // As the idle scenario: the gateway's collection after the surge has run by then.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const rssAfter = gateway.rss();
    const after = await takeSnapshot(gateway.inspectorUrl!);
    const groups = newObjects(before, after);
    let total = 0;
    for (const group of groups.values()) total += group.bytes;
    // One-off objects (code compiled meanwhile, a buffer pool) count too: more connections dilute them.
    console.log(
      `${connections} idle connections: RSS ${kib((rssAfter - rssBefore) / connections)} KiB each; ` +
        `new JS objects ${Math.round(total / connections)} B each, one-off ones included`,
    );
    console.log("bytes/conn  objects/conn  kind:name  <=  held by kind:name .edge");
    const rows = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top);
    for (const [key, group] of rows) {
      console.log(
        `${(group.bytes / connections).toFixed(1).padStart(10)}  ${
          (group.count / connections).toFixed(2).padStart(12)
        }  ${key}`,
      );
    }
  } finally {
    await clients.close({ graceMs: 5000 });
  }
} finally {
  await gateway.stop();
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(2);
}

/** A full collection, then a heap snapshot, through the inspector at `url`. */
async function takeSnapshot(url: string): Promise<HeapSnapshot> {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot reach the inspector at ${url}`));
  });
  const chunks: string[] = [];
  const pending = new Map<number, () => void>();
  let id = 0;
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
    else if (typeof message.id === "number") pending.get(message.id)?.();
  };
  const call = (method: string, params: Record<string, unknown> = {}) => {
    const callId = ++id;
    socket.send(JSON.stringify({ id: callId, method, params }));
    return new Promise<void>((resolve) => pending.set(callId, resolve));
  };
  try {
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  } finally {
    socket.close();
  }
  return JSON.parse(chunks.join(""));
}

/**
 * The objects of `after` that `before` did not have (V8 keeps an object's
 * snapshot id across snapshots of one session), grouped by kind and name and
 * by the first object found holding each (strong edges only).
 */
function newObjects(before: HeapSnapshot, after: HeapSnapshot): Map<string, Group> {
  const old = new Set<number>();
  {
    const fields = before.snapshot.meta.node_fields;
    const idField = fields.indexOf("id");
    for (let i = 0; i < before.nodes.length; i += fields.length) old.add(before.nodes[i + idField]);
  }
  const { nodes, edges, strings } = after;
  const meta = after.snapshot.meta;
  const nodeFields = meta.node_fields.length;
  const [typeField, nameField, idField, sizeField, edgeCountField] = [
    "type",
    "name",
    "id",
    "self_size",
    "edge_count",
  ]
    .map((f) => meta.node_fields.indexOf(f));
  const edgeFields = meta.edge_fields.length;
  const [edgeTypeField, edgeNameField, edgeToField] = ["type", "name_or_index", "to_node"]
    .map((f) => meta.edge_fields.indexOf(f));
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];

  const label = (node: number): string => {
    const type = nodeTypes[nodes[node + typeField]];
    const name = type.includes("string") ? "(string)" : strings[nodes[node + nameField]].slice(0, 50);
    return `${type}:${name}`;
  };
  const holder = new Map<number, string>();
  let edge = 0;
  for (let node = 0; node < nodes.length; node += nodeFields) {
    const count = nodes[node + edgeCountField];
    for (let k = 0; k < count; k++, edge += edgeFields) {
      const type = edgeTypes[edges[edge + edgeTypeField]];
      if (type === "weak") continue;
      const to = edges[edge + edgeToField];
      if (holder.has(to)) continue;
      const edgeName = type === "element" || type === "hidden"
        ? `[${type}]`
        : strings[edges[edge + edgeNameField]];
      holder.set(to, `${label(node)} .${edgeName}`);
    }
  }
  const groups = new Map<string, Group>();
  for (let node = 0; node < nodes.length; node += nodeFields) {
    if (old.has(nodes[node + idField])) continue;
    const key = `${label(node)}  <=  ${holder.get(node) ?? "(root)"}`;
    const group = groups.get(key) ?? { bytes: 0, count: 0 };
    group.bytes += nodes[node + sizeField];
    group.count++;
    groups.set(key, group);
  }
  return groups;
}
