// npm run status -- --stack NAME [--json]
//
// One screen saying whether a deployed stack is well: every container (state, health, restarts,
// uptime; for a sick one its last probe output and log lines), Airflow's health endpoint, Spark's
// alive workers, the executor's gRPC health, the warehouse's migrations and rows, the volumes'
// disk use, the backups, and the URLs to open. Exit code 0 when all is well, 1 when anything is
// wrong, 2 for a usage error or a stack that is not deployed.
//
// Gathering (I/O: the Docker Engine API, HTTP, PostgreSQL) runs every check at once, each bounded
// by CHECK_TIMEOUT_MS, into a Snapshot; judging and rendering are pure functions of it.
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Client } from "pg";
import { engineRequest } from "../lib/dockerEngine";
import { platform } from "../platform";
import { warehouseTables as tables } from "../warehouse/tables";
import { type BackupSet, listBackups } from "./backup";
import { demultiplex, engineJson, exec } from "./docker";
import { StackNotDeployed, type StackOutputs, checkedStackName, readStackOutputs } from "./stackOutputs";

/** How long any one check may take before it is reported as not answering. */
export const CHECK_TIMEOUT_MS = 2000;
/** The tables warehouse/migrations create (a unit test keeps this list in step with them). */
export const warehouseTables = [...tables.staging, ...tables.star, ...tables.statistics];
/** The components Airflow's /api/v2/monitor/health reports, each of which must be healthy. */
export const airflowComponents = ["metadatabase", "scheduler", "triggerer", "dag_processor"];
const PROBE_LINES = 5;
const LOG_LINES = 10;
const usage = "usage: npm run status -- --stack NAME [--json]";

// ---------------------------------------------------------------------------------------------
// The snapshot: what gathering found.

/** A check's answer, or why there is none; `ms` is how long it took. */
export type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; error: string; ms: number };

export interface ContainerFacts {
    name: string;
    /** A one-shot container (Airflow's init): well once it has exited with code 0. */
    oneShot: boolean;
    /** Why it could not be inspected (no answer, engine error); nothing else is known then. */
    error?: string;
    missing?: boolean;
    state?: string;
    exitCode?: number;
    oomKilled?: boolean;
    /** healthy, unhealthy or starting; absent when the container has no healthcheck. */
    health?: string;
    restarts?: number;
    startedAt?: string;
    finishedAt?: string;
    /** The last health probe: its exit code and last lines of output. */
    probe?: { exitCode: number; output: string[] };
    /** The last log lines, gathered only for a container that is not well. */
    logs?: string[];
}

export interface AirflowFacts {
    components: Record<string, { status: string; heartbeat?: string }>;
}
export interface SparkFacts {
    status: string;
    aliveWorkers: number;
}
export interface ExecutorFacts {
    exitCode: number;
    output: string[];
}
export interface WarehouseFacts {
    applied: number[];
    /** Rows per table; null when the table does not exist. */
    rows: Record<string, number | null>;
}
export interface VolumeFacts {
    volumes: { name: string; found: boolean; bytes: number | null }[];
}
export interface BackupFacts {
    /** Oldest first, as `vpe-backup --list` prints them. */
    sets: BackupSet[];
    /** The maintenance loop's record of its last failed backup (timestamp line, then output). */
    lastFailure?: string[];
}

export interface Snapshot {
    stack: string;
    /** When it was taken (ISO): ages and uptimes are measured from here. */
    takenAt: string;
    seconds: number;
    expected: { sparkWorkers: number; migrations: number[] };
    containers: ContainerFacts[];
    airflow: Outcome<AirflowFacts>;
    spark: Outcome<SparkFacts>;
    executor: Outcome<ExecutorFacts>;
    warehouse: Outcome<WarehouseFacts>;
    volumes: Outcome<VolumeFacts>;
    backups: Outcome<BackupFacts>;
    urls: { airflow: string; sparkUi: string; postgres: string };
}

// ---------------------------------------------------------------------------------------------
// Judging: pure functions of a snapshot.

/** One line of the screen: what was found, what is wrong with it, and what explains it. */
export interface Verdict {
    ok: boolean;
    line: string;
    problems: string[];
    details: string[];
}

export const sections = ["airflow", "spark", "executor", "warehouse", "volumes", "backups"] as const;
type Section = (typeof sections)[number];

