// The deployment engine: runs the real Pulumi program under the SDK's mock monitor interface and
// does, for every registered resource, what `pulumi up` would: diff against state, then create,
// update, replace (delete-before-replace or create-before-delete) or keep it, and afterwards
// delete what the program no longer declares, in reverse dependency order.
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { runInPulumiStack } from "@pulumi/pulumi/runtime/stack";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import { assertImplemented } from "./fidelity";
import { handlers } from "./handlers";
import { type DiffResult, type Handler, type HandlerContext, PartialCreateError, type ProviderConfig } from "./handlers/types";
import { applyOverrides, readProject, readStackConfig } from "./stackConfig";
import {
    defaultStatePath,
    dependenciesOf,
    providerUrn,
    readState,
    type ResourceState,
    type StateFile,
    StateWriter,
} from "./state";
import { containsSecret, containsUnknown, deepEqual, getPath, plainProps, type Props, secret, setPath, wireOutputs } from "./wire";

// Internal SDK pieces the CLI's language host uses; their declarations are not published.
/* eslint-disable @typescript-eslint/no-require-imports */
const resproto = require("@pulumi/pulumi/proto/resource_pb");
const { getStore } = require("@pulumi/pulumi/runtime/state") as { getStore(): Record<string, unknown> };
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
/* eslint-enable @typescript-eslint/no-require-imports */

export type Op = "create" | "update" | "replace" | "delete" | "same";

export interface RunOptions {
    projectDir: string;
    stack: string;
    statePath?: string;
    /** `key=value` config overrides (dotted keys edit structured values). */
    config?: readonly string[];
    log?: (message: string) => void;
}

export interface Summary {
    command: "up" | "preview" | "destroy" | "purge";
    ok: boolean;
    ops: Record<string, Op>;
    counts: Record<Op, number>;
    /** Stack outputs in wire form (secrets stay tagged). */
    outputs: Props;
    /** Measured figures per URN (buildSeconds, imageBytes). */
    metrics: Record<string, Record<string, number>>;
    errors: string[];
    /** Warnings the program logged (the CLI prints each one as `warning: ...`). */
    warnings: string[];
    seconds: number;
}

export class DeploymentError extends Error {
    constructor(readonly summary: Summary) {
        super(`${summary.command} failed:\n  - ${summary.errors.join("\n  - ")}`);
        this.name = "DeploymentError";
    }
}

interface Request {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getObject(): { toJavaScript(): Props } | undefined;
    getProvider(): string;
    getProtect(): boolean;
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
    getDeletebeforereplacedefined(): boolean;
    getIgnorechangesList(): string[];
    getReplaceonchangesList(): string[];
    getRetainondelete(): boolean;
    getAdditionalsecretoutputsList(): string[];
    getPropertydependenciesMap(): { forEach(cb: (value: { getUrnsList(): string[] }, key: string) => void): void };
    getImportid(): string;
    getAliasesList(): Alias[];
    getDeletedwith(): string;
    getReplaceWithList(): string[];
    hasReplacementTrigger(): boolean;
    getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
}

interface Alias {
    getUrn(): string;
    getSpec():
        | { getName(): string; getType(): string; getStack(): string; getProject(): string; getParenturn(): string; getNoparent(): boolean }
        | undefined;
}

type Callback = (err: Error | null, resp?: unknown) => void;

const stackType = "pulumi:pulumi:Stack";
/** After a failure, how long no registration may be in flight before the run is declared over. */
const settleQuietMs = 500;

function emptyCounts(): Record<Op, number> {
    return { create: 0, update: 0, replace: 0, delete: 0, same: 0 };
}

function matchesReplaceOnChanges(paths: readonly string[], olds: Props, news: Props, changed: string[]): boolean {
    return paths.some((p) => (p === "*" ? changed.length > 0 : !deepEqual(getPath(olds, p), getPath(news, p))));
}

function isForceNew(handler: Handler, key: string): boolean {
    return handler.forceNew === "*" ? !(handler.updatable ?? []).includes(key) : handler.forceNew.includes(key);
}

