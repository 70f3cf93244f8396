/**
 * What `deno task test` needs besides Deno, made sure of before any test runs:
 * Chromium (the console's browser tests), openssl (the TLS tests'
 * certificates), RabbitMQ accepting connections (every test) and the npm
 * packages at the versions `deno.lock` pins.
 *
 * What is missing is installed with Debian's `apt-get` when this runs as root
 * and `apt-get` exists: that is how our fresh machines and CI run (as root, in
 * a container), and the README promises that two commands are enough there.
 * Anywhere else nothing is installed: the script stops at once, before any
 * test, with the one command that installs what is missing. RabbitMQ, when it
 * is installed and down, is started with `rabbitmq-server -detached` and
 * waited for (its port, bounded), as the tests need it and it takes seconds;
 * only root may start it (Debian's `rabbitmq-server` refuses anyone else), so
 * anyone else is told at once to run `sudo rabbitmq-server -detached`, and so
 * is root when the command fails with no node left running.
 *
 * The decisions are a pure function ({@linkcode plan}) of what was found
 * ({@linkcode Facts}), so they are tested without a bare machine.
 *
 * ```sh
 * deno run --allow-env --allow-read --allow-run --allow-net --allow-sys tools/prerequisites.ts
 * ```
 *
 * @module
 */

/** The broker the tests use, as `tests/helpers/broker.ts` reads it. */
export const DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672";

/** Debian's Chromium, where the tests look for it unless `CLU_WS_CHROMIUM` says otherwise. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** How long RabbitMQ may take to open its port after `rabbitmq-server -detached`. */
export const BROKER_START_TIMEOUT_MS = 120_000;

/** Where the broker listens and whether this machine may start it. */
export interface BrokerAddress {
  /** The host, without IPv6 brackets. */
  host: string;
  /** The port (5672 for `amqp:`, 5671 for `amqps:` when the URL has none). */
  port: number;
  /** Whether the host is this machine's loopback, so a local `rabbitmq-server` serves it. */
  local: boolean;
}

/** Reads the host and port of an AMQP URL such as `amqp://guest:guest@127.0.0.1:5672`. */
export function brokerAddress(url: string): BrokerAddress {
  const parsed = new URL(url);
  if (parsed.protocol !== "amqp:" && parsed.protocol !== "amqps:") {
    throw new Error(`not an AMQP URL: ${url.replace(/:[^:@/]*@/, ":***@")}`);
  }
  const host = (parsed.hostname || "localhost").replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port ? Number(parsed.port) : parsed.protocol === "amqps:" ? 5671 : 5672;
  const local = host === "localhost" || host === "::1" || /^127\./.test(host);
  return { host, port, local };
}

/** What was found on this machine. */
export interface Facts {
  /** The Chromium the tests will launch. */
  chromium: {
    /** Its path: `CLU_WS_CHROMIUM`, or Debian's. */
    path: string;
    /** Whether `CLU_WS_CHROMIUM` chose the path (then it is never installed). */
    overridden: boolean;
    /** Whether an executable is there. */
    present: boolean;
  };
  /** Whether `openssl` is on the PATH. */
  openssl: boolean;
  /** The tests' broker. */
  broker: BrokerAddress & {
    /** Whether it accepts TCP connections now. */
    up: boolean;
  };
  /** Whether `rabbitmq-server` is installed (on the PATH, or in /usr/sbin or /sbin). */
  rabbitmqServer: boolean;
  /** Whether this runs as root. */
  root: boolean;
  /** Whether `apt-get` is on the PATH. */
  aptGet: boolean;
}

/** What to do about the facts. */
export interface Plan {
  /** Debian packages to install with `apt-get` now (only ever non-empty as root with apt-get). */
  install: string[];
  /** Whether to run `rabbitmq-server -detached` (after installing) and wait for the port. */
  startBroker: boolean;
  /** What cannot be fixed here, each saying the command that fixes it; any stops the tests at once. */
  problems: string[];
}

