// The two ways the end-to-end suite applies a stack: the real Pulumi CLI, through the Automation
// API, whenever a `pulumi` CLI is on PATH; the harness (e2e/harness) where none can run. Both
// answer the same questions, so one suite makes the same assertions on either.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { type ConfigValue, type EngineEvent, LocalWorkspace, type OpType, type Stack } from "@pulumi/pulumi/automation";
import * as harness from "./harness";
import { dockerCli } from "./harness/handlers/dockerImage";

export type EngineName = "harness" | "pulumi";
export type Op = harness.Op;

export interface Deployment {
    /** What happened to each resource (for a preview: what would happen), by URN. */
    ops: Record<string, Op>;
    /** Stack outputs with secrets revealed, for assertions (never log them). */
    outputs: Record<string, any>;
    /** Warnings printed during the run. */
    warnings: string[];
    /** Images built in this run, by URN. */
    images: Record<string, { buildSeconds: number; sizeBytes: number }>;
    seconds: number;
}

export interface StackEngine {
    readonly name: EngineName;
    /** The engine's working copy of the project: what it applies, and where a test edits files. */
    readonly projectDir: string;
    /** What ran, with versions, for the report. */
    readonly version: string;
    /** `pulumi up`; `config` holds `project:key[.path]=value` overrides for this run only. */
    up(config?: readonly string[]): Promise<Deployment>;
    preview(config?: readonly string[]): Promise<Deployment>;
    destroy(): Promise<void>;
    /** Removes what destroy kept on the engine (data volumes): test clean-up, not a Pulumi operation. */
    purgeRetained(): Promise<void>;
    /** Environment under which the user commands (commands/stackOutputs.ts) read this stack's outputs. */
    commandEnv(): Record<string, string>;
}

export interface StackEngineOptions {
    /** The folder holding Pulumi.yaml: copied afresh into `<workDir>/project` on open. */
    projectDir: string;
    stack: string;
    /** A folder of the engine's own for this stack: state, passphrase, working copy. */
    workDir: string;
    /** The stack's name prefix: what purgeRetained removes on the Docker engine. */
    namePrefix: string;
}

/** The `pulumi` executable on PATH, if any. */
export function pulumiCli(searchPath = process.env.PATH ?? ""): string | undefined {
    return searchPath
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, "pulumi"))
        .find((file) => {
            try {
                fs.accessSync(file, fs.constants.X_OK);
                return fs.statSync(file).isFile();
            } catch {
                return false;
            }
        });
}

/** VPE_E2E_ENGINE=pulumi|harness forces an engine; unset, the real CLI is used when present. */
export function selectEngine(env: NodeJS.ProcessEnv = process.env): EngineName {
    const wanted = env.VPE_E2E_ENGINE ?? "";
    const cli = pulumiCli(env.PATH);
    switch (wanted) {
        case "":
            return cli ? "pulumi" : "harness";
        case "harness":
            return "harness";
        case "pulumi":
            if (!cli) {
                throw new Error(
                    "VPE_E2E_ENGINE=pulumi: no `pulumi` executable on PATH. Install the Pulumi CLI with the docker, " +
                        "postgresql and random provider plugins (versions in package.json), or unset VPE_E2E_ENGINE to use the harness.",
                );
            }
            return "pulumi";
        default:
            throw new Error(`VPE_E2E_ENGINE: expected "pulumi" or "harness", got ${JSON.stringify(wanted)}`);
    }
}

export async function openStack(engine: EngineName, options: StackEngineOptions): Promise<StackEngine> {
    fs.mkdirSync(options.workDir, { recursive: true });
    const projectDir = path.join(options.workDir, "project");
    copyProject(options.projectDir, projectDir, options.stack);
    const opened = { ...options, projectDir };
    return engine === "pulumi" ? PulumiEngine.open(opened) : new HarnessEngine(opened);
}

/** Files of the project the program does not read: left out of the working copy. */
const notCopied = new Set(["node_modules", ".git", ".venv", ".e2e", ".pulumi", "reports", "build"]);

/**
 * A fresh copy of the project's files, so the checkout stays untouched: the CLI writes the
 * stack's encryption salt and config overrides into Pulumi.<stack>.yaml (the salt of earlier runs
 * is kept), and tests edit files to see what a preview plans.
 */
