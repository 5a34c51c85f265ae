import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { Runtime } from "../lib/workload";

export interface NetworkArgs {
    namePrefix: string;
    runtime: Pick<Runtime, "network">;
}

/** The stack's private network (a bridge, or a swarm's overlay); services find each other by alias on it. */
export class Network extends pulumi.ComponentResource {
    declare readonly name: pulumi.Output<string>;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Network", name, {}, opts);
        const network = new docker.Network(
            `${args.namePrefix}-net`,
            { name: `${args.namePrefix}-net`, ...args.runtime.network },
            { parent: this },
        );
        this.name = network.name;
        this.registerOutputs({ name: this.name });
    }
}
