/**
 * Where the gateway's time goes: summarises a V8 CPU profile (`deno run
 * --cpu-prof`) of the bundle by source module (the bundle's `// <path>`
 * markers say which module each line came from) and by function.
 *
 * Run alone: `deno run --allow-read bench/profile.ts <file.cpuprofile> <bundle.js>`.
 *
 * @module
 */

import { fmt } from "./stats.ts";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time of one module or function in a profile. */
export interface ProfileEntry {
  /** Module path or function label. */
  name: string;
  /** Self time, ms. */
  ms: number;
  /** Share of the profile's busy (not idle) time, percent. */
  percent: number;
}

/** A CPU profile reduced to what a reader needs. */
export interface ProfileSummary {
  /** Profiled wall time, ms. */
  total_ms: number;
  /** Time in JavaScript, natives and GC (not idle), ms. */
  busy_ms: number;
  /** Self time by source module (or V8 category), largest first. */
  modules: ProfileEntry[];
  /** Self time by function, largest first. */
  functions: ProfileEntry[];
}

/** Maps bundle line numbers (0-based) to the module they came from. */
function moduleMap(bundleText: string): (line: number) => string {
  const starts: Array<[number, string]> = [];
  const lines = bundleText.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const marker = /^\/\/ (\S+\.(?:ts|js|json|mjs))$/.exec(lines[i]);
    if (marker) starts.push([i, shortPath(marker[1])]);
  }
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "(bundle prelude)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= line) {
        found = starts[mid][1];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  };
}

/** `../../root/.cache/deno/npm/registry.npmjs.org/amqplib/2.3.1/lib/channel.js` → `amqplib/lib/channel.js`. */
function shortPath(path: string): string {
  const npm = /registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\/[^/]+\/(.+)$/.exec(path);
  return npm ? `${npm[1]}/${npm[2]}` : path;
}

/** Summarises the profile at `profilePath` of a run of the bundle at `bundlePath`. */
export function summarizeProfile(profilePath: string, bundlePath: string, top = 12): ProfileSummary {
  const profile = JSON.parse(Deno.readTextFileSync(profilePath)) as CpuProfile;
  const bundleName = bundlePath.split("/").pop()!;
  let moduleOf: (line: number) => string = () => "(bundle)";
  try {
    moduleOf = moduleMap(Deno.readTextFileSync(bundlePath));
  } catch {
    // The bundle is gone: report functions by line only.
  }
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const selfById = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // Each sample's delta is the time since the previous sample: credit it to this sample's node.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfById.set(profile.samples[i], (selfById.get(profile.samples[i]) ?? 0) + delta);
  }
  const modules = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  let total = 0;
  for (const [id, us] of selfById) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === "(idle)") continue;
    busy += us;
    let module: string;
    let fn: string;
    const name = frame.functionName || "(anonymous)";
    if (frame.url.endsWith(bundleName)) {
      module = moduleOf(frame.lineNumber);
      fn = `${name} (${module}, bundle line ${frame.lineNumber + 1})`;
    } else if (frame.url) {
      module = frame.url.replace(/^ext:/, "deno:");
      fn = `${name} (${module}:${frame.lineNumber + 1})`;
    } else {
      // V8 categories ("(garbage collector)", "(program)") and natives such as Deno's ops.
      module = name.startsWith("(") ? name : `(native) ${name}`;
      fn = module;
    }
    modules.set(module, (modules.get(module) ?? 0) + us);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const rank = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({
      name,
      ms: Math.round(us / 100) / 10,
      percent: Math.round((us / busy) * 1000) / 10,
    }));
  return {
    total_ms: Math.round(total / 1000),
    busy_ms: Math.round(busy / 1000),
    modules: rank(modules),
    functions: rank(functions),
  };
}

/** The summary as indented text lines. */
export function formatProfile(summary: ProfileSummary, top = 8): string {
  const lines = [`    profile: ${fmt(summary.busy_ms)} ms busy of ${fmt(summary.total_ms)} ms`];
  lines.push("    by module:");
  for (const e of summary.modules.slice(0, top)) {
    lines.push(`      ${e.percent.toFixed(1).padStart(5)} %  ${e.name}`);
  }
  lines.push("    by function:");
  for (const e of summary.functions.slice(0, top)) {
    lines.push(`      ${e.percent.toFixed(1).padStart(5)} %  ${e.name}`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const [profilePath, bundlePath] = Deno.args;
  if (!profilePath || !bundlePath) {
    console.error("usage: deno run --allow-read bench/profile.ts <file.cpuprofile> <bundle.js>");
    Deno.exit(2);
  }
  console.log(formatProfile(summarizeProfile(profilePath, bundlePath, 25), 25));
}
