// A CA and one identity, made by the harness's tls handlers (real keys, real X.509), written as a
// --tls-dir folder: for an executor run outside a stack.
import * as fs from "node:fs";
import * as path from "node:path";
import { certRequestHandler, locallySignedCertHandler, privateKeyHandler, selfSignedCertHandler } from "../../e2e/harness/handlers/tls";
import type { HandlerContext } from "../../e2e/harness/handlers/types";
import { platform } from "../../platform";

const ctx: HandlerContext = { urn: "urn:test", name: "test-pki", cwd: process.cwd(), log: () => undefined, metric: () => undefined };
const key = { algorithm: "ECDSA", ecdsaCurve: "P256" };

/** Writes CA, certificate (server and client use, for `dnsName`) and key into `dir`. */
export async function writeTlsDir(dir: string, dnsName: string): Promise<void> {
    const caKey = (await privateKeyHandler.create(ctx, key)).outputs;
    const ca = await selfSignedCertHandler.create(ctx, {
        privateKeyPem: caKey.privateKeyPem,
        subject: { commonName: "vpe e2e CA" },
        isCaCertificate: true,
        validityPeriodHours: 24,
        allowedUses: ["cert_signing", "digital_signature"],
    });
    const leafKey = (await privateKeyHandler.create(ctx, key)).outputs;
    const request = await certRequestHandler.create(ctx, { privateKeyPem: leafKey.privateKeyPem, subject: { commonName: dnsName }, dnsNames: [dnsName] });
    const leaf = await locallySignedCertHandler.create(ctx, {
        certRequestPem: request.outputs.certRequestPem,
        caPrivateKeyPem: caKey.privateKeyPem,
        caCertPem: ca.outputs.certPem,
        validityPeriodHours: 24,
        allowedUses: ["digital_signature", "server_auth", "client_auth"],
    });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, platform.tls.caFile), String(ca.outputs.certPem));
    fs.writeFileSync(path.join(dir, platform.tls.certFile), String(leaf.outputs.certPem));
    // Readable by the container's user, whatever its uid: a throwaway key for one test.
    fs.writeFileSync(path.join(dir, platform.tls.keyFile), String(leafKey.privateKeyPem), { mode: 0o644 });
}
