// Images built from the project's own build contexts under docker/.
import * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import { buildPlatform } from "./dockerEngine";

export interface LocalImageArgs {
    namePrefix: string;
    /** Folder under docker/ holding the Dockerfile. */
    service: string;
    /** Build args; plain values only (an Output here gives a permanent diff, pulumi-docker #715). */
    args: Record<string, string>;
    /** A registry (host:port) the image is pushed to, for a swarm's nodes; none: kept on the engine. */
    registry?: string;
}

/**
 * Builds docker/<service>/Dockerfile with docker/ as the context, so shared files (the proto,
 * platform.json) reach every image. Paths are relative to the project root, where Pulumi runs the
 * program, so the state does not depend on where the project is checked out. Pushed, its
 * repoDigest is the registry's `name@sha256:...`, which every node pulls the same image by.
 */
export function localImage(name: string, args: LocalImageArgs, opts: pulumi.CustomResourceOptions): docker.Image {
    return new docker.Image(
        name,
        {
            imageName: `${args.registry === undefined ? "" : `${args.registry}/`}${args.namePrefix}/${args.service}:local`,
            skipPush: args.registry === undefined,
            registry: args.registry === undefined ? undefined : { server: args.registry },
            build: {
                context: "docker",
                dockerfile: `docker/${args.service}/Dockerfile`,
                builderVersion: "BuilderBuildKit",
                platform: buildPlatform(),
                args: args.args,
            },
        },
        opts,
    );
}