/** The engine's own diff for providers without one: compare inputs, defaults applied. */
export function genericDiff(handler: Handler, olds: Props, news: Props): DiffResult {
    const a = { ...handler.defaults, ...olds };
    const b = { ...handler.defaults, ...news };
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    const changed = keys.filter((k) => containsUnknown(b[k]) || !deepEqual(a[k], b[k]));
    if (changed.length === 0) {
        return { verdict: "same", changed };
    }
    return { verdict: changed.some((k) => isForceNew(handler, k)) ? "replace" : "update", changed };
}

/** Keeps the secretness of each top-level input in what is stored. */
function wireInputs(checked: Props, wire: Props): Props {
    return Object.fromEntries(
        Object.entries(checked).map(([k, v]) => [k, containsSecret(wire[k]) ? secret(v) : v]),
    );
}

function jsonClean(value: Props): Props {
    return JSON.parse(JSON.stringify(value)) as Props;
}

export class Engine {
    private readonly project;
    private readonly statePath: string;
    private readonly writer: StateWriter;
    private readonly log: (message: string) => void;
    private state!: StateFile;
    /** Live resources of the previous deployment, by URN. */
    private readonly old = new Map<string, ResourceState>();
    /** Resources registered in this run, in completion order. */
    private readonly current = new Map<string, ResourceState>();
    /** Old copies awaiting delete (create-before-delete replacements, earlier pending deletes). */
    private readonly pendingDeletes: ResourceState[] = [];
    private readonly deleted = new Set<ResourceState>();
    private readonly retained: ResourceState[] = [];
    private readonly ops = new Map<string, Op>();
    private readonly metrics: Record<string, Record<string, number>> = {};
    private readonly errors: string[] = [];
    private readonly warnings: string[] = [];
    private stackOutputs: Props = {};
    private preview = false;
    private inflight = 0;
    private lastActivity = Date.now();

    constructor(private readonly options: RunOptions) {
        this.project = readProject(path.resolve(options.projectDir));
        this.statePath = options.statePath ?? defaultStatePath(this.project.dir, options.stack);
        this.writer = new StateWriter(this.statePath);
        this.log = options.log ?? ((m) => process.stderr.write(`[harness] ${m}\n`));
    }

    private load(): void {
        this.state = readState(this.statePath, this.project.name, this.options.stack);
        for (const res of this.state.resources) {
            if (res.pendingDelete) {
                this.pendingDeletes.push(res);
            } else {
                this.old.set(res.urn, res);
            }
        }
    }

    // ---- running the program ----

    async up(preview = false): Promise<Summary> {
        const started = Date.now();
        this.preview = preview;
        this.load();
        process.chdir(this.project.dir);
        const config = applyOverrides(readStackConfig(this.project, this.options.stack), this.options.config ?? [], this.project.name);
        await this.runProgram(config);
        if (this.errors.length === 0) {
            await this.deleteLeftovers();
        }
        if (!preview) {
            await this.save();
        }
        return this.finish(preview ? "preview" : "up", started);
    }

    private async runProgram(config: Record<string, string>): Promise<void> {
        const monitor = new HarnessMonitor(this);
        settings.setMockOptions(monitor, this.project.name, this.options.stack, this.preview, "organization");
        const store = getStore();
        // The same capabilities the Pulumi CLI's monitor advertises.
        store.supportsSecrets = true;
        store.supportsResourceReferences = true;
        store.supportsOutputValues = false;
        store.supportsDeletedWith = true;
        store.supportsAliasSpecs = true;
        pulumi.runtime.setAllConfig(config);
        const onRejection = (err: unknown) => this.recordSdkError(err);
        process.on("unhandledRejection", onRejection);
        // With no engine connection the SDK's log.warn writes here; the CLI would show each one.
        const consoleWarn = console.warn;
        console.warn = (...args: unknown[]) => {
            this.warnings.push(args.map(String).join(" ").replace(/^warning: \[runtime\] /, ""));
            consoleWarn(...args);
        };
        const program = runInPulumiStack(async () => {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const exported = require(this.project.main);
            return exported instanceof Function ? exported() : exported;
        }).then(
            () => waitForRPCs(),
            (err: unknown) => this.recordSdkError(err),
        );
        await this.settle(program);
        process.off("unhandledRejection", onRejection);
        console.warn = consoleWarn;
        if (this.errors.length > 0) {
            // Dependents of a failed resource never register (the real engine stops the program
            // here too); their pending promises are expected, not leaks worth reporting.
            store.leakCandidates = new Set();
        }
    }