/** The one command that installs Debian `packages`, with `sudo` unless already root. */
export function installCommand(packages: string[], root: boolean): string {
  const sudo = root ? "" : "sudo ";
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(" ")}`;
}

/** The one command that starts an installed RabbitMQ, with `sudo` unless already root. */
export function startBrokerCommand(root: boolean): string {
  return `${root ? "" : "sudo "}rabbitmq-server -detached`;
}

/** Decides what to install, whether to start RabbitMQ, and what cannot be fixed here. */
export function plan(facts: Facts): Plan {
  const problems: string[] = [];
  const missing: string[] = [];
  const { chromium, broker } = facts;
  if (!chromium.present) {
    if (chromium.overridden) {
      problems.push(
        `CLU_WS_CHROMIUM is ${chromium.path}, where there is no executable: point it at a Chromium, ` +
          `or unset it and install Debian's with \`${installCommand(["chromium"], facts.root)}\``,
      );
    } else {
      missing.push("chromium");
    }
  }
  if (!facts.openssl) missing.push("openssl");
  if (!broker.up) {
    if (!broker.local) {
      problems.push(
        `RabbitMQ is not accepting connections at ${broker.host}:${broker.port} (CLU_WS_TEST_AMQP_URL): ` +
          "start it there, or unset CLU_WS_TEST_AMQP_URL to use a local one",
      );
    } else if (!facts.rabbitmqServer) {
      missing.push("rabbitmq-server");
    } else if (!facts.root) {
      // Debian's rabbitmq-server runs only as root (or its own user) and says so after trying anyway.
      problems.push(
        `RabbitMQ is installed but not accepting connections at ${broker.host}:${broker.port}, and only ` +
          `root may start it: start it with \`${startBrokerCommand(false)}\``,
      );
    }
  }
  const canInstall = facts.root && facts.aptGet;
  if (missing.length > 0 && !canInstall) {
    const why = facts.aptGet ? "not root" : "no apt-get: these are Debian's package names";
    problems.push(
      `missing ${missing.join(", ")} (${why}): install with \`${installCommand(missing, facts.root)}\``,
    );
  }
  const install = canInstall ? missing : [];
  const startBroker = !broker.up && broker.local && facts.root &&
    (facts.rabbitmqServer || install.includes("rabbitmq-server"));
  return { install, startBroker, problems };
}

/** The first executable file called `name` in `dirs`, or undefined. */
export async function findExecutable(name: string, dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    if (!dir) continue;
    const path = `${dir}/${name}`;
    if (await isExecutable(path)) return path;
  }
  return undefined;
}

/** Whether `path` is a file (after symlinks) that someone may execute. */
export async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Whether `host:port` accepts a TCP connection within `timeoutMs`. */
export async function tcpOpen(host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname: host, port }).then(
    (conn) => {
      conn.close();
      return true;
    },
    () => false,
  );
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `host:port` until it accepts a connection or `timeoutMs` passes; for
 * a broker that is starting, which has no event to await.
 */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  intervalMs = 250,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await tcpOpen(host, port, Math.min(2_000, Math.max(1, deadline - Date.now())))) return true;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return await tcpOpen(host, port);
}

/** The steps of starting RabbitMQ, as {@linkcode startRabbitmq} takes them (tests give fakes). */
export interface BrokerStart {
  /** Runs `rabbitmq-server -detached`; true when it exits 0. */
  start(): Promise<boolean>;
  /** Whether a RabbitMQ node runs, if only still booting (`rabbitmq-diagnostics ping`). */
  nodeRunning(): Promise<boolean>;
  /** Waits, bounded, for the broker's port; true once it accepts connections. */
  portOpen(): Promise<boolean>;
}

/**
 * Starts RabbitMQ as root: undefined once its port accepts connections, else
 * what went wrong, with the command to run. A failed start with no node
 * running is said at once: nothing is coming, so waiting for the port would
 * only delay the news by {@linkcode BROKER_START_TIMEOUT_MS}.
 */
export async function startRabbitmq(steps: BrokerStart, where: string): Promise<string | undefined> {
  // A non-zero exit can also mean that a node is already booting; then, as after a good start, the port decides.
  if (!(await steps.start()) && !(await steps.nodeRunning())) {
    return `\`rabbitmq-server -detached\` failed and no RabbitMQ node is running: see its message above and ` +
      `/var/log/rabbitmq/, then start it with \`${startBrokerCommand(true)}\``;
  }
  if (!(await steps.portOpen())) {
    return `RabbitMQ did not open ${where} within ${BROKER_START_TIMEOUT_MS / 1000} s of ` +
      `\`rabbitmq-server -detached\`; see /var/log/rabbitmq/, then start it with \`${
        startBrokerCommand(true)
      }\``;
  }
  return undefined;
}

