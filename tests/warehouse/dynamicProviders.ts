// Dynamic providers as Pulumi ships them: serialized by the SDK (taken from a resource's
// `__provider` input under mocks) and revived with require-from-string, like the dynamic-provider
// host does, in this process or in plain node.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { tempDir } from "./support";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => { handler(): DynamicProvider };

export type Props = Record<string, unknown>;

export interface DynamicProvider {
    create(inputs: Props): Promise<{ id: string; outs: Props }>;
    diff(id: string, olds: Props, news: Props): Promise<{ changes: boolean; replaces: string[] }>;
    update(id: string, olds: Props, news: Props): Promise<{ outs: Props }>;
    delete(id: string, props: Props): Promise<void>;
}

const REPO = join(__dirname, "..", "..");
const run = promisify(execFile);

/** The inputs (the serialized provider among them) of each resource `declare` creates, by name. */
export async function declaredInputs(declare: () => Promise<pulumi.Resource[]>): Promise<Record<string, Props>> {
    const recorded: Record<string, Props> = {};
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                recorded[args.name] = args.inputs;
                return { id: `${args.name}-id`, state: args.inputs };
            },
            call: (args) => args.inputs,
        },
        "vpe",
        "test",
        false,
    );
    const resources = await declare();
    await Promise.all(resources.map((r) => new Promise<void>((resolve) => r.urn.apply(() => resolve()))));
    return recorded;
}

export function revive(inputs: Props): DynamicProvider {
    return requireFromString(inputs.__provider as string).handler();
}

/** `create` in a plain node process started in the project directory (no tsx preloaded), as the host runs it. */
export async function createInPlainNode(declared: Props, inputs: Props): Promise<{ id: string; outs: Props }> {
    const dir = tempDir("vpe-provider-");
    writeFileSync(join(dir, "provider.js"), declared.__provider as string);
    writeFileSync(join(dir, "inputs.json"), JSON.stringify(inputs));
    const script = `
        const fs = require("node:fs");
        const provider = require("require-from-string")(fs.readFileSync(process.argv[1], "utf8")).handler();
        provider.create(JSON.parse(fs.readFileSync(process.argv[2], "utf8"))).then((result) => console.log(JSON.stringify(result)));`;
    const { stdout } = await run(process.execPath, ["-e", script, join(dir, "provider.js"), join(dir, "inputs.json")], {
        cwd: REPO,
        env: { ...process.env, NODE_OPTIONS: "" },
    });
    return JSON.parse(stdout);
}
