// How every command reads a deployed stack: its outputs, never hand-typed names.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { defaultDockerSocket } from "../lib/dockerEngine";
import { type Forward, freeLocalPort, openTunnel, parseSshUrl } from "../lib/ssh";
import { projectRoot } from "../platform";

/** The outputs index.ts exports that the commands use. */
export interface StackOutputs {
    airflowUrl: string;
    airflowAdminUser: string;
    airflowAdminPassword: string;
    sparkUiUrl: string;
    sparkWorkers: number;
    executorAddress: string;
    postgresHost: string;
    postgresPort: number;
    warehouseMigrations: number[];
    warehouseWriterUrl: string;
    warehouseAnalystUrl: string;
    postgresAdminUser: string;
    postgresAdminPassword: string;
    logVolumeName: string;
    bufferVolumeName: string;
    postgresDataVolumeName: string;
    backupVolumeName: string;
    airflowKeysVolumeName: string;
    containers: string[];
    executorContainer: string;
    postgresContainer: string;
    maintenanceContainer: string;
    airflowInitContainer: string;
    /** The stack's engine (`docker:host`); null for this machine's. */
    dockerHost?: string | null;
    sshOpts?: string[] | null;
}

const required: (keyof StackOutputs)[] = [
    "airflowUrl",
    "sparkUiUrl",
    "postgresHost",
    "postgresPort",
    "warehouseWriterUrl",
    "containers",
    "executorContainer",
    "postgresContainer",
    "maintenanceContainer",
    "airflowInitContainer",
    "logVolumeName",
    "backupVolumeName",
];

/** The stack has no deployment to read: never brought up, or destroyed. */
export class StackNotDeployed extends Error {
    constructor(readonly stack: string, detail: string) {
        super(`stack ${stack} is not deployed (${detail}): bring it up with \`npm run up -- ${stack}\``);
        this.name = "StackNotDeployed";
    }
}

/**
 * `VPE_STACK_OUTPUTS_FILE`, when set, names a file holding the outputs as
 * `pulumi stack output --json --show-secrets` prints them (a machine without the stack's state;
 * the end-to-end suite on the harness). Otherwise the Pulumi CLI reads them from the stack's
 * backend, set up as `npm run up` does (./.pulumi and its passphrase file) unless the
 * environment already says otherwise.
 */
export async function readStackOutputs(stack: string, env: NodeJS.ProcessEnv = process.env): Promise<StackOutputs> {
    const outputs = env.VPE_STACK_OUTPUTS_FILE ? fromFile(stack, env.VPE_STACK_OUTPUTS_FILE) : await fromPulumi(stack, env);
    return reachable(checked(stack, outputs));
}

/**
 * The outputs as this machine reaches them. For a stack on a server (`ssh://`), one SSH
 * connection, open until this command exits, forwards the server's Docker socket and the ports
 * published on the server; DOCKER_HOST and the URLs then name those local ends, so the commands
 * talk to the stack's engine and services, never to a local stack answering on the same ports.
 */
export async function reachable(outputs: StackOutputs): Promise<StackOutputs> {
    if (!outputs.dockerHost?.startsWith("ssh://")) return outputs;
    const parsed = parseSshUrl(outputs.dockerHost);
    if ("problem" in parsed) throw new Error(`output dockerHost ${outputs.dockerHost}: ${parsed.problem}`);
    const socket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "vpe-engine-")), "docker.sock");
    const forwards: Forward[] = [{ localSocket: socket, remoteSocket: defaultDockerSocket }];
    const local = async (host: string, port: number) => {
        const localPort = await freeLocalPort();
        forwards.push({ localPort, remoteHost: host, remotePort: port });
        return localPort;
    };
    const viaTunnel = async (url: string) => {
        const u = new URL(url);
        u.port = String(await local(u.hostname, Number(u.port)));
        u.hostname = "127.0.0.1";
        return u.toString().replace(/\/$/, "");
    };
    const postgresPort = await local(outputs.postgresHost, outputs.postgresPort);
    const viaPostgresTunnel = (url: string) => {
        const u = new URL(url);
        [u.hostname, u.port] = ["127.0.0.1", String(postgresPort)];
        return u.toString();
    };
    const reached: StackOutputs = {
        ...outputs,
        airflowUrl: await viaTunnel(outputs.airflowUrl),
        sparkUiUrl: await viaTunnel(outputs.sparkUiUrl),
        postgresHost: "127.0.0.1",
        postgresPort,
        warehouseWriterUrl: viaPostgresTunnel(outputs.warehouseWriterUrl),
        warehouseAnalystUrl: viaPostgresTunnel(outputs.warehouseAnalystUrl),
    };
    await openTunnel({ ...parsed.target, options: outputs.sshOpts ?? [] }, forwards);
    process.env.DOCKER_HOST = `unix://${socket}`;
    return reached;
}

export function checked(stack: string, outputs: Record<string, unknown>): StackOutputs {
    if (Object.keys(outputs).length === 0) {
        throw new StackNotDeployed(stack, "it has no outputs");
    }
    const missing = required.filter((key) => outputs[key] === undefined);
    if (missing.length > 0) {
        throw new Error(`stack ${stack}: outputs ${missing.join(", ")} are missing: run \`pulumi up\` with this version of the project`);
    }
    return outputs as unknown as StackOutputs;
}

function fromFile(stack: string, file: string): Record<string, unknown> {
    if (!fs.existsSync(file)) {
        throw new StackNotDeployed(stack, `VPE_STACK_OUTPUTS_FILE ${file} does not exist`);
    }
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
}

async function fromPulumi(stack: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
    const pulumiEnv: NodeJS.ProcessEnv = { ...env, PULUMI_SKIP_UPDATE_CHECK: "true" };
    pulumiEnv.PULUMI_BACKEND_URL ??= `file://${path.join(projectRoot, ".pulumi")}`;
    const passphraseFile = path.join(projectRoot, ".pulumi", "passphrase");
    if (!pulumiEnv.PULUMI_CONFIG_PASSPHRASE && !pulumiEnv.PULUMI_CONFIG_PASSPHRASE_FILE && fs.existsSync(passphraseFile)) {
        pulumiEnv.PULUMI_CONFIG_PASSPHRASE_FILE = passphraseFile;
    }
    try {
        const { stdout } = await promisify(execFile)("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", stack], {
            cwd: projectRoot,
            env: pulumiEnv,
            maxBuffer: 16 * 1024 * 1024,
        });
        return JSON.parse(stdout) as Record<string, unknown>;
    } catch (err) {
        const error = err as NodeJS.ErrnoException & { stderr?: string };
        if (error.code === "ENOENT") {
            throw new Error("the Pulumi CLI is required to read the stack's outputs (or set VPE_STACK_OUTPUTS_FILE)");
        }
        if (/no stack named|stack .* not found/i.test(error.stderr ?? "")) {
            throw new StackNotDeployed(stack, "no such stack");
        }
        throw new Error(`pulumi stack output --stack ${stack} failed: ${(error.stderr ?? error.message).trim()}`);
    }
}

/** The `--stack` every command takes: a Pulumi.<stack>.yaml of this project. */
export function checkedStackName(stack: string | undefined): string {
    if (stack === undefined) {
        throw new Error("--stack: required (dev or prod)");
    }
    if (!/^[a-z0-9-]+$/.test(stack) || !fs.existsSync(path.join(projectRoot, `Pulumi.${stack}.yaml`))) {
        throw new Error(`--stack: no Pulumi.${stack}.yaml in this project`);
    }
    return stack;
}
