// docker Network, Volume, Secret and RemoteImage, following the Terraform docker provider (the engine of
// @pulumi/docker): networks and volumes have no update, every input replaces them.
import { DockerApi, DockerApiError } from "../dockerApi";
import type { Props } from "../wire";
import type { Handler, HandlerContext } from "./types";

type LabelList = { label: string; value: string }[] | undefined;

export function labelMap(labels: LabelList): Record<string, string> {
    return Object.fromEntries((labels ?? []).map((l) => [l.label, l.value]));
}

export function dockerFor(ctx: HandlerContext): DockerApi {
    const { host, sshOpts } = ctx.provider?.inputs ?? {};
    return new DockerApi(typeof host === "string" && host !== "" ? host : undefined, Array.isArray(sshOpts) ? (sshOpts as string[]) : []);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NetworkInspect {
    Id: string;
    Driver: string;
    Scope: string;
    Internal: boolean;
    Attachable: boolean;
    Options: Record<string, string> | null;
    IPAM: { Driver: string; Config: { Subnet?: string; Gateway?: string; IPRange?: string }[] | null };
}

export const networkHandler: Handler = {
    type: "docker:index/network:Network",
    inputs: [
        "name",
        "driver",
        "internal",
        "attachable",
        "labels[].label",
        "labels[].value",
        "options{}",
        "ipamConfigs[].subnet",
        "ipamConfigs[].gateway",
        "ipamConfigs[].ipRange",
        "ipamDriver",
    ],
    forceNew: "*",
    autoName: "name",
    async create(ctx, inputs) {
        const docker = dockerFor(ctx);
        const ipam = inputs.ipamConfigs as { subnet?: string; gateway?: string; ipRange?: string }[] | undefined;
        const created = await docker.call<{ Id: string }>("/networks/create", {
            method: "POST",
            body: {
                Name: inputs.name,
                CheckDuplicate: true,
                Driver: inputs.driver,
                Internal: inputs.internal === true,
                Attachable: inputs.attachable === true,
                Labels: labelMap(inputs.labels as LabelList),
                Options: inputs.options ?? {},
                IPAM: {
                    Driver: inputs.ipamDriver ?? "default",
                    Config: (ipam ?? []).map((c) => ({ Subnet: c.subnet, Gateway: c.gateway, IPRange: c.ipRange })),
                },
            },
        });
        const net = await docker.call<NetworkInspect>(`/networks/${created.Id}`);
        return { id: created.Id, outputs: networkOutputs(inputs, net) };
    },
    async delete(ctx, id) {
        // The provider's first attempt is after 2 s, retried (at least 5 s apart, for 30 s) only
        // while containers still hold endpoints; a swarm's "in use by task" fails at once.
        const docker = dockerFor(ctx);
        const deadline = Date.now() + 30_000;
        await sleep(2000);
        for (;;) {
            try {
                await docker.call(`/networks/${id}`, { method: "DELETE" });
                return;
            } catch (err) {
                if (err instanceof DockerApiError && err.status === 404) return;
                if (!/has active endpoints/.test((err as Error).message) || Date.now() > deadline) throw err;
            }
            await sleep(5000);
        }
    },
};

function networkOutputs(inputs: Props, net: NetworkInspect): Props {
    return {
        ...inputs,
        driver: net.Driver,
        scope: net.Scope,
        internal: net.Internal,
        attachable: net.Attachable,
        options: net.Options ?? {},
        ipamDriver: net.IPAM.Driver,
        ipamConfigs: (net.IPAM.Config ?? []).map((c) => ({ subnet: c.Subnet, gateway: c.Gateway, ipRange: c.IPRange })),
    };
}

export const volumeHandler: Handler = {
    type: "docker:index/volume:Volume",
    inputs: ["name", "driver", "driverOpts{}", "labels[].label", "labels[].value"],
    forceNew: "*",
    autoName: "name",
    async create(ctx, inputs) {
        const volume = await dockerFor(ctx).call<{ Name: string; Driver: string; Mountpoint: string }>(
            "/volumes/create",
            {
                method: "POST",
                body: {
                    Name: inputs.name,
                    Driver: inputs.driver ?? "local",
                    DriverOpts: inputs.driverOpts ?? {},
                    Labels: labelMap(inputs.labels as LabelList),
                },
            },
        );
        return { id: volume.Name, outputs: { ...inputs, driver: volume.Driver, mountpoint: volume.Mountpoint } };
    },
    async delete(ctx, id) {
        // The provider retries while the volume is still in use by a container being removed.
        const docker = dockerFor(ctx);
        const deadline = Date.now() + 30_000;
        for (;;) {
            try {
                await docker.call(`/volumes/${encodeURIComponent(id)}`, { method: "DELETE" });
                return;
            } catch (err) {
                if (err instanceof DockerApiError && err.status === 404) {
                    return;
                }
                if (!(err instanceof DockerApiError && err.status === 409) || Date.now() > deadline) {
                    throw err;
                }
                await sleep(250);
            }
        }
    },
};

/**
 * A swarm secret. Every input replaces it (there is no update); the read keeps the inputs (data
 * and labels are not read back); delete returns the engine's error as it is, so a secret a
 * service still uses fails the delete with "in use by the following service".
 */
export const secretHandler: Handler = {
    type: "docker:index/secret:Secret",
    inputs: ["name", "data", "labels[].label", "labels[].value"],
    forceNew: "*",
    autoName: "name",
    secretOutputs: ["data"],
    async check(ctx, news) {
        const data = news.data as string;
        // The provider quotes the value in its message; the harness does not log a secret.
        if (Buffer.from(data, "base64").toString("base64") !== data) throw new Error(`${ctx.urn}: data is not base64 decodeable`);
        return news;
    },
    async create(ctx, inputs) {
        const created = await dockerFor(ctx).call<{ ID: string }>("/secrets/create", {
            method: "POST",
            body: { Name: inputs.name, Labels: labelMap(inputs.labels as LabelList), Data: inputs.data },
        });
        return { id: created.ID, outputs: { ...inputs } };
    },
    async delete(ctx, id) {
        await dockerFor(ctx).call(`/secrets/${id}`, { method: "DELETE" });
    },
};

interface ImageInspect {
    Id: string;
    RepoDigests: string[] | null;
    Size: number;
}

export async function inspectImage(docker: DockerApi, name: string): Promise<ImageInspect | undefined> {
    return docker.find<ImageInspect>(`/images/${encodeURIComponent(name)}/json`);
}

const pullTimeoutMs = 120_000;

async function pull(docker: DockerApi, name: string, platform: unknown): Promise<string | undefined> {
    try {
        const { status, body } = await docker.raw("/images/create", {
            method: "POST",
            query: { fromImage: name, platform: typeof platform === "string" ? platform : undefined },
            timeoutMs: pullTimeoutMs,
        });
        const text = body.toString("utf8");
        const failed = status !== 200 || /"error"/.test(text);
        return failed ? text.trim().split("\n").pop() : undefined;
    } catch (err) {
        return (err as Error).message;
    }
}

export const remoteImageHandler: Handler = {
    type: "docker:index/remoteImage:RemoteImage",
    inputs: ["name", "keepLocally", "forceRemove", "pullTriggers[]", "triggers{}", "platform"],
    forceNew: "*",
    updatable: ["keepLocally", "forceRemove"],
    defaults: { keepLocally: false, forceRemove: false },
    async create(ctx, inputs) {
        const docker = dockerFor(ctx);
        const name = inputs.name as string;
        let image = await inspectImage(docker, name);
        if (image === undefined) {
            const failure = await pull(docker, name, inputs.platform);
            image = await inspectImage(docker, name);
            if (image === undefined) {
                throw new Error(
                    `image ${name} is not on the Docker engine and could not be pulled (${failure ?? "no image after pull"}); ` +
                        "run scripts/provide-images.sh to provide it locally",
                );
            }
        }
        ctx.metric("imageBytes", image.Size);
        return {
            id: `${image.Id}${name}`,
            outputs: { ...inputs, imageId: image.Id, repoDigest: image.RepoDigests?.[0] ?? "" },
        };
    },
    async delete(ctx, _id, inputs, outputs) {
        if (inputs.keepLocally === true) {
            return;
        }
        const docker = dockerFor(ctx);
        try {
            await docker.call(`/images/${encodeURIComponent(outputs.imageId as string)}`, {
                method: "DELETE",
                query: { force: inputs.forceRemove === true },
            });
        } catch (err) {
            if (!(err instanceof DockerApiError && err.status === 404)) {
                throw err;
            }
        }
    },
};
