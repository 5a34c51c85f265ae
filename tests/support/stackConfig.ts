// Reads a stack's config file (Pulumi.<stack>.yaml) into Pulumi's runtime form: `project:key`
// mapped to a string, structured values as JSON.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

export const projectRoot = path.resolve(__dirname, "..", "..");

export function stackConfig(stack: string): Record<string, string> {
    const file = path.join(projectRoot, `Pulumi.${stack}.yaml`);
    const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const config: Record<string, string> = {};
    for (const [key, value] of Object.entries(doc.config ?? {})) {
        if (value !== null && typeof value === "object" && "secure" in value) {
            throw new Error(`${file}: ${key} is a Pulumi secret; tests cannot decrypt it`);
        }
        config[key] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return config;
}
