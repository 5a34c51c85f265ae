// Programmatic entry points for tests. Each call runs the CLI in a child process (the Pulumi SDK
// keeps global per-process state, so two `up`s cannot share one process) and returns its summary.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeploymentError, type Op, type Summary } from "./engine";
import { plainProps, type Props } from "./wire";

export { DeploymentError, type Op, type Summary };

export interface HarnessOptions {
    /** Directory holding Pulumi.yaml (the program's cwd). */
    projectDir: string;
    stack: string;
    statePath?: string;
    config?: readonly string[];
    /** Where the child's progress log goes; defaults to this process's stderr. */
    logStream?: "inherit" | "ignore";
}

const repoRoot = path.resolve(__dirname, "..", "..");
const tsx = path.join(repoRoot, "node_modules", ".bin", "tsx");
const cli = path.join(__dirname, "cli.ts");

async function runCli(command: string, options: HarnessOptions): Promise<Summary> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-harness-"));
    const summaryFile = path.join(dir, "summary.json");
    const projectDir = path.resolve(options.projectDir);
    const args = [cli, command, "--stack", options.stack, "--project", projectDir, "--summary", summaryFile];
    if (options.statePath) {
        args.push("--state", path.resolve(options.statePath));
    }
    for (const c of options.config ?? []) {
        args.push("--config", c);
    }
    try {
        const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
            const child = spawn(tsx, args, { cwd: projectDir, stdio: ["ignore", "pipe", options.logStream ?? "inherit"] });
            let out = "";
            child.stdout.on("data", (d: Buffer) => (out += d.toString()));
            child.on("error", reject);
            child.on("close", (c) => resolve({ code: c ?? 1, stdout: out }));
        });
        if (!fs.existsSync(summaryFile)) {
            throw new Error(`harness ${command} exited ${code} without a summary:\n${stdout}`);
        }
        const summary = JSON.parse(fs.readFileSync(summaryFile, "utf8")) as Summary;
        if (!summary.ok) {
            throw new DeploymentError(summary);
        }
        return summary;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

export const up = (options: HarnessOptions) => runCli("up", options);
export const preview = (options: HarnessOptions) => runCli("preview", options);
export const destroy = (options: HarnessOptions) => runCli("destroy", options);
/** Removes what retainOnDelete left behind (e.g. data volumes) after a destroy. */
export const purgeRetained = (options: HarnessOptions) => runCli("purge", options);

/** Stack outputs with secrets unwrapped, for assertions (never log them). */
export function outputValues(summary: Summary): Props {
    return plainProps(summary.outputs);
}

/** URNs whose operation in this run was not "same" (of a harness summary or any run with `ops`). */
export function changed(summary: Pick<Summary, "ops">): Record<string, Op> {
    return Object.fromEntries(Object.entries(summary.ops).filter(([, op]) => op !== "same"));
}
