// The tls handlers (e2e/harness/handlers/tls.ts) without Docker: real keys and certificates that
// Node's X509Certificate, OpenSSL and a mutual-TLS handshake accept, the provider's output
// formats, defaults, diffs and validation, and the fixture program through the harness engine.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { X509Certificate, createHash, createPrivateKey, createPublicKey } from "node:crypto";
import * as fs from "node:fs";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import * as tls from "node:tls";
import "reflect-metadata"; // @peculiar/x509 needs it loaded first
import * as x509 from "@peculiar/x509";
import { changed, outputValues, up } from "../../../e2e/harness";
import { genericDiff } from "../../../e2e/harness/engine";
import { handlers } from "../../../e2e/harness/handlers";
import {
    certRequestHandler,
    locallySignedCertHandler,
    parseIp,
    privateKeyHandler,
    selfSignedCertHandler,
} from "../../../e2e/harness/handlers/tls";
import type { Handler, HandlerContext } from "../../../e2e/harness/handlers/types";
import { isSecret, type Props } from "../../../e2e/harness/wire";

const logs: string[] = [];
const ctx: HandlerContext = { urn: "urn:test", name: "test", cwd: process.cwd(), log: (m) => logs.push(m), metric: () => undefined };

/** The project's Python environment (npm run test:python makes it), with grpcio (BoringSSL). */
const venvPython = path.resolve(__dirname, "..", "..", "..", ".venv", "bin", "python");

const grpcCheck = `
import sys, grpc
from concurrent import futures
d = sys.argv[1]
r = lambda n: open(f"{d}/{n}", "rb").read()
def ping(req, ctx):
    return b"pong " + dict(ctx.auth_context()).get("x509_common_name", [b"?"])[0]
server = grpc.server(futures.ThreadPoolExecutor(2))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("svc", {"Ping": grpc.unary_unary_rpc_method_handler(ping)}),))
port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
    [(r("server-key.pem"), r("server.pem"))], root_certificates=r("ca.pem"), require_client_auth=True))
server.start()
def call(key, cert):
    creds = grpc.ssl_channel_credentials(root_certificates=r("ca.pem"), private_key=key, certificate_chain=cert)
    with grpc.secure_channel(f"127.0.0.1:{port}", creds, options=[("grpc.ssl_target_name_override", "executor")]) as ch:
        try:
            return ch.unary_unary("/svc/Ping")(b"", timeout=10).decode()
        except grpc.RpcError as e:
            return "refused " + e.code().name
print(call(r("client-key.pem"), r("client.pem")))
print(call(r("other-key.pem"), r("other.pem")))
print(call(None, None))
server.stop(0)
`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vpe-tls-test-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let fileCount = 0;
function file(content: string): string {
    const p = path.join(tmp, `f${fileCount++}.pem`);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
}

/** check, then create, as the engine runs a handler. */
async function apply(handler: Handler, inputs: Props): Promise<{ id: string; outputs: Props }> {
    const checked = handler.check ? await handler.check(ctx, inputs, undefined) : inputs;
    return handler.create(ctx, checked);
}

const ecdsa = { algorithm: "ECDSA", ecdsaCurve: "P256" };
const str = (v: unknown) => v as string;

interface Identity {
    key: string;
    cert: string;
    outputs: Props;
    id: string;
}

async function makeCa(commonName: string, keyInputs: Props = ecdsa, extra: Props = {}): Promise<Identity> {
    const key = await apply(privateKeyHandler, keyInputs);
    const cert = await apply(selfSignedCertHandler, {
        privateKeyPem: key.outputs.privateKeyPem,
        subject: { commonName, organization: "vpe" },
        isCaCertificate: true,
        validityPeriodHours: 8760,
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
        ...extra,
    });
    return { key: str(key.outputs.privateKeyPem), cert: str(cert.outputs.certPem), outputs: cert.outputs, id: cert.id };
}

