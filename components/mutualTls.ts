import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { secretUpload } from "../lib/secretFiles";
import { platform } from "../platform";

/** A certificate and its private key (secret), PEM. */
export interface TlsIdentity {
    cert: pulumi.Output<string>;
    key: pulumi.Output<string>;
}

export interface MutualTlsArgs {
    namePrefix: string;
    /** Part of every resource name: a new generation is a new CA, new certificates, new keys. */
    generation: number;
    /** The server's DNS name on the stack network (its certificate's subject and only SAN). */
    serverName: string;
    /** The client's name (its certificate's subject). */
    clientName: string;
}

const keySpec = { algorithm: "ECDSA", ecdsaCurve: "P256" };

/**
 * A per-stack CA and the two identities of one mutually authenticated link: the server's
 * certificate also allows client use, so the server's own healthcheck can present it.
 */
export class MutualTls extends pulumi.ComponentResource {
    declare readonly caCert: pulumi.Output<string>;
    declare readonly server: TlsIdentity;
    declare readonly client: TlsIdentity;

    constructor(name: string, args: MutualTlsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:MutualTls", name, {}, opts);
        const resourceName = (role: string) => `${args.namePrefix}-tls-g${args.generation}-${role}`;
        const caKey = new tls.PrivateKey(resourceName("ca-key"), keySpec, { parent: this });
        const ca = new tls.SelfSignedCert(
            resourceName("ca"),
            {
                privateKeyPem: caKey.privateKeyPem,
                subject: { commonName: `${args.namePrefix} CA, generation ${args.generation}`, organization: platform.project },
                isCaCertificate: true,
                validityPeriodHours: platform.tls.caValidityHours,
                allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
            },
            { parent: this },
        );
        const identity = (role: string, commonName: string, dnsNames: string[], uses: string[]): TlsIdentity => {
            const key = new tls.PrivateKey(resourceName(`${role}-key`), keySpec, { parent: this });
            const request = new tls.CertRequest(
                resourceName(`${role}-csr`),
                { privateKeyPem: key.privateKeyPem, subject: { commonName, organization: platform.project }, dnsNames },
                { parent: this },
            );
            const cert = new tls.LocallySignedCert(
                resourceName(role),
                {
                    certRequestPem: request.certRequestPem,
                    caPrivateKeyPem: caKey.privateKeyPem,
                    caCertPem: ca.certPem,
                    validityPeriodHours: platform.tls.certValidityHours,
                    earlyRenewalHours: platform.tls.earlyRenewalHours,
                    allowedUses: ["digital_signature", "key_agreement", ...uses],
                },
                { parent: this },
            );
            return { cert: cert.certPem, key: pulumi.secret(key.privateKeyPem) };
        };
        this.caCert = ca.certPem;
        this.server = identity("server", args.serverName, [args.serverName], ["server_auth", "client_auth"]);
        this.client = identity("client", args.clientName, [], ["client_auth"]);
        this.registerOutputs({ caCert: this.caCert });
    }
}

/** The CA, certificate and key as files in platform.json tls.dir; only group 0 reads the key. */
export function tlsUploads(caCert: pulumi.Input<string>, identity: TlsIdentity): docker.types.input.ContainerUpload[] {
    const file = (name: string) => `${platform.tls.dir}/${name}`;
    return [
        { file: file(platform.tls.caFile), content: caCert, permissions: "0444" },
        { file: file(platform.tls.certFile), content: identity.cert, permissions: "0444" },
        secretUpload(file(platform.tls.keyFile), identity.key),
    ];
}
