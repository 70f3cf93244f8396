/**
 * A real two-node RabbitMQ cluster on this machine, for tests: a second node
 * (its own node name, AMQP and distribution ports, data and log directories
 * under a temporary directory, the default node's Erlang cookie) joined to the
 * default node with `rabbitmqctl join_cluster`, and a teardown that leaves the
 * default broker as it was: the second node stopped and forgotten, its
 * processes gone, its directories removed, `cluster_status` as before.
 *
 * {@linkcode startLoneNode} starts a node the same way that joins nothing:
 * a broker set up as the default one is not (a feature flag disabled).
 *
 * When a cluster cannot be formed, {@linkcode startCluster} throws a
 * {@linkcode ClusterError} that says why: tests fail loudly, never skip.
 *
 * @module
 */

import { connect } from "amqplib";
import { AMQP_URL } from "./broker.ts";

/** Why a cluster could not be formed (or torn down) on this machine. */
export class ClusterError extends Error {
  /** Prefixes `message` with what was being attempted. */
  constructor(message: string) {
    super(`cannot run a two-node RabbitMQ cluster on this machine: ${message}`);
    this.name = "ClusterError";
  }
}

/** What `rabbitmqctl` printed and how it exited. */
export interface CtlResult {
  /** The exit code (-1 when it did not finish in time). */
  code: number;
  /** Its stdout, trimmed. */
  stdout: string;
  /** Its stderr, trimmed. */
  stderr: string;
}

/** Runs `rabbitmqctl` with `args` (killed after `timeoutMs`); never throws for a non-zero exit. */
export async function rabbitmqctl(args: string[], { timeoutMs = 60_000 } = {}): Promise<CtlResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("rabbitmqctl", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ClusterError(
        "`rabbitmqctl` is not on the PATH; install RabbitMQ (`apt-get install rabbitmq-server`)",
      );
    }
    throw err;
  }
  const decoder = new TextDecoder();
  return {
    code: output.signal ? -1 : output.code,
    stdout: decoder.decode(output.stdout).trim(),
    stderr: decoder.decode(output.stderr).trim(),
  };
}

/** Like {@linkcode rabbitmqctl}, but throws a {@linkcode ClusterError} unless it exits 0. */
async function ctlOk(args: string[], why: string): Promise<string> {
  const result = await rabbitmqctl(args);
  if (result.code !== 0) {
    throw new ClusterError(
      `${why}: \`rabbitmqctl ${args.join(" ")}\` ${
        result.code === -1 ? "did not finish within 60 s" : `exited ${result.code}`
      }: ${result.stderr || result.stdout}`,
    );
  }
  return result.stdout;
}

/** The nodes of the cluster the default node is in, as `rabbitmqctl cluster_status` reports them. */
export interface ClusterMembers {
  /** Disc nodes (every member, for clusters made by this helper). */
  disk: string[];
  /** RAM nodes. */
  ram: string[];
  /** Members whose RabbitMQ application runs. */
  running: string[];
}

/** `rabbitmqctl [-n node] cluster_status`, parsed. */
export async function clusterMembers(node?: string): Promise<ClusterMembers> {
  const args = [...(node ? ["-n", node] : []), "cluster_status", "--formatter", "json"];
  const status = JSON.parse(await ctlOk(args, "reading the cluster status"));
  const sorted = (list: unknown) => (Array.isArray(list) ? list.map(String).sort() : []);
  return {
    disk: sorted(status.disk_nodes),
    ram: sorted(status.ram_nodes),
    running: sorted(status.running_nodes),
  };
}

/** Options for {@linkcode startCluster}. */
export interface ClusterOptions {
  /** The second node's name before the `@` (default `clu-ws-test-2`; the host is the default node's). */
  name?: string;
  /** The second node's AMQP port (default 5673), on 127.0.0.1. */
  amqpPort?: number;
  /** The second node's Erlang distribution port (default `amqpPort + 20000`, as RabbitMQ does). */
  distPort?: number;
  /** How long the second node may take to accept AMQP connections, each time it starts (ms). */
  startTimeoutMs?: number;
  /**
   * Make the second node a member of the stream coordinator (for tests that
   * read a stream on it); see {@linkcode joinStreamCoordinator}.
   */
  streamCoordinator?: boolean;
}