export interface Report {
    snapshot: Snapshot;
    ok: boolean;
    problems: string[];
    containers: Verdict[];
    checks: Record<Section, Verdict>;
}

export function judge(snapshot: Snapshot): Report {
    const now = Date.parse(snapshot.takenAt);
    const containers = snapshot.containers.map((c) => judgeContainer(c, now));
    const checks: Record<Section, Verdict> = {
        airflow: judgeOutcome("airflow", snapshot.airflow, judgeAirflow),
        spark: judgeOutcome("spark", snapshot.spark, (facts) => judgeSpark(facts, snapshot.expected.sparkWorkers)),
        executor: judgeOutcome("executor", snapshot.executor, judgeExecutor),
        warehouse: judgeOutcome("warehouse", snapshot.warehouse, (facts) => judgeWarehouse(facts, snapshot.expected.migrations)),
        volumes: judgeOutcome("volumes", snapshot.volumes, judgeVolumes),
        backups: judgeOutcome("backups", snapshot.backups, (facts) => judgeBackups(facts, now)),
    };
    const problems = [...containers, ...sections.map((s) => checks[s])].flatMap((v) => v.problems);
    return { snapshot, ok: problems.length === 0, problems, containers, checks };
}

function verdict(line: string, problems: string[] = [], details: string[] = []): Verdict {
    return { ok: problems.length === 0, line, problems, details };
}

function judgeOutcome<T>(what: string, outcome: Outcome<T>, judgeValue: (value: T) => Verdict): Verdict {
    if (!outcome.ok) return verdict(`failed: ${outcome.error}`, [`${what}: ${outcome.error}`]);
    return judgeValue(outcome.value);
}

/** Whether a container is as it should be (gathering reads the logs of one that is not). */
export function containerWell(c: ContainerFacts): boolean {
    return judgeContainer(c, 0).ok; // the time only words the line
}

export function judgeContainer(c: ContainerFacts, now: number): Verdict {
    if (c.error !== undefined) return verdict(`not inspected: ${c.error}`, [`${c.name}: could not be inspected: ${c.error}`]);
    if (c.missing) return verdict("missing", [`${c.name}: missing (no such container)`]);
    const since = (iso: string | undefined) => (hasTime(iso) ? ` ${duration(now - Date.parse(iso!))}` : "");
    const restarts = `restarts ${c.restarts ?? 0}`;
    const exited = `exited with code ${c.exitCode}${c.oomKilled ? " (out of memory)" : ""}`;
    let line: string;
    let trouble: string | undefined;
    if (c.oneShot) {
        line = c.state === "exited" ? `one-shot, ${exited}, finished${since(c.finishedAt)} ago` : `one-shot, ${c.state}`;
        if (c.state === "running") trouble = `still running (started${since(c.startedAt)} ago)`;
        else if (c.state !== "exited") trouble = c.state;
        else if (c.exitCode !== 0) trouble = exited;
    } else {
        const health = c.health ?? "no healthcheck";
        line = c.state === "running" ? `running, ${health}, up${since(c.startedAt)}, ${restarts}` : `${c.state === "exited" ? exited : c.state}, ${restarts}`;
        if (c.state === "restarting") trouble = `restarting (${restarts}; last ${exited})`;
        else if (c.state !== "running") trouble = c.state === "exited" ? exited : c.state;
        else if (c.health === undefined) trouble = "running without a healthcheck";
        else if (c.health === "starting") trouble = "health still starting";
        else if (c.health !== "healthy") trouble = c.health;
    }
    if (trouble === undefined) return verdict(line);
    // A passing last probe (of a container since stopped, say) explains nothing.
    const failed = c.probe && c.probe.exitCode !== 0 ? c.probe : undefined;
    const probe = failed ? `; last probe (exit ${failed.exitCode}): ${failed.output.join(" | ") || "no output"}` : "";
    const details = [
        ...(failed ? [`last probe (exit ${failed.exitCode}):`, ...indent(failed.output.length > 0 ? failed.output : ["(no output)"])] : []),
        ...(c.logs ? [`last ${c.logs.length} log lines:`, ...indent(c.logs)] : []),
    ];
    return verdict(line, [`${c.name}: ${trouble}${probe}`], details);
}

