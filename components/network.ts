import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface NetworkArgs {
    namePrefix: string;
}

/** The stack's private bridge network; containers find each other by alias on it. */
export class Network extends pulumi.ComponentResource {
    declare readonly name: pulumi.Output<string>;

    constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:Network", name, {}, opts);
        const network = new docker.Network(
            `${args.namePrefix}-net`,
            { name: `${args.namePrefix}-net`, driver: "bridge" },
            { parent: this },
        );
        this.name = network.name;
        this.registerOutputs({ name: this.name });
    }
}