/** How long the steps of forming the cluster took (ms). */
export interface ClusterTimings {
  /** From spawning the second node to its AMQP port answering. */
  startMs: number;
  /** From `stop_app` to the joined node answering AMQP again (stop_app, join_cluster, start_app). */
  joinMs: number;
}

const decoder = new TextDecoder();

/** Resolves when `ms` have passed; for polling deadlines only. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The same URL as `url` with another port. */
function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.href.replace(/\/$/, "");
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
async function portAnswers(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** The pids of processes whose environment holds `NAME=value` exactly (Linux /proc). */
function processesWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}`;
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const environ = decoder.decode(Deno.readFileSync(`/proc/${entry.name}/environ`));
      if (environ.split("\0").includes(wanted)) found.push(Number(entry.name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return found;
}

/** The environment variable that marks every process of a second node (its directory as value). */
const MARKER = "CLU_WS_TEST_CLUSTER_DIR";

/** Where `rabbitmq-server` (the script that runs a node in the foreground, as the caller) is. */
function findServerScript(): string {
  const candidates = [
    Deno.env.get("CLU_WS_TEST_RABBITMQ_SERVER"),
    // Debian and Ubuntu: /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user.
    "/usr/lib/rabbitmq/bin/rabbitmq-server",
    "/usr/local/sbin/rabbitmq-server",
    "/usr/sbin/rabbitmq-server",
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
  throw new ClusterError(
    "no rabbitmq-server script found (looked in /usr/lib/rabbitmq/bin, /usr/local/sbin, /usr/sbin); " +
      "set CLU_WS_TEST_RABBITMQ_SERVER to its path",
  );
}

/**
 * The default node: its name (`rabbit@localhost`), its home directory (where
 * its Erlang cookie is) and whether it uses long node names.
 */
async function describePrimary(): Promise<{ node: string; home: string; longNames: boolean }> {
  const why = "the default RabbitMQ node does not answer `rabbitmqctl` (is it running? " +
    "`rabbitmq-server -detached` starts it)";
  const node = (await ctlOk(["-q", "eval", "node()."], why)).replace(/^'|'$/g, "");
  const homeTerm = await ctlOk(["-q", "eval", "init:get_argument(home)."], why);
  const home = /\[\["(.*)"\]\]/.exec(homeTerm)?.[1];
  if (!home) throw new ClusterError(`cannot tell the default node's home directory from ${homeTerm}`);
  const longNames = (await ctlOk(["-q", "eval", "net_kernel:longnames()."], why)) === "true";
  return { node, home, longNames };
}

/** Stops a node of this name left by an interrupted run, and makes the default node forget it. */
async function removeLeftover(node: string, before: ClusterMembers): Promise<ClusterMembers> {
  const ping = await rabbitmqctl(["-n", node, "ping"], { timeoutMs: 20_000 });
  if (ping.code === 0) {
    console.warn(`cluster: a node ${node} is still running (an interrupted run?); stopping it`);
    await rabbitmqctl(["-n", node, "stop"]);
  }
  if (before.disk.includes(node) || before.ram.includes(node)) {
    console.warn(`cluster: the default node still lists ${node} (an interrupted run?); forgetting it`);
    await forget(node);
    return await clusterMembers();
  }
  return before;
}

/** `rabbitmqctl forget_cluster_node`, retried while the default node still sees the node as running. */
async function forget(node: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: CtlResult | undefined;
  while (Date.now() < deadline) {
    const members = await clusterMembers().catch(() => undefined);
    if (members && !members.disk.includes(node) && !members.ram.includes(node)) return;
    last = await rabbitmqctl(["forget_cluster_node", node]);
    if (last.code === 0) return;
    await delay(1000);
  }
  throw new ClusterError(
    `the default node would not forget ${node}: \`rabbitmqctl forget_cluster_node ${node}\` exited ${last?.code}: ${
      last?.stderr || last?.stdout
    }; run it by hand`,
  );
}

/**
 * A RabbitMQ node of the tests' own on this machine: its own node name, AMQP
 * and distribution ports, data, logs and home under a temporary directory,
 * run in the foreground as a child of the tests; every process it starts
 * carries a marker in its environment, so that stopping it can leave nothing
 * behind.
 */
