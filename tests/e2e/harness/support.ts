// Helpers shared by the harness suites that apply fixture programs on a real Docker engine.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { DeploymentError } from "../../../e2e/harness";
import { dockerCli } from "../../../e2e/harness/handlers/dockerImage";

export const docker = (...args: string[]) => execFileSync(dockerCli, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

export function exists(kind: "container" | "volume" | "network" | "image", name: string): boolean {
    try {
        docker(kind, "inspect", name);
        return true;
    } catch {
        return false;
    }
}

/** The run fails with a DeploymentError whose message matches `pattern`. */
export async function expectFailure(run: Promise<unknown>, pattern: RegExp): Promise<DeploymentError> {
    try {
        await run;
    } catch (err) {
        assert.ok(err instanceof DeploymentError, `expected DeploymentError, got ${err}`);
        assert.match(err.message, pattern);
        return err;
    }
    assert.fail(`expected a failure matching ${pattern}`);
}