/** The PATH's directories. */
function pathDirs(): string[] {
  return (Deno.env.get("PATH") ?? "").split(":");
}

/** Gathers the facts about this machine from the environment, the file system and the broker's port. */
export async function gatherFacts(
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): Promise<Facts> {
  const override = env("CLU_WS_CHROMIUM");
  const chromiumPath = override ?? DEFAULT_CHROMIUM;
  const broker = brokerAddress(env("CLU_WS_TEST_AMQP_URL") ?? DEFAULT_AMQP_URL);
  const dirs = pathDirs();
  return {
    chromium: {
      path: chromiumPath,
      overridden: override !== undefined,
      present: await isExecutable(chromiumPath),
    },
    openssl: (await findExecutable("openssl", dirs)) !== undefined,
    broker: { ...broker, up: await tcpOpen(broker.host, broker.port) },
    rabbitmqServer: (await rabbitmqToolPath()) !== undefined,
    root: Deno.uid() === 0,
    aptGet: (await findExecutable("apt-get", dirs)) !== undefined,
  };
}

/** Where RabbitMQ's `tool` is: the PATH, or /usr/sbin and /sbin, which users' PATHs often lack. */
function rabbitmqToolPath(tool = "rabbitmq-server"): Promise<string | undefined> {
  return findExecutable(tool, [...pathDirs(), "/usr/sbin", "/sbin"]);
}

/** Runs a command with its errors on this one's stderr (unless `shown` is false); true when it exits 0. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  shown = true,
): Promise<boolean> {
  try {
    const { code } = await new Deno.Command(command, {
      args,
      env,
      stdout: "null",
      stderr: shown ? "inherit" : "null",
    }).output();
    return code === 0;
  } catch (err) {
    say(`${command}: ${err instanceof Error ? err.message : err}`);
    return false;
  }
}

/** One line on stderr, marked as this script's. */
function say(line: string): void {
  console.error(`prerequisites: ${line}`);
}

/** Makes sure of everything; returns the exit code (0: ready, 1: not, and why was said). */
export async function ensurePrerequisites(): Promise<number> {
  const facts = await gatherFacts();
  const { install, startBroker, problems } = plan(facts);
  if (problems.length > 0) {
    for (const problem of problems) say(problem);
    return 1;
  }
  if (install.length > 0) {
    say(`installing ${install.join(" ")} with apt-get (running as root)`);
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    const ok = await run("apt-get", ["update", "-qq"], env) &&
      await run("apt-get", ["install", "-y", "-qq", ...install], env);
    if (!ok) {
      say(`apt-get failed; install by hand with \`${installCommand(install, true)}\``);
      return 1;
    }
  }
  const { host, port } = facts.broker;
  if (startBroker && !(await tcpOpen(host, port))) {
    say(`RabbitMQ is down: starting it with \`rabbitmq-server -detached\`, waiting for ${host}:${port}`);
    const problem = await startRabbitmq({
      start: async () => {
        const server = await rabbitmqToolPath();
        return server !== undefined && await run(server, ["-detached"]);
      },
      nodeRunning: async () => {
        const diagnostics = await rabbitmqToolPath("rabbitmq-diagnostics");
        return diagnostics !== undefined &&
          await run(diagnostics, ["-q", "ping", "--timeout", "10"], {}, false);
      },
      portOpen: () => waitForPort(host, port, BROKER_START_TIMEOUT_MS),
    }, `${host}:${port}`);
    if (problem) {
      say(problem);
      return 1;
    }
  }
  // The npm packages, fetched now at the versions deno.lock pins; an out-of-date lockfile stops here.
  const locked = await new Deno.Command(Deno.execPath(), {
    args: ["install", "--frozen", "--quiet"],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "null",
    stderr: "inherit",
  }).output();
  if (locked.code !== 0) {
    say(
      "`deno install --frozen` failed: if deno.json's imports changed, run `deno install` and commit deno.lock",
    );
    return 1;
  }
  say(
    `ready: Chromium at ${facts.chromium.path}, openssl, RabbitMQ at ${host}:${port}, npm packages as locked`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await ensurePrerequisites());
}
