// Command line: tsx e2e/harness/cli.ts up|preview|destroy|purge --stack NAME [--project DIR]
//   [--state FILE] [--config key=value ...] [--summary FILE]
// Each command runs in its own process because the Pulumi SDK keeps per-process global state.
import * as fs from "node:fs";
import * as path from "node:path";
import { DeploymentError, Engine, type Summary } from "./engine";
import { isSecret, type Props } from "./wire";

const commands = ["up", "preview", "destroy", "purge"] as const;
type Command = (typeof commands)[number];

interface Args {
    command: Command;
    stack: string;
    project: string;
    state?: string;
    config: string[];
    summary?: string;
}

const usage =
    "usage: tsx e2e/harness/cli.ts up|preview|destroy|purge --stack NAME [--project DIR] [--state FILE] " +
    "[--config key=value ...] [--summary FILE]";

export function parseArgs(argv: readonly string[]): Args {
    const [command, ...rest] = argv;
    if (!commands.includes(command as Command)) {
        throw new Error(`command: expected one of ${commands.join(", ")}, got ${JSON.stringify(command)}\n${usage}`);
    }
    const args: Partial<Args> & { config: string[] } = { command: command as Command, config: [], project: process.cwd() };
    for (let i = 0; i < rest.length; i += 2) {
        const [flag, value] = [rest[i], rest[i + 1]];
        if (value === undefined) {
            throw new Error(`${flag}: missing value\n${usage}`);
        }
        switch (flag) {
            case "--stack":
                args.stack = value;
                break;
            case "--project":
                args.project = path.resolve(value);
                break;
            case "--state":
                args.state = path.resolve(value);
                break;
            case "--config":
                args.config.push(value);
                break;
            case "--summary":
                args.summary = path.resolve(value);
                break;
            default:
                throw new Error(`${flag}: unknown option\n${usage}`);
        }
    }
    if (!args.stack) {
        throw new Error(`--stack: required\n${usage}`);
    }
    return args as Args;
}

function masked(outputs: Props): Props {
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, isSecret(v) ? "[secret]" : v]));
}

function report(summary: Summary): void {
    const lines = Object.entries(summary.ops)
        .filter(([, op]) => op !== "same")
        .map(([urn, op]) => `  ${op.padEnd(7)} ${urn}`);
    process.stdout.write(
        `${summary.command}: ${summary.ok ? "ok" : "FAILED"} in ${summary.seconds.toFixed(1)}s ` +
            `${JSON.stringify(summary.counts)}\n${lines.join("\n")}${lines.length ? "\n" : ""}`,
    );
    for (const [urn, figures] of Object.entries(summary.metrics)) {
        process.stdout.write(`  metrics ${urn} ${JSON.stringify(figures)}\n`);
    }
    if (Object.keys(summary.outputs).length > 0) {
        process.stdout.write(`outputs: ${JSON.stringify(masked(summary.outputs), null, 2)}\n`);
    }
    for (const e of summary.errors) {
        process.stderr.write(`error: ${e}\n`);
    }
}

async function main(): Promise<number> {
    const args = parseArgs(process.argv.slice(2));
    const engine = new Engine({ projectDir: args.project, stack: args.stack, statePath: args.state, config: args.config });
    const run = {
        up: () => engine.up(false),
        preview: () => engine.up(true),
        destroy: () => engine.destroy(),
        purge: () => engine.purgeRetained(),
    }[args.command];
    const summary = await run();
    if (args.summary) {
        fs.mkdirSync(path.dirname(args.summary), { recursive: true });
        fs.writeFileSync(args.summary, JSON.stringify(summary, null, 2), { mode: 0o600 });
    }
    report(summary);
    return summary.ok ? 0 : 1;
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (err: unknown) => {
            process.stderr.write(`error: ${err instanceof DeploymentError || err instanceof Error ? err.message : String(err)}\n`);
            process.exit(2);
        },
    );
}
