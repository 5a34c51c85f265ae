// One shipped stack under test: its effective config, the engine that applies it, what a user
// reads from it (outputs, Airflow's API, the warehouse) and the figures for the report.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { reachable } from "../../commands/stackOutputs";
import { parseConfig, type PlatformConfig } from "../../config";
import { type Deployment, type EngineName, openStack, type StackEngine } from "../../e2e/engines";
import { applyOverrides } from "../../e2e/harness/stackConfig";
import { platform } from "../../platform";
import { countedTables } from "../../warehouse/tables";
import { stackConfig, projectRoot } from "../support/stackConfig";
import { AirflowApi, type TaskInstance, containerStats, docker, inspectContainers, query } from "./platform";

export interface DagRunReport {
    dagId: string;
    seconds: number;
    tasks: Record<string, { state: string | null; tries: number; seconds?: number | null; hostname?: string }>;
}

export interface StackReport {
    overrides: string[];
    seconds: Record<string, number>;
    images: Record<string, { buildSeconds: number; sizeMB: number }>;
    dagRuns: Record<string, DagRunReport>;
    [figure: string]: unknown;
}

// js-yaml ships without types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require("js-yaml") as { load(text: string): unknown; dump(value: unknown): string };

/**
 * This machine has no internet: the suite runs a fake Open-Meteo archive (tests/fakes) on each
 * stack's network, in the stack's executor image (it has python3), and points the stack at it.
 */
interface Fake {
    alias: string;
    port: number;
    script: string;
}
const weatherArchive: Fake = { alias: "weather-archive", port: 8000, script: "open_meteo_archive.py" };
/** Alertmanager's receiver in a stack with metrics on (its alertWebhookUrl). */
const alertWebhook: Fake = { alias: "alert-webhook", port: 8001, script: "alert_webhook.py" };
export const alertWebhookUrl = `http://${alertWebhook.alias}:${alertWebhook.port}/alerts`;
const weatherOverrides = [
    `${platform.project}:weather.baseUrl=http://${weatherArchive.alias}:${weatherArchive.port}/v1/archive`,
    `${platform.project}:weather.requestsPerMinute=6000`,
];

/** One webhook notification of Alertmanager's (a group of alerts, firing or resolved). */
export interface AlertNotification {
    status: "firing" | "resolved";
    alerts: { status: "firing" | "resolved"; labels: Record<string, string>; annotations: Record<string, string> }[];
}

/** What the fake archive served (its GET /served). */
export interface WeatherServed {
    requests: number;
    observations: number;
    gap_hours: number;
    locations: number;
}

export class PlatformStack {
    readonly config: PlatformConfig;
    readonly prefix: string;
    readonly report: StackReport;
    engine!: StackEngine;
    private deployed?: Record<string, any>;
    airflow!: AirflowApi;
    adminUrl = "";

    /** Config the suite applies on every up (reported): the fake weather archive's URL and rate. */
    readonly overrides: string[];

    /**
     * `engineConfig`: provider keys (`docker:host`, `docker:sshOpts`) written into the engine's copy
     * of the stack file on open, as a user edits theirs (a test server's address and keys).
     */
    constructor(readonly stack: string, private readonly engineConfig: Record<string, unknown> = {}) {
        this.overrides = weatherOverrides;
        const raw = { ...stackConfig(stack), ...Object.fromEntries(Object.entries(engineConfig).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) };
        this.config = parseConfig(applyOverrides(raw, this.overrides, platform.project), stack);
        this.prefix = this.config.namePrefix;
        this.report = { overrides: this.overrides, seconds: {}, images: {}, dagRuns: {} };
    }

    /** The last successful up's outputs; a test that needs them fails plainly if that up failed. */
    get outputs(): Record<string, any> {
        if (this.deployed === undefined) throw new Error(`${this.stack}: no outputs, its last up failed or never ran`);
        return this.deployed;
    }

    /** The suite's fakes on the stack's network: the weather archive, and the alerts' webhook with metrics on. */
    get fakes(): Fake[] {
        return this.config.metrics.enabled ? [weatherArchive, alertWebhook] : [weatherArchive];
    }

    /** Not named after the stack's prefix: it is no container of the stack's. */
    fakeName(fake: Fake): string {
        return `e2e-${fake.alias}-${this.stack}`;
    }

