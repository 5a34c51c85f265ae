// Runs the real program under Pulumi's mock monitor in this process and prints, as JSON, every
// resource it registers (inputs as sent, options as sent), its stack outputs, and any side effect
// the program itself had. Invoked in a child process by tests/support/stack.ts, so each run gets a
// fresh module registry and Pulumi runtime.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import * as fs from "fs";
import * as path from "path";
import { mockOutputs } from "./mockProviders";
import { recordSideEffects } from "./sideEffects";
import { stackConfig } from "./stackConfig";

interface Request {
    stack: string;
    preview: boolean;
    overrides: Record<string, string>;
    failingContainers: string[];
}

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getProvider(): string;
    getProtect(): boolean;
    getRetainondelete(): boolean;
    getDeletebeforereplace(): boolean;
    getReplaceonchangesList(): string[];
    getDependenciesList(): string[];
    getIgnorechangesList(): string[];
    getAdditionalsecretoutputsList(): string[];
}

export interface RegisteredResource {
    urn: string;
    type: string;
    name: string;
    inputs: Record<string, unknown>;
    options: {
        parent: string;
        provider: string;
        protect: boolean;
        retainOnDelete: boolean;
        deleteBeforeReplace: boolean;
        replaceOnChanges: string[];
        dependencies: string[];
        ignoreChanges: string[];
        additionalSecretOutputs: string[];
    };
}

export interface StackRun {
    resources: RegisteredResource[];
    outputs: Record<string, { value: unknown; secret: boolean; known: boolean }>;
    sideEffects: string[];
    error?: string;
    evaluationMs: number;
}

const secretSig = { key: "4dabf18193072939515e22adb298388d", value: "1b47061264138c4ac30d75fd1eb44270" };

class RecordingMonitor extends MockMonitor {
    readonly options = new Map<string, RegisteredResource["options"]>();
    /** Outputs the provider schema marks secret, which the engine (not the SDK) wraps. */
    readonly secretOutputs = new Map<string, string[]>();

    override async registerResource(req: RegisterRequest, callback: (err: unknown, res: unknown) => void) {
        this.secretOutputs.set(`${req.getType()}::${req.getName()}`, req.getAdditionalsecretoutputsList());
        return super.registerResource(req, (err: unknown, res: unknown) => {
            if (!err && res) {
                const urn = (res as { getUrn(): string }).getUrn();
                this.options.set(urn, {
                    parent: req.getParent(),
                    provider: req.getProvider(),
                    protect: req.getProtect(),
                    retainOnDelete: req.getRetainondelete(),
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    replaceOnChanges: req.getReplaceonchangesList(),
                    dependencies: req.getDependenciesList(),
                    ignoreChanges: req.getIgnorechangesList(),
                    additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                });
            }
            callback(err, res);
        });
    }
}

async function main(): Promise<void> {
    const request = JSON.parse(process.argv[2]) as Request;
    const projectRoot = path.resolve(__dirname, "..", "..");
    process.chdir(projectRoot);
    const registered: RegisteredResource[] = [];
    const monitor = new RecordingMonitor({
        newResource: (args) => {
            registered.push({
                urn: "",
                type: args.type,
                name: args.name,
                inputs: args.inputs,
                options: undefined as never,
            });
            const state = mockOutputs(args.type, args.name, args.inputs);
            for (const key of monitor.secretOutputs.get(`${args.type}::${args.name}`) ?? []) {
                if (key in state) state[key] = { [secretSig.key]: secretSig.value, value: state[key] };
            }
            if (request.failingContainers.includes(args.name)) {
                Object.assign(state, { exitCode: 3, containerLogs: "migration failed\n" });
            }
            return { id: `${args.name}-id`, state };
        },
        call: (args) => {
            throw new Error(`the program made an unexpected invoke: ${args.token}`);
        },
    });
    pulumi.runtime.setMockOptions(monitor as never, "vpe", request.stack, request.preview);
    enableMockedEngineFeatures();
    pulumi.runtime.setAllConfig({ ...stackConfig(request.stack), ...request.overrides });

    const sideEffects = recordSideEffects();
    const asyncErrors: string[] = [];
    process.on("unhandledRejection", (reason) => {
        asyncErrors.push(reason instanceof Error ? reason.message : String(reason));
    });
    const started = performance.now();
    const run: StackRun = { resources: registered, outputs: {}, sideEffects: sideEffects.calls, evaluationMs: 0 };
    try {
        const program = (await import(path.join(projectRoot, "index.ts"))) as Record<string, unknown>;
        for (const [key, value] of Object.entries(program)) {
            run.outputs[key] = await describeOutput(value);
        }
        await settle(registered);
    } catch (err) {
        run.error = err instanceof Error ? err.message : String(err);
    }
    run.evaluationMs = performance.now() - started;
    if (!run.error && asyncErrors.length > 0) {
        run.error = asyncErrors.join("\n");
    }
    sideEffects.stop();
    const urns = [...monitor.getRegisteredResources().keys()];
    for (const resource of registered) {
        resource.urn = urns.find((u) => u.endsWith(`::${resource.name}`) && u.includes(`${resource.type}::`)) ?? "";
        resource.options = monitor.options.get(resource.urn)!;
    }
    writeAll(1, JSON.stringify(run));
}

/** The whole record: a write to a non-blocking pipe may take part of it, or none (EAGAIN), while the reader catches up. */
function writeAll(fd: number, text: string): void {
    const data = Buffer.from(text);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let offset = 0; offset < data.length; ) {
        try {
            offset += fs.writeSync(fd, data, offset);
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
            Atomics.wait(pause, 0, 0, 5);
        }
    }
}

/** What setMocks switches on after setMockOptions resets it: secrets and resource references. */
function enableMockedEngineFeatures(): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- internal module without types
    const store = require("@pulumi/pulumi/runtime/state").getStore();
    store.supportsSecrets = true;
    store.supportsResourceReferences = true;
    store.supportsDeletedWith = true;
    store.supportsAliasSpecs = true;
}

/** Waits until no new resource has been registered for a few event-loop turns. */
async function settle(registered: RegisteredResource[]): Promise<void> {
    let seen = -1;
    while (seen !== registered.length) {
        seen = registered.length;
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
}

async function describeOutput(value: unknown): Promise<StackRun["outputs"][string]> {
    if (pulumi.Output.isInstance(value)) {
        const output = value as pulumi.Output<unknown> & {
            isKnown: Promise<boolean>;
            isSecret: Promise<boolean>;
            promise(withUnknowns?: boolean): Promise<unknown>;
        };
        const known = await output.isKnown;
        const resolved = known ? await output.promise() : undefined;
        return { value: resolved, secret: await output.isSecret, known };
    }
    return { value, secret: false, known: true };
}

main().catch((err) => {
    process.stderr.write(String(err?.stack ?? err));
    process.exit(1);
});
