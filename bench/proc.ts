/**
 * What Linux's `/proc` says about processes and the machine: CPU time, resident
 * memory, the broker's process, load. The benchmark reads these from outside,
 * so nothing it measures runs inside the measured process.
 *
 * @module
 */

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time a process has used so far (all its threads), in ms; NaN if it is gone. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuSplitMs(pid);
  return user + system;
}

/** CPU time a process has used so far in user space and in the kernel, in ms; NaN if it is gone. */
export function cpuSplitMs(pid: number): { user: number; system: number } {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may contain spaces; count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const scale = 1000 / CLOCK_TICKS_PER_SECOND;
    return { user: Number(fields[11]) * scale, system: Number(fields[12]) * scale };
  } catch {
    return { user: NaN, system: NaN };
  }
}

/**
 * CPU time (user + kernel, ms) of a Deno process's threads so far, grouped:
 * `main` (the JavaScript thread), `v8_workers` (V8's GC and compiler
 * helpers), `tokio` (the Rust runtime's threads: socket I/O outside the
 * JavaScript thread), `other` (anything else still running).
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const groups: Record<string, number> = { main: 0, v8_workers: 0, tokio: 0, other: 0 };
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
      const tid = Number(entry.name);
      let comm = "";
      let ms = 0;
      try {
        comm = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/comm`).trim();
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/stat`);
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
      } catch {
        continue; // The thread ended meanwhile.
      }
      const group = tid === pid
        ? "main"
        : comm.startsWith("V8 ")
        ? "v8_workers"
        : comm.startsWith("tokio")
        ? "tokio"
        : "other";
      groups[group] += ms;
    }
  } catch {
    // The process is gone.
  }
  return groups;
}

/** Resident memory of a process now, in bytes; NaN if it is gone. */
export function rssBytes(pid: number): number {
  return statusField(pid, "VmRSS");
}

/** The high-water mark of a process's resident memory, in bytes; NaN if it is gone. */
export function peakRssBytes(pid: number): number {
  return statusField(pid, "VmHWM");
}

/** Anonymous (heap, stacks, buffers) and file-backed resident memory, in bytes. */
export function rssParts(pid: number): { anon: number; file: number } {
  return { anon: statusField(pid, "RssAnon"), file: statusField(pid, "RssFile") };
}

function statusField(pid: number, field: string): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Open file descriptors of a process now; NaN if it is gone. */
export function openFds(pid: number): number {
  try {
    let count = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
    return count;
  } catch {
    return NaN;
  }
}

/**
 * The pid of the RabbitMQ node (Erlang's `beam.smp`) that listens on `port`
 * (found with `ss`; other nodes may run on the machine), or else the first
 * `beam.smp` that `pgrep` finds.
 */
export async function brokerPid(port = 5672): Promise<number | undefined> {
  const run = async (command: string, args: string[]) => {
    try {
      const { stdout, success } = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
        .output();
      return success ? new TextDecoder().decode(stdout) : "";
    } catch {
      return "";
    }
  };
  const listener = /"beam\.smp",pid=(\d+)/.exec(await run("ss", ["-Hltnp", `sport = :${port}`]));
  if (listener) return Number(listener[1]);
  const pid = Number((await run("pgrep", ["-f", "beam.smp"])).trim().split("\n")[0]);
  return Number.isFinite(pid) && pid > 0 ? pid : undefined;
}

/**
 * Machine-wide CPU time so far, in ms summed over all cores: busy, total, and
 * the part spent in interrupts and soft interrupts (the kernel's packet
 * processing, loopback included), which is charged to no process.
 */
export function machineCpuMs(): { busy: number; total: number; interrupts: number; steal: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guests are already in user.
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = ticks[3] + ticks[4];
  const scale = 1000 / CLOCK_TICKS_PER_SECOND;
  // Steal (time the hypervisor ran other machines) is not our work: it is neither busy nor idle here.
  const steal = ticks[7];
  return {
    busy: (total - idle - steal) * scale,
    total: total * scale,
    interrupts: (ticks[5] + ticks[6]) * scale,
    steal: steal * scale,
  };
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = Deno.readTextFileSync("/proc/loadavg").split(" ").map(Number);
  return [one, five, fifteen];
}

/** Online CPU count. */
export function cpuCount(): number {
  return navigator.hardwareConcurrency;
}

/** The CPU model name, from `/proc/cpuinfo`. */
export function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** CPU time of one process, or the sum over several (NaN for none given). */
function cpuOf(pid: number | number[] | undefined): { user: number; system: number } {
  if (pid === undefined) return { user: NaN, system: NaN };
  if (typeof pid === "number") return cpuSplitMs(pid);
  let user = 0;
  let system = 0;
  for (const one of pid) {
    const split = cpuSplitMs(one);
    user += split.user;
    system += split.system;
  }
  return { user, system };
}

