// Parses, defaults and validates the whole stack config before any resource is registered.
// Every problem is reported at once, each prefixed by the config key a user would edit.
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { type SshTarget, parseSshUrl, sshOptionProblems } from "./lib/ssh";
import { platform } from "./platform";

const port = z.number().int().min(1).max(65535);
const hostPort = port.refine((p) => p >= 1024, { message: "must be 1024 or above (unprivileged)" });
const sparkMemory = z
    .string()
    .regex(/^[1-9][0-9]*[mg]$/, { message: 'must be a Spark memory size such as "512m" or "2g"' });

const postgresSchema = z.strictObject({
    hostPort: hostPort.default(5432),
    memoryMb: z.number().int().min(256).optional(),
    sharedBuffers: z
        .string()
        .regex(/^[1-9][0-9]*(kB|MB|GB)$/, { message: 'must be a PostgreSQL size such as "128MB" or "1GB"' })
        .default("128MB"),
});

const executorSchema = z.strictObject({
    maxConcurrentTasks: z.number().int().min(1).max(64).default(4),
    hostPort: hostPort.optional(),
    memoryMb: z.number().int().min(256).optional(),
});

const airflowSchema = z
    .strictObject({
        hostPort: hostPort.default(8080),
        executor: z.enum(["LocalExecutor", "CeleryExecutor"]).default("LocalExecutor"),
        celeryWorkers: z.number().int().min(0).max(16).default(0),
        /** Tasks running at once: LocalExecutor's worker processes, or the Celery workers' slots together. */
        parallelism: z.number().int().min(1).max(512).default(8),
        adminUser: z
            .string()
            .regex(/^[a-z][a-z0-9_]{2,31}$/, { message: "must be 3-32 chars of a-z, 0-9, _" })
            .default("admin"),
    })
    .superRefine((airflow, ctx) => {
        if (airflow.executor === "CeleryExecutor" && airflow.celeryWorkers < 1) {
            ctx.addIssue({
                code: "custom",
                path: ["celeryWorkers"],
                message: "must be at least 1 with CeleryExecutor",
            });
        }
        if (airflow.executor === "LocalExecutor" && airflow.celeryWorkers > 0) {
            ctx.addIssue({
                code: "custom",
                path: ["celeryWorkers"],
                message: "only applies to CeleryExecutor; set executor: CeleryExecutor or remove it",
            });
        }
    });

const sparkSchema = z.strictObject({
    workers: z.number().int().min(0).max(32).default(1),
    workerCores: z.number().int().min(1).max(64).default(1),
    workerMemory: sparkMemory.default("1g"),
    masterUiHostPort: hostPort.default(8181),
});

const backupSchema = z.strictObject({
    /** Hours between scheduled backups of the warehouse and of Airflow's metadata. */
    everyHours: z.number().int().min(1).max(24 * 31).default(24),
    /** Backup sets kept in the backup volume; older ones are removed after each backup. */
    keep: z.number().int().min(1).max(1000).default(7),
});

const logsSchema = z.strictObject({
    /** Task and executor log files older than this are removed (checked hourly). */
    retentionDays: z.number().int().min(1).max(3650).default(14),
});

const openMeteoArchive = "https://archive-api.open-meteo.com/v1/archive";

const weatherSchema = z.strictObject({
    /** The hourly archive API fetch_weather calls: Open-Meteo's public one, or a compatible mirror. */
    baseUrl: z
        .url({ protocol: /^https?$/, message: `must be an http(s) URL such as ${openMeteoArchive}` })
        .default(openMeteoArchive),
    /**
     * Requests fetch_weather starts per minute. The public API's free tier allows 5,000 calls an
     * hour, and a 30-day, 12-variable series of one point weighs about 3 calls.
     */
    requestsPerMinute: z.number().int().min(1).max(6000).default(20),
});

const tlsSchema = z.strictObject({
    /**
     * The executor's mutual-TLS PKI generation: raising it replaces the CA, every certificate and
     * every key on the next `pulumi up`, and the containers holding them.
     */
    generation: z.number().int().min(1).default(1),
});