    /**
     * Waits for the program and every registration to finish. After a failure, dependents of
     * the failed resource wait forever, so once nothing is in flight the run stops.
     */
    private async settle(program: Promise<unknown>): Promise<void> {
        let finished = false;
        void program.finally(() => (finished = true));
        while (!finished) {
            const quiet = this.inflight === 0 && Date.now() - this.lastActivity > settleQuietMs;
            if (this.errors.length > 0 && quiet) {
                return;
            }
            await new Promise((r) => setTimeout(r, 50));
        }
    }

    /**
     * As Pulumi's Node.js language host reports them: a RunError or ResourceError by its message
     * alone (the program raised it on purpose), anything else with its stack trace.
     */
    private recordSdkError(err: unknown): void {
        const message = err instanceof Error ? err.message : String(err);
        if (this.errors.some((e) => message.includes(e) || e.includes(message))) {
            return;
        }
        const deliberate = pulumi.RunError.isInstance(err) || pulumi.ResourceError.isInstance(err) || !(err instanceof Error);
        this.errors.push(deliberate ? message : `unhandled exception: ${err.stack ?? message}`);
    }

    private urnFor(type: string, name: string, parent: string, stack = this.options.stack, project = this.project.name): string {
        const parentType = parent === "" ? "" : parent.split("::")[2];
        const qualified = parentType === "" || parentType === stackType ? type : `${parentType}$${type}`;
        return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
    }

    /** A resource found in state under one of its aliases (e.g. an SDK type rename) is adopted. */
    private adoptAlias(req: Request, urn: string): void {
        if (this.old.has(urn)) {
            return;
        }
        for (const alias of req.getAliasesList()) {
            const spec = alias.getSpec();
            const aliasUrn =
                alias.getUrn() ||
                (spec &&
                    this.urnFor(
                        spec.getType() || req.getType(),
                        spec.getName() || req.getName(),
                        spec.getNoparent() ? "" : spec.getParenturn() || req.getParent(),
                        spec.getStack() || this.options.stack,
                        spec.getProject() || this.project.name,
                    ));
            const found = aliasUrn ? this.old.get(aliasUrn) : undefined;
            if (aliasUrn && found) {
                this.old.delete(aliasUrn);
                this.old.set(urn, { ...found, urn });
                return;
            }
        }
    }

    private context(urn: string, name: string, provider?: ProviderConfig): HandlerContext {
        return {
            urn,
            name,
            cwd: this.project.dir,
            provider: provider ?? this.defaultProvider(urn),
            log: (m) => this.log(`${urn}: ${m}`),
            metric: (key, value) => {
                this.metrics[urn] = { ...this.metrics[urn], [key]: value };
            },
        };
    }

    /**
     * A default provider's configuration, as the CLI gives it: the stack config's keys of the
     * resource's package (`docker:host`, `docker:sshOpts`), JSON values decoded.
     */
    private defaultProvider(urn: string): ProviderConfig | undefined {
        const type = (urn.split("::")[2] ?? "").split("$").pop() ?? "";
        const pkg = type.split(":")[0];
        if (pkg !== "docker") return undefined;
        const config = applyOverrides(readStackConfig(this.project, this.options.stack), this.options.config ?? [], this.project.name);
        const inputs: Props = {};
        for (const [key, value] of Object.entries(config)) {
            if (!key.startsWith(`${pkg}:`)) continue;
            let decoded: unknown = value;
            try {
                decoded = JSON.parse(value);
            } catch {
                // a plain string, such as docker:host
            }
            inputs[key.slice(pkg.length + 1)] = decoded as Props[string];
        }
        return Object.keys(inputs).length === 0 ? undefined : { urn: `default_${pkg}`, type: `pulumi:providers:${pkg}`, inputs };
    }

    private providerFor(ref: string | undefined): ProviderConfig | undefined {
        if (ref === undefined || ref === "") {
            return undefined;
        }
        const urn = providerUrn(ref);
        const res = this.current.get(urn) ?? this.old.get(urn);
        if (res === undefined) {
            throw new Error(`provider ${urn} is not registered`);
        }
        return { urn, type: res.type, inputs: plainProps(res.inputs) };
    }