    /** Starts each fake on the stack's network unless it runs there already. */
    startFakes(): void {
        const image = docker("inspect", "--format", "{{.Config.Image}}", this.outputs.executorContainer);
        for (const fake of this.fakes) {
            const name = this.fakeName(fake);
            if (this.fakeContainers(name, "ps").length > 0) continue;
            // Copied in, not bind-mounted: the engine may be a server's, which cannot see this checkout.
            docker(
                "create", "--rm", "--name", name,
                "--network", this.outputs.networkName, "--network-alias", fake.alias, "--entrypoint", "python3",
                image, `/srv/${fake.script}`, "--host", "0.0.0.0", "--port", String(fake.port),
            );
            // "<dir>/." copies the folder's contents into /srv, which the image has already.
            docker("cp", `${path.join(projectRoot, "tests", "fakes")}/.`, `${name}:/srv`);
            docker("start", name);
        }
    }

    stopFakes(): void {
        // A container on the network would keep the stack's destroy from removing it.
        for (const name of this.fakes.map((f) => this.fakeName(f))) {
            if (this.fakeContainers(name, "ps", "-a").length > 0) docker("rm", "-f", name);
        }
    }

    private fakeContainers(name: string, ...list: string[]): string[] {
        return docker(...list, "--format", "{{.Names}}").split("\n").filter((n) => n === name);
    }

    private fakeGet<T>(fake: Fake, urlPath: string): T {
        const read = `import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:${fake.port}${urlPath}").read().decode())`;
        return JSON.parse(docker("exec", this.fakeName(fake), "python3", "-c", read)) as T;
    }

    /** What the fake archive has served since it started. */
    weatherServed(): WeatherServed {
        return this.fakeGet(weatherArchive, "/served");
    }

    /** Every notification Alertmanager has posted to the suite's webhook. */
    alertsReceived(): AlertNotification[] {
        return this.fakeGet(alertWebhook, "/received");
    }

    /** `pulumi destroy`, after removing the fakes from the stack's network. */
    async destroy(): Promise<void> {
        this.stopFakes();
        await this.engine.destroy();
    }

    /** `projectDir`: the project to apply (another checkout, for a benchmark's baseline). */
    async open(engine: EngineName, projectDir = projectRoot, workDir = path.join(projectRoot, ".e2e", engine, this.stack)): Promise<void> {
        this.engine = await openStack(engine, {
            projectDir,
            stack: this.stack,
            workDir,
            namePrefix: this.prefix,
        });
        if (Object.keys(this.engineConfig).length > 0) {
            const file = path.join(this.engine.projectDir, `Pulumi.${this.stack}.yaml`);
            const stackFile = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
            for (const [key, value] of Object.entries(this.engineConfig)) {
                if (value === undefined) delete stackFile.config[key];
                else stackFile.config[key] = value;
            }
            fs.writeFileSync(file, yaml.dump(stackFile));
        }
    }

    /** PostgreSQL, the executor, the Spark master, the four Airflow services, maintenance, Redis, the workers and monitoring. */
    get expectedServices(): number {
        const celery = this.config.airflow.executor === "CeleryExecutor";
        // Prometheus, Alertmanager, the StatsD, PostgreSQL and node exporters, Redis' with Celery, and the container exporter.
        const metrics = this.config.metrics.enabled ? 5 + (celery ? 1 : 0) + (this.config.metrics.containers ? 1 : 0) : 0;
        return 8 + this.config.spark.workers + (celery ? 1 + this.config.airflow.celeryWorkers : 0) + metrics;
    }