export class LocalNode {
  /** The node's name (`clu-ws-test-2@localhost`). */
  readonly name: string;
  /** Its AMQP port, on 127.0.0.1. */
  readonly port: number;
  /** Its AMQP URL. */
  readonly url: string;
  /** The temporary directory that holds its data, logs and home. */
  readonly dir: string;
  readonly #startTimeoutMs: number;
  #child: Deno.ChildProcess | undefined;
  #exited: Promise<Deno.CommandStatus> | undefined;

  /** A node to be spawned; use {@linkcode startCluster} or {@linkcode startLoneNode}. */
  constructor(fields: { name: string; port: number; dir: string; startTimeoutMs: number }) {
    this.name = fields.name;
    this.port = fields.port;
    this.url = withPort(AMQP_URL, fields.port);
    this.dir = fields.dir;
    this.#startTimeoutMs = fields.startTimeoutMs;
  }

  /** Spawns the node in the foreground (its output goes to `<dir>/server.out`). */
  spawn(script: string, env: Record<string, string>): void {
    this.#child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" >"$1" 2>&1', script, `${this.dir}/server.out`],
      cwd: this.dir,
      env: { ...env, [MARKER]: this.dir },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#exited = this.#child.status;
  }

  /** The last lines of the node's output and log, for error messages. */
  tail(lines = 15): string {
    const parts: string[] = [];
    for (const file of ["server.out", `log/${this.name}.log`]) {
      try {
        const text = Deno.readTextFileSync(`${this.dir}/${file}`).trimEnd().split("\n").slice(-lines);
        parts.push(`--- ${file}:\n${text.join("\n")}`);
      } catch {
        // Not written (yet).
      }
    }
    return parts.join("\n") || "(the node wrote nothing)";
  }

  /** Resolves once the node accepts AMQP connections (a real AMQP handshake, not a ping). */
  async waitForAmqp(what: string): Promise<void> {
    const deadline = Date.now() + this.#startTimeoutMs;
    let exited: Deno.CommandStatus | undefined;
    this.#exited?.then((status) => exited = status);
    let lastError = "";
    while (Date.now() < deadline) {
      if (exited) {
        throw new ClusterError(
          `${this.name} exited (code ${exited.code}) while ${what}:\n${this.tail()}`,
        );
      }
      if (await portAnswers(this.port)) {
        try {
          const connection = await connect(this.url, { timeout: 2000 });
          connection.on("error", () => {});
          await connection.close();
          return;
        } catch (err) {
          lastError = err instanceof Error ? err.message : String(err);
        }
      }
      await delay(250);
    }
    throw new ClusterError(
      `${this.name} did not accept AMQP connections on port ${this.port} within ${
        this.#startTimeoutMs / 1000
      } s while ${what}${lastError ? ` (last error: ${lastError})` : ""}:\n${this.tail()}`,
    );
  }

  /**
   * Stops the node (`rabbitmqctl stop`, then SIGKILL for whatever of it is
   * left) and resolves with what went wrong, if anything; its directory stays.
   */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    if (this.#child && this.#exited) {
      const stop = await rabbitmqctl(["-n", this.name, "stop"]);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const exited = await Promise.race([
        this.#exited.then(() => true),
        new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), 30_000)),
      ]);
      clearTimeout(timer);
      if (!exited) {
        problems.push(
          `${this.name} did not exit within 30 s of \`rabbitmqctl stop\` (${
            stop.stderr || stop.stdout
          }); killed it`,
        );
      }
    }
    // Whatever is left of it (the VM, erl_child_setup, inet_gethost): only processes it started carry the marker.
    for (const pid of processesWithEnv(MARKER, this.dir)) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    if (this.#child) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await this.#exited;
    }
    return problems;
  }

  /** Processes of the node still running (none after {@linkcode LocalNode.stop}). */
  leftovers(): number[] {
    return processesWithEnv(MARKER, this.dir);
  }
}

/** The stream coordinator's Ra server on a node, as an Erlang term. */
function coordinatorId(node: string): string {
  return `{rabbit_stream_coordinator, '${node}'}`;
}

/**
 * The members of the stream coordinator (RabbitMQ's Ra cluster that places
 * every stream's replicas) as the default node's member knows them, sorted;
 * undefined when the default node has no member (no stream was ever declared).
 */