    private record(urn: string, op: Op): void {
        if (!this.ops.has(urn) || op !== "delete") {
            this.ops.set(urn, op);
        }
    }

    private rejectUnsupportedOptions(req: Request, urn: string): void {
        const timeouts = req.getCustomtimeouts();
        const unsupported: [boolean, string][] = [
            [req.getImportid() !== "", "import"],
            [req.getDeletedwith() !== "", "deletedWith"],
            [req.getReplaceWithList().length > 0, "replaceWith"],
            [req.hasReplacementTrigger(), "replacementTrigger"],
            [timeouts !== undefined && (timeouts.getCreate() !== "" || timeouts.getUpdate() !== "" || timeouts.getDelete() !== ""), "customTimeouts"],
        ];
        const used = unsupported.filter(([on]) => on).map(([, name]) => name);
        if (used.length > 0) {
            throw new Error(`${urn}: resource option(s) not implemented by the harness: ${used.join(", ")}`);
        }
    }

    async register(req: Request): Promise<{ urn: string; id: string; object: Props }> {
        const type = req.getType();
        const name = req.getName();
        const urn = this.urnFor(type, name, req.getParent());
        this.inflight++;
        try {
            return await this.registerUrn(req, urn, type, name);
        } catch (err) {
            const message = (err as Error).message.startsWith(urn) ? (err as Error).message : `${urn}: ${(err as Error).message}`;
            this.errors.push(message);
            throw new Error(message);
        } finally {
            this.inflight--;
            this.lastActivity = Date.now();
        }
    }

    private async registerUrn(req: Request, urn: string, type: string, name: string) {
        this.rejectUnsupportedOptions(req, urn);
        this.adoptAlias(req, urn);
        const wire = req.getObject()?.toJavaScript() ?? {};
        const propertyDependencies: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((v, k) => (propertyDependencies[k] = v.getUrnsList()));
        const entry: ResourceState = {
            urn,
            type,
            name,
            custom: req.getCustom(),
            parent: req.getParent() || undefined,
            provider: req.getProvider() || undefined,
            inputs: {},
            outputs: {},
            protect: req.getProtect(),
            retainOnDelete: req.getRetainondelete(),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            replaceOnChanges: req.getReplaceonchangesList(),
            dependencies: req.getDependenciesList(),
            propertyDependencies,
        };
        const previous = this.old.get(urn);
        if (!entry.custom) {
            this.current.set(urn, { ...entry, outputs: previous?.outputs ?? {} });
            this.record(urn, previous ? "same" : "create");
            return { urn, id: "", object: {} };
        }
        const handler = handlers.get(type);
        if (handler === undefined) {
            throw new Error(`${urn}: no harness handler for resource type ${type}`);
        }
        assertImplemented(urn, type, plainProps(wire), handler.inputs);
        const ctx = this.context(urn, name, this.providerFor(entry.provider));
        const olds = previous ? plainProps(previous.inputs) : undefined;
        const autoNamed = handler.autoName !== undefined && plainProps(wire)[handler.autoName] === undefined;
        const checked = async (against: Props | undefined) => {
            const inputs = plainProps(wire);
            if (autoNamed) inputs[handler.autoName!] = against?.[handler.autoName!] ?? `${name}-${randomBytes(4).toString("hex").slice(0, 7)}`;
            return handler.check ? handler.check(ctx, inputs, against) : inputs;
        };
        let news = await checked(olds);
        let diff = await this.diff(handler, ctx, req, previous, olds, news);
        if (autoNamed && previous !== undefined && diff.op === "replace") {
            // Like Pulumi's engine, a replacement is checked again without the old inputs: an
            // auto-named resource gets a fresh name, so its replacement can exist beside it.
            news = await checked(undefined);
            diff = { ...diff, changed: [...new Set([...diff.changed, handler.autoName!])] };
        }
        const { id, outputs } = await this.apply(handler, ctx, req, entry, diff, previous, news, wire);
        const secrets = [...(handler.secretOutputs ?? []), ...req.getAdditionalsecretoutputsList()];
        const object = wireOutputs(outputs, secrets, wire);
        this.current.set(urn, { ...entry, id, inputs: wireInputs(news, wire), outputs: object });
        await this.save();
        return { urn, id, object };
    }

