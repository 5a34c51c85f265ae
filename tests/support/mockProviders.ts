// What each provider returns for a resource, as far as the program reads it. Outputs the real
// providers mark secret are returned as secrets, so secrecy is checked end to end.
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";

type Inputs = Record<string, unknown>;

function fakeDigest(seed: string): string {
    return `sha256:${createHash("sha256").update(seed).digest("hex")}`;
}

const outputsByType: Record<string, (name: string, inputs: Inputs) => Inputs> = {
    "docker:index/remoteImage:RemoteImage": (name, inputs) => ({
        ...inputs,
        imageId: fakeDigest(String(inputs.name)),
        repoDigest: `${inputs.name}@${fakeDigest(String(inputs.name))}`,
    }),
    "docker:index/image:Image": (name, inputs) => ({
        ...inputs,
        repoDigest: `${inputs.imageName}@${fakeDigest(name)}`,
    }),
    "docker:index/container:Container": (name, inputs) => ({
        ...inputs,
        exitCode: inputs.attach ? 0 : undefined,
        containerLogs: inputs.attach ? "done\n" : undefined,
    }),
    "random:index/randomPassword:RandomPassword": (name, inputs) => ({
        ...inputs,
        result: pulumi.secret(`pw-${name}`.padEnd(Number(inputs.length), "x")),
        bcryptHash: pulumi.secret(`bcrypt-${name}`),
    }),
    "random:index/randomBytes:RandomBytes": (name, inputs) => ({
        ...inputs,
        base64: pulumi.secret(Buffer.alloc(Number(inputs.length), 0xfb).toString("base64")),
        hex: pulumi.secret(Buffer.alloc(Number(inputs.length), 0xfb).toString("hex")),
    }),
    "pulumi-nodejs:dynamic:Resource": (name, inputs) => ({
        ...inputs,
        applied: [],
        versions: ((inputs.migrations as { name: string }[] | undefined) ?? []).map((m) => m.name),
    }),
};

export function mockOutputs(type: string, name: string, inputs: Inputs): Inputs {
    const outputs = outputsByType[type];
    return outputs ? outputs(name, inputs) : { ...inputs };
}
