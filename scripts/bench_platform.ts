// npm run bench:platform [-- --runs N --baseline REF --only current|baseline]
//
// How long a user waits for the dev stack, this checkout against a baseline commit, in one run on
// this machine, one variant after the other (they share the stack's names). For each: a cold
// bring-up (no project image, no build cache), `ping_grpc` and `ingestion` run N times each, the
// idle memory once every run has ended, N no-op ups, N warm bring-ups (images cached, fresh
// volumes), and the idle memory after the last of them. Reports medians and ranges, the ratio to
// the baseline, and, for the cold and the median warm bring-up, when each container started and
// became healthy (the last one ends the critical path). The baseline is the project at REF
// (default: the commit before the speed work), applied by this checkout's engine (the real CLI
// when on PATH, else the harness).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { selectEngine } from "../e2e/engines";
import { dockerCli } from "../e2e/harness/handlers/dockerImage";
import { projectRoot } from "../platform";
import { PlatformStack } from "../tests/e2e/platformStack";
import { median } from "./stats";

const { values } = parseArgs({
    options: {
        runs: { type: "string", default: "3" },
        baseline: { type: "string" },
        only: { type: "string" },
    },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number >= 1, got ${values.runs}`);
if (values.only !== undefined && !["current", "baseline"].includes(values.only)) {
    throw new Error(`--only: expected "current" or "baseline", got ${JSON.stringify(values.only)}`);
}

/** The commit before the speed work: the parent of the commit that added the cheap job probe. */
function defaultBaseline(): string {
    const added = execFileSync("git", ["log", "--format=%H", "--diff-filter=A", "--", "docker/airflow/bin/job-alive.py"], {
        cwd: projectRoot,
        encoding: "utf8",
    })
        .trim()
        .split("\n")
        .at(-1);
    if (!added) throw new Error("no commit added docker/airflow/bin/job-alive.py: pass --baseline REF");
    return `${added}^`;
}

/** The project at `ref` in a temporary folder, sharing this checkout's node_modules (same lockfile). */
function checkout(ref: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-bench-platform-"));
    execFileSync("bash", ["-c", `git archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(dir)}`], { cwd: projectRoot });
    const lock = (root: string) => fs.readFileSync(path.join(root, "package-lock.json"), "utf8");
    if (lock(dir) !== lock(projectRoot)) {
        throw new Error(`${ref}: its package-lock.json differs from this checkout's; the baseline must run on the same dependencies`);
    }
    fs.symlinkSync(path.join(projectRoot, "node_modules"), path.join(dir, "node_modules"));
    return dir;
}

interface ContainerTimes {
    started?: number;
    healthy?: number;
    exited?: number;
}

/** Container events on the engine while a deployment runs, as seconds since it began. */
class Timeline {
    private readonly started = Date.now();
    private readonly events: ChildProcess;
    private output = "";

    constructor(private readonly prefix: string) {
        this.events = spawn(dockerCli, [
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.TimeNano}} {{.Actor.Attributes.name}} {{.Action}}",
        ]);
        this.events.stdout!.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    }

    stop(): Record<string, ContainerTimes> {
        this.events.kill();
        const times: Record<string, ContainerTimes> = {};
        for (const line of this.output.split("\n")) {
            const [nanos, name, ...action] = line.split(" ");
            if (!name?.startsWith(`${this.prefix}-`)) continue;
            const at = Number((Number(BigInt(nanos) / 1_000_000n) - this.started) / 1000);
            const entry = (times[name] ??= {});
            const what = action.join(" ");
            if (what === "start") entry.started = at;
            else if (what === "health_status: healthy") entry.healthy ??= at;
            else if (what === "die") entry.exited = at;
        }
        return times;
    }
}

interface Figures {
    label: string;
    coldUp: number;
    coldTimeline: Record<string, ContainerTimes>;
    coldBuilds: Record<string, number>;
    firstIngestion: number;
    ping: number[];
    ingestion: number[];
    /** Idle, 30 s after a warm bring-up, and 30 s after the last DAG run. */
    idleMemoryMiB: Record<string, number>;
    usedMemoryMiB: Record<string, number>;
    noopUp: number[];
    noopChanges: number;
    warmUp: number[];
    warmTimelines: Record<string, ContainerTimes>[];
}