    /** Runs a user command (commands/<name>.ts) against this stack as `npm run <name>` would. */
    async command(name: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
        const started = performance.now();
        const child = spawn(process.execPath, ["--import", "tsx", path.join(projectRoot, "commands", `${name}.ts`), "--stack", this.stack, ...args], {
            cwd: projectRoot,
            env: { ...process.env, ...this.engine.commandEnv() },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
        return { code, stdout, stderr, seconds: (performance.now() - started) / 1000 };
    }

    /** `pulumi up` with the suite's overrides (plus `extra` for this run), timed as `label`. */
    async up(label: string, extra: string[] = []): Promise<Deployment> {
        const deployment = await this.engine.up([...this.overrides, ...extra]);
        this.report.seconds[label] = Number(deployment.seconds.toFixed(1));
        // The first (cold) build of each image is the figure worth reporting.
        for (const [urn, image] of Object.entries(deployment.images)) {
            this.report.images[urn.split("::").pop()!] ??= {
                buildSeconds: Number(image.buildSeconds.toFixed(1)),
                sizeMB: Number((image.sizeBytes / 1e6).toFixed(1)),
            };
        }
        // A server's: its published ports forwarded here, as the commands reach them. The suite keeps
        // inspecting the engine its own way (DOCKER_HOST as it was).
        const inspecting = process.env.DOCKER_HOST;
        this.deployed = await reachable(deployment.outputs as never);
        if (inspecting === undefined) delete process.env.DOCKER_HOST;
        else process.env.DOCKER_HOST = inspecting;
        this.airflow = new AirflowApi(this.outputs.airflowUrl, this.outputs.airflowAdminUser, this.outputs.airflowAdminPassword);
        this.adminUrl =
            `postgresql://${this.outputs.postgresAdminUser}:${this.outputs.postgresAdminPassword}` +
            `@${this.outputs.postgresHost}:${this.outputs.postgresPort}/${platform.databases.warehouse}`;
        this.startFakes();
        return deployment;
    }

    /** Cold: no image of the stack's own cached, no build cache (upstream stand-ins stay). */
    makeCold(): void {
        const images = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `reference=${this.prefix}/*`).split("\n").filter(Boolean);
        for (const image of images) docker("rmi", "-f", image);
        docker("builder", "prune", "-af");
    }

    /** Memory in use by each container of the stack, MiB (one `docker stats` sample). */
    memoryMiB(): Record<string, number> {
        return Object.fromEntries(containerStats(this.prefix).map((c) => [c.name, Number(c.memoryMiB.toFixed(1))]));
    }

    /** The long-running containers: not the one-shot steps (volume init, content sync, Airflow's init). */
    serviceContainers() {
        return inspectContainers(this.prefix).filter((c) => !c.name.endsWith("-init") && !c.name.endsWith("-sync"));
    }

    /** Container ids by name: an unchanged up must leave every one in place. */
    containerIds(): Record<string, string> {
        return Object.fromEntries(inspectContainers(this.prefix).map((c) => [c.name, c.id]));
    }

    /** `pollMs`: how often to ask whether the run ended (the precision of its recorded duration). */
    async runDag(dagId: string, logicalDate: string, timeoutMs = 900_000, pollMs?: number) {
        const started = performance.now();
        const runId = await this.airflow.trigger(dagId, logicalDate);
        return this.finishRun(dagId, runId, started, timeoutMs, pollMs);
    }

    /** Waits for a triggered run to succeed and records its duration and tasks. */
    async finishRun(
        dagId: string,
        runId: string,
        started: number,
        timeoutMs = 900_000,
        pollMs?: number,
    ): Promise<{ runId: string; tis: TaskInstance[]; seconds: number }> {
        await this.airflow.waitForRun(dagId, runId, timeoutMs, pollMs);
        const tis = (await this.airflow.taskInstances(dagId, runId)).task_instances;
        const seconds = Number(((performance.now() - started) / 1000).toFixed(1));
        this.report.dagRuns[runId] = {
            dagId,
            seconds,
            tasks: Object.fromEntries(tis.map((t) => [t.task_id, { state: t.state, tries: t.try_number, seconds: t.duration, hostname: t.hostname }])),
        };
        return { runId, tis, seconds };
    }

    async warehouseCounts(): Promise<Record<string, number>> {
        const rows = await query<{ t: string; n: string }>(
            this.adminUrl,
            countedTables.map((t) => `SELECT '${t}' AS t, count(*) AS n FROM ${t}`).join(" UNION ALL "),
        );
        return Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
    }

    /** Destroys the stack and removes its kept volumes; errors are printed, not thrown. */
    async teardown(): Promise<void> {
        if (this.engine === undefined) return; // never opened: nothing was deployed
        this.stopFakes();
        await this.engine.destroy().catch((err) => console.error(`${this.stack}: destroy failed: ${err}`));
        await this.engine.purgeRetained().catch((err) => console.error(`${this.stack}: purge failed: ${err}`));
        this.removeUnrecorded();
    }

    /**
     * Removes the stack's containers, networks and volumes that no engine state records: those of
     * a run that was killed, or whose state was lost with its checkout (a fresh clone on an engine
     * that kept them). The suite owns the stack's names on this engine.
     */
    removeUnrecorded(): void {
        this.stopFakes();
        const containers = inspectContainers(this.prefix).map((c) => c.name);
        if (containers.length > 0) docker("rm", "-f", ...containers);
        const named = (kind: "network" | "volume") =>
            docker(kind, "ls", "--filter", `name=^${this.prefix}-`, "--format", "{{.Name}}")
                .split("\n")
                .filter((name) => name.startsWith(`${this.prefix}-`));
        const networks = named("network");
        if (networks.length > 0) docker("network", "rm", ...networks);
        const volumes = named("volume");
        if (volumes.length > 0) docker("volume", "rm", ...volumes);
        if (containers.length + networks.length + volumes.length > 0) {
            console.log(`# ${this.stack}: removed what no state recorded: ${[...containers, ...networks, ...volumes].join(", ")}`);
        }
    }
}