export function judgeAirflow(facts: AirflowFacts): Verdict {
    const sick = airflowComponents.filter((name) => facts.components[name]?.status !== "healthy");
    const describe = (name: string) => {
        const component = facts.components[name];
        if (component === undefined) return `${name} not reported`;
        return `${name} ${component.status}${component.heartbeat ? ` (last heartbeat ${component.heartbeat})` : ""}`;
    };
    if (sick.length === 0) return verdict(`${airflowComponents.join(", ")} healthy`);
    return verdict(sick.map(describe).join("; "), sick.map((name) => `airflow: ${describe(name)}`));
}

export function judgeSpark(facts: SparkFacts, expected: number): Verdict {
    const line = `${facts.aliveWorkers}/${expected} workers alive, master ${facts.status}`;
    const problems = [
        ...(facts.status !== "ALIVE" ? [`spark: master is ${facts.status}`] : []),
        ...(facts.aliveWorkers < expected ? [`spark: ${facts.aliveWorkers} of ${expected} workers alive`] : []),
    ];
    return verdict(line, problems);
}

export function judgeExecutor(facts: ExecutorFacts): Verdict {
    if (facts.exitCode === 0) return verdict("gRPC health SERVING");
    const output = facts.output.length > 0 ? facts.output.join(" | ") : "no output";
    return verdict(`gRPC health probe failed (exit ${facts.exitCode})`, [`executor: gRPC health probe exited ${facts.exitCode}: ${output}`], facts.output);
}

export function judgeWarehouse(facts: WarehouseFacts, expected: number[]): Verdict {
    const missing = expected.filter((v) => !facts.applied.includes(v));
    const unknown = facts.applied.filter((v) => !expected.includes(v));
    const absent = Object.keys(facts.rows).filter((table) => facts.rows[table] === null);
    const rows = Object.entries(facts.rows)
        .filter(([, n]) => n !== null)
        .map(([table, n]) => `${table} ${n}`)
        .join(", ");
    const problems = [
        ...(missing.length > 0 ? [`warehouse: migrations ${missing.join(", ")} not applied (the stack applied ${expected.join(", ")})`] : []),
        ...(unknown.length > 0 ? [`warehouse: migrations ${unknown.join(", ")} applied but not in the stack's outputs`] : []),
        ...(absent.length > 0 ? [`warehouse: tables ${absent.join(", ")} missing`] : []),
    ];
    return verdict(`migrations ${facts.applied.join(", ") || "none"} applied; rows: ${rows || "none"}`, problems);
}

export function judgeVolumes(facts: VolumeFacts): Verdict {
    const line = facts.volumes.map((v) => `${v.name} ${v.found ? (v.bytes === null ? "size unknown" : bytes(v.bytes)) : "missing"}`).join(", ");
    return verdict(
        line,
        facts.volumes.filter((v) => !v.found).map((v) => `volumes: ${v.name} missing`),
    );
}

export function judgeBackups(facts: BackupFacts, now: number): Verdict {
    const newest = facts.sets.at(-1);
    let line = "no backup yet";
    if (newest) {
        const taken = setTime(newest.name);
        const age = taken === undefined ? "" : `, ${duration(now - taken)} ago`;
        line = `newest ${newest.name} (${bytes(newest.bytes)}: ${newest.databases.join(" ")}${age}), ${facts.sets.length} set${facts.sets.length === 1 ? "" : "s"}`;
    }
    if (facts.lastFailure === undefined) return verdict(line);
    const [when, ...output] = facts.lastFailure;
    const first = output.find((l) => l.trim() !== "") ?? "no output";
    return verdict(line, [`backups: the last backup failed at ${when ?? "an unknown time"}: ${first}`], [
        `${platform.paths.backups}/last-failure:`,
        ...indent(facts.lastFailure.slice(0, 1 + LOG_LINES)),
    ]);
}

/** A backup set's name (20261128T001950Z, UTC) as epoch milliseconds. */
export function setTime(name: string): number | undefined {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(name);
    return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : undefined;
}

function hasTime(iso: string | undefined): boolean {
    return iso !== undefined && !iso.startsWith("0001-") && !Number.isNaN(Date.parse(iso));
}

