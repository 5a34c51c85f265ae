// npm run bench:envs [-- --runs N --baseline REF]
//
// Build time and size of the executor image: its environments from locked uv projects (this
// checkout) against the pip path they replaced (the baseline commit's docker/, built the way that
// commit's stack built it), measured in one run on this machine. Cold: no build cache at all
// (`docker builder prune -af`). Warm: every layer rebuilt (`--no-cache`) with the package caches
// (BuildKit cache mounts) left from the cold build. Reports medians and ranges, and the ratio.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { executorBuildArgs } from "../components/executor";
import { dockerCli } from "../e2e/harness/handlers/dockerImage";
import { projectRoot } from "../platform";
import { buildExecutorImage } from "../tests/e2e/platform";
import { median } from "./stats";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, baseline: { type: "string" } } });
const runs = Number(values.runs);

/** The commit before the pip specs were removed: today's main as the uv change found it. */
function defaultBaseline(): string {
    const removal = execFileSync("git", ["log", "-1", "--format=%H", "--diff-filter=D", "--", "docker/executor/envs/server/requirements.txt"], {
        cwd: projectRoot,
        encoding: "utf8",
    }).trim();
    if (!removal) throw new Error("no commit removed docker/executor/envs/server/requirements.txt: pass --baseline REF");
    return `${removal}^`;
}

interface Variant {
    label: string;
    context: string;
    args: Record<string, string>;
}

function build(variant: Variant, tag: string, noCache: boolean): number {
    const started = performance.now();
    const result = buildExecutorImage(variant.context, tag, variant.args, ["-q", ...(noCache ? ["--no-cache"] : [])]);
    if (result.status !== 0) throw new Error(`${variant.label}: build failed\n${result.output.slice(-3000)}`);
    return (performance.now() - started) / 1000;
}

const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;

function main(): void {
    const baselineRef = values.baseline ?? defaultBaseline();
    const baselineDir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-bench-envs-"));
    try {
        execFileSync("bash", ["-c", `git archive ${JSON.stringify(baselineRef)} docker | tar -x -C ${JSON.stringify(baselineDir)}`], { cwd: projectRoot });
        const variants: Variant[] = [
            // The baseline Dockerfile still takes ENV_FORMAT; venv was its pip path.
            { label: `pip (${baselineRef})`, context: path.join(baselineDir, "docker"), args: { ...executorBuildArgs(false), ENV_FORMAT: "venv" } },
            { label: "uv (this checkout)", context: path.join(projectRoot, "docker"), args: executorBuildArgs(false) },
        ];
        const figures = variants.map((variant, i) => {
            const tag = `vpe-bench/executor-envs-${i}:local`;
            const cold: number[] = [];
            const warm: number[] = [];
            for (let run = 0; run < runs; run++) {
                execFileSync(dockerCli, ["builder", "prune", "-af"], { stdio: "ignore" });
                cold.push(build(variant, tag, false));
                warm.push(build(variant, tag, true));
                console.error(`${variant.label}: run ${run + 1}/${runs} cold ${cold.at(-1)!.toFixed(1)} s, warm ${warm.at(-1)!.toFixed(1)} s`);
            }
            const sizeMb = Number(execFileSync(dockerCli, ["image", "inspect", "--format", "{{.Size}}", tag], { encoding: "utf8" })) / 1e6;
            execFileSync(dockerCli, ["rmi", "-f", tag], { stdio: "ignore" });
            return { label: variant.label, cold, warm, sizeMb };
        });
        const [pip, uv] = figures;
        console.log(`# Executor image build, ${runs} runs each, ${os.cpus().length} cores (${new Date().toISOString()})\n`);
        console.log("| environments | cold median s (range) | warm median s (range) | image MB |");
        console.log("|---|---|---|---|");
        for (const f of figures) {
            console.log(`| ${f.label} | ${median(f.cold).toFixed(1)} (${range(f.cold)}) | ${median(f.warm).toFixed(1)} (${range(f.warm)}) | ${f.sizeMb.toFixed(1)} |`);
        }
        console.log(
            `\nuv / pip: cold ${(median(uv.cold) / median(pip.cold)).toFixed(2)}, warm ${(median(uv.warm) / median(pip.warm)).toFixed(2)}, ` +
                `size ${(uv.sizeMb / pip.sizeMb).toFixed(2)}`,
        );
    } finally {
        fs.rmSync(baselineDir, { recursive: true, force: true });
    }
}

main();