export async function coordinatorMembers(): Promise<string[] | undefined> {
  const result = await ctlOk([
    "-q",
    "eval",
    "case ra:members({rabbit_stream_coordinator, node()}) of " +
    '{ok, Ms, _} -> string:join([atom_to_list(N) || {_, N} <- Ms], ","); _ -> "" end.',
  ], "reading the stream coordinator's members");
  const list = result.replace(/^"|"$/g, "");
  return list ? list.split(",").sort() : undefined;
}

/**
 * Makes `secondary` a member of the stream coordinator, which RabbitMQ 3.10
 * does not do when a node joins: the coordinator is formed with the nodes
 * running when the first stream is declared, and a node that joined later
 * has no member of it. Declaring a stream from it works (the command goes to
 * the leader), but consuming a stream on it asks the local member where the
 * stream's local replica is, finds none, tries to start a coordinator of its
 * own, fails (`already_started` on the default node) and, after 10 s, closes
 * the connection with 541 INTERNAL_ERROR ("coordinator unavailable" in its
 * log). This starts a member on `secondary` with the configuration RabbitMQ
 * gives its own (`rabbit_stream_coordinator:make_ra_conf/2`) and adds it to
 * the cluster through the default node's member, as RabbitMQ adds a quorum
 * queue member. When the default node has no coordinator yet, a throwaway
 * stream declared on it forms one first (with only the default node: the
 * second has not joined), so that the cluster's coordinator never outlives
 * the second node with a member it cannot reach.
 */
async function joinStreamCoordinator(primary: string, secondary: string): Promise<string[]> {
  let before = await coordinatorMembers();
  if (!before) {
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      const name = `clu-ws-test-coordinator-${crypto.randomUUID().slice(0, 8)}`;
      await channel.assertQueue(name, { durable: true, arguments: { "x-queue-type": "stream" } });
      await channel.deleteQueue(name);
    } finally {
      await connection.close().catch(() => {});
    }
    before = await coordinatorMembers();
    if (!before) {
      throw new ClusterError("declaring a stream on the default node formed no stream coordinator");
    }
  }
  if (before.includes(secondary)) {
    throw new ClusterError(
      `the stream coordinator of ${primary} still counts ${secondary} as a member (${before.join(", ")}); ` +
        `remove it: rabbitmqctl eval "ra:remove_member({rabbit_stream_coordinator, node()}, ${
          coordinatorId(secondary)
        })."`,
    );
  }
  const members = [...before, secondary].map((node) => coordinatorId(node)).join(", ");
  const started = await ctlOk([
    "-n",
    secondary,
    "-q",
    "eval",
    'UId = ra:new_uid(<<"rabbit_stream_coordinator">>), ' +
    "ra:start_server(coordination, #{cluster_name => rabbit_stream_coordinator, " +
    'id => {rabbit_stream_coordinator, node()}, uid => UId, friendly_name => "rabbit_stream_coordinator", ' +
    `metrics_key => rabbit_stream_coordinator, initial_members => [${members}], ` +
    "log_init_args => #{uid => UId}, " +
    "tick_timeout => application:get_env(rabbit, stream_tick_interval, 30000), " +
    "machine => {module, rabbit_stream_coordinator, #{}}, " +
    "ra_event_formatter => {rabbit_stream_coordinator, format_ra_event, []}}).",
  ], `starting a stream coordinator member on ${secondary}`);
  if (started !== "ok") {
    throw new ClusterError(`starting a stream coordinator member on ${secondary}: ${started}`);
  }
  const added = await ctlOk(
    ["-q", "eval", `ra:add_member({rabbit_stream_coordinator, node()}, ${coordinatorId(secondary)}).`],
    `adding ${secondary} to the stream coordinator`,
  );
  if (!added.startsWith("{ok,")) {
    throw new ClusterError(`adding ${secondary} to the stream coordinator: ${added}`);
  }
  return before;
}

/** Removes `secondary` from the stream coordinator (before it stops: the rest keeps its quorum). */
async function leaveStreamCoordinator(secondary: string): Promise<string> {
  return await ctlOk(
    ["-q", "eval", `ra:remove_member({rabbit_stream_coordinator, node()}, ${coordinatorId(secondary)}).`],
    `removing ${secondary} from the stream coordinator`,
  );
}

