import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { requireSuccess } from "../../lib/containers";

describe("requireSuccess (a one-shot container's exit code)", () => {
    it("passes the container id through on exit code 0", () => {
        assert.equal(requireSuccess("vpe-qa-init", "abc123", 0, "done\n"), "abc123");
    });

    it("fails as a RunError naming the container and exit code, quoting the last 20 lines once", () => {
        const logs = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n");
        try {
            requireSuccess("vpe-qa-init", "abc123", 3, logs);
        } catch (err) {
            assert.ok(pulumi.RunError.isInstance(err), "a RunError: printed without a stack trace");
            const message = (err as Error).message;
            assert.match(message, /^vpe-qa-init exited with code 3; last output:\nline 11\n/);
            assert.match(message, /line 30$/);
            assert.doesNotMatch(message, /line 10\n/);
            return;
        }
        assert.fail("a failed one-shot container was accepted");
    });

    it("treats an unknown exit code (no exit observed) as a failure", () => {
        assert.throws(() => requireSuccess("vpe-qa-init", "abc123", undefined, undefined), /exited with code undefined/);
    });
});
