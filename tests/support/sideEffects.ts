// Records calls through which a program could change the world outside Pulumi's resources:
// writing files, spawning processes, opening network connections.
// The modules themselves, not TypeScript's read-only import namespaces, so calls can be wrapped.
import childProcess = require("child_process");
import fs = require("fs");
import net = require("net");

type Patchable = Record<string, unknown>;

const watched: [Patchable, string, string[]][] = [
    [fs as unknown as Patchable, "fs", [
        "writeFile", "writeFileSync", "appendFile", "appendFileSync", "mkdir", "mkdirSync", "rm", "rmSync",
        "unlink", "unlinkSync", "rename", "renameSync", "copyFile", "copyFileSync", "chmod", "chmodSync",
        "chown", "chownSync", "createWriteStream",
    ]],
    [fs.promises as unknown as Patchable, "fs.promises", [
        "writeFile", "appendFile", "mkdir", "rm", "unlink", "rename", "copyFile", "chmod", "chown",
    ]],
    [childProcess as unknown as Patchable, "child_process", [
        "spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork",
    ]],
    [net as unknown as Patchable, "net", ["connect", "createConnection"]],
];

export function recordSideEffects(): { calls: string[]; stop(): void } {
    const calls: string[] = [];
    const restore: (() => void)[] = [];
    for (const [module, moduleName, names] of watched) {
        for (const name of names) {
            const original = module[name] as (...args: unknown[]) => unknown;
            if (typeof original !== "function") continue;
            module[name] = function (this: unknown, ...args: unknown[]) {
                calls.push(`${moduleName}.${name}(${String(args[0]).slice(0, 120)})`);
                return original.apply(this, args);
            };
            restore.push(() => {
                module[name] = original;
            });
        }
    }
    return { calls, stop: () => restore.forEach((undo) => undo()) };
}