    private async diff(
        handler: Handler,
        ctx: HandlerContext,
        req: Request,
        previous: ResourceState | undefined,
        olds: Props | undefined,
        news: Props,
    ): Promise<DiffResult & { op: Op }> {
        if (previous === undefined || olds === undefined) {
            return { verdict: "replace", changed: [], op: this.deletedEarly(ctx.urn) ? "replace" : "create" };
        }
        if (previous.initError !== undefined) {
            return { verdict: "replace", changed: ["(initialization error)"], op: "replace" };
        }
        const oldOutputs = plainProps(previous.outputs);
        const stored = handler.stored ? handler.stored(olds, oldOutputs) : olds;
        for (const p of req.getIgnorechangesList()) {
            setPath(news, p, getPath(stored, p));
        }
        const result =
            (handler.diff && (await handler.diff(ctx, previous.id ?? "", stored, news, oldOutputs))) || genericDiff(handler, stored, news);
        if (result.verdict === "update" && matchesReplaceOnChanges(req.getReplaceonchangesList(), stored, news, result.changed)) {
            return { ...result, verdict: "replace", op: "replace" };
        }
        return { ...result, op: result.verdict === "same" ? "same" : result.verdict };
    }

    private deletedEarly(urn: string): boolean {
        return [...this.deleted].some((r) => r.urn === urn);
    }

    private async apply(
        handler: Handler,
        ctx: HandlerContext,
        req: Request,
        entry: ResourceState,
        diff: DiffResult & { op: Op },
        previous: ResourceState | undefined,
        news: Props,
        wire: Props,
    ): Promise<{ id: string; outputs: Props }> {
        this.record(entry.urn, diff.op);
        if (diff.op === "same" && previous) {
            return { id: previous.id ?? "", outputs: plainProps(previous.outputs) };
        }
        if (diff.op !== "create") {
            this.log(`${entry.urn}: ${diff.op} (${diff.changed.join(", ")})`);
        }
        if (this.preview) {
            return { id: diff.op === "update" ? (previous?.id ?? "") : "", outputs: news };
        }
        if (diff.op === "update" && previous) {
            const outputs = handler.update
                ? await handler.update(ctx, previous.id ?? "", plainProps(previous.inputs), news, plainProps(previous.outputs))
                : { ...plainProps(previous.outputs), ...news };
            return { id: previous.id ?? "", outputs };
        }
        if (previous === undefined || this.old.get(entry.urn) !== previous) {
            return this.create(handler, ctx, entry, news, wire);
        }
        if (previous.protect || entry.protect) {
            throw new Error(`${entry.urn}: unable to replace resource: it is protected (protect: true)`);
        }
        const dbr = req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : diff.deleteBeforeReplace === true;
        if (dbr) {
            await this.deleteForReplacement(previous);
            return this.create(handler, ctx, entry, news, wire);
        }
        // Create-before-delete: the old copy becomes a pending delete only once its
        // replacement exists; if the create fails, the old one stays the live resource.
        const created = await this.create(handler, ctx, entry, news, wire);
        this.old.delete(entry.urn);
        this.pendingDeletes.push({ ...previous, pendingDelete: true });
        return created;
    }

    private async create(handler: Handler, ctx: HandlerContext, entry: ResourceState, news: Props, wire: Props) {
        try {
            return await handler.create(ctx, news);
        } catch (err) {
            if (err instanceof PartialCreateError) {
                // Like Pulumi, keep a half-created resource in state so destroy cleans it up;
                // an old copy it was replacing is then only a pending delete.
                const previous = this.old.get(entry.urn);
                if (previous) {
                    this.old.delete(entry.urn);
                    this.pendingDeletes.push({ ...previous, pendingDelete: true });
                }
                this.current.set(entry.urn, {
                    ...entry,
                    id: err.id,
                    inputs: wireInputs(news, wire),
                    outputs: wireOutputs(err.outputs, [], wire),
                    initError: err.message,
                });
                await this.save();
            }
            throw err;
        }
    }