/** 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function duration(ms: number): string {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function bytes(n: number): string {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
        n /= 1000;
        i++;
    }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function indent(lines: string[]): string[] {
    return lines.map((l) => `  ${l}`);
}

// ---------------------------------------------------------------------------------------------
// Rendering: pure functions of a report. Every secret is masked in what they return.

/** The screen. */
export function renderScreen(report: Report, secrets: string[]): string {
    const { snapshot } = report;
    const mark = (v: Verdict) => (v.ok ? "ok  " : "FAIL");
    const width = Math.max(...snapshot.containers.map((c) => c.name.length), 10);
    const out = [`stack ${snapshot.stack}: ${report.ok ? "all well" : `${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`}`, "containers"];
    snapshot.containers.forEach((c, i) => {
        const v = report.containers[i];
        out.push(`  ${mark(v)} ${c.name.padEnd(width)}  ${v.line}`, ...v.details.map((d) => `         ${d}`));
    });
    out.push("checks");
    for (const name of sections) {
        const v = report.checks[name];
        out.push(`  ${mark(v)} ${name.padEnd(width)}  ${v.line}`, ...v.details.map((d) => `         ${d}`));
    }
    out.push(
        "open",
        `  Airflow     ${snapshot.urls.airflow}`,
        `  Spark UI    ${snapshot.urls.sparkUi}`,
        `  PostgreSQL  ${snapshot.urls.postgres}`,
    );
    if (!report.ok) out.push(`problems (${report.problems.length})`, ...report.problems.map((p) => `  FAIL ${p}`));
    const slowest = sections.reduce((a, b) => (snapshot[b].ms > snapshot[a].ms ? b : a));
    out.push(`checked in ${snapshot.seconds.toFixed(1)} s (slowest check: ${slowest}, ${(snapshot[slowest].ms / 1000).toFixed(1)} s)`);
    return redact(out.join("\n"), secrets);
}

/** The `--json` object. */
export function renderJson(report: Report, secrets: string[]): string {
    const { snapshot } = report;
    const now = Date.parse(snapshot.takenAt);
    const section = <T>(outcome: Outcome<T>, ok: boolean, extra: object = {}) => ({
        ok,
        ms: Math.round(outcome.ms),
        ...extra,
        ...(outcome.ok ? outcome.value : { error: outcome.error }),
    });
    const json = {
        stack: snapshot.stack,
        ok: report.ok,
        seconds: Number(snapshot.seconds.toFixed(3)),
        problems: report.problems,
        containers: snapshot.containers.map((c, i) => ({
            ...c,
            ok: report.containers[i].ok,
            ...(c.state === "running" && hasTime(c.startedAt) ? { uptimeSeconds: Math.floor((now - Date.parse(c.startedAt!)) / 1000) } : {}),
        })),
        airflow: section(snapshot.airflow, report.checks.airflow.ok),
        spark: section(snapshot.spark, report.checks.spark.ok, { expectedWorkers: snapshot.expected.sparkWorkers }),
        executor: section(snapshot.executor, report.checks.executor.ok),
        warehouse: section(snapshot.warehouse, report.checks.warehouse.ok, { expectedMigrations: snapshot.expected.migrations }),
        volumes: section(snapshot.volumes, report.checks.volumes.ok),
        backups: section(snapshot.backups, report.checks.backups.ok, snapshot.backups.ok ? backupSummary(snapshot.backups.value, now) : {}),
        urls: snapshot.urls,
    };
    return JSON.stringify(redactDeep(json, secrets), null, 2);
}

function backupSummary(facts: BackupFacts, now: number): object {
    const newest = facts.sets.at(-1);
    const taken = newest && setTime(newest.name);
    return { count: facts.sets.length, newest: newest ? { ...newest, ageSeconds: taken === undefined ? null : Math.floor((now - taken) / 1000) } : null };
}

/** The stack's secrets: its passwords, and the password of every URL among its outputs. */
export function secretsOf(outputs: StackOutputs | Record<string, unknown>): string[] {
    const found = new Set<string>();
    for (const [key, value] of Object.entries(outputs)) {
        if (typeof value !== "string" || value === "") continue;
        if (/password/i.test(key)) found.add(value);
        try {
            const password = new URL(value).password;
            if (password) found.add(password).add(decodeURIComponent(password));
        } catch {
            // not a URL
        }
    }
    return [...found];
}

/** `text` with every secret, and the password of any URL in it, masked. */
export function redact(text: string, secrets: string[]): string {
    let out = text.replace(/(\/\/[^\s/:@]+:)[^\s/@]+@/g, "$1***@");
    for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
        if (secret.length > 0) out = out.split(secret).join("***");
    }
    return out;
}

