// What the Docker engine the stack deploys to can do. The docker provider talks to its `docker:host`
// config, else DOCKER_HOST, else the default socket; this asks the same engine.
import * as http from "node:http";
import * as pulumi from "@pulumi/pulumi";

/** The first Docker API version whose healthchecks take a start interval (Docker 25). */
export const startIntervalApiVersion = "1.44";

/** Where the docker provider connects: a unix socket path, or an http base URL (tcp://). */
export function engineAddress(dockerHost = process.env.DOCKER_HOST): { socketPath: string } | { url: string } | undefined {
    if (!dockerHost) return { socketPath: "/var/run/docker.sock" };
    if (dockerHost.startsWith("unix://")) return { socketPath: dockerHost.slice("unix://".length) };
    if (dockerHost.startsWith("tcp://")) return { url: `http://${dockerHost.slice("tcp://".length)}` };
    return undefined; // ssh:// and the like: not asked, so treated as an older engine
}

/** The engine's API version ("1.41"), or undefined when it cannot be asked within `timeoutMs`. */
export function dockerApiVersion(dockerHost = process.env.DOCKER_HOST, timeoutMs = 2000): Promise<string | undefined> {
    const address = engineAddress(dockerHost);
    if (address === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
        const request =
            "socketPath" in address
                ? http.get({ socketPath: address.socketPath, path: "/version", timeout: timeoutMs })
                : http.get(`${address.url}/version`, { timeout: timeoutMs });
        request.on("response", (response) => {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => (body += chunk));
            response.on("end", () => {
                try {
                    const version = (JSON.parse(body) as { ApiVersion?: unknown }).ApiVersion;
                    resolve(typeof version === "string" ? version : undefined);
                } catch {
                    resolve(undefined);
                }
            });
        });
        request.on("timeout", () => request.destroy());
        request.on("error", () => resolve(undefined));
    });
}

/** Whether API version `version` ("major.minor") is at least `minimum`. */
export function apiAtLeast(version: string | undefined, minimum: string): boolean {
    if (version === undefined) return false;
    const [major, minor] = version.split(".").map(Number);
    const [wantMajor, wantMinor] = minimum.split(".").map(Number);
    if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
    return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

let startIntervalSupport: Promise<boolean> | undefined;

/**
 * Whether the engine runs healthchecks at a start interval during the start period. Older engines
 * ignore the field and read it back as 0s, which the next preview would show as a change (and a
 * replacement), so it is only set where it is supported. Asked once per program run.
 */
export function engineSupportsStartInterval(): Promise<boolean> {
    startIntervalSupport ??= dockerApiVersion(new pulumi.Config("docker").get("host") ?? process.env.DOCKER_HOST).then((version) =>
        apiAtLeast(version, startIntervalApiVersion),
    );
    return startIntervalSupport;
}
