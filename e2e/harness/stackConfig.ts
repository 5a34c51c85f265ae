// Reads Pulumi.yaml and Pulumi.<stack>.yaml the way the Pulumi CLI hands config to a program:
// every value a string keyed `namespace:key`, structured values as JSON text.
import * as fs from "node:fs";
import * as path from "node:path";

// js-yaml ships without types; this is the one function the harness uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require("js-yaml") as { load(text: string): unknown };

export interface Project {
    name: string;
    dir: string;
    /** Absolute path of the program entry point. */
    main: string;
}

function readYaml(file: string): Record<string, unknown> {
    const doc = yaml.load(fs.readFileSync(file, "utf8"));
    if (doc === null || doc === undefined) {
        return {};
    }
    if (typeof doc !== "object" || Array.isArray(doc)) {
        throw new Error(`${file}: expected a YAML mapping at the top level`);
    }
    return doc as Record<string, unknown>;
}

export function readProject(dir: string): Project {
    const file = path.join(dir, "Pulumi.yaml");
    if (!fs.existsSync(file)) {
        throw new Error(`${file} not found: the project directory must hold Pulumi.yaml`);
    }
    const doc = readYaml(file);
    if (typeof doc.name !== "string" || doc.name === "") {
        throw new Error(`${file}: field "name" must be a non-empty string`);
    }
    const main = typeof doc.main === "string" ? doc.main : "index.ts";
    return { name: doc.name, dir, main: path.resolve(dir, main) };
}

function qualify(key: string, project: string): string {
    return key.includes(":") ? key : `${project}:${key}`;
}

function configText(key: string, value: unknown, file: string): string {
    if (value !== null && typeof value === "object" && !Array.isArray(value) && "secure" in value) {
        throw new Error(`${file}: config ${key} is a secret (secure:); the harness does not support secret config`);
    }
    if (typeof value === "string") {
        return value;
    }
    if (typeof value === "number" || typeof value === "boolean") {
        return String(value);
    }
    return JSON.stringify(value);
}

/** The stack's config, or an empty set when the stack file does not exist (like a new stack). */
export function readStackConfig(project: Project, stack: string): Record<string, string> {
    const file = path.join(project.dir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(file)) {
        return {};
    }
    const config = readYaml(file).config ?? {};
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
        throw new Error(`${file}: field "config" must be a mapping`);
    }
    const result: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
        result[qualify(key, project.name)] = configText(key, value, file);
    }
    return result;
}

function parseScalar(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return text;
    }
}

/**
 * Applies `key=value` overrides. A dotted key (`postgres.hostPort=5433`) edits one field of a
 * structured value, like `pulumi config set --path`; the value is JSON when it parses as JSON.
 */
export function applyOverrides(
    config: Record<string, string>,
    overrides: readonly string[],
    project: string,
): Record<string, string> {
    const result = { ...config };
    for (const item of overrides) {
        const eq = item.indexOf("=");
        if (eq <= 0) {
            throw new Error(`--config ${item}: expected key=value`);
        }
        const [rawKey, value] = [item.slice(0, eq), item.slice(eq + 1)];
        const [head, ...rest] = rawKey.split(".");
        const key = qualify(head, project);
        if (rest.length === 0) {
            result[key] = value;
            continue;
        }
        const root = result[key] === undefined ? {} : parseScalar(result[key]);
        if (root === null || typeof root !== "object" || Array.isArray(root)) {
            throw new Error(`--config ${item}: ${key} is not a structured value`);
        }
        let node = root as Record<string, unknown>;
        for (const part of rest.slice(0, -1)) {
            const next = node[part];
            node[part] = next !== null && typeof next === "object" ? next : {};
            node = node[part] as Record<string, unknown>;
        }
        node[rest[rest.length - 1]] = parseScalar(value);
        result[key] = JSON.stringify(root);
    }
    return result;
}