function redactDeep(value: unknown, secrets: string[]): unknown {
    if (typeof value === "string") return redact(value, secrets);
    if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets));
    if (value !== null && typeof value === "object") {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, secrets)]));
    }
    return value;
}

// ---------------------------------------------------------------------------------------------
// Gathering: I/O, every check at once, each bounded.

/** `work` given `timeoutMs`: its value, or why there is none. Its signal aborts when time is up. */
export async function bounded<T>(timeoutMs: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<Outcome<T>> {
    const started = performance.now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
            reject(new Error(`${what}: no answer within ${timeoutMs / 1000} s`));
            controller.abort();
        }, timeoutMs);
    });
    try {
        const value = await Promise.race([work(controller.signal), timeout]);
        return { ok: true, value, ms: performance.now() - started };
    } catch (err) {
        return { ok: false, error: (err as Error).message, ms: performance.now() - started };
    } finally {
        clearTimeout(timer);
    }
}

export async function gather(stack: string, outputs: StackOutputs, timeoutMs = CHECK_TIMEOUT_MS): Promise<Snapshot> {
    const started = performance.now();
    const takenAt = new Date().toISOString();
    const check = <T>(what: string, work: (signal: AbortSignal) => Promise<T>) => bounded(timeoutMs, what, work);
    const [containers, airflow, spark, executor, warehouse, volumes, backups] = await Promise.all([
        Promise.all([
            ...outputs.containers.map((name) => inspectContainer(name, false, timeoutMs)),
            inspectContainer(outputs.airflowInitContainer, true, timeoutMs),
        ]),
        check(`GET ${outputs.airflowUrl}/api/v2/monitor/health`, (signal) => airflowHealth(outputs.airflowUrl, signal)),
        check(`GET ${outputs.sparkUiUrl}/json/`, (signal) => sparkMaster(outputs.sparkUiUrl, signal)),
        check(`the gRPC health probe in ${outputs.executorContainer}`, (signal) => executorHealth(outputs.executorContainer, timeoutMs, signal)),
        check(`PostgreSQL ${outputs.postgresHost}:${outputs.postgresPort}`, (signal) => warehouseState(outputs, timeoutMs, signal)),
        check("Docker engine GET /system/df", (signal) => volumeSizes(volumeNames(outputs), signal)),
        check(`vpe-backup --list in ${outputs.maintenanceContainer}`, (signal) => backupState(outputs.maintenanceContainer, signal)),
    ]);
    return {
        stack,
        takenAt,
        seconds: (performance.now() - started) / 1000,
        expected: { sparkWorkers: outputs.sparkWorkers, migrations: outputs.warehouseMigrations },
        containers,
        airflow,
        spark,
        executor,
        warehouse,
        volumes,
        backups,
        urls: { airflow: outputs.airflowUrl, sparkUi: outputs.sparkUiUrl, postgres: `${outputs.postgresHost}:${outputs.postgresPort}` },
    };
}

function volumeNames(outputs: StackOutputs): string[] {
    return [outputs.logVolumeName, outputs.bufferVolumeName, outputs.postgresDataVolumeName, outputs.backupVolumeName, outputs.airflowKeysVolumeName];
}

interface Inspect {
    RestartCount: number;
    Config?: { Tty?: boolean };
    State: {
        Status: string;
        ExitCode: number;
        OOMKilled: boolean;
        StartedAt: string;
        FinishedAt: string;
        Health?: { Status: string; Log?: { ExitCode: number; Output: string }[] };
    };
}