/**
 * A second node joined to the default node. Dispose it (`await using`) or
 * call {@linkcode RabbitCluster.teardown} to put the default broker back.
 */
export class RabbitCluster implements AsyncDisposable {
  /** The default node (`rabbit@localhost`). */
  readonly primary: string;
  /** The second node (`clu-ws-test-2@localhost`). */
  readonly secondary: string;
  /** AMQP URL of the default node (the tests' broker URL). */
  readonly primaryUrl: string;
  /** AMQP URL of the second node. */
  readonly secondaryUrl: string;
  /** The second node's AMQP port. */
  readonly secondaryPort: number;
  /** The temporary directory that holds the second node's data, logs and home. */
  readonly dir: string;
  /** How long forming the cluster took. */
  readonly timings: ClusterTimings = { startMs: 0, joinMs: 0 };
  /** The membership of the default node's cluster before the second node joined. */
  readonly before: ClusterMembers;
  readonly #node: LocalNode;
  readonly #guardFlag: string;
  /** The stream coordinator's members before the second node joined it; undefined when it did not. */
  coordinatorBefore: string[] | undefined;
  #tornDown = false;

  /** Use {@linkcode startCluster}. */
  constructor(fields: { primary: string; node: LocalNode; before: ClusterMembers; guardFlag: string }) {
    this.primary = fields.primary;
    this.#node = fields.node;
    this.secondary = fields.node.name;
    this.secondaryPort = fields.node.port;
    this.primaryUrl = AMQP_URL;
    this.secondaryUrl = fields.node.url;
    this.dir = fields.node.dir;
    this.before = fields.before;
    this.#guardFlag = fields.guardFlag;
  }

  /** The last lines of the second node's output and log, for error messages. */
  tail(lines = 15): string {
    return this.#node.tail(lines);
  }

  /** Resolves once the second node accepts AMQP connections (a real AMQP handshake, not a ping). */
  waitForAmqp(what: string): Promise<void> {
    return this.#node.waitForAmqp(what);
  }

  /** Stops the RabbitMQ application of the second node (`rabbitmqctl -n <node> stop_app`); the VM stays. */
  async stopSecondaryApp(): Promise<void> {
    await ctlOk(["-n", this.secondary, "stop_app"], `stopping ${this.secondary}`);
  }

  /** Starts the second node's application again and waits for its AMQP port. */
  async startSecondaryApp(): Promise<void> {
    await ctlOk(["-n", this.secondary, "start_app"], `starting ${this.secondary}`);
    await this.waitForAmqp("starting its application again");
  }