    /**
     * Delete-before-replace: first delete the dependents that will be replaced too (those whose
     * ForceNew inputs come from the replaced resource), as Pulumi's engine does, then the resource.
     */
    private async deleteForReplacement(target: ResourceState): Promise<void> {
        const replaced = new Set([target.urn]);
        const victims: ResourceState[] = [];
        for (let grew = true; grew; ) {
            grew = false;
            for (const res of this.old.values()) {
                const handler = handlers.get(res.type);
                if (replaced.has(res.urn) || !res.custom || handler === undefined || this.current.has(res.urn)) {
                    continue;
                }
                const affected = Object.entries(res.propertyDependencies)
                    .filter(([, urns]) => urns.some((u) => replaced.has(u)))
                    .map(([key]) => key);
                if (affected.some((k) => isForceNew(handler, k) || res.replaceOnChanges.some((p) => p === "*" || p.split(".")[0] === k))) {
                    replaced.add(res.urn);
                    victims.push(res);
                    grew = true;
                }
            }
        }
        const protectedOnes = [target, ...victims].filter((r) => r.protect);
        if (protectedOnes.length > 0) {
            throw new Error(`unable to replace: protected resource(s) ${protectedOnes.map((r) => r.urn).join(", ")}`);
        }
        await this.deleteInOrder([...victims, target], false);
        for (const res of [...victims, target]) {
            this.old.delete(res.urn);
        }
    }

    // ---- deleting ----

