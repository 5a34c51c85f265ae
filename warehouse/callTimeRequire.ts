// Dynamic providers are serialized into the stack state and revived in Pulumi's dynamic-provider
// process, where `require` resolves from the project directory: a provider's methods capture
// nothing but plain values and load the modules they need with this, at call time.
import * as path from "node:path";

/**
 * A module's path relative to the project directory, the working directory of both the Pulumi
 * program and the dynamic-provider process, so the serialized provider is the same in every checkout.
 */
export function projectModulePath(absolutePath: string): string {
    return path.relative(process.cwd(), absolutePath);
}

/* eslint-disable @typescript-eslint/no-require-imports */
export function requireProjectModule<T>(relativePath: string): T {
    // The dynamic-provider process is plain node: teach it TypeScript first. Under tsx (tests,
    // the end-to-end harness) .ts is already handled.
    if (!require.extensions[".ts"]) {
        require("tsx/cjs/api").register();
    }
    return require(require("node:path").resolve(relativePath));
}
/* eslint-enable @typescript-eslint/no-require-imports */