const metricsSchema = z.strictObject({
    /** Prometheus and Alertmanager on the stack network, scraping every service. */
    enabled: z.boolean().default(false),
    /** Host port of Prometheus' UI and query API. */
    hostPort: hostPort.default(9090),
    scrapeIntervalSeconds: z.number().int().min(5).max(300).default(15),
    /** Days of samples Prometheus keeps (its TSDB retention). */
    retentionDays: z.number().int().min(1).max(3650).default(30),
    /**
     * The container exporter: each service container's restarts, memory and CPU. It reads the
     * engine's socket, which is root-equivalent on the engine's host; false leaves it out.
     */
    containers: z.boolean().default(true),
    /** The engine's socket on its host, as the container exporter mounts it. */
    engineSocket: z.string().regex(/^\/[^\s]*$/, { message: "must be an absolute path such as /var/run/docker.sock" }).default("/var/run/docker.sock"),
    /** Where Alertmanager posts firing and resolved alerts (its webhook receiver); unset: nowhere. */
    alertWebhookUrl: z
        .url({ protocol: /^https?$/, message: "must be an http(s) URL such as https://alerts.example.org/hook" })
        .optional(),
});

const ipv4 = z.ipv4({ message: "must be an IPv4 address such as 127.0.0.1" });

const sectionSchemas = {
    postgres: postgresSchema,
    executor: executorSchema,
    airflow: airflowSchema,
    spark: sparkSchema,
    backup: backupSchema,
    logs: logsSchema,
    weather: weatherSchema,
    tls: tlsSchema,
    metrics: metricsSchema,
};

const stackSchema = z.strictObject({
    namePrefix: z.string().regex(/^[a-z][a-z0-9-]{1,30}[a-z0-9]$/, {
        message: "must be 3-32 chars of a-z, 0-9 and -, starting with a letter",
    }),
    bindAddress: ipv4.default("127.0.0.1"),
    deleteDataOnDestroy: z.boolean().default(false),
    postgres: postgresSchema.prefault({}),
    executor: executorSchema.prefault({}),
    airflow: airflowSchema.prefault({}),
    spark: sparkSchema.prefault({}),
    backup: backupSchema.prefault({}),
    logs: logsSchema.prefault({}),
    weather: weatherSchema.prefault({}),
    tls: tlsSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
});

/**
 * The Docker engine the stack deploys to: the docker provider's own `docker:host` (unset: this
 * machine's engine) and, for a server reached over SSH, `docker:sshOpts`.
 */
export interface EngineConfig {
    host?: string;
    ssh?: SshTarget;
}

export type PlatformConfig = z.infer<typeof stackSchema> & { engine: EngineConfig };
export type AirflowConfig = PlatformConfig["airflow"];
export type SparkConfig = PlatformConfig["spark"];
export type ExecutorConfig = PlatformConfig["executor"];
export type PostgresConfig = PlatformConfig["postgres"];
export type BackupConfig = PlatformConfig["backup"];
export type LogsConfig = PlatformConfig["logs"];
export type WeatherConfig = PlatformConfig["weather"];
export type TlsConfig = PlatformConfig["tls"];
export type MetricsConfig = PlatformConfig["metrics"];

/** Every host port the stack publishes, keyed by the config key that sets it. */
export function publishedPorts(config: Partial<PlatformConfig>): [string, number][] {
    const candidates: [string, number | undefined][] = [
        ["postgres.hostPort", config.postgres?.hostPort],
        ["airflow.hostPort", config.airflow?.hostPort],
        ["spark.masterUiHostPort", config.spark?.masterUiHostPort],
        ["executor.hostPort", config.executor?.hostPort],
        ["metrics.hostPort", config.metrics?.enabled ? config.metrics.hostPort : undefined],
    ];
    return candidates.filter((entry): entry is [string, number] => entry[1] !== undefined);
}

/** A RunError, so `pulumi up` ends with this list alone: no stack trace, no second dump. */
export class ConfigError extends pulumi.RunError {
    constructor(readonly problems: string[]) {
        super(`Invalid stack config (${problems.length} problem(s)):\n  - ${problems.join("\n  - ")}`);
        this.name = "ConfigError";
    }
}

/**
 * Pulumi hands config over as strings keyed `project:key`; structured values are JSON.
 * Decodes them, then validates the whole set at once.
 */
