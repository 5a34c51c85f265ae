// What a user does to check the running platform: Docker inspection, Airflow's REST API, SQL.
import { execFileSync, spawnSync } from "node:child_process";
import * as path from "node:path";
import { dockerCli as dockerClient } from "../../e2e/harness/handlers/dockerImage";
import { buildPlatform } from "../../lib/dockerEngine";
import { withClient } from "../../warehouse/access";

export { dockerClient };

export function docker(...args: string[]): string {
    return execFileSync(dockerClient, args, { encoding: "utf8", maxBuffer: 32 * 1024 * 1024 }).trim();
}

const repoRoot = path.resolve(__dirname, "..", "..");

/**
 * Makes the named upstream images (keys of platform.json "images") available on the engine,
 * pulled or built as stand-ins: every test creates what it uses, even on a machine that never
 * ran the suite.
 */
export function provideImages(...keys: string[]): void {
    execFileSync(path.join(repoRoot, "scripts", "provide-images.sh"), keys, { stdio: ["ignore", "ignore", "inherit"] });
}

/**
 * `docker build` of the executor image from a docker/ context folder, with BuildKit, as the stack
 * builds it; `options` go before the rest (-q, --no-cache). Returns the exit status and output.
 */
export function buildExecutorImage(context: string, tag: string, buildArgs: Record<string, string>, options: string[] = []) {
    const args = ["build", ...options, "-f", path.join(context, "executor", "Dockerfile"), "-t", tag, "--platform", buildPlatform()];
    for (const [key, value] of Object.entries(buildArgs)) args.push("--build-arg", `${key}=${value}`);
    const result = spawnSync(dockerClient, [...args, context], {
        encoding: "utf8",
        env: { ...process.env, DOCKER_BUILDKIT: "1" },
        maxBuffer: 64 * 1024 * 1024,
    });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

export interface ContainerState {
    id: string;
    name: string;
    running: boolean;
    health?: string;
    restartCount: number;
    pid: number;
    ports: { containerPort: string; hostIp: string; hostPort: string }[];
    /** What `docker inspect` shows of its configuration: environment, command, entrypoint, labels, healthcheck, args. */
    config: string;
    mounts: { type: string; source: string; destination: string }[];
}

export function inspectContainers(prefix: string): ContainerState[] {
    const ids = docker("ps", "-aq", "--filter", `name=^${prefix}-`).split("\n").filter(Boolean);
    if (ids.length === 0) return [];
    const raw = JSON.parse(docker("inspect", ...ids)) as any[];
    return raw.map((c) => ({
        id: String(c.Id),
        name: String(c.Name).replace(/^\//, ""),
        running: c.State.Running,
        health: c.State.Health?.Status,
        restartCount: c.RestartCount,
        pid: c.State.Pid,
        ports: Object.entries((c.HostConfig.PortBindings ?? {}) as Record<string, { HostIp: string; HostPort: string }[]>).flatMap(
            ([containerPort, bindings]) => (bindings ?? []).map((b) => ({ containerPort, hostIp: b.HostIp, hostPort: b.HostPort })),
        ),
        config: JSON.stringify([c.Config.Env, c.Config.Cmd, c.Config.Entrypoint, c.Config.Labels, c.Config.Healthcheck, c.Args]),
        // A volume's Source is its folder on the engine's host; its Name is what the stack mounts.
        mounts: ((c.Mounts ?? []) as { Type: string; Name?: string; Source: string; Destination: string }[]).map((m) => ({
            type: m.Type,
            source: m.Type === "volume" ? String(m.Name) : m.Source,
            destination: m.Destination,
        })),
    }));
}

/** Ends a waitFor at once instead of being retried. */
export class FatalError extends Error {}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, intervalMs = 2000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
        try {
            const value = await probe();
            if (value !== undefined) return value;
        } catch (err) {
            if (err instanceof FatalError) throw err;
            lastError = err;
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? `: ${lastError}` : ""}`);
}

export interface DagRun {
    dag_run_id: string;
    state: string;
    start_date?: string;
    end_date?: string;
}

export interface TaskInstance {
    task_id: string;
    state: string | null;
    try_number: number;
    duration?: number | null;
    /** The host (container) the task ran on: the scheduler with LocalExecutor, a worker with Celery. */
    hostname?: string;
}

/** Airflow 3's public REST API, authenticated with a token from the FAB auth manager. */
export class AirflowApi {
    private token?: string;

    constructor(
        private readonly baseUrl: string,
        private readonly username: string,
        private readonly password: string,
    ) {}

    async health(): Promise<Record<string, { status: string }>> {
        const res = await fetch(`${this.baseUrl}/api/v2/monitor/health`);
        if (!res.ok) throw new Error(`health: HTTP ${res.status}`);
        return (await res.json()) as Record<string, { status: string }>;
    }

    private async authorize(): Promise<string> {
        if (!this.token) {
            const res = await fetch(`${this.baseUrl}/auth/token`, {
                method: "POST",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ username: this.username, password: this.password }),
            });
            if (!res.ok) throw new Error(`token: HTTP ${res.status} ${await res.text()}`);
            this.token = ((await res.json()) as { access_token: string }).access_token;
        }
        return this.token;
    }

    async call<T>(method: string, path: string, body?: unknown): Promise<T> {
        const res = await fetch(`${this.baseUrl}/api/v2${path}`, {
            method,
            headers: { authorization: `Bearer ${await this.authorize()}`, "content-type": "application/json" },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
        return (await res.json()) as T;
    }

    async trigger(dagId: string, logicalDate: string): Promise<string> {
        await waitFor(`DAG ${dagId} to be parsed`, 180_000, () => this.call("GET", `/dags/${dagId}`));
        await this.call("PATCH", `/dags/${dagId}`, { is_paused: false });
        const run = await this.call<DagRun>("POST", `/dags/${dagId}/dagRuns`, {
            dag_run_id: `e2e_${dagId}_${logicalDate.replace(/[^0-9]/g, "")}_${Date.now()}`,
            logical_date: logicalDate,
        });
        return run.dag_run_id;
    }

    /** The end of a task try's log, for a failure message. */
    async logTail(dagId: string, runId: string, taskId: string, tryNumber: number): Promise<string> {
        try {
            const log = await this.call<{ content: unknown }>("GET", `/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances/${taskId}/logs/${tryNumber}`);
            const lines = Array.isArray(log.content) ? log.content.map((l) => (typeof l === "string" ? l : JSON.stringify(l))) : String(log.content).split("\n");
            return lines.slice(-25).join("\n");
        } catch (err) {
            return `(log unreadable: ${(err as Error).message})`;
        }
    }

    taskInstances(dagId: string, runId: string): Promise<{ task_instances: TaskInstance[] }> {
        return this.call("GET", `/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}/taskInstances`);
    }

    async waitForRun(dagId: string, runId: string, timeoutMs: number, pollMs = 3000): Promise<DagRun> {
        return waitFor(`${dagId} run ${runId}`, timeoutMs, async () => {
            const run = await this.call<DagRun>("GET", `/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}`);
            if (run.state === "failed") {
                const tis = (await this.taskInstances(dagId, runId)).task_instances;
                const failed = tis.filter((t) => t.state === "failed");
                const logs = await Promise.all(failed.map((t) => this.logTail(dagId, runId, t.task_id, t.try_number)));
                throw new FatalError(
                    `${dagId} run failed: ${JSON.stringify(tis.map((t) => [t.task_id, t.state, t.try_number]))}` +
                        failed.map((t, i) => `\n--- ${t.task_id} (try ${t.try_number}), last lines of its log:\n${logs[i]}`).join(""),
                );
            }
            return run.state === "success" ? run : undefined;
        }, pollMs);
    }
}

/** Prometheus' instant query API: each series' labels and value. */
const memoryUnits: Record<string, number> = { B: 1 / 1048576, KiB: 1 / 1024, MiB: 1, GiB: 1024 };

/** One `docker stats` sample of the containers named `<prefix>-…`: CPU (%) and memory in use (MiB). */
export function containerStats(prefix: string): { name: string; cpuPercent: number; memoryMiB: number }[] {
    return docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}")
        .split("\n")
        .flatMap((line) => {
            const [name, cpu, used] = line.split(" ");
            const memory = used?.match(/^([\d.]+)([KMG]?i?B)$/);
            if (!name?.startsWith(`${prefix}-`) || !memory) return [];
            return [{ name, cpuPercent: Number(cpu.replace("%", "")), memoryMiB: Number(memory[1]) * memoryUnits[memory[2]] }];
        });
}

export async function promQuery(baseUrl: string, expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
    const res = await fetch(`${baseUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

export async function query<T = Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
    return withClient({ connectionString: url }, async (client) => (await client.query(sql)).rows as T[]);
}

