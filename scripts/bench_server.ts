// npm run bench:server [-- --runs N]
//
// What deploying to a server costs against deploying here, in one run on this machine: the same
// stack file (Pulumi.server.yaml) applied once to this machine's engine and once to the test
// server (scripts/test-server.sh: a second engine reached only over SSH), one after the other.
// For each: a cold bring-up (the stack's images absent, no build cache), N no-op ups, N DAG-edit
// ups and N warm bring-ups (images cached, fresh volumes). Prints medians, ranges and the ratio
// server / local, and writes reports/bench-server.{json,md}. Uses the real Pulumi CLI when on PATH,
// else the harness (VPE_E2E_ENGINE chooses). Must not run beside the end-to-end suite.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { selectEngine } from "../e2e/engines";
import { platform, projectRoot } from "../platform";
import { provideImages } from "../tests/e2e/platform";
import { PlatformStack } from "../tests/e2e/platformStack";
import { removeTestServer, startTestServer } from "../tests/e2e/testServer";
import { median } from "./stats";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number >= 1, got ${values.runs}`);

type Figures = Record<"cold" | "noop" | "dagEdit" | "warm", number[]>;

/** One variant: cold, N no-op ups, N DAG edits, N warm bring-ups; seconds of each `up`. */
async function measure(stack: PlatformStack, label: string): Promise<Figures> {
    const figures: Figures = { cold: [], noop: [], dagEdit: [], warm: [] };
    const up = async (kind: keyof Figures) => {
        const deployment = await stack.up(`${label}-${kind}`);
        figures[kind].push(deployment.seconds);
        console.log(`# ${label} ${kind}: ${deployment.seconds.toFixed(1)} s`);
    };
    await stack.open(engineName, projectRoot, path.join(projectRoot, ".e2e", `bench-${label}`, stack.stack));
    await stack.teardown();
    stack.makeCold();
    await up("cold");
    for (let i = 0; i < runs; i++) await up("noop");
    for (let i = 0; i < runs; i++) {
        fs.appendFileSync(path.join(stack.engine.projectDir, "dags", "ping_grpc.py"), `\n# bench edit ${i}\n`);
        await up("dagEdit");
    }
    for (let i = 0; i < runs; i++) {
        await stack.destroy();
        await stack.engine.purgeRetained();
        await up("warm");
    }
    await stack.teardown();
    return figures;
}

const engineName = selectEngine();

async function main(): Promise<void> {
    provideImages();
    // Here: the same stack file without its docker: keys, so the docker provider uses this machine's engine.
    const local = new PlatformStack("server", { "docker:host": undefined, "docker:sshOpts": undefined });
    const localFigures = await measure(local, "local");

    const host = await startTestServer();
    let serverFigures: Figures;
    try {
        await host.loadImages([platform.images.debian, platform.images.postgres, platform.images.airflow, platform.images.redis]);
        const remote = new PlatformStack("server", { "docker:host": host.dockerHost, "docker:sshOpts": host.sharedSshOpts });
        process.env.DOCKER_HOST = `unix://${host.socket}`;
        try {
            serverFigures = await measure(remote, "server");
        } finally {
            await remote.teardown();
            delete process.env.DOCKER_HOST;
        }
    } finally {
        await removeTestServer();
    }

    const rows = (Object.keys(localFigures) as (keyof Figures)[]).map((kind) => {
        const [l, s] = [median(localFigures[kind]), median(serverFigures[kind])];
        const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
        return { kind, local: l, server: s, ratio: s / l, localRange: range(localFigures[kind]), serverRange: range(serverFigures[kind]) };
    });
    const lines = [
        `# Server against local, ${new Date().toISOString()} (${engineName}, runs ${runs})`,
        "",
        "| up | local s (median, range) | server s (median, range) | server / local |",
        "|---|---|---|---|",
        ...rows.map((r) => `| ${r.kind} | ${r.local.toFixed(1)} (${r.localRange}) | ${r.server.toFixed(1)} (${r.serverRange}) | ${r.ratio.toFixed(2)}x |`),
    ];
    console.log(lines.join("\n"));
    fs.mkdirSync(path.join(projectRoot, "reports"), { recursive: true });
    fs.writeFileSync(path.join(projectRoot, "reports", "bench-server.json"), JSON.stringify({ engine: engineName, runs, local: localFigures, server: serverFigures, rows }, null, 2));
    fs.writeFileSync(path.join(projectRoot, "reports", "bench-server.md"), `${lines.join("\n")}\n`);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
