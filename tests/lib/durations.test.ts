import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { goDuration, swarmDuration } from "../../lib/durations";

describe("goDuration", () => {
    it("writes whole seconds as Go's Duration.String() does", () => {
        const cases: [number, string][] = [
            [0, "0s"],
            [5, "5s"],
            [59, "59s"],
            [60, "1m0s"],
            [90, "1m30s"],
            [3600, "1h0m0s"],
            [3725, "1h2m5s"],
        ];
        for (const [seconds, text] of cases) assert.equal(goDuration(seconds), text);
    });

    it("writes a swarm service's durations as the provider reads them back: no trailing zero units", () => {
        const cases: [number, string][] = [
            [0, "0s"],
            [5, "5s"],
            [60, "1m"],
            [90, "1m30s"],
            [3600, "1h"],
            [3660, "1h1m"],
            [3725, "1h2m5s"],
        ];
        for (const [seconds, text] of cases) assert.equal(swarmDuration(seconds), text);
        assert.throws(() => swarmDuration(0.5), /whole number of seconds/);
    });

    it("rejects fractions and negatives", () => {
        assert.throws(() => goDuration(1.5), /whole number of seconds/);
        assert.throws(() => goDuration(-1), /whole number of seconds/);
    });

    it("is the only way durations are written: no duration literal in the program's sources", () => {
        const root = path.resolve(__dirname, "..", "..");
        const sources = ["index.ts", ...["components", "lib"].flatMap((d) => fs.readdirSync(path.join(root, d)).map((f) => path.join(d, f)))];
        const literal = /["'`]\d+(?:\.\d+)?(?:h|m|s|ms)(?:\d+(?:h|m|s|ms))*["'`]/;
        const code = (file: string) =>
            fs.readFileSync(path.join(root, file), "utf8").split("\n").filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line)).join("\n");
        const offenders = sources.filter((f) => f.endsWith(".ts") && literal.test(code(f)));
        assert.deepEqual(offenders, []);
    });
});
