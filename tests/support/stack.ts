// Runs the program for a stack in a child process (fresh modules and Pulumi runtime each time).
import { execFileSync } from "child_process";
import * as path from "path";
import type { RegisteredResource, StackRun } from "./stackRunner";
import { projectRoot } from "./stackConfig";

export type { RegisteredResource, StackRun };

export interface RunOptions {
    preview?: boolean;
    /** Config keys (`vpe:key`) to set or replace; values as Pulumi holds them (JSON for objects). */
    overrides?: Record<string, string>;
    /** One-shot containers whose command the mock engine reports as failed (exit code 3). */
    failingContainers?: string[];
}

const cache = new Map<string, StackRun>();

export function runStack(stack: string, options: RunOptions = {}): StackRun {
    const request = {
        stack,
        preview: options.preview ?? false,
        overrides: options.overrides ?? {},
        failingContainers: options.failingContainers ?? [],
    };
    const key = JSON.stringify(request);
    const cached = cache.get(key);
    if (cached) return cached;
    let stdout: string;
    try {
        stdout = execFileSync(
            process.execPath,
            ["--import", "tsx", path.join(__dirname, "stackRunner.ts"), key],
            // tsx's compile cache would show up as file writes in the side-effect check.
            { cwd: projectRoot, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, TSX_DISABLE_CACHE: "1" }, stdio: ["ignore", "pipe", "pipe"] },
        );
    } catch (err) {
        // A program that failed (as some tests intend) leaves Pulumi's pending-promise report and
        // a non-zero exit code; the runner has printed its record before that.
        stdout = (err as { stdout?: string }).stdout ?? "";
        if (!stdout) throw err;
    }
    const run = JSON.parse(stdout) as StackRun;
    cache.set(key, run);
    return run;
}

export const secretSig = "1b47061264138c4ac30d75fd1eb44270";
export const sigKey = "4dabf18193072939515e22adb298388d";

export function isSecret(value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<string, unknown>)[sigKey] === secretSig;
}

/** The value inside a secret wrapper, or the value itself. */
export function reveal<T = unknown>(value: unknown): T {
    return (isSecret(value) ? (value as { value: unknown }).value : value) as T;
}

/** A container's environment as name -> value, and whether the provider is given it as a secret. */
export function envOf(run: StackRun, name: string): { vars: Map<string, string>; secret: boolean } {
    const envs = named(run, name).inputs.envs;
    const list = reveal<string[]>(envs) ?? [];
    const vars = new Map(list.map((text) => [text.slice(0, text.indexOf("=")), text.slice(text.indexOf("=") + 1)] as [string, string]));
    return { vars, secret: isSecret(envs) };
}

export interface UploadedFile {
    content: string;
    permissions: string;
    /** `uid:gid`, or `:` when the provider's default (root) applies. */
    owner: string;
    secret: boolean;
}

/** A container's uploads by path: content revealed, and whether the provider gets it as a secret. */
export function filesOf(run: StackRun, name: string): Map<string, UploadedFile> {
    const uploads = reveal<Record<string, unknown>[]>(named(run, name).inputs.uploads) ?? [];
    return new Map(
        uploads.map((u) => [
            String(u.file),
            { content: reveal<string>(u.content), permissions: String(u.permissions), owner: `${u.owner ?? ""}:${u.group ?? ""}`, secret: isSecret(u.content) || isSecret(named(run, name).inputs.uploads) },
        ]),
    );
}

export function byType(run: StackRun, type: string): RegisteredResource[] {
    return run.resources.filter((r) => r.type === type);
}

export function named(run: StackRun, name: string): RegisteredResource {
    // Components share their main resource's name; tests mean the resource.
    const found = run.resources.find((r) => r.name === name && !r.type.startsWith("vpe:"));
    if (!found) throw new Error(`no resource named ${name}; have ${run.resources.map((r) => r.name).join(", ")}`);
    return found;
}

export const types = {
    container: "docker:index/container:Container",
    image: "docker:index/image:Image",
    remoteImage: "docker:index/remoteImage:RemoteImage",
    network: "docker:index/network:Network",
    volume: "docker:index/volume:Volume",
    password: "random:index/randomPassword:RandomPassword",
    bytes: "random:index/randomBytes:RandomBytes",
    tlsKey: "tls:index/privateKey:PrivateKey",
    tlsCa: "tls:index/selfSignedCert:SelfSignedCert",
    tlsCert: "tls:index/locallySignedCert:LocallySignedCert",
    pgProvider: "pulumi:providers:postgresql",
    pgGrant: "postgresql:index/grant:Grant",
    dynamic: "pulumi-nodejs:dynamic:Resource",
};

/** The stack's login roles and databases: dynamic resources named `<prefix>-role-*` / `<prefix>-db-*`. */
export function dynamicNamed(run: StackRun, infix: "role" | "db"): RegisteredResource[] {
    return byType(run, types.dynamic).filter((r) => r.name.includes(`-${infix}-`));
}