/** A container's facts from GET /containers/{name}/json, and its last log lines if it is not well. */
async function inspectContainer(name: string, oneShot: boolean, timeoutMs: number): Promise<ContainerFacts> {
    const inspected = await bounded(timeoutMs, `Docker engine GET /containers/${name}/json`, (signal) => engineRequest("GET", `/containers/${encodeURIComponent(name)}/json`, signal));
    if (!inspected.ok) return { name, oneShot, error: inspected.error };
    if (inspected.value.status === 404) return { name, oneShot, missing: true };
    let info: Inspect;
    try {
        info = engineJson(inspected.value, `GET /containers/${name}/json`) as Inspect;
    } catch (err) {
        return { name, oneShot, error: (err as Error).message };
    }
    const lastProbe = info.State.Health?.Log?.at(-1);
    const facts: ContainerFacts = {
        name,
        oneShot,
        state: info.State.Status,
        exitCode: info.State.ExitCode,
        oomKilled: info.State.OOMKilled,
        health: info.State.Health?.Status,
        restarts: info.RestartCount,
        startedAt: info.State.StartedAt,
        finishedAt: info.State.FinishedAt,
        ...(lastProbe ? { probe: { exitCode: lastProbe.ExitCode, output: lastLines(lastProbe.Output, PROBE_LINES) } } : {}),
    };
    if (containerWell(facts)) return facts;
    const path = `/containers/${encodeURIComponent(name)}/logs?stdout=1&stderr=1&tail=${LOG_LINES}`;
    const logs = await bounded(timeoutMs / 2, `Docker engine GET ${path}`, async (signal) => {
        const reply = await engineRequest("GET", path, signal);
        if (reply.status !== 200) engineJson(reply, `GET ${path}`);
        return info.Config?.Tty ? reply.body.toString("utf8") : demultiplex(reply.body).combined;
    });
    return { ...facts, logs: logs.ok ? lastLines(logs.value, LOG_LINES) : [`(logs unavailable: ${logs.error})`] };
}

async function airflowHealth(airflowUrl: string, signal: AbortSignal): Promise<AirflowFacts> {
    const body = (await getJson(`${airflowUrl}/api/v2/monitor/health`, signal)) as Record<string, unknown>;
    const components: AirflowFacts["components"] = {};
    for (const [name, value] of Object.entries(body)) {
        const component = value as { status?: unknown } | null;
        if (typeof component?.status !== "string") continue;
        const heartbeat = Object.entries(component).find(([key]) => key.endsWith("heartbeat"))?.[1];
        components[name] = { status: component.status, ...(typeof heartbeat === "string" ? { heartbeat } : {}) };
    }
    return { components };
}

async function sparkMaster(sparkUiUrl: string, signal: AbortSignal): Promise<SparkFacts> {
    const body = (await getJson(`${sparkUiUrl}/json/`, signal)) as { status?: unknown; aliveworkers?: unknown };
    if (typeof body.aliveworkers !== "number") throw new Error(`${sparkUiUrl}/json/: no aliveworkers in the answer`);
    return { status: String(body.status), aliveWorkers: body.aliveworkers };
}

async function executorHealth(container: string, timeoutMs: number, signal: AbortSignal): Promise<ExecutorFacts> {
    // The probe's own timeout is half ours, so a hung server is reported by the probe itself.
    const cmd = [`${platform.paths.envs}/server/bin/python`, "-m", "vpe_executor.health", "--timeout", String(timeoutMs / 2000)];
    const result = await exec(container, cmd, signal);
    return { exitCode: result.exitCode, output: lastLines(result.output, PROBE_LINES) };
}

async function warehouseState(outputs: StackOutputs, timeoutMs: number, signal: AbortSignal): Promise<WarehouseFacts> {
    const client = new Client({
        host: outputs.postgresHost,
        port: outputs.postgresPort,
        user: outputs.postgresAdminUser,
        password: outputs.postgresAdminPassword,
        database: platform.databases.warehouse,
        connectionTimeoutMillis: timeoutMs / 2,
        query_timeout: timeoutMs,
        application_name: "vpe-status",
    });
    let ended = false;
    const end = () => {
        if (ended) return;
        ended = true;
        void client.end().catch(() => undefined);
    };
    signal.addEventListener("abort", end);
    try {
        await client.connect();
        const applied = (await client.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version);
        const existing = (
            await client.query<{ name: string }>("SELECT t AS name FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL", [warehouseTables])
        ).rows.map((r) => r.name);
        const rows: Record<string, number | null> = Object.fromEntries(warehouseTables.map((t) => [t, null]));
        if (existing.length > 0) {
            const counts = await client.query<{ name: string; n: string }>(
                existing.map((t) => `SELECT '${t}' AS name, count(*) AS n FROM "${t}"`).join(" UNION ALL "),
            );
            for (const r of counts.rows) rows[r.name] = Number(r.n);
        }
        return { applied, rows };
    } catch (err) {
        const where = `PostgreSQL ${outputs.postgresAdminUser}@${outputs.postgresHost}:${outputs.postgresPort}/${platform.databases.warehouse}`;
        throw new Error(`${where}: ${(err as Error).message}`);
    } finally {
        signal.removeEventListener("abort", end);
        end();
    }
}

