// docker Image (pulumi-docker's native provider): Check adds build defaults and a digest of the
// build context, so a changed file is a diff; any diff is an update that rebuilds. For a local
// build (skipPush) the provider returns the image ID as repoDigest, for a pushed one the
// registry's digest. Delete leaves the image.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Props } from "../wire";
import type { DockerApi } from "../dockerApi";
import { dockerFor, inspectImage } from "./dockerObjects";
import type { Handler, HandlerContext } from "./types";

/** Debian's client: BuildKit works only through it (the newer client on PATH has no buildx). */
export const dockerCli = "/usr/bin/docker";
const hostPlatform = `linux/${process.arch === "x64" ? "amd64" : process.arch}`;

interface Build {
    context: string;
    dockerfile: string;
    args?: Record<string, string>;
    builderVersion?: string;
    platform?: string;
    target?: string;
    contextDigest?: string;
}

function globToRegex(pattern: string): RegExp {
    let re = "";
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === "*" && pattern[i + 1] === "*") {
            re += ".*";
            i++;
            if (pattern[i + 1] === "/") {
                i++;
            }
        } else if (c === "*") {
            re += "[^/]*";
        } else if (c === "?") {
            re += "[^/]";
        } else {
            re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
        }
    }
    return new RegExp(`^${re}(/.*)?$`);
}

/**
 * The ignore file a build honours: `<Dockerfile>.dockerignore` when present, else the context's
 * `.dockerignore` (Docker with BuildKit, and the docker provider when it hashes a context).
 */
export function ignoreFile(contextDir: string, dockerfile: string): string | undefined {
    return [`${dockerfile}.dockerignore`, path.join(contextDir, ".dockerignore")].find((f) => fs.existsSync(f));
}

/** .dockerignore semantics: patterns are relative to the context, later `!` lines re-include. */
function ignoreMatcher(contextDir: string, dockerfile: string): (rel: string) => boolean {
    const file = ignoreFile(contextDir, dockerfile);
    const rules = file
        ? fs
              .readFileSync(file, "utf8")
              .split("\n")
              .map((l) => l.trim())
              .filter((l) => l !== "" && !l.startsWith("#"))
              .map((l) => {
                  const negate = l.startsWith("!");
                  const body = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ""));
                  return { negate, re: globToRegex(body) };
              })
        : [];
    return (rel) => rules.reduce((ignored, r) => (r.re.test(rel) ? !r.negate : ignored), false);
}

function listFiles(dir: string, root: string, ignored: (rel: string) => boolean): string[] {
    const out: string[] = [];
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        const rel = path.relative(root, full).split(path.sep).join("/");
        if (ignored(rel) && !entry.isDirectory()) {
            continue;
        }
        if (entry.isDirectory()) {
            out.push(...listFiles(full, root, ignored));
        } else if (!ignored(rel)) {
            out.push(rel);
        }
    }
    return out;
}

/** A digest of everything the build can see: paths, modes and contents of context + Dockerfile. */
export function contextDigest(contextDir: string, dockerfile: string): string {
    const hash = createHash("sha256");
    const ignored = ignoreMatcher(contextDir, dockerfile);
    for (const rel of listFiles(contextDir, contextDir, ignored).sort()) {
        const full = path.join(contextDir, rel);
        hash.update(`${rel}\0${fs.statSync(full).mode & 0o777}\0`);
        hash.update(fs.readFileSync(full));
    }
    hash.update("\0dockerfile\0");
    hash.update(fs.readFileSync(dockerfile));
    return hash.digest("hex");
}