const total = (usage: Record<string, number>) => Object.values(usage).reduce((a, b) => a + b, 0);
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
const settle = () => new Promise((resolve) => setTimeout(resolve, 30_000));
const log = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

async function timedUp(stack: PlatformStack, label: string): Promise<{ seconds: number; timeline: Record<string, ContainerTimes> }> {
    const timeline = new Timeline(stack.prefix);
    const deployment = await stack.up(label);
    return { seconds: deployment.seconds, timeline: timeline.stop() };
}

async function measure(label: string, projectDir: string): Promise<Figures> {
    const stack = new PlatformStack("dev");
    await stack.open(selectEngine(), projectDir, path.join(projectRoot, ".e2e", "bench", label.replace(/[^A-Za-z0-9]+/g, "-")));
    await stack.teardown();
    const figures: Figures = {
        label,
        coldUp: 0,
        coldTimeline: {},
        coldBuilds: {},
        firstIngestion: 0,
        ping: [],
        ingestion: [],
        idleMemoryMiB: {},
        usedMemoryMiB: {},
        noopUp: [],
        noopChanges: 0,
        warmUp: [],
        warmTimelines: [],
    };
    try {
        stack.makeCold();
        const cold = await timedUp(stack, "cold");
        [figures.coldUp, figures.coldTimeline] = [cold.seconds, cold.timeline];
        figures.coldBuilds = Object.fromEntries(Object.entries(stack.report.images).map(([name, image]) => [name, image.buildSeconds]));
        log(`${label}: cold bring-up ${figures.coldUp.toFixed(1)} s`);
        // The first trigger also unpauses the DAG, whose scheduled run for the latest interval goes first.
        figures.firstIngestion = (await stack.runDag("ingestion", "2024-01-01T00:00:00Z", 900_000, 250)).seconds;
        log(`${label}: first ingestion ${figures.firstIngestion} s`);
        for (let run = 1; run <= runs; run++) {
            // A new logical date per run (days from 2024-02-01), as a daily schedule gives.
            const date = new Date(Date.UTC(2024, 1, run)).toISOString().replace(".000Z", "Z");
            figures.ping.push((await stack.runDag("ping_grpc", date, 300_000, 250)).seconds);
            figures.ingestion.push((await stack.runDag("ingestion", date, 900_000, 250)).seconds);
            log(`${label}: run ${run}: ping_grpc ${figures.ping.at(-1)} s, ingestion ${figures.ingestion.at(-1)} s`);
        }
        await settle();
        figures.usedMemoryMiB = stack.memoryMiB();
        for (let run = 1; run <= runs; run++) {
            const deployment = await stack.engine.up(stack.overrides);
            figures.noopUp.push(deployment.seconds);
            figures.noopChanges += Object.values(deployment.ops).filter((op) => op !== "same").length;
        }
        log(`${label}: no-op up ${figures.noopUp.map((s) => s.toFixed(1)).join(", ")} s, ${figures.noopChanges} changes`);
        for (let run = 1; run <= runs; run++) {
            await stack.teardown();
            const { seconds, timeline } = await timedUp(stack, "warm");
            figures.warmUp.push(seconds);
            figures.warmTimelines.push(timeline);
            log(`${label}: warm bring-up ${seconds.toFixed(1)} s`);
        }
        await settle();
        figures.idleMemoryMiB = stack.memoryMiB();
    } finally {
        await stack.teardown();
    }
    return figures;
}

