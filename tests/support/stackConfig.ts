// A stack's config as the Pulumi CLI hands it to the program (`project:key` -> string, structured
// values as JSON), read the same way the real-engine harness reads it.
import * as path from "path";
import { readProject, readStackConfig } from "../../e2e/harness/stackConfig";

export const projectRoot = path.resolve(__dirname, "..", "..");

export function stackConfig(stack: string): Record<string, string> {
    return readStackConfig(readProject(projectRoot), stack);
}