    /** Deletes `targets` concurrently, each only after the targets that depend on it. */
    private async deleteInOrder(targets: ResourceState[], recordOps: boolean): Promise<void> {
        const promises = new Map<ResourceState, Promise<void>>();
        const dependents = (res: ResourceState) => targets.filter((t) => t !== res && dependenciesOf(t).has(res.urn));
        const visit = (res: ResourceState): Promise<void> => {
            let p = promises.get(res);
            if (p === undefined) {
                p = Promise.resolve().then(async () => {
                    const blockers = await Promise.allSettled(dependents(res).map(visit));
                    if (blockers.some((b) => b.status === "rejected")) {
                        throw new Error(`${res.urn}: not deleted because a dependent failed to delete`);
                    }
                    await this.deleteOne(res);
                    if (recordOps) {
                        this.record(res.urn, "delete");
                    }
                });
                promises.set(res, p);
            }
            return p;
        };
        const results = await Promise.allSettled(targets.map(visit));
        const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => (r.reason as Error).message);
        if (failures.length > 0) {
            throw new Error(failures.join("\n  - "));
        }
    }

    private async deleteOne(res: ResourceState): Promise<void> {
        if (this.preview) {
            this.deleted.add(res);
            return;
        }
        if (res.protect) {
            throw new Error(`${res.urn}: unable to delete resource: it is protected (protect: true)`);
        }
        if (res.retainOnDelete) {
            this.log(`${res.urn}: retained on delete (dropped from state, left on the engine)`);
            this.retained.push(res);
        } else if (res.custom) {
            await this.deleteViaHandler(res);
        }
        this.deleted.add(res);
        await this.save();
    }

    private async deleteViaHandler(res: ResourceState): Promise<void> {
        const handler = handlers.get(res.type);
        if (handler === undefined) {
            throw new Error(`${res.urn}: no harness handler for resource type ${res.type}`);
        }
        const ctx = this.context(res.urn, res.name, this.providerFor(res.provider));
        this.log(`${res.urn}: delete`);
        await handler.delete(ctx, res.id ?? "", plainProps(res.inputs), plainProps(res.outputs));
    }

    /** After the program: old copies of replaced resources and resources no longer declared. */
    private async deleteLeftovers(): Promise<void> {
        const stale = [...this.old.values()].filter((r) => !this.current.has(r.urn));
        const targets = [...this.pendingDeletes, ...stale].filter((r) => !this.deleted.has(r));
        try {
            await this.deleteInOrder(targets, true);
        } catch (err) {
            this.errors.push((err as Error).message);
        }
    }

    async destroy(): Promise<Summary> {
        const started = Date.now();
        this.load();
        process.chdir(this.project.dir);
        const all = [...this.pendingDeletes, ...this.old.values()];
        const protectedOnes = all.filter((r) => r.protect);
        if (protectedOnes.length > 0) {
            this.errors.push(
                `refusing to destroy: protected resource(s) ${protectedOnes.map((r) => r.urn).join(", ")}; unprotect them first`,
            );
        } else {
            try {
                await this.deleteInOrder(all, true);
            } catch (err) {
                this.errors.push((err as Error).message);
            }
        }
        await this.save();
        return this.finish("destroy", started);
    }

    /** Deletes what retainOnDelete left on the engine (test cleanup; not a Pulumi operation). */
    async purgeRetained(): Promise<Summary> {
        const started = Date.now();
        this.load();
        process.chdir(this.project.dir);
        const targets = (this.state.retained ?? []).map((r) => ({ ...r, retainOnDelete: false, protect: false }));
        const failed: ResourceState[] = [];
        for (const res of targets.reverse()) {
            if (!res.type.startsWith("docker:")) {
                // Roles and databases live inside a retained data volume, which goes with it;
                // their provider (the server) is gone after destroy.
                this.log(`${res.urn}: forgotten with the engine objects that held it`);
                continue;
            }
            try {
                await this.deleteViaHandler(res);
                this.record(res.urn, "delete");
            } catch (err) {
                failed.push(res);
                this.errors.push((err as Error).message);
            }
        }
        this.state.retained = failed;
        await this.save();
        return this.finish("purge", started);
    }

    // ---- state and summary ----

    private snapshot(): StateFile {
        const live = [...this.old.values()].filter((r) => !this.current.has(r.urn) && !this.deleted.has(r));
        const pending = this.pendingDeletes.filter((r) => !this.deleted.has(r));
        return {
            version: 1,
            project: this.project.name,
            stack: this.options.stack,
            resources: [...this.current.values(), ...live, ...pending],
            retained: [...(this.state.retained ?? []), ...this.retained],
        };
    }

    private save(): Promise<void> {
        return this.preview ? Promise.resolve() : this.writer.write(this.snapshot());
    }

    registerOutputs(urn: string, outputs: Props): void {
        const res = this.current.get(urn);
        if (res) {
            res.outputs = outputs;
        }
        if (urn.includes(`::${stackType}::`)) {
            this.stackOutputs = outputs;
        }
    }

    private finish(command: Summary["command"], started: number): Summary {
        const counts = emptyCounts();
        for (const op of this.ops.values()) {
            counts[op]++;
        }
        const summary: Summary = {
            command,
            ok: this.errors.length === 0,
            ops: Object.fromEntries(this.ops),
            counts,
            outputs: this.stackOutputs,
            metrics: this.metrics,
            errors: [...this.errors],
            warnings: [...this.warnings],
            seconds: (Date.now() - started) / 1000,
        };
        return summary;
    }
}

/** The resource monitor the SDK talks to: registrations go to the engine, not to mocks. */
class HarnessMonitor extends MockMonitor {
    constructor(private readonly engine: Engine) {
        super({
            newResource: () => {
                throw new Error("unreachable: registrations are handled by the harness");
            },
            call: (args) => {
                throw new Error(`invoke ${args.token} is not implemented by the harness`);
            },
        });
    }

    override async registerResource(req: Request, callback: Callback): Promise<void> {
        try {
            const result = await this.engine.register(req);
            const resp = new resproto.RegisterResourceResponse();
            resp.setUrn(result.urn);
            resp.setId(result.id);
            resp.setObject(structproto.Struct.fromJavaScript(jsonClean(result.object) as Record<string, never>));
            callback(null, resp);
        } catch (err) {
            callback(err as Error, undefined);
        }
    }

    override async readResource(req: Request, callback: Callback): Promise<void> {
        callback(new Error(`reading existing resource ${req.getName()} (${req.getType()}) is not implemented by the harness`));
    }

    override registerResourceOutputs(req: { getUrn(): string; getOutputs(): { toJavaScript(): Props } | undefined }, callback: Callback): void {
        this.engine.registerOutputs(req.getUrn(), req.getOutputs()?.toJavaScript() ?? {});
        callback(null, {});
    }
}