/** When each container started and became healthy (or exited), and the one that ended the critical path. */
function timelineTable(title: string, timeline: Record<string, ContainerTimes>): string[] {
    const lines = ["", `${title}, seconds since \`up\` began:`, "", "| container | started | healthy (or exited) | start to ready |", "|---|---|---|---|"];
    const entries = Object.entries(timeline).sort((a, b) => (a[1].healthy ?? a[1].exited ?? 0) - (b[1].healthy ?? b[1].exited ?? 0));
    for (const [name, t] of entries) {
        const end = t.healthy ?? t.exited;
        lines.push(`| ${name} | ${t.started?.toFixed(1) ?? "-"} | ${end?.toFixed(1) ?? "-"} | ${t.started !== undefined && end !== undefined ? (end - t.started).toFixed(1) : "-"} |`);
    }
    const last = entries.filter(([, t]) => t.healthy !== undefined).at(-1);
    if (last) lines.push("", `Critical path ends with ${last[0]}, healthy at ${last[1].healthy!.toFixed(1)} s.`);
    return lines;
}

function report(all: Figures[]): string {
    const [baseline, current] = all.length === 2 ? all : [undefined, all[0]];
    const rows: [string, (f: Figures) => number[]][] = [
        ["cold bring-up, s", (f) => [f.coldUp]],
        ["warm bring-up, s", (f) => f.warmUp],
        ["no-op up, s", (f) => f.noopUp],
        ["ping_grpc, trigger to success, s", (f) => f.ping],
        ["ingestion, trigger to success, s", (f) => f.ingestion],
        ["ingestion, first run of a new stack, s", (f) => [f.firstIngestion]],
        ["idle memory after a bring-up, MiB", (f) => [total(f.idleMemoryMiB)]],
        ["idle memory after the DAG runs, MiB", (f) => [total(f.usedMemoryMiB)]],
    ];
    const lines = [
        `# Platform benchmark, dev stack, ${runs} runs, ${os.cpus().length} cores, ${new Date().toISOString()}`,
        "",
        `| what | ${all.map((f) => `${f.label} median (range)`).join(" | ")}${baseline ? " | ratio" : ""} |`,
        `|---|${all.map(() => "---|").join("")}${baseline ? "---|" : ""}`,
    ];
    for (const [what, pick] of rows) {
        const cells = all.map((f) => `${median(pick(f)).toFixed(1)} (${spread(pick(f))})`);
        const ratio = baseline ? ` | ${(median(pick(current!)) / median(pick(baseline))).toFixed(2)}` : "";
        lines.push(`| ${what} | ${cells.join(" | ")}${ratio} |`);
    }
    for (const f of all) {
        lines.push("", `## ${f.label}`, "", `no-op ups changed ${f.noopChanges} resources; cold image builds (s): ${JSON.stringify(f.coldBuilds)}`);
        const order = f.warmUp.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0]);
        lines.push(...timelineTable("Cold bring-up", f.coldTimeline));
        lines.push(...timelineTable("Median warm bring-up", f.warmTimelines[order[Math.floor(order.length / 2)][1]]));
        const perContainer = (usage: Record<string, number>) => Object.entries(usage).map(([n, m]) => `${n.replace(/^vpe-dev-/, "")} ${m.toFixed(0)}`).join(", ");
        lines.push("", `Idle memory after a bring-up, MiB: ${perContainer(f.idleMemoryMiB)}`, "", `After the DAG runs: ${perContainer(f.usedMemoryMiB)}`);
    }
    return lines.join("\n");
}

async function main(): Promise<void> {
    const baselineRef = values.baseline ?? defaultBaseline();
    const all: Figures[] = [];
    if (values.only !== "current") {
        const dir = checkout(baselineRef);
        try {
            const commit = execFileSync("git", ["rev-parse", "--short", baselineRef], { cwd: projectRoot, encoding: "utf8" }).trim();
            all.push(await measure(`baseline ${commit}`, dir));
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }
    if (values.only !== "baseline") all.push(await measure("this checkout", projectRoot));
    const text = report(all);
    fs.mkdirSync(path.join(projectRoot, "reports"), { recursive: true });
    fs.writeFileSync(path.join(projectRoot, "reports", "bench-platform.json"), JSON.stringify(all, null, 2));
    fs.writeFileSync(path.join(projectRoot, "reports", "bench-platform.md"), text);
    console.log(text);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