/** A credential file in a running container: `<mode> <uid> <gid> <path>`, and its content. */
export interface CredentialFile {
    container: string;
    stat: string;
    content: string;
}

/** Every file matching `globs` (e.g. paths.secrets/*, the TLS key) in each running container of the stack. */
export function credentialFiles(prefix: string, globs: string[]): CredentialFile[] {
    const script = `for f in ${globs.join(" ")}; do [ -f "$f" ] || continue; stat -c '%a %u %g %n' "$f"; base64 -w0 "$f"; echo; done`;
    return inspectContainers(prefix)
        .filter((c) => c.running)
        .flatMap((c) => {
            const lines = spawnSync(dockerClient, ["exec", c.name, "sh", "-c", script], { encoding: "utf8" }).stdout.split("\n");
            const files: CredentialFile[] = [];
            for (let i = 0; i + 1 < lines.length; i += 2) {
                files.push({ container: c.name, stat: lines[i], content: Buffer.from(lines[i + 1], "base64").toString("utf8") });
            }
            return files;
        });
}

/**
 * The secret values in those files, so the check needs no list of what the stack generates:
 * each whole value (password, key line, URL) and the password inside each URL.
 */
export function secretValues(files: CredentialFile[]): Set<string> {
    const values = new Set<string>();
    for (const token of files.flatMap((f) => f.content.split(/\s+/))) {
        if (token.length >= 16 && !token.startsWith("-----")) values.add(token);
        const password = /^[a-z+]+:\/\/[^:/]*:([^@]+)@/.exec(token)?.[1];
        if (password) values.add(decodeURIComponent(password));
    }
    return values;
}

/** A container's whole log, stdout and stderr. */
export function containerLogs(name: string): string {
    const run = spawnSync(dockerClient, ["logs", name], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return `${run.stdout}${run.stderr}`;
}