function resolveBuild(inputs: Props): Build {
    const build = (inputs.build ?? {}) as Partial<Build>;
    const context = build.context ?? ".";
    return {
        ...build,
        context,
        dockerfile: build.dockerfile ?? path.join(context, "Dockerfile"),
        builderVersion: build.builderVersion ?? "BuilderBuildKit",
        platform: build.platform ?? hostPlatform,
    } as Build;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", reject);
        child.on("close", (code) =>
            code === 0 ? resolve(output) : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${output.slice(-4000)}`)),
        );
    });
}

async function buildImage(ctx: HandlerContext, inputs: Props): Promise<Props> {
    const build = resolveBuild(inputs);
    const imageName = inputs.imageName as string;
    const registry = (inputs.registry as Props | undefined)?.server as string | undefined;
    if (inputs.skipPush !== true && (registry === undefined || !imageName.startsWith(`${registry}/`))) {
        throw new Error(`${ctx.urn}: pushing ${imageName} needs registry.server, the registry its name starts with`);
    }
    const args = ["build", "-f", build.dockerfile, "-t", imageName, "--platform", build.platform ?? hostPlatform];
    for (const [k, v] of Object.entries(build.args ?? {})) {
        args.push("--build-arg", `${k}=${v}`);
    }
    if (build.target) {
        args.push("--target", build.target);
    }
    args.push(build.context);
    const engine = dockerFor(ctx);
    // The context goes to the stack's engine, a server's through its forwarded socket.
    const env = { ...process.env, DOCKER_HOST: `unix://${await engine.socketPath()}`, DOCKER_BUILDKIT: build.builderVersion === "BuilderV1" ? "0" : "1" };
    const started = process.hrtime.bigint();
    await run(dockerCli, args, env, ctx.cwd);
    ctx.metric("buildSeconds", Number(process.hrtime.bigint() - started) / 1e9);
    const image = await inspectImage(engine, imageName);
    if (image === undefined) {
        throw new Error(`${ctx.urn}: built ${imageName} but the engine does not list it`);
    }
    ctx.metric("imageBytes", image.Size);
    const repoDigest = inputs.skipPush === true ? image.Id : await push(ctx, engine, imageName, env);
    const relDockerfile = path.relative(path.resolve(ctx.cwd, build.context), path.resolve(ctx.cwd, build.dockerfile));
    return {
        imageName,
        baseImageName: imageName,
        repoDigest,
        context: build.context,
        dockerfile: relDockerfile,
        platform: build.platform,
        registryServer: registry,
    };
}

/**
 * Pushes the built image and returns the registry's reference to it, `<repository>@sha256:...`,
 * as the provider does after a push (every node of a swarm pulls that same image).
 */
async function push(ctx: HandlerContext, engine: DockerApi, imageName: string, env: NodeJS.ProcessEnv): Promise<string> {
    const started = process.hrtime.bigint();
    await run(dockerCli, ["push", imageName], env, ctx.cwd);
    ctx.metric("pushSeconds", Number(process.hrtime.bigint() - started) / 1e9);
    const repository = imageName.replace(/:[^/:]+$/, "");
    const digest = (await inspectImage(engine, imageName))?.RepoDigests?.find((d) => d.startsWith(`${repository}@`));
    if (digest === undefined) {
        throw new Error(`${ctx.urn}: pushed ${imageName} but the engine records no digest of ${repository}`);
    }
    return digest;
}

export const imageHandler: Handler = {
    type: "docker:index/image:Image",
    inputs: [
        "imageName",
        "skipPush",
        "buildOnPreview",
        "build.context",
        "build.dockerfile",
        "build.args{}",
        "build.builderVersion",
        "build.platform",
        "build.target",
        "registry.server",
    ],
    forceNew: [],
    async check(ctx, news) {
        const build = resolveBuild(news);
        const dockerfile = path.resolve(ctx.cwd, build.dockerfile);
        if (!fs.existsSync(dockerfile)) {
            throw new Error(`${ctx.urn}: could not open dockerfile at relative path ${build.dockerfile} (from ${ctx.cwd})`);
        }
        const digest = contextDigest(path.resolve(ctx.cwd, build.context), dockerfile);
        return { ...news, build: { ...build, contextDigest: digest } };
    },
    async create(ctx, inputs) {
        const outputs = await buildImage(ctx, inputs);
        return { id: inputs.imageName as string, outputs };
    },
    update(ctx, _id, _olds, news) {
        return buildImage(ctx, news);
    },
    async delete() {
        // The provider's Delete is a no-op: the image stays in the engine's store.
    },
};
