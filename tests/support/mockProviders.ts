// What each provider returns for a resource, as far as the program reads it. The runner marks
// the outputs each resource declares secret (additionalSecretOutputs), as the engine does.
import { createHash } from "crypto";

type Inputs = Record<string, unknown>;

/** A password as RandomPassword with special: false would make one: `length` letters and digits. */
export function mockPassword(name: string, length: number): string {
    return createHash("sha512").update(name).digest("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, length);
}

export function mockPem(label: string, name: string): string {
    return `-----BEGIN ${label}-----\n${name}\n-----END ${label}-----\n`;
}

function fakeDigest(seed: string): string {
    return `sha256:${createHash("sha256").update(seed).digest("hex")}`;
}

const outputsByType: Record<string, (name: string, inputs: Inputs) => Inputs> = {
    "docker:index/remoteImage:RemoteImage": (_name, inputs) => ({
        ...inputs,
        imageId: fakeDigest(String(inputs.name)),
        repoDigest: `${inputs.name}@${fakeDigest(String(inputs.name))}`,
    }),
    "docker:index/image:Image": (name, inputs) => ({
        ...inputs,
        repoDigest: `${inputs.imageName}@${fakeDigest(name)}`,
    }),
    "docker:index/container:Container": (_name, inputs) => ({
        ...inputs,
        exitCode: inputs.attach ? 0 : undefined,
        containerLogs: inputs.attach ? "done\n" : undefined,
    }),
    "random:index/randomPassword:RandomPassword": (name, inputs) => ({
        ...inputs,
        result: mockPassword(name, Number(inputs.length)),
        bcryptHash: `bcrypt-${name}`,
    }),
    "random:index/randomBytes:RandomBytes": (_name, inputs) => ({
        ...inputs,
        base64: Buffer.alloc(Number(inputs.length), 0xfb).toString("base64"),
        hex: Buffer.alloc(Number(inputs.length), 0xfb).toString("hex"),
    }),
    // PEM-shaped stand-ins named after the resource, so a test can tell which one a file holds.
    "tls:index/privateKey:PrivateKey": (name, inputs) => ({ ...inputs, privateKeyPem: mockPem("EC PRIVATE KEY", name) }),
    "tls:index/selfSignedCert:SelfSignedCert": (name, inputs) => ({ ...inputs, certPem: mockPem("CERTIFICATE", name) }),
    "tls:index/certRequest:CertRequest": (name, inputs) => ({ ...inputs, certRequestPem: mockPem("CERTIFICATE REQUEST", name) }),
    "tls:index/locallySignedCert:LocallySignedCert": (name, inputs) => ({ ...inputs, certPem: mockPem("CERTIFICATE", name) }),
    "pulumi-nodejs:dynamic:Resource": (_name, inputs) => ({
        ...inputs,
        applied: [],
        versions: ((inputs.migrations as { name: string }[] | undefined) ?? []).map((m) => m.name),
    }),
};

export function mockOutputs(type: string, name: string, inputs: Inputs): Inputs {
    const outputs = outputsByType[type];
    return outputs ? outputs(name, inputs) : { ...inputs };
}