  /**
   * Puts the default broker back as it was: stops the second node, makes the
   * default node forget it, kills whatever of it is left, removes its
   * directory, and checks `cluster_status` against the membership before.
   * Throws if the default node's cluster is not as it was.
   */
  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    const problems: string[] = [];
    try {
      if (this.coordinatorBefore) {
        // First, while the second node runs: a coordinator left with a member it cannot reach has no quorum,
        // and every stream of the default node would wait on it.
        try {
          const removed = await leaveStreamCoordinator(this.secondary);
          const after = await coordinatorMembers();
          if (JSON.stringify(after) !== JSON.stringify(this.coordinatorBefore)) {
            problems.push(
              `the stream coordinator's members are not as they were (${removed}): before ${
                this.coordinatorBefore.join(", ")
              }, after ${after?.join(", ")}`,
            );
          }
        } catch (err) {
          problems.push(err instanceof Error ? err.message : String(err));
        }
      }
      problems.push(...await this.#node.stop());
      try {
        await forget(this.secondary);
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
      }
      await Deno.remove(this.dir, { recursive: true }).catch((err) => {
        problems.push(`cannot remove ${this.dir}: ${err}`);
      });
      const after = await clusterMembers();
      if (JSON.stringify(after) !== JSON.stringify(this.before)) {
        problems.push(
          `the default node's cluster is not as it was: before ${JSON.stringify(this.before)}, after ${
            JSON.stringify(after)
          }`,
        );
      }
      const left = this.#node.leftovers();
      if (left.length > 0) problems.push(`processes of ${this.secondary} still running: ${left.join(", ")}`);
    } finally {
      await Deno.remove(this.#guardFlag).catch(() => {});
    }
    if (problems.length > 0) throw new ClusterError(`teardown: ${problems.join("; ")}`);
  }

  /** Tears down (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.teardown();
  }
}

/**
 * Starts a watcher outside this process that tears a node of the tests down
 * if this process dies before its teardown (an uncaught error, a kill): it
 * stops the node, kills its processes, makes the default node forget it
 * (when `forget`: a cluster's member) and removes its directory. Removing
 * `flag` ends the watch.
 */
async function startGuard(flag: string, node: string, dir: string, forget: boolean): Promise<void> {
  const script = 'flag=$1; pid=$2; node=$3; dir=$4; marker="$5=$4"; forget=$6; while [ -e "$flag" ]; do ' +
    'if ! kill -0 "$pid" 2>/dev/null; then ' +
    // A stream coordinator member on the node (streamCoordinator) leaves first; a no-op when it has none.
    'if [ "$forget" = 1 ]; then rabbitmqctl -q eval ' +
    "\"ra:remove_member({rabbit_stream_coordinator, node()}, {rabbit_stream_coordinator, '$node'}).\" " +
    ">/dev/null 2>&1; fi; " +
    'rabbitmqctl -n "$node" stop >/dev/null 2>&1; ' +
    'for p in /proc/[0-9]*; do if tr "\\0" "\\n" 2>/dev/null <"$p/environ" | grep -qxF "$marker"; then ' +
    'kill -9 "${p#/proc/}" 2>/dev/null; fi; done; ' +
    'if [ "$forget" = 1 ]; then for i in 1 2 3 4 5 6 7 8 9 10; do ' +
    'rabbitmqctl forget_cluster_node "$node" >/dev/null 2>&1 && break; sleep 2; done; fi; ' +
    'rm -rf "$dir"; rm -f "$flag"; exit 0; fi; sleep 0.5; done';
  // `setsid -f` forks, so the watcher is not this process's child and outlives it.
  const output = await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", script, "sh", flag, String(Deno.pid), node, dir, MARKER, forget ? "1" : "0"],
    // Not piped: the watcher would hold the pipe open (and this call) for as long as it runs.
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!output.success) {
    throw new ClusterError(`cannot start the teardown watcher: \`setsid -f sh\` exited ${output.code}`);
  }
}

/** What a node of the tests is, before it is prepared. */
interface NodePlan {
  /** Its name before the `@`. */
  name: string;
  /** Its AMQP port. */
  amqpPort: number;
  /** Its Erlang distribution port. */
  distPort: number;
  /** Feature flags it enables when first started (all it knows when undefined). */
  featureFlags?: string[];
  /** How long it may take to accept AMQP connections (ms). */
  startTimeoutMs: number;
  /** Whether it joins the default node's cluster (its guard then makes the default node forget it). */
  joins: boolean;
}

/** A node of the tests, ready to spawn: its directories written, its guard watching. */
interface PreparedNode {
  node: LocalNode;
  /** The `rabbitmq-server` script to spawn. */
  script: string;
  /** Its environment. */
  env: Record<string, string>;
  /** The default node. */
  primary: string;
  /** The default node's cluster before. */
  before: ClusterMembers;
  /** Removing this file ends the guard's watch. */
  guardFlag: string;
}

/**
 * Checks that a node can be started (the default node runs, its cookie is
 * readable, the ports are free; a node of the same name left by an
 * interrupted run is stopped), then writes its directory and starts its
 * guard. Throws a {@linkcode ClusterError} saying why when it cannot.
 */
async function prepareNode(plan: NodePlan): Promise<PreparedNode> {
  const script = findServerScript();
  const primary = await describePrimary();
  const host = primary.node.split("@")[1];
  const name = `${plan.name}@${host}`;
  const before = await removeLeftover(name, await clusterMembers());
  if (!before.running.includes(primary.node)) {
    throw new ClusterError(
      `the default node ${primary.node} is not running its application (${
        JSON.stringify(before)
      }); \`rabbitmqctl start_app\` starts it`,
    );
  }
  for (const [port, what] of [[plan.amqpPort, "AMQP"], [plan.distPort, "distribution"]] as const) {
    if (await portAnswers(port)) {
      throw new ClusterError(
        `port ${port}, wanted for the ${what} listener of ${name}, is taken by another program ` +
          "(`ss -ltnp` shows which)",
      );
    }
  }

  const cookiePath = `${primary.home}/.erlang.cookie`;
  let cookie: Uint8Array;
  try {
    cookie = Deno.readFileSync(cookiePath);
  } catch (err) {
    throw new ClusterError(
      `cannot read the default node's Erlang cookie ${cookiePath} (${
        err instanceof Error ? err.message : err
      }); a node of the tests needs the same cookie (to join, and for rabbitmqctl to stop it): ` +
        "run the tests as root or as the rabbitmq user",
    );
  }

  const dir = await Deno.makeTempDir({ prefix: plan.joins ? "clu-ws-cluster-" : "clu-ws-node-" });
  const guardFlag = await Deno.makeTempFile({ prefix: "clu-ws-cluster-guard-" });
  const node = new LocalNode({ name, port: plan.amqpPort, dir, startTimeoutMs: plan.startTimeoutMs });
  try {
    await startGuard(guardFlag, name, dir, plan.joins);
    for (const sub of ["home", "mnesia", "log"]) await Deno.mkdir(`${dir}/${sub}`);
    // The cookie is copied, never printed; Erlang refuses a cookie file others can read.
    await Deno.writeFile(`${dir}/home/.erlang.cookie`, cookie, { mode: 0o400 });
    await Deno.writeTextFile(`${dir}/rabbitmq.conf`, `listeners.tcp.local = 127.0.0.1:${plan.amqpPort}\n`);
    await Deno.writeTextFile(`${dir}/enabled_plugins`, "[].\n");
    // Its own (empty) env file: the system's sets NODENAME and would make it a second rabbit@localhost.
    await Deno.writeTextFile(`${dir}/rabbitmq-env.conf`, "");
  } catch (err) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(guardFlag).catch(() => {});
    throw err;
  }
  const env: Record<string, string> = {
    HOME: `${dir}/home`,
    RABBITMQ_CONF_ENV_FILE: `${dir}/rabbitmq-env.conf`,
    RABBITMQ_NODENAME: name,
    RABBITMQ_USE_LONGNAME: String(primary.longNames),
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(plan.amqpPort),
    RABBITMQ_DIST_PORT: String(plan.distPort),
    RABBITMQ_CONFIG_FILE: `${dir}/rabbitmq.conf`,
    RABBITMQ_ADVANCED_CONFIG_FILE: `${dir}/advanced.config`,
    RABBITMQ_ENABLED_PLUGINS_FILE: `${dir}/enabled_plugins`,
    RABBITMQ_MNESIA_BASE: `${dir}/mnesia`,
    RABBITMQ_LOG_BASE: `${dir}/log`,
    RABBITMQ_PID_FILE: `${dir}/node.pid`,
    ERL_EPMD_ADDRESS: "127.0.0.1",
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
  };
  // Read once, when the node first initialises its data: the flags it enables then, and no others.
  if (plan.featureFlags) env.RABBITMQ_FEATURE_FLAGS = plan.featureFlags.join(",");
  return { node, script, env, primary: primary.node, before, guardFlag };
}

