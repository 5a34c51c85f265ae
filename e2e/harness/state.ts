// The harness's checkpoint: what Pulumi's state file holds for each resource (type, inputs,
// outputs, options, dependencies). Secrets stay in wire form (tagged), as in Pulumi's state;
// the file is written owner-only and lives in the gitignored .e2e/ folder.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Props } from "./wire";

export interface ResourceState {
    urn: string;
    type: string;
    name: string;
    custom: boolean;
    id?: string;
    parent?: string;
    /** Provider reference `providerUrn::providerId`, when the program passed one. */
    provider?: string;
    /** Inputs after the provider's check, in wire form. */
    inputs: Props;
    outputs: Props;
    protect: boolean;
    retainOnDelete: boolean;
    deleteBeforeReplace: boolean;
    replaceOnChanges: string[];
    dependencies: string[];
    propertyDependencies: Record<string, string[]>;
    /** Set when create started but failed (e.g. a container that never became healthy). */
    initError?: string;
    /** An old copy replaced create-before-delete whose delete has not happened yet. */
    pendingDelete?: boolean;
}

export interface StateFile {
    version: 1;
    project: string;
    stack: string;
    resources: ResourceState[];
    /** Resources dropped from state by retainOnDelete, kept for purgeRetained (harness-only). */
    retained?: ResourceState[];
}

export function defaultStatePath(projectDir: string, stack: string): string {
    return path.join(projectDir, ".e2e", "state", `${stack}.json`);
}

export function readState(file: string, project: string, stack: string): StateFile {
    if (!fs.existsSync(file)) {
        return { version: 1, project, stack, resources: [] };
    }
    const state = JSON.parse(fs.readFileSync(file, "utf8")) as StateFile;
    if (state.version !== 1 || state.project !== project || state.stack !== stack) {
        throw new Error(
            `state file ${file} belongs to ${state.project}/${state.stack} (version ${state.version}), ` +
                `not ${project}/${stack}`,
        );
    }
    return state;
}

/** Writes are serialised and atomic, so concurrent handlers never interleave partial files. */
export class StateWriter {
    private chain: Promise<void> = Promise.resolve();

    constructor(private readonly file: string) {}

    write(state: StateFile): Promise<void> {
        const text = JSON.stringify(state, null, 2);
        this.chain = this.chain.then(() => {
            fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
            const tmp = `${this.file}.tmp`;
            fs.writeFileSync(tmp, text, { mode: 0o600 });
            fs.renameSync(tmp, this.file);
        });
        return this.chain;
    }
}

/** All URNs a resource depends on: explicit and property dependencies, its provider and parent. */
export function dependenciesOf(res: ResourceState): Set<string> {
    const deps = new Set(res.dependencies);
    for (const urns of Object.values(res.propertyDependencies)) {
        urns.forEach((u) => deps.add(u));
    }
    if (res.provider) {
        deps.add(providerUrn(res.provider));
    }
    if (res.parent) {
        deps.add(res.parent);
    }
    deps.delete(res.urn);
    return deps;
}

export function providerUrn(ref: string): string {
    const cut = ref.lastIndexOf("::");
    return cut < 0 ? ref : ref.slice(0, cut);
}
