// How long the Pulumi program takes to evaluate under mocks (what `pulumi preview` adds on top of
// the engine), against a baseline run in the same script: a process that loads the same SDKs and
// mocks but declares nothing. Usage: npx tsx scripts/bench_program.ts [runs]
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { StackRun } from "../tests/support/stackRunner";
import { median } from "./stats";

const root = path.resolve(__dirname, "..");
const runs = Number(process.argv[2] ?? 5);
const env = { ...process.env, TSX_DISABLE_CACHE: "1" };

function timed(args: string[]): { wallMs: number; stdout: string } {
    const started = performance.now();
    const stdout = execFileSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, env, encoding: "utf8", maxBuffer: 64 << 20 });
    return { wallMs: performance.now() - started, stdout };
}

const baselineScript = [
    'const pulumi = require("@pulumi/pulumi");',
    'require("@pulumi/docker"); require("@pulumi/postgresql"); require("@pulumi/random");',
    'pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: () => ({}) }, "vpe", "dev", true);',
].join(" ");

const rows: string[][] = [];
const baseline = Array.from({ length: runs }, () => timed(["-e", baselineScript]).wallMs);
rows.push(["baseline (SDKs + mocks, no resources)", "-", median(baseline).toFixed(0), "-", "1.00"]);
for (const stack of ["dev", "prod"]) {
    const samples = Array.from({ length: runs }, () => {
        const request = JSON.stringify({ stack, preview: true, overrides: {}, failingContainers: [] });
        const { wallMs, stdout } = timed([path.join(root, "tests", "support", "stackRunner.ts"), request]);
        const run = JSON.parse(stdout) as StackRun;
        return { wallMs, evaluationMs: run.evaluationMs, resources: run.resources.length };
    });
    const wall = median(samples.map((s) => s.wallMs));
    rows.push([
        `${stack} program (preview)`,
        String(samples[0].resources),
        wall.toFixed(0),
        median(samples.map((s) => s.evaluationMs)).toFixed(0),
        (wall / median(baseline)).toFixed(2),
    ]);
}
console.log(`median of ${runs} runs, milliseconds`);
console.log(["what", "resources", "wall", "program evaluation", "wall / baseline"].join(" | "));
for (const row of rows) console.log(row.join(" | "));
