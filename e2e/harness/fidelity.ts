// The fidelity rule: a program input the harness does not implement must fail the run, never be
// dropped silently, or a green end-to-end test could hide a setting the real provider would apply.
import { setPaths, type Props } from "./wire";

export class UnimplementedInputError extends Error {
    constructor(
        readonly urn: string,
        readonly type: string,
        readonly paths: string[],
    ) {
        super(
            `${urn}: resource type ${type} sets input(s) the harness does not implement: ` +
                `${paths.join(", ")}. Implement them in e2e/harness/handlers or stop setting them.`,
        );
        this.name = "UnimplementedInputError";
    }
}

function isAllowed(path: string, declared: readonly string[]): boolean {
    return declared.some(
        (d) => d === path || d === `${path}{}` || d.startsWith(`${path}.`) || d.startsWith(`${path}[`),
    );
}

/** The input paths set in `inputs` (plain values) that `declared` does not cover. */
export function unimplementedPaths(inputs: Props, declared: readonly string[]): string[] {
    if (declared.includes("*")) {
        return [];
    }
    const freeForm = new Set(declared.filter((d) => d.endsWith("{}")).map((d) => d.slice(0, -2)));
    const found = setPaths(inputs, "", freeForm).filter((p) => !isAllowed(p, declared));
    return [...new Set(found)].sort();
}

export function assertImplemented(urn: string, type: string, inputs: Props, declared: readonly string[]): void {
    const missing = unimplementedPaths(inputs, declared);
    if (missing.length > 0) {
        throw new UnimplementedInputError(urn, type, missing);
    }
}