async function makeLeaf(ca: Identity, request: Props, cert: Props, keyInputs: Props = ecdsa): Promise<Identity & { csr: Props }> {
    const key = await apply(privateKeyHandler, keyInputs);
    const csr = await apply(certRequestHandler, { privateKeyPem: key.outputs.privateKeyPem, ...request });
    const signed = await apply(locallySignedCertHandler, {
        certRequestPem: csr.outputs.certRequestPem,
        caPrivateKeyPem: ca.key,
        caCertPem: ca.cert,
        validityPeriodHours: 720,
        ...cert,
    });
    return { key: str(key.outputs.privateKeyPem), cert: str(signed.outputs.certPem), outputs: signed.outputs, id: signed.id, csr: csr.outputs };
}

describe("tls handlers: registration and schema", () => {
    it("registers the four resource types and the provider", () => {
        for (const type of [
            "tls:index/privateKey:PrivateKey",
            "tls:index/selfSignedCert:SelfSignedCert",
            "tls:index/certRequest:CertRequest",
            "tls:index/locallySignedCert:LocallySignedCert",
            "pulumi:providers:tls",
        ]) {
            assert.ok(handlers.has(type), type);
        }
    });

    it("declares the secret outputs the provider marks sensitive (the SDK's additionalSecretOutputs)", () => {
        assert.deepEqual([...(privateKeyHandler.secretOutputs ?? [])].sort(), ["privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"]);
        assert.deepEqual(selfSignedCertHandler.secretOutputs, ["privateKeyPem"]);
        assert.deepEqual(certRequestHandler.secretOutputs, ["privateKeyPem"]);
        assert.deepEqual(locallySignedCertHandler.secretOutputs, ["caPrivateKeyPem"]);
    });
});

