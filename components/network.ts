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
    /**
     * What workloads attach by: the name on one engine; the ID on a swarm, whose services the
     * provider reads back with network IDs only (a name there would replace them on every up).
     */
    declare readonly attachTo: pulumi.Output<string>;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Network", name, {}, opts);
        const { driver, attachable, options, byId } = args.runtime.network;
        const network = new docker.Network(
            `${args.namePrefix}-net`,
            { name: `${args.namePrefix}-net`, driver, attachable, options },
            { parent: this },
        );
        this.name = network.name;
        this.attachTo = byId ? network.id : network.name;
        this.registerOutputs({ name: this.name, attachTo: this.attachTo });
    }
}