function copyProject(source: string, target: string, stack: string): void {
    const stackFile = `Pulumi.${stack}.yaml`;
    const previous = path.join(target, stackFile);
    const salt = fs.existsSync(previous) ? fs.readFileSync(previous, "utf8").match(/^encryptionsalt: .*$/m)?.[0] : undefined;
    fs.rmSync(target, { recursive: true, force: true });
    // Entry by entry: the copy lives inside the project's .e2e/, and cp refuses a folder into itself.
    for (const entry of fs.readdirSync(source).filter((e) => !notCopied.has(e))) {
        fs.cpSync(path.join(source, entry), path.join(target, entry), { recursive: true });
    }
    fs.symlinkSync(path.join(source, "node_modules"), path.join(target, "node_modules"));
    if (salt) {
        fs.appendFileSync(path.join(target, stackFile), `\n${salt}\n`);
    }
}

function sdkVersion(): string {
    return (JSON.parse(fs.readFileSync(require.resolve("@pulumi/pulumi/package.json"), "utf8")) as { version: string }).version;
}

function imageSize(name: string): number {
    return Number(execFileSync(dockerCli, ["image", "inspect", "--format", "{{.Size}}", name], { encoding: "utf8" }).trim());
}

/** The key of a `project:key[.path]=value` override, which both engines take alike. */
function checkedOverrideKey(item: string): string {
    const eq = item.indexOf("=");
    const key = item.slice(0, eq);
    if (eq <= 0 || !key.includes(":")) {
        throw new Error(`config override ${JSON.stringify(item)}: expected project:key[.path]=value`);
    }
    return key;
}

class HarnessEngine implements StackEngine {
    readonly name = "harness";
    readonly version = `harness (e2e/harness) on @pulumi/pulumi ${sdkVersion()}`;
    private readonly statePath: string;

    readonly projectDir: string;

    constructor(private readonly options: StackEngineOptions) {
        this.statePath = path.join(options.workDir, "state.json");
        this.projectDir = options.projectDir;
    }

    private harnessOptions(config: readonly string[] = []): harness.HarnessOptions {
        // The harness CLI takes `key=value` as `pulumi config set` does; this interface, like
        // the real engine's below, takes only `project:key[.path]=value`.
        config.forEach(checkedOverrideKey);
        return { projectDir: this.options.projectDir, stack: this.options.stack, statePath: this.statePath, config };
    }

    async up(config?: readonly string[]): Promise<Deployment> {
        const deployment = this.deployment(await harness.up(this.harnessOptions(config)));
        // What `pulumi stack output --json --show-secrets` would print, for the user commands.
        fs.writeFileSync(this.outputsPath, JSON.stringify(deployment.outputs), { mode: 0o600 });
        return deployment;
    }

    async preview(config?: readonly string[]): Promise<Deployment> {
        return this.deployment(await harness.preview(this.harnessOptions(config)));
    }

    async destroy(): Promise<void> {
        if (fs.existsSync(this.statePath)) {
            await harness.destroy(this.harnessOptions());
        }
        fs.rmSync(this.outputsPath, { force: true });
    }

    commandEnv(): Record<string, string> {
        return { VPE_STACK_OUTPUTS_FILE: this.outputsPath };
    }

    private get outputsPath(): string {
        return path.join(this.options.workDir, "outputs.json");
    }

    async purgeRetained(): Promise<void> {
        if (fs.existsSync(this.statePath)) {
            await harness.purgeRetained(this.harnessOptions());
        }
    }

    private deployment(summary: harness.Summary): Deployment {
        const images: Deployment["images"] = {};
        for (const [urn, figures] of Object.entries(summary.metrics)) {
            if (figures.buildSeconds !== undefined) {
                images[urn] = { buildSeconds: figures.buildSeconds, sizeBytes: figures.imageBytes ?? 0 };
            }
        }
        return {
            ops: summary.ops,
            outputs: harness.outputValues(summary) as Record<string, any>,
            warnings: summary.warnings,
            images,
            seconds: summary.seconds,
        };
    }
}

/** The engine's step kinds, folded into the four a test asks about. */
function foldOp(op: OpType): Op {
    switch (op) {
        case "create":
        case "update":
        case "delete":
        case "same":
            return op;
        case "replace":
        case "create-replacement":
        case "delete-replaced":
        case "discard-replaced":
        case "read-replacement":
        case "import-replacement":
            return "replace";
        default:
            return "same";
    }
}

/**
 * The real Pulumi CLI on the working copy of the project, with a local file backend and a
 * generated passphrase in the engine's own folder.
 */
class PulumiEngine implements StackEngine {
    readonly name = "pulumi";

    readonly projectDir: string;

    private constructor(
        private readonly stack: Stack,
        readonly version: string,
        private readonly options: StackEngineOptions,
        private readonly envForCommands: Record<string, string>,
    ) {
        this.projectDir = options.projectDir;
    }

    commandEnv(): Record<string, string> {
        return this.envForCommands;
    }