/**
 * Starts a second RabbitMQ node on this machine and joins it to the default
 * node; resolves once both are running members of one cluster and the second
 * accepts AMQP connections. Throws a {@linkcode ClusterError} saying why when
 * that cannot be done.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<RabbitCluster> {
  const amqpPort = options.amqpPort ?? 5673;
  const prepared = await prepareNode({
    name: options.name ?? "clu-ws-test-2",
    amqpPort,
    distPort: options.distPort ?? amqpPort + 20000,
    startTimeoutMs: options.startTimeoutMs ?? 90_000,
    joins: true,
  });
  const { node, primary } = prepared;
  const secondary = node.name;
  const cluster = new RabbitCluster({
    primary,
    node,
    before: prepared.before,
    guardFlag: prepared.guardFlag,
  });
  try {
    const startedAt = performance.now();
    node.spawn(prepared.script, prepared.env);
    await node.waitForAmqp("starting");
    cluster.timings.startMs = Math.round(performance.now() - startedAt);

    const joinStartedAt = performance.now();
    const join = `joining ${secondary} to ${primary}`;
    await ctlOk(["-n", secondary, "stop_app"], join);
    await ctlOk(["-n", secondary, "join_cluster", primary], join);
    await ctlOk(["-n", secondary, "start_app"], join);
    await node.waitForAmqp("starting after join_cluster");
    cluster.timings.joinMs = Math.round(performance.now() - joinStartedAt);
    const members = await clusterMembers();
    if (!members.running.includes(secondary) || !members.running.includes(primary)) {
      throw new ClusterError(`after join_cluster the cluster runs ${JSON.stringify(members)}`);
    }
    if (options.streamCoordinator) {
      cluster.coordinatorBefore = await joinStreamCoordinator(primary, secondary);
    }
  } catch (err) {
    await cluster.teardown().catch((teardownError) => {
      console.error(`cluster: teardown after a failed start: ${teardownError}`);
    });
    throw err;
  }
  return cluster;
}

/** Options for {@linkcode startLoneNode}. */
export interface LoneNodeOptions {
  /** The node's name before the `@` (default `clu-ws-test-lone`; the host is the default node's). */
  name?: string;
  /** Its AMQP port (default 5674), on 127.0.0.1; its distribution port is this + 20000. */
  amqpPort?: number;
  /** The feature flags it enables when it initialises (`RABBITMQ_FEATURE_FLAGS`); all it knows by default. */
  featureFlags?: string[];
  /** How long it may take to accept AMQP connections (ms). */
  startTimeoutMs?: number;
}

