// npm run new:pipeline -- NAME [--root DIR]
//
// Scaffolds a working pipeline: its own locked environment (docker/executor/envs/NAME:
// pyproject.toml + uv.lock), a task script (docker/executor/pipelines/NAME/hello.py) declared in
// the executor's task registry (tasks.toml, as NAME_hello, accepting only --date), and a DAG
// (dags/NAME.py) that runs it through the executor. A bad name changes nothing.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { platform } from "../platform";

/** Names a pipeline may not take: the server's environment, and words Python or Airflow reserve. */
const reserved = new Set(["server", "vpe_dags", "airflow", "test", "tests"]);
const pythonKeywords = new Set(
    "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case type".split(
        " ",
    ),
);

export interface PipelineFiles {
    env: string;
    pyproject: string;
    lock: string;
    pipeline: string;
    script: string;
    registry: string;
    dag: string;
}

export function pipelineFiles(root: string, name: string): PipelineFiles {
    const executor = path.join(root, "docker", "executor");
    const env = path.join(executor, "envs", name);
    const pipeline = path.join(executor, "pipelines", name);
    return {
        env,
        pyproject: path.join(env, "pyproject.toml"),
        lock: path.join(env, "uv.lock"),
        pipeline,
        script: path.join(pipeline, "hello.py"),
        registry: path.join(executor, "tasks.toml"),
        dag: path.join(root, "dags", `${name}.py`),
    };
}

/** Every reason NAME cannot be a new pipeline in ROOT (empty when it can). */
export function nameProblems(root: string, name: string): string[] {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
        return [`pipeline name ${JSON.stringify(name)}: expected a lowercase Python identifier (letters, digits, _; not starting with a digit)`];
    }
    const problems: string[] = [];
    if (pythonKeywords.has(name)) problems.push(`pipeline name "${name}": a Python keyword`);
    if (reserved.has(name)) problems.push(`pipeline name "${name}": reserved (${[...reserved].join(", ")})`);
    const files = pipelineFiles(root, name);
    for (const existing of [files.env, files.pipeline, files.dag]) {
        if (fs.existsSync(existing)) problems.push(`pipeline name "${name}": ${path.relative(root, existing)} already exists`);
    }
    if (new RegExp(`^\\[tasks\\.${name}_hello\\]`, "m").test(fs.readFileSync(files.registry, "utf8"))) {
        problems.push(`pipeline name "${name}": task ${name}_hello is already in ${path.relative(root, files.registry)}`);
    }
    return problems;
}

function pyproject(name: string): string {
    return `# The ${name} pipeline's environment: add its dependencies here, pinned with ==, then run
# \`uv lock\` in this folder and commit uv.lock (the image installs exactly what it locks).
[project]
name = "vpe-env-${name.replace(/_/g, "-")}"
version = "0"
requires-python = "==${platform.pythonMinor}.*"
dependencies = []

[tool.uv]
package = false
`;
}

function script(name: string): string {
    return `"""${name}: a first task, run by the executor with this pipeline's own interpreter."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", required=True, help="the run's logical date (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    print(f"${name}: hello for {args.date} from python {sys.version.split()[0]} at {sys.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
`;
}

/** The task's registry entry: a request may give it only what [arguments] declares (never a path). */
function registryEntry(name: string): string {
    return `
[tasks.${name}_hello]
env = "${name}"
script = "pipelines/${name}/hello.py"
args = []
timeout_seconds = 60

[tasks.${name}_hello.arguments]
"--date" = { type = "date", required = true }
`;
}

function dag(name: string): string {
    return `"""${name}: runs the ${name}_hello task of the executor, in the ${name} environment."""

from datetime import datetime

from airflow.sdk import DAG
from vpe_dags.executor import ExecutorCommandOperator

with DAG(
    dag_id="${name}",
    description="The ${name} pipeline",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["vpe", "${name}"],
):
    ExecutorCommandOperator(
        task_id="hello", command="${name}_hello", command_args=["--date", "{{ ds }}"]
    )
`;
}

/** uv at the version platform.json pins: the project's .venv, else PATH. */
function findUv(root: string): string {
    const candidates = [path.join(root, ".venv", "bin", "uv"), "uv"];
    for (const uv of candidates) {
        const version = spawnSync(uv, ["--version"], { encoding: "utf8" });
        if (version.status === 0 && version.stdout.trim().split(" ")[1] === platform.versions.uv) return uv;
    }
    throw new Error(`uv ${platform.versions.uv} (platform.json versions.uv) is needed to lock the environment: pip install uv==${platform.versions.uv}`);
}

export function scaffoldPipeline(root: string, name: string): PipelineFiles {
    const problems = nameProblems(root, name);
    if (problems.length > 0) throw new Error(problems.join("\n"));
    const uv = findUv(root);
    const files = pipelineFiles(root, name);
    const registry = fs.readFileSync(files.registry, "utf8");
    try {
        fs.mkdirSync(files.env, { recursive: true });
        fs.writeFileSync(files.pyproject, pyproject(name));
        const lock = spawnSync(uv, ["lock", "--quiet", "--project", files.env], { encoding: "utf8" });
        if (lock.status !== 0) throw new Error(`uv lock in ${files.env} failed:\n${lock.stderr}`);
        fs.mkdirSync(files.pipeline, { recursive: true });
        fs.writeFileSync(files.script, script(name));
        fs.writeFileSync(files.dag, dag(name));
        fs.writeFileSync(files.registry, registry + registryEntry(name));
    } catch (err) {
        for (const created of [files.env, files.pipeline, files.dag]) fs.rmSync(created, { recursive: true, force: true });
        fs.writeFileSync(files.registry, registry);
        throw err;
    }
    return files;
}

function main(argv: string[]): number {
    let parsed;
    try {
        parsed = parseArgs({ args: argv, options: { root: { type: "string" } }, allowPositionals: true });
    } catch (err) {
        console.error(`new:pipeline: ${(err as Error).message}\nusage: npm run new:pipeline -- NAME [--root DIR]`);
        return 2;
    }
    const root = path.resolve(parsed.values.root ?? path.join(__dirname, ".."));
    const names = parsed.positionals;
    if (names.length !== 1) {
        console.error("usage: npm run new:pipeline -- NAME [--root DIR]");
        return 2;
    }
    try {
        const files = scaffoldPipeline(root, names[0]);
        const rel = (p: string) => path.relative(root, p);
        console.log(
            [
                `new pipeline ${names[0]}:`,
                `  ${rel(files.pyproject)}, ${rel(files.lock)}  its environment (add pinned dependencies, then uv lock)`,
                `  ${rel(files.script)}  its task, declared as ${names[0]}_hello in ${rel(files.registry)}`,
                `  ${rel(files.dag)}  the DAG that runs it through the executor`,
                "pulumi preview shows the executor image and container changing; pulumi up deploys it.",
            ].join("\n"),
        );
        return 0;
    } catch (err) {
        console.error(`new:pipeline: ${(err as Error).message}`);
        return 1;
    }
}

if (require.main === module) {
    process.exitCode = main(process.argv.slice(2));
}