    static async open(options: StackEngineOptions): Promise<PulumiEngine> {
        const backend = path.join(options.workDir, "state");
        fs.mkdirSync(backend, { recursive: true });
        const passphraseFile = path.join(options.workDir, "passphrase");
        if (!fs.existsSync(passphraseFile)) {
            fs.writeFileSync(passphraseFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
        }
        const envVars = {
            PULUMI_BACKEND_URL: `file://${backend}`,
            PULUMI_CONFIG_PASSPHRASE: fs.readFileSync(passphraseFile, "utf8"),
            PULUMI_SKIP_UPDATE_CHECK: "true",
        };
        const commandEnv = { PULUMI_BACKEND_URL: envVars.PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile };
        const stack = await LocalWorkspace.createOrSelectStack({ stackName: options.stack, workDir: options.projectDir }, { envVars });
        const plugins = (await stack.workspace.listPlugins())
            .filter((p) => p.kind === "resource")
            .map((p) => `${p.name} ${p.version}`)
            .join(", ");
        const version = `pulumi v${stack.workspace.pulumiVersion} (plugins: ${plugins}) on @pulumi/pulumi ${sdkVersion()}`;
        return new PulumiEngine(stack, version, options, commandEnv);
    }

    up(config: readonly string[] = []): Promise<Deployment> {
        return this.withConfig(config, () => this.run("up"));
    }

    preview(config: readonly string[] = []): Promise<Deployment> {
        return this.withConfig(config, () => this.run("preview"));
    }

    async destroy(): Promise<void> {
        await this.stack.destroy({ color: "never" });
    }

    async purgeRetained(): Promise<void> {
        const volumes = execFileSync(dockerCli, ["volume", "ls", "-q", "--filter", `name=^${this.options.namePrefix}-`], { encoding: "utf8" })
            .split("\n")
            .filter(Boolean);
        if (volumes.length > 0) {
            execFileSync(dockerCli, ["volume", "rm", ...volumes]);
        }
    }

    /** Applies `key[.path]=value` overrides for one run, then restores the stack's own values. */
    private async withConfig<T>(overrides: readonly string[], run: () => Promise<T>): Promise<T> {
        const saved = new Map<string, ConfigValue | undefined>();
        try {
            for (const item of overrides) {
                const key = checkedOverrideKey(item);
                const eq = item.indexOf("=");
                if (!saved.has(key)) {
                    saved.set(key, await this.stack.getConfig(key, true).catch(() => undefined));
                }
                await this.stack.setConfig(key, { value: item.slice(eq + 1) }, true);
            }
            return await run();
        } finally {
            for (const [key, value] of saved) {
                await (value === undefined ? this.stack.removeConfig(key, true) : this.stack.setConfig(key, value, true));
            }
        }
    }

    private async run(kind: "up" | "preview"): Promise<Deployment> {
        const ops: Record<string, Op> = {};
        const warnings: string[] = [];
        const startedAt = new Map<string, number>();
        const built: { urn: string; name: string; seconds: number }[] = [];
        const record = (urn: string, op: OpType) => {
            ops[urn] = ops[urn] === "replace" ? "replace" : foldOp(op);
        };
        const onEvent = (event: EngineEvent) => {
            const now = performance.now();
            const pre = event.resourcePreEvent?.metadata;
            if (pre) {
                startedAt.set(pre.urn, now);
                if (kind === "preview") record(pre.urn, pre.op);
            }
            const done = event.resOutputsEvent?.metadata;
            if (done) {
                record(done.urn, done.op);
                const imageName = done.new?.outputs?.imageName;
                if (done.type === "docker:index/image:Image" && done.op !== "same" && typeof imageName === "string") {
                    built.push({ urn: done.urn, name: imageName, seconds: (now - (startedAt.get(done.urn) ?? now)) / 1000 });
                }
            }
            const diagnostic = event.diagnosticEvent;
            if (diagnostic?.severity === "warning") {
                warnings.push(diagnostic.message.trim());
            }
        };
        // What a user running the command sees, for the error when it fails.
        let printed = "";
        const print = (text: string) => (printed += text);
        const started = performance.now();
        let outputs: Record<string, any> = {};
        try {
            if (kind === "up") {
                const result = await this.stack.up({ onEvent, onOutput: print, onError: print, color: "never" });
                outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
            } else {
                await this.stack.preview({ onEvent, onOutput: print, onError: print, color: "never" });
            }
        } catch (err) {
            throw new Error(`pulumi ${kind} failed (${(err as Error).name}):\n${printed}`);
        }
        const images = Object.fromEntries(built.map((b) => [b.urn, { buildSeconds: b.seconds, sizeBytes: imageSize(b.name) }]));
        return { ops, outputs, warnings, images, seconds: (performance.now() - started) / 1000 };
    }
}