/**
 * A RabbitMQ node of the tests' own that joins no cluster: a broker set up
 * in a way the default one is not (e.g. a feature flag disabled). Dispose it
 * to stop it and remove its directory; the default node is not touched.
 */
export class LoneNode implements AsyncDisposable {
  /** The node's name (`clu-ws-test-lone@localhost`). */
  readonly name: string;
  /** Its AMQP URL. */
  readonly url: string;
  readonly #node: LocalNode;
  readonly #guardFlag: string;
  #tornDown = false;

  /** Use {@linkcode startLoneNode}. */
  constructor(node: LocalNode, guardFlag: string) {
    this.#node = node;
    this.name = node.name;
    this.url = node.url;
    this.#guardFlag = guardFlag;
  }

  /** Runs `rabbitmqctl -n <node> ...args` on this node. */
  ctl(args: string[]): Promise<CtlResult> {
    return rabbitmqctl(["-n", this.name, ...args]);
  }

  /** Stops the node, kills whatever of it is left and removes its directory; throws if any of it failed. */
  async teardown(): Promise<void> {
    if (this.#tornDown) return;
    this.#tornDown = true;
    const problems: string[] = [];
    try {
      problems.push(...await this.#node.stop());
      await Deno.remove(this.#node.dir, { recursive: true }).catch((err) => {
        problems.push(`cannot remove ${this.#node.dir}: ${err}`);
      });
      const left = this.#node.leftovers();
      if (left.length > 0) problems.push(`processes of ${this.name} still running: ${left.join(", ")}`);
    } finally {
      await Deno.remove(this.#guardFlag).catch(() => {});
    }
    if (problems.length > 0) throw new ClusterError(`teardown of ${this.name}: ${problems.join("; ")}`);
  }

  /** Tears down (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.teardown();
  }
}

/**
 * Starts a RabbitMQ node of its own on this machine (the default node's
 * version, its own data) and resolves once it accepts AMQP connections.
 * Throws a {@linkcode ClusterError} saying why when that cannot be done.
 */
export async function startLoneNode(options: LoneNodeOptions = {}): Promise<LoneNode> {
  const amqpPort = options.amqpPort ?? 5674;
  const prepared = await prepareNode({
    name: options.name ?? "clu-ws-test-lone",
    amqpPort,
    distPort: amqpPort + 20000,
    featureFlags: options.featureFlags,
    startTimeoutMs: options.startTimeoutMs ?? 90_000,
    joins: false,
  });
  const lone = new LoneNode(prepared.node, prepared.guardFlag);
  try {
    prepared.node.spawn(prepared.script, prepared.env);
    await prepared.node.waitForAmqp("starting");
  } catch (err) {
    await lone.teardown().catch((teardownError) => {
      console.error(`node: teardown after a failed start: ${teardownError}`);
    });
    throw err;
  }
  return lone;
}