/**
 * Each volume's size from GET /system/df, the only Engine API call (up to API 1.41) that has it.
 * It also sizes every image and container layer; on this project's engines it answers in tens
 * of milliseconds, and the check's bound keeps a slow one from stalling the command.
 */
async function volumeSizes(names: string[], signal: AbortSignal): Promise<VolumeFacts> {
    const df = engineJson(await engineRequest("GET", "/system/df", signal), "GET /system/df") as {
        Volumes?: { Name: string; UsageData?: { Size: number } | null }[] | null;
    };
    const listed = new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
    return {
        volumes: names.map((name) => {
            const size = listed.get(name);
            return { name, found: size !== undefined, bytes: size === undefined || size < 0 ? null : size };
        }),
    };
}

async function backupState(container: string, signal: AbortSignal): Promise<BackupFacts> {
    const failureFile = `${platform.paths.backups}/last-failure`;
    const [sets, failure] = await Promise.all([
        listBackups(container, signal),
        // Exit 3: no such file (no failure recorded); any other non-zero exit is an error.
        exec(container, ["sh", "-c", 'if [ -e "$1" ]; then cat "$1"; else exit 3; fi', "sh", failureFile], signal),
    ]);
    if (failure.exitCode !== 0 && failure.exitCode !== 3) {
        throw new Error(`reading ${failureFile} in ${container} failed (exit ${failure.exitCode}): ${failure.output.trim()}`);
    }
    return { sets, ...(failure.exitCode === 0 ? { lastFailure: failure.output.trimEnd().split("\n") } : {}) };
}

/** The last `n` non-empty lines of `text`, without terminal colour codes. */
export function lastLines(text: string, n: number): string[] {
    // eslint-disable-next-line no-control-regex
    const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    return clean
        .split("\n")
        .filter((l) => l.trim() !== "")
        .slice(-n)
        .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
}

// ---------------------------------------------------------------------------------------------
// HTTP.

async function getJson(url: string, signal: AbortSignal): Promise<unknown> {
    let response: Response;
    try {
        response = await fetch(url, { signal });
    } catch (err) {
        const cause = (err as Error & { cause?: Error }).cause;
        throw new Error(`GET ${url}: ${cause?.message ?? (err as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${text.slice(0, 200).trim()}`);
    try {
        return JSON.parse(text);
    } catch {
        throw new Error(`GET ${url}: not JSON: ${text.slice(0, 200).trim()}`);
    }
}

// ---------------------------------------------------------------------------------------------
// The command.

export interface StatusIo {
    env: NodeJS.ProcessEnv;
    stdout: (text: string) => void;
    stderr: (text: string) => void;
    gather: (stack: string, outputs: StackOutputs) => Promise<Snapshot>;
}

const defaultIo: StatusIo = {
    env: process.env,
    stdout: (text) => console.log(text),
    stderr: (text) => console.error(text),
    gather: (stack, outputs) => gather(stack, outputs),
};

/** The command: its exit code (0 all well, 1 something wrong, 2 usage or stack not deployed). */
export async function main(argv: string[], io: StatusIo = defaultIo): Promise<number> {
    const started = performance.now();
    let args: { stack?: string; json?: boolean };
    let stack: string;
    try {
        args = parseArgs({ args: argv, options: { stack: { type: "string" }, json: { type: "boolean" } }, strict: true }).values;
        stack = checkedStackName(args.stack);
    } catch (err) {
        io.stderr(`status: ${(err as Error).message}\n${usage}`);
        return 2;
    }
    let outputs: StackOutputs;
    try {
        outputs = await readStackOutputs(stack, io.env);
    } catch (err) {
        io.stderr(`status: ${(err as Error).message}`);
        return err instanceof StackNotDeployed ? 2 : 1;
    }
    const secrets = secretsOf(outputs);
    try {
        const snapshot = await io.gather(stack, outputs);
        snapshot.seconds = (performance.now() - started) / 1000;
        const report = judge(snapshot);
        io.stdout(args.json ? renderJson(report, secrets) : renderScreen(report, secrets));
        return report.ok ? 0 : 1;
    } catch (err) {
        io.stderr(redact(`status: checking stack ${stack} failed: ${(err as Error).message}`, secrets));
        return 1;
    }
}

if (require.main === module) {
    void main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