/** A CPU-time meter over a set of named processes (or groups of them) and the whole machine. */
export class CpuMeter {
  readonly #pids: Record<string, number | number[] | undefined>;
  #start: Record<string, { user: number; system: number }> = {};
  #machineStart = machineCpuMs();
  #wallStart = performance.now();

  readonly #threadsOf: string | undefined;
  #threadStart: Record<string, number> = {};

  /**
   * Starts metering the given processes (an undefined pid is reported as
   * NaN); for the one named `threadsOf`, also its thread groups.
   */
  constructor(
    pids: Record<string, number | number[] | undefined>,
    { threadsOf }: { threadsOf?: string } = {},
  ) {
    this.#pids = pids;
    this.#threadsOf = threadsOf;
    this.reset();
  }

  /** The one process whose threads are metered, if any (a name of several processes has none). */
  #threaded(): number | undefined {
    const pid = this.#threadsOf === undefined ? undefined : this.#pids[this.#threadsOf];
    return typeof pid === "number" ? pid : undefined;
  }

  /** Restarts the meter from now. */
  reset(): void {
    this.#start = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      this.#start[name] = cpuOf(pid);
    }
    const threaded = this.#threaded();
    this.#threadStart = threaded === undefined ? {} : threadCpuMs(threaded);
    this.#machineStart = machineCpuMs();
    this.#wallStart = performance.now();
  }

  /** CPU ms each process used since the start, the machine's busy ms, and the wall ms. */
  read(): CpuReading {
    const processes: Record<string, number> = {};
    const kernel: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      const now = cpuOf(pid);
      const start = this.#start[name];
      processes[name] = now.user + now.system - start.user - start.system;
      kernel[name] = now.system - start.system;
    }
    const threads: Record<string, number> = {};
    const threaded = this.#threaded();
    if (threaded !== undefined) {
      const now = threadCpuMs(threaded);
      for (const group of Object.keys(now)) threads[group] = now[group] - (this.#threadStart[group] ?? 0);
      // Threads that ended during the window took their CPU time with them: count it as "other".
      const seen = Object.values(threads).reduce((a, b) => a + b, 0);
      threads.other += Math.max(0, processes[this.#threadsOf!] - seen);
    }
    const machine = machineCpuMs();
    return {
      wall_ms: performance.now() - this.#wallStart,
      cpu_ms: processes,
      system_ms: kernel,
      threads_ms: threads,
      machine_busy_ms: machine.busy - this.#machineStart.busy,
      machine_interrupts_ms: machine.interrupts - this.#machineStart.interrupts,
      machine_steal_ms: machine.steal - this.#machineStart.steal,
      machine_total_ms: machine.total - this.#machineStart.total,
    };
  }
}

/** What a {@linkcode CpuMeter} read. */
export interface CpuReading {
  /** Wall-clock time metered, ms. */
  wall_ms: number;
  /** CPU time per named process, ms (10 ms resolution). */
  cpu_ms: Record<string, number>;
  /** The part of it spent in the kernel (system calls: socket writes and reads), ms. */
  system_ms: Record<string, number>;
  /** CPU of the `threadsOf` process by thread group ({@linkcode threadCpuMs}), ms. */
  threads_ms: Record<string, number>;
  /** CPU time the whole machine was busy (all cores), ms. */
  machine_busy_ms: number;
  /** Of that, interrupts and soft interrupts (network packet processing), charged to no process, ms. */
  machine_interrupts_ms: number;
  /** CPU time the hypervisor gave to other virtual machines (steal), ms. */
  machine_steal_ms: number;
  /** CPU time the whole machine had (all cores), ms. */
  machine_total_ms: number;
}

/** The soft and hard limits on open files of this process. */
export async function fileLimit(): Promise<{ soft: number; hard: number }> {
  const { stdout } = await new Deno.Command("prlimit", {
    args: ["--pid", String(Deno.pid), "--nofile", "--noheadings", "--raw", "--output=SOFT,HARD"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const [soft, hard] = new TextDecoder().decode(stdout).trim().split(/\s+/).map(Number);
  return { soft, hard };
}

/**
 * Raises this process's open-file limit (inherited by every process it starts
 * afterwards) to at least `wanted`; raising the hard limit needs root. Returns
 * the soft limit now in force.
 */
export async function raiseFileLimit(wanted: number): Promise<number> {
  let limit = await fileLimit().catch(() => ({ soft: NaN, hard: NaN }));
  if (!(limit.soft < wanted)) return limit.soft;
  for (const value of [`${wanted}:${Math.max(wanted, limit.hard || 0)}`, `${limit.hard}:${limit.hard}`]) {
    const { success } = await new Deno.Command("prlimit", {
      args: ["--pid", String(Deno.pid), `--nofile=${value}`],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => ({ success: false }));
    if (success) break;
  }
  limit = await fileLimit().catch(() => limit);
  return limit.soft;
}