describe("tls PrivateKey", () => {
    it("ECDSA P256: SEC1 and PKCS#8 private keys, PKIX public key, OpenSSH forms and fingerprints", async () => {
        const { id, outputs } = await apply(privateKeyHandler, ecdsa);
        assert.match(str(outputs.privateKeyPem), /^-----BEGIN EC PRIVATE KEY-----\n[\s\S]+\n-----END EC PRIVATE KEY-----\n$/);
        assert.match(str(outputs.privateKeyPemPkcs8), /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/);
        assert.match(str(outputs.privateKeyOpenssh), /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
        assert.match(str(outputs.publicKeyPem), /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
        assert.match(str(outputs.publicKeyOpenssh), /^ecdsa-sha2-nistp256 [A-Za-z0-9+/=]+\n$/);
        assert.match(str(outputs.publicKeyFingerprintMd5), /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
        assert.match(str(outputs.publicKeyFingerprintSha256), /^SHA256:[A-Za-z0-9+/]{43}$/);
        assert.equal(outputs.algorithm, "ECDSA");
        assert.equal(outputs.ecdsaCurve, "P256");
        assert.equal(outputs.rsaBits, 2048, "the rsaBits default is in state for every key");
        const key = createPrivateKey(str(outputs.privateKeyPem));
        assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
        const spki = createPublicKey(key).export({ type: "spki", format: "der" });
        assert.equal(createPublicKey(str(outputs.publicKeyPem)).export({ type: "spki", format: "der" }).toString("hex"), spki.toString("hex"));
        assert.ok(createPrivateKey(str(outputs.privateKeyPemPkcs8)).equals(key));
        const wire = Buffer.from(str(outputs.publicKeyOpenssh).split(" ")[1], "base64");
        assert.equal(outputs.publicKeyFingerprintSha256, `SHA256:${createHash("sha256").update(wire).digest("base64").replace(/=+$/, "")}`);
        assert.match(id, /^[0-9a-f]{40}$/);
    });

    it("RSA: PKCS#1 'RSA PRIVATE KEY' of rsaBits bits", async () => {
        const { outputs } = await apply(privateKeyHandler, { algorithm: "RSA", rsaBits: 3072 });
        assert.match(str(outputs.privateKeyPem), /^-----BEGIN RSA PRIVATE KEY-----\n/);
        assert.equal(createPrivateKey(str(outputs.privateKeyPem)).asymmetricKeyDetails?.modulusLength, 3072);
        assert.match(str(outputs.publicKeyOpenssh), /^ssh-rsa /);
        assert.equal(outputs.ecdsaCurve, "P224", "the ecdsaCurve default is in state for every key");
    });

    it("ECDSA defaults to P224, which has no OpenSSH forms", async () => {
        const { outputs } = await apply(privateKeyHandler, { algorithm: "ECDSA" });
        assert.equal(createPrivateKey(str(outputs.privateKeyPem)).asymmetricKeyDetails?.namedCurve, "secp224r1");
        assert.equal(outputs.ecdsaCurve, "P224");
        for (const k of ["privateKeyOpenssh", "publicKeyOpenssh", "publicKeyFingerprintMd5", "publicKeyFingerprintSha256"]) {
            assert.equal(outputs[k], "", k);
        }
    });

    it("validates algorithm and curve like the schema", async () => {
        await assert.rejects(apply(privateKeyHandler, { algorithm: "DSA" }), /algorithm: value must be one of/);
        await assert.rejects(apply(privateKeyHandler, { algorithm: "ECDSA", ecdsaCurve: "P-256" }), /ecdsaCurve: value must be one of/);
        await assert.rejects(apply(privateKeyHandler, { algorithm: "RSA", rsaBits: 512 }), /512-bit keys are insecure/);
    });
});

describe("tls PKI: CA, server and client certificates", () => {
    let ca: Identity;
    let server: Identity & { csr: Props };
    let client: Identity & { csr: Props };
    let otherClient: Identity;
    const serverUses = ["digital_signature", "key_encipherment", "server_auth", "client_auth"];

    before(async () => {
        ca = await makeCa("vpe CA");
        server = await makeLeaf(ca, { subject: { commonName: "executor", organization: "vpe" }, dnsNames: ["executor"] }, { allowedUses: serverUses });
        client = await makeLeaf(ca, { subject: { commonName: "airflow", organization: "vpe" }, dnsNames: [] }, { allowedUses: ["digital_signature", "client_auth"] });
        const otherCa = await makeCa("another CA");
        otherClient = await makeLeaf(otherCa, { subject: { commonName: "intruder" } }, { allowedUses: ["digital_signature", "client_auth"] });
    });

    it("the CA certificate is a self-signed CA with key id and the requested key usage", () => {
        const cert = new X509Certificate(ca.cert);
        assert.equal(cert.ca, true);
        assert.ok(cert.checkIssued(cert));
        assert.ok(cert.verify(cert.publicKey));
        assert.equal(cert.subject, "O=vpe\nCN=vpe CA");
        assert.equal(ca.id, BigInt(`0x${cert.serialNumber}`).toString(10), "the ID is the serial number");
        assert.equal(ca.outputs.keyAlgorithm, "ECDSA");
        assert.equal(ca.outputs.readyForRenewal, false);
        assert.equal(ca.outputs.earlyRenewalHours, 0, "defaults are in state");
        assert.equal(ca.outputs.setSubjectKeyId, false);
        assert.equal(ca.outputs.setAuthorityKeyId, false);
    });

    it("leaf certificates chain to the CA and carry the requested names and usages", () => {
        const caCert = new X509Certificate(ca.cert);
        const leaf = new X509Certificate(server.cert);
        assert.ok(leaf.verify(caCert.publicKey));
        assert.ok(leaf.checkIssued(caCert));
        assert.equal(leaf.checkHost("executor"), "executor");
        assert.equal(leaf.checkHost("other"), undefined);
        assert.equal(leaf.ca, false);
        assert.equal(leaf.subject, "O=vpe\nCN=executor");
        assert.equal(leaf.issuer, caCert.subject);
        assert.deepEqual(leaf.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], "extended key usage in allowed_uses order");
        assert.equal(server.outputs.caKeyAlgorithm, "ECDSA");
        assert.equal(server.csr.keyAlgorithm, "ECDSA");
        assert.match(str(server.csr.certRequestPem), /^-----BEGIN CERTIFICATE REQUEST-----\n/);
        const clientCert = new X509Certificate(client.cert);
        assert.ok(clientCert.checkIssued(caCert));
        assert.deepEqual(clientCert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
        assert.equal(clientCert.subjectAltName, undefined, "no SAN without names");
        assert.ok(!new X509Certificate(otherClient.cert).checkIssued(caCert));
    });

    it("validity: NotBefore is now, NotAfter is validityPeriodHours later; RFC 3339 times in state", () => {
        const leaf = new X509Certificate(server.cert);
        const start = Date.parse(str(server.outputs.validityStartTime));
        const end = Date.parse(str(server.outputs.validityEndTime));
        assert.match(str(server.outputs.validityStartTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
        assert.equal(end - start, 720 * 3_600_000);
        assert.ok(Math.abs(start - Date.now()) < 60_000);
        assert.equal(Date.parse(leaf.validFrom), Math.floor(start / 1000) * 1000);
        assert.equal(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom), 720 * 3_600_000);
        assert.equal(server.outputs.readyForRenewal, false);
    });

    it("OpenSSL verifies the chain and the purposes", () => {
        const caFile = file(ca.cert);
        const run = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        assert.match(run("verify", "-CAfile", caFile, file(server.cert)), /: OK/);
        assert.match(run("verify", "-CAfile", caFile, "-purpose", "sslserver", file(server.cert)), /: OK/);
        assert.match(run("verify", "-CAfile", caFile, "-purpose", "sslclient", file(client.cert)), /: OK/);
        assert.throws(() => run("verify", "-CAfile", caFile, file(otherClient.cert)));
        const caText = run("x509", "-noout", "-text", "-in", caFile);
        assert.match(caText, /X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
        assert.match(caText, /X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign\n/);
        const leafText = run("x509", "-noout", "-text", "-in", file(server.cert));
        assert.match(leafText, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
        assert.match(leafText, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
        assert.match(leafText, /X509v3 Subject Alternative Name: \n\s+DNS:executor\n/);
        assert.match(leafText, /Signature Algorithm: ecdsa-with-SHA256/);
        // The locally signed certificate names its issuer's key (Go sets it from the CA's SKI).
        const ski = /X509v3 Subject Key Identifier: \n\s+([0-9A-F:]+)\n/.exec(caText)?.[1];
        assert.ok(ski);
        assert.match(leafText, new RegExp(`X509v3 Authority Key Identifier: \\n\\s+(keyid:)?${ski}\\n`));
        const request = spawnSync("openssl", ["req", "-verify", "-noout", "-in", file(str(server.csr.certRequestPem))], { encoding: "utf8" });
        assert.equal(request.status, 0, request.stderr);
        assert.match(request.stdout + request.stderr, /verify OK/i);
    });

    it("a mutual TLS handshake succeeds with both certificates and refuses a client of another CA", async () => {
        const clientErrors: string[] = [];
        const server_ = tls.createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (socket) => {
            const peer = socket.getPeerCertificate();
            socket.end(`hello ${peer.subject?.CN}`);
        });
        server_.on("tlsClientError", (err) => clientErrors.push(err.message));
        await new Promise<void>((resolve) => server_.listen(0, "127.0.0.1", resolve));
        const port = (server_.address() as AddressInfo).port;
        const talk = (identity: Identity) =>
            new Promise<{ data: string; error?: string; authorized: boolean }>((resolve) => {
                let data = "";
                let authorized = false;
                const socket = tls.connect({ host: "127.0.0.1", port, ca: ca.cert, key: identity.key, cert: identity.cert, servername: "executor" }, () => {
                    authorized = socket.authorized;
                });
                socket.on("data", (d: Buffer) => (data += d.toString()));
                socket.on("error", (err) => resolve({ data, error: err.message, authorized }));
                socket.on("close", () => resolve({ data, authorized }));
            });
        try {
            const good = await talk(client);
            assert.equal(good.error, undefined);
            assert.ok(good.authorized, "the client trusts the server certificate for servername executor");
            assert.equal(good.data, "hello airflow");
            const bad = await talk(otherClient);
            assert.equal(bad.data, "", "the server sends nothing to an unknown client");
            assert.ok(clientErrors.length > 0, "the server refused the handshake");
        } finally {
            await new Promise((resolve) => server_.close(resolve));
        }
    });

    it("gRPC (BoringSSL) accepts the certificates for mutual TLS", () => {
        const dir = fs.mkdtempSync(path.join(tmp, "grpc-"));
        const files: Record<string, string> = {
            "ca.pem": ca.cert,
            "server.pem": server.cert,
            "server-key.pem": server.key,
            "client.pem": client.cert,
            "client-key.pem": client.key,
            "other.pem": otherClient.cert,
            "other-key.pem": otherClient.key,
        };
        for (const [name, content] of Object.entries(files)) {
            fs.writeFileSync(path.join(dir, name), content, { mode: 0o600 });
        }
        const run = spawnSync(venvPython, ["-c", grpcCheck, dir], { encoding: "utf8", timeout: 60_000 });
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(run.stdout.trim().split("\n"), ["pong airflow", "refused UNAVAILABLE", "refused UNAVAILABLE"]);
    });

    it("the server refuses a client without a certificate, and the client refuses a wrong server name", async () => {
        const server_ = tls.createServer({ key: server.key, cert: server.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (socket) => socket.end("hello"));
        await new Promise<void>((resolve) => server_.listen(0, "127.0.0.1", resolve));
        const port = (server_.address() as AddressInfo).port;
        const attempt = (options: tls.ConnectionOptions) =>
            new Promise<{ data: string; error?: string }>((resolve) => {
                let data = "";
                const socket = tls.connect({ host: "127.0.0.1", port, ca: ca.cert, ...options });
                socket.on("data", (d: Buffer) => (data += d.toString()));
                socket.on("error", (err) => resolve({ data, error: err.message }));
                socket.on("close", () => resolve({ data }));
            });
        try {
            assert.equal((await attempt({ servername: "executor" })).data, "");
            const wrongName = await attempt({ servername: "airflow", key: client.key, cert: client.cert });
            assert.match(wrongName.error ?? "", /does not match|altnames/i);
        } finally {
            await new Promise((resolve) => server_.close(resolve));
        }
    });
});

describe("tls certificates: other keys and contents", () => {
    it("an RSA CA signs an ECDSA leaf (sha256WithRSAEncryption), with IP SANs", async () => {
        const ca = await makeCa("rsa CA", { algorithm: "RSA", rsaBits: 2048 });
        assert.equal(ca.outputs.keyAlgorithm, "RSA");
        const leaf = await makeLeaf(ca, { subject: { commonName: "db" }, ipAddresses: ["127.0.0.1", "::1", "::ffff:10.0.0.1"] }, { allowedUses: ["server_auth"] });
        const cert = new X509Certificate(leaf.cert);
        assert.ok(cert.verify(new X509Certificate(ca.cert).publicKey));
        assert.equal(cert.checkIP("127.0.0.1"), "127.0.0.1");
        assert.equal(cert.checkIP("::1"), "::1");
        assert.equal(cert.checkIP("10.0.0.1"), "10.0.0.1", "IPv4-mapped addresses are written as IPv4, as Go does");
        assert.equal(leaf.outputs.caKeyAlgorithm, "RSA");
    });

    it("P224 and Ed25519 keys sign certificates too", async () => {
        for (const keyInputs of [{ algorithm: "ECDSA" }, { algorithm: "ECDSA", ecdsaCurve: "P384" }, { algorithm: "ECDSA", ecdsaCurve: "P521" }, { algorithm: "ED25519" }]) {
            const ca = await makeCa("ca", keyInputs);
            const leaf = await makeLeaf(ca, { subject: { commonName: "x" }, dnsNames: ["x"] }, { allowedUses: ["server_auth"] }, keyInputs);
            const caCert = new X509Certificate(ca.cert);
            assert.ok(caCert.verify(caCert.publicKey), JSON.stringify(keyInputs));
            assert.ok(new X509Certificate(leaf.cert).verify(caCert.publicKey), JSON.stringify(keyInputs));
        }
    });

    it("subject attributes, set_subject_key_id and set_authority_key_id, max_path_length", async () => {
        const key = await apply(privateKeyHandler, ecdsa);
        const { outputs } = await apply(selfSignedCertHandler, {
            privateKeyPem: key.outputs.privateKeyPem,
            subject: {
                commonName: "ca",
                organization: "vpe",
                organizationalUnit: "platform",
                country: "DE",
                province: "Bavaria",
                locality: "Munich",
                postalCode: "80331",
                streetAddresses: ["Main St 2", "Back St 1"],
                serialNumber: "42",
                emailAddress: "ops@example.org",
            },
            isCaCertificate: true,
            maxPathLength: 2,
            setAuthorityKeyId: true,
            validityPeriodHours: 1,
            allowedUses: ["cert_signing"],
        });
        const text = execFileSync("openssl", ["x509", "-noout", "-text", "-nameopt", "oneline", "-in", file(str(outputs.certPem))], { encoding: "utf8" });
        // Go's order (C, ST, L, STREET, PC, O, OU, CN, SERIALNUMBER, then the email), one RDN per
        // attribute type; the two streets share one RDN, its SET sorted by DER.
        assert.match(
            text,
            /Subject: C = DE, ST = Bavaria, L = Munich, street = Back St 1 \+ street = Main St 2, postalCode = 80331, O = vpe, OU = platform, CN = ca, serialNumber = 42, emailAddress = ops@example.org\n/,
        );
        assert.match(text, /CA:TRUE, pathlen:2/);
        const ski = /Subject Key Identifier: \n\s+([0-9A-F:]+)\n/.exec(text)?.[1];
        assert.ok(ski);
        assert.match(text, new RegExp(`Authority Key Identifier: \\n\\s+(keyid:)?${ski}\\n`));
    });

    it("key identifiers: a leaf gets its own only with setSubjectKeyId, and always its CA's", async () => {
        const ca = await makeCa("ca");
        const caSki = new x509.X509Certificate(ca.cert).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
        const caKey = createPublicKey(createPrivateKey(ca.key)).export({ type: "spki", format: "der" });
        // Go's generateSubjectKeyID: SHA-1 of the uncompressed point, the end of the PKIX encoding.
        assert.equal(caSki, createHash("sha1").update(caKey.subarray(caKey.length - 65)).digest("hex"));
        for (const setSubjectKeyId of [true, false]) {
            const leaf = await makeLeaf(ca, { subject: { commonName: "a" } }, { allowedUses: ["client_auth"], setSubjectKeyId });
            const cert = new x509.X509Certificate(leaf.cert);
            assert.equal(leaf.outputs.setSubjectKeyId, setSubjectKeyId);
            assert.equal(cert.getExtension(x509.SubjectKeyIdentifierExtension) !== null, setSubjectKeyId);
            assert.equal(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, caSki);
        }
    });

    it("fails like the provider: CA key mismatch, CA without subject, max path length on a leaf, bad allowed use, bad IP", async () => {
        const ca = await makeCa("ca");
        const stranger = await apply(privateKeyHandler, ecdsa);
        await assert.rejects(
            makeLeaf({ ...ca, key: str(stranger.outputs.privateKeyPem) }, { subject: { commonName: "a" } }, { allowedUses: ["client_auth"] }),
            /doesn't match parent's PublicKey/,
        );
        await assert.rejects(
            apply(selfSignedCertHandler, { privateKeyPem: ca.key, isCaCertificate: true, validityPeriodHours: 1, allowedUses: ["cert_signing"] }),
            /Must contain at least one Distinguished Name/,
        );
        await assert.rejects(
            apply(selfSignedCertHandler, { privateKeyPem: ca.key, subject: { commonName: "x" }, maxPathLength: 1, validityPeriodHours: 1, allowedUses: [] }),
            /only CAs are allowed to specify MaxPathLen/,
        );
        await assert.rejects(
            apply(selfSignedCertHandler, { privateKeyPem: ca.key, validityPeriodHours: 1, allowedUses: ["certSigning"] }),
            /allowedUses: every element must be one of/,
        );
        await assert.rejects(apply(selfSignedCertHandler, { privateKeyPem: ca.key, validityPeriodHours: -1, allowedUses: [] }), /validityPeriodHours/);
        await assert.rejects(apply(selfSignedCertHandler, { validityPeriodHours: 1, allowedUses: [] }), /exactly one of privateKeyPem/);
        await assert.rejects(apply(certRequestHandler, { privateKeyPem: ca.key, ipAddresses: ["10.0.0.300"] }), /Invalid IP address/);
        await assert.rejects(apply(certRequestHandler, { privateKeyPem: ca.cert }), /unable to determine parser for PEM preamble: CERTIFICATE/);
    });

    it("parses IP addresses like net.ParseIP", () => {
        assert.equal(parseIp("127.0.0.1")?.toString("hex"), "7f000001");
        assert.equal(parseIp("::1")?.toString("hex"), "00000000000000000000000000000001");
        assert.equal(parseIp("2001:db8::8:800:200c:417a")?.toString("hex"), "20010db80000000000080800200c417a");
        assert.equal(parseIp("::ffff:1.2.3.4")?.toString("hex"), "00000000000000000000ffff01020304");
        assert.equal(parseIp("1:2:3:4:5:6:7::")?.toString("hex"), "00010002000300040005000600070000");
        for (const bad of ["", "1.2.3", "01.2.3.4", "1::2::3", "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "12345::", "localhost"]) {
            assert.equal(parseIp(bad), undefined, bad);
        }
    });
});

describe("tls diffs: defaults, replacement and renewal", () => {
    it("an unchanged second apply is 'same', with defaults set or left out", () => {
        assert.equal(genericDiff(privateKeyHandler, ecdsa, { ...ecdsa }).verdict, "same");
        assert.equal(genericDiff(privateKeyHandler, { algorithm: "ECDSA" }, { algorithm: "ECDSA", ecdsaCurve: "P224", rsaBits: 2048 }).verdict, "same");
        const cert = { privateKeyPem: "k", subject: { commonName: "a" }, validityPeriodHours: 1, allowedUses: ["server_auth"] };
        const explicit = { ...cert, earlyRenewalHours: 0, isCaCertificate: false, setSubjectKeyId: false, setAuthorityKeyId: false };
        assert.equal(genericDiff(selfSignedCertHandler, cert, explicit).verdict, "same");
        const signed = { certRequestPem: "r", caCertPem: "c", caPrivateKeyPem: "k", validityPeriodHours: 1, allowedUses: ["server_auth"] };
        assert.equal(genericDiff(locallySignedCertHandler, signed, { ...signed, earlyRenewalHours: 0, isCaCertificate: false, setSubjectKeyId: false }).verdict, "same");
        assert.equal(genericDiff(certRequestHandler, { privateKeyPem: "k", dnsNames: ["a"] }, { privateKeyPem: "k", dnsNames: ["a"] }).verdict, "same");
    });

    it("every input replaces except earlyRenewalHours, which updates in place", () => {
        assert.deepEqual(genericDiff(privateKeyHandler, ecdsa, { ...ecdsa, ecdsaCurve: "P384" }), { verdict: "replace", changed: ["ecdsaCurve"] });
        const signed = { certRequestPem: "r", caCertPem: "c", caPrivateKeyPem: "k", validityPeriodHours: 1, allowedUses: ["server_auth"] };
        assert.equal(genericDiff(locallySignedCertHandler, signed, { ...signed, caCertPem: "c2" }).verdict, "replace");
        assert.equal(genericDiff(locallySignedCertHandler, signed, { ...signed, allowedUses: ["client_auth"] }).verdict, "replace");
        assert.deepEqual(genericDiff(locallySignedCertHandler, signed, { ...signed, earlyRenewalHours: 2 }), { verdict: "update", changed: ["earlyRenewalHours"] });
        assert.equal(genericDiff(certRequestHandler, { privateKeyPem: "k", subject: { commonName: "a" } }, { privateKeyPem: "k", subject: { commonName: "b" } }).verdict, "replace");
    });

    it("a certificate in its early-renewal window is replaced (ready_for_renewal)", async () => {
        const ca = await makeCa("ca");
        const leaf = await makeLeaf(ca, { subject: { commonName: "a" } }, { allowedUses: ["client_auth"], validityPeriodHours: 10, earlyRenewalHours: 2 });
        const inputs = { certRequestPem: "r", caCertPem: ca.cert, caPrivateKeyPem: ca.key, validityPeriodHours: 10, allowedUses: ["client_auth"], earlyRenewalHours: 2 };
        const diff = locallySignedCertHandler.diff as NonNullable<Handler["diff"]>;
        assert.equal(await diff(ctx, leaf.id, inputs, inputs, leaf.outputs), undefined, "fresh: the engine's diff decides (same)");
        assert.deepEqual(await diff(ctx, leaf.id, inputs, { ...inputs, earlyRenewalHours: 9 }, leaf.outputs), undefined);
        assert.deepEqual(await diff(ctx, leaf.id, inputs, { ...inputs, earlyRenewalHours: 10 }, leaf.outputs), {
            verdict: "replace",
            changed: ["earlyRenewalHours", "readyForRenewal"],
        });
        const expired = { ...leaf.outputs, validityEndTime: new Date(Date.now() + 3_600_000).toISOString() };
        assert.deepEqual(await diff(ctx, leaf.id, inputs, inputs, expired), { verdict: "replace", changed: ["readyForRenewal"] });
        const selfDiff = selfSignedCertHandler.diff as NonNullable<Handler["diff"]>;
        assert.deepEqual(await selfDiff(ctx, ca.id, {}, {}, { ...ca.outputs, validityEndTime: "2000-01-01T00:00:00Z" }), {
            verdict: "replace",
            changed: ["readyForRenewal"],
        });
    });

    it("ready_for_renewal is planned true when validity is 0 or early renewal covers it; an update recomputes it", async () => {
        const key = await apply(privateKeyHandler, ecdsa);
        const zero = await apply(selfSignedCertHandler, { privateKeyPem: key.outputs.privateKeyPem, validityPeriodHours: 0, allowedUses: [] });
        assert.equal(zero.outputs.readyForRenewal, true);
        assert.equal(zero.outputs.validityStartTime, zero.outputs.validityEndTime);
        const inputs = { privateKeyPem: key.outputs.privateKeyPem, validityPeriodHours: 5, allowedUses: [] };
        const covered = await apply(selfSignedCertHandler, { ...inputs, earlyRenewalHours: 5 });
        assert.equal(covered.outputs.readyForRenewal, true);
        const fresh = await apply(selfSignedCertHandler, inputs);
        assert.equal(fresh.outputs.readyForRenewal, false);
        const update = selfSignedCertHandler.update as NonNullable<Handler["update"]>;
        const updated = await update(ctx, fresh.id, inputs, { ...inputs, earlyRenewalHours: 1 }, fresh.outputs);
        assert.equal(updated.earlyRenewalHours, 1);
        assert.equal(updated.certPem, fresh.outputs.certPem);
        assert.equal(updated.readyForRenewal, false);
    });
});

describe("tls through the harness engine (fixture program, no Docker)", () => {
    const fixture = path.join(__dirname, "fixtures", "tls");
    const statePath = path.join(tmp, "state.json");
    const options = (...config: string[]) => ({ projectDir: fixture, stack: "test", statePath, config, logStream: "ignore" as const });

    it("creates the PKI, keeps the keys secret, and a second up changes nothing", async () => {
        const first = await up(options());
        assert.equal(first.counts.create, 8, JSON.stringify(first.ops));
        assert.ok(isSecret(first.outputs.serverKeyPem), "privateKeyPem is a secret output");
        assert.ok(isSecret(first.outputs.caKeyPem));
        assert.ok(!isSecret(first.outputs.serverCert));
        const values = outputValues(first);
        const caCert = new X509Certificate(str(values.caCert));
        const serverCert = new X509Certificate(str(values.serverCert));
        assert.ok(serverCert.checkIssued(caCert) && serverCert.verify(caCert.publicKey));
        assert.equal(serverCert.checkHost("executor"), "executor");
        assert.equal(serverCert.checkIP("127.0.0.1"), "127.0.0.1");
        assert.ok(createPublicKey(createPrivateKey(str(values.serverKeyPem))).equals(serverCert.publicKey));
        assert.equal(values.serverReady, false);
        assert.equal(values.caKeyAlgorithm, "ECDSA");
        assert.match(str(values.rsaPublicKey), /^ssh-rsa /);

        const second = await up(options());
        assert.deepEqual(changed(second), {});
        assert.equal(outputValues(second).serverCert, values.serverCert);

        const updated = await up(options("earlyRenewalHours=48"));
        assert.deepEqual(Object.values(changed(updated)), ["update"]);
        assert.equal(outputValues(updated).serverCert, values.serverCert, "an early-renewal change keeps the certificate");

        const renewed = await up(options("earlyRenewalHours=720"));
        assert.deepEqual(Object.values(changed(renewed)), ["replace"], "inside the renewal window the certificate is replaced");
        assert.notEqual(outputValues(renewed).serverCert, values.serverCert);
    });
});