export function parseConfig(raw: Record<string, string>, stack: string): PlatformConfig {
    const prefix = `${platform.project}:`;
    const problems: string[] = [];
    const decoded: Record<string, unknown> = { namePrefix: `${platform.project}-${stack}` };
    for (const [fullKey, text] of Object.entries(raw)) {
        if (!fullKey.startsWith(prefix)) {
            continue; // Provider config such as docker:host belongs to the providers.
        }
        const key = fullKey.slice(prefix.length);
        decoded[key] = decodeValue(text);
    }
    const engine = parseEngine(raw, problems);
    const result = stackSchema.safeParse(decoded);
    if (result.success) {
        problems.push(...portCollisions(result.data));
    } else {
        problems.push(...result.error.issues.map(describeIssue));
        problems.push(...portCollisions(validSections(decoded)));
    }
    if (problems.length > 0) {
        throw new ConfigError(problems);
    }
    return { ...(result.data as z.infer<typeof stackSchema>), engine };
}

/** `docker:host` and `docker:sshOpts`, checked: an SSH server is used strictly or not at all. */
function parseEngine(raw: Record<string, string>, problems: string[]): EngineConfig {
    const host = raw["docker:host"];
    const rawOptions = raw["docker:sshOpts"];
    let options: string[] = [];
    if (rawOptions !== undefined) {
        const decoded = decodeValue(rawOptions);
        if (Array.isArray(decoded) && decoded.every((o) => typeof o === "string")) {
            options = decoded;
        } else {
            problems.push('docker:sshOpts: must be a list of ssh arguments, such as ["-o", "BatchMode=yes"]');
        }
    }
    if (host === undefined || !host.startsWith("ssh://")) {
        if (host !== undefined && !/^(unix|tcp):\/\/./.test(host)) {
            problems.push("docker:host: must be ssh://user@host[:port] (a server), unix:///path or tcp://host:port");
        }
        if (rawOptions !== undefined) problems.push("docker:sshOpts: only applies with docker:host: ssh://user@host");
        return { host };
    }
    const parsed = parseSshUrl(host);
    if ("problem" in parsed) {
        problems.push(`docker:host: ${parsed.problem}`);
        return { host };
    }
    problems.push(...sshOptionProblems(options).map((p) => `docker:sshOpts: ${p}`));
    return { host, ssh: { ...parsed.target, options } };
}

/**
 * The sections that are valid on their own, so that a port collision between two valid
 * sections is reported in the same message as an unrelated error elsewhere.
 */
function validSections(decoded: Record<string, unknown>): Partial<PlatformConfig> {
    const valid: Record<string, unknown> = {};
    for (const [name, schema] of Object.entries(sectionSchemas)) {
        const section = schema.safeParse(decoded[name] ?? {});
        if (section.success) {
            valid[name] = section.data;
        }
    }
    return valid as Partial<PlatformConfig>;
}

function portCollisions(config: Partial<PlatformConfig>): string[] {
    const problems: string[] = [];
    const claimed = new Map<number, string>();
    for (const [key, value] of publishedPorts(config)) {
        const owner = claimed.get(value);
        if (owner === undefined) {
            claimed.set(value, key);
        } else {
            problems.push(
                `${platform.project}:${key}: host port ${value} is already used by ${platform.project}:${owner}`,
            );
        }
    }
    return problems;
}

/** Reads this stack's config from the Pulumi runtime. */
export function loadConfig(): PlatformConfig {
    return parseConfig(pulumi.runtime.allConfig(), pulumi.getStack());
}

function decodeValue(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text; // Plain strings such as namePrefix are not JSON.
    }
}

/** Keys earlier versions accepted, with what replaced them. */
const removedKeys: Record<string, string> = {
    "executor.environmentFormat":
        "removed: each environment chooses its own format (pyproject.toml + uv.lock, or environment.yml for conda) under docker/executor/envs/<name>/",
};

function describeIssue(issue: z.core.$ZodIssue): string {
    const key = `${platform.project}:${issue.path.join(".")}`;
    if (issue.code === "unrecognized_keys") {
        const where = issue.path.length > 0 ? `${key}.` : `${platform.project}:`;
        const within = issue.path.length > 0 ? `${issue.path.join(".")}.` : "";
        return issue.keys.map((k) => `${where}${k}: ${removedKeys[`${within}${k}`] ?? "unknown key"}`).join("; ");
    }
    return `${key}: ${issue.message}`;
}
