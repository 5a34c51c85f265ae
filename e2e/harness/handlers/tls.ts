// tls provider (@pulumi/tls 5.6.1) and its PrivateKey, SelfSignedCert, CertRequest and
// LocallySignedCert resources, generating real keys and X.509 certificates.
//
// Followed: the SDK in node_modules/@pulumi/tls (privateKey.js, selfSignedCert.js, certRequest.js,
// locallySignedCert.js, provider.js, types/input.d.ts: input names, additionalSecretOutputs), and
// the Terraform provider it bridges, hashicorp/terraform-provider-tls at the pseudo-version
// v1.2.1-0.20260819085117-d044ca7c6f52 (main after v4.3.0, the first with the `*_wo` write-only
// attributes that the 5.6.x SDK has): internal/provider/resource_private_key.go, common_key.go,
// resource_self_signed_cert.go, resource_cert_request.go, resource_locally_signed_cert.go,
// common_cert.go, common.go, types.go and attribute_plan_modifier_bool/; plus what Go's
// crypto/x509 CreateCertificate/CreateCertificateRequest, encoding/pem and x/crypto/ssh do with
// the templates the provider builds. In short:
// - PrivateKey: every input replaces; ecdsa_curve defaults to P224, rsa_bits to 2048 (both
//   always in state). private_key_pem is PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY" or,
//   for ED25519, PKCS#8 "PRIVATE KEY"; private_key_pem_pkcs8 is PKCS#8; private_key_openssh is
//   the openssh-key-v1 format; public_key_pem is PKIX "PUBLIC KEY"; the OpenSSH public key and
//   its fingerprints ("aa:bb:..", "SHA256:<unpadded base64>") are "" for P224, which x/crypto/ssh
//   cannot encode. ID: SHA-1 hex of the PKIX DER. The three private-key outputs are secret.
// - Certificates: X.509 v3, random serial in [0, 2^128) (ID: its decimal form), NotBefore=now,
//   NotAfter=now+validity_period_hours; extensions in Go's order: KeyUsage (critical), ExtKeyUsage
//   (in allowed_uses order), BasicConstraints (always present and critical; CA flag from
//   is_ca_certificate, pathLen only when max_path_length > 0), SubjectKeyId (SHA-1 of the public
//   key when is_ca_certificate or set_subject_key_id), AuthorityKeyId (self-signed: only with
//   set_authority_key_id; locally signed: the CA's SubjectKeyId whenever issuer != subject),
//   SubjectAltName (DNS, IP, URI; critical when the subject is empty). Signature: SHA-256 for
//   RSA (PKCS#1 v1.5), P224 and P256, SHA-384 for P384, SHA-512 for P521, Ed25519 as is.
//   validity_start_time/end_time are RFC 3339 with the sub-second part (Go's time.MarshalText).
//   ready_for_renewal is true at creation when validity_period_hours is 0 or
//   early_renewal_hours >= validity_period_hours; a later plan replaces the certificate once
//   now >= validity_end_time - early_renewal_hours. Every input but early_renewal_hours
//   replaces; early_renewal_hours updates in place.
// - CertRequest: a PKCS#10 request with the subject and a SubjectAltName extension request; every
//   input replaces; ID: SHA-1 hex of the DER. LocallySignedCert takes subject, DNS names, IPs and
//   URIs from the request (only the attributes Go's pkix.Name knows: an email in the request's
//   subject is dropped) and signs with the CA key, which must match the CA certificate's key.
// The write-only `privateKeyPemWo`/`caPrivateKeyPemWo` inputs are not implemented (the fidelity
// rule fails a program that sets them).
//
// Certificates and requests are assembled with @peculiar/x509 and signed by node:crypto through a
// minimal WebCrypto stand-in, so every curve the provider supports (P224 too, which WebCrypto
// lacks) signs the same way.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
    type KeyObject,
    X509Certificate,
    createHash,
    createPrivateKey,
    createPublicKey,
    generateKeyPair,
    randomBytes,
    sign,
} from "node:crypto";
import { isIPv4 } from "node:net";
import { promisify } from "node:util";
import { containsUnknown, deepEqual, type Props } from "../wire";
import type { DiffResult, Handler, HandlerContext } from "./types";

const generateKeyPairAsync = promisify(generateKeyPair);

// The library knows the signature size of P-256/384/521 only; P-224 values are 28 bytes each.
if (!x509.AsnEcSignatureFormatter.namedCurveSize.has("P-224")) {
    x509.AsnEcSignatureFormatter.namedCurveSize.set("P-224", 28);
}

// ---- keys ----

export type Algorithm = "RSA" | "ECDSA" | "ED25519";
const algorithms: readonly Algorithm[] = ["RSA", "ECDSA", "ED25519"];

/** The provider's curve names, OpenSSL's, WebCrypto's, OpenSSH's and the ECDSA hash Go signs with. */
const curves = {
    P224: { openssl: "secp224r1", web: "P-224", ssh: undefined, hash: "SHA-256" },
    P256: { openssl: "prime256v1", web: "P-256", ssh: "nistp256", hash: "SHA-256" },
    P384: { openssl: "secp384r1", web: "P-384", ssh: "nistp384", hash: "SHA-384" },
    P521: { openssl: "secp521r1", web: "P-521", ssh: "nistp521", hash: "SHA-512" },
} as const;
type Curve = keyof typeof curves;

function curveOf(key: KeyObject): Curve {
    const name = key.asymmetricKeyDetails?.namedCurve;
    const found = (Object.keys(curves) as Curve[]).find((c) => curves[c].openssl === name);
    if (found === undefined) {
        throw new Error(`x509: unknown elliptic curve ${name}`);
    }
    return found;
}

function algorithmOf(key: KeyObject): Algorithm {
    switch (key.asymmetricKeyType) {
        case "rsa":
            return "RSA";
        case "ec":
            curveOf(key);
            return "ECDSA";
        case "ed25519":
            return "ED25519";
        default:
            throw new Error(`unsupported private key type: ${key.asymmetricKeyType}`);
    }
}

interface PemBlock {
    type: string;
    der: Buffer;
}

/** The first PEM block, as Go's pem.Decode finds it. */
function decodePem(text: string): PemBlock | undefined {
    const match = /-----BEGIN ([^\n-]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
    if (match === null) {
        return undefined;
    }
    const body = match[2]
        .split(/\r?\n/)
        .filter((line) => !line.includes(":")) // RFC 1421 headers
        .join("");
    return { type: match[1], der: Buffer.from(body.replace(/\s+/g, ""), "base64") };
}

function encodePem(type: string, der: Buffer): string {
    const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
    return `-----BEGIN ${type}-----\n${lines.join("\n")}${lines.length > 0 ? "\n" : ""}-----END ${type}-----\n`;
}

const knownPreambles = ["PUBLIC KEY", "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "CERTIFICATE", "CERTIFICATE REQUEST"];
const keyFormats: Record<string, "pkcs1" | "sec1" | "pkcs8"> = {
    "RSA PRIVATE KEY": "pkcs1",
    "EC PRIVATE KEY": "sec1",
    "PRIVATE KEY": "pkcs8",
};

/** parsePrivateKeyPEM: the key and its algorithm, or the provider's errors. */
export function parsePrivateKeyPem(text: string): { key: KeyObject; algorithm: Algorithm } {
    const block = decodePem(text);
    if (block === undefined) {
        throw new Error("failed to decode PEM block");
    }
    if (!knownPreambles.includes(block.type)) {
        throw new Error(`unsupported PEM preamble/type: ${block.type}`);
    }
    const format = keyFormats[block.type];
    if (format === undefined) {
        throw new Error(`unable to determine parser for PEM preamble: ${block.type}`);
    }
    let key: KeyObject;
    try {
        key = createPrivateKey({ key: block.der, format: "der", type: format });
    } catch (err) {
        throw new Error(`failed to parse private key given PEM preamble '${block.type}': ${(err as Error).message}`);
    }
    return { key, algorithm: algorithmOf(key) };
}

/** The public half (Node's createPublicKey takes private KeyObjects only). */
function publicOf(key: KeyObject): KeyObject {
    return key.type === "public" ? key : createPublicKey(key);
}

function jwk(key: KeyObject): Record<string, string> {
    return key.export({ format: "jwk" }) as Record<string, string>;
}

const b64u = (s: string) => Buffer.from(s, "base64url");

/** elliptic.Marshal: the uncompressed point, which ends the PKIX encoding (JWK has no P-224). */
function ecPoint(publicKey: KeyObject): Buffer {
    const size = { P224: 28, P256: 32, P384: 48, P521: 66 }[curveOf(publicKey)];
    const spki = publicOf(publicKey).export({ type: "spki", format: "der" });
    const point = spki.subarray(spki.length - (1 + 2 * size));
    if (point[0] !== 0x04) {
        throw new Error("expected an uncompressed EC point");
    }
    return Buffer.from(point);
}

// SSH wire encoding (RFC 4251).
function sshString(data: Buffer | string): Buffer {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    return Buffer.concat([len, bytes]);
}

function sshMpint(unsigned: Buffer): Buffer {
    let start = 0;
    while (start < unsigned.length && unsigned[start] === 0) {
        start++;
    }
    const magnitude = unsigned.subarray(start);
    return sshString(magnitude.length > 0 && magnitude[0] & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude);
}

function sshUint32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
}

/** The key's SSH type and public-key blob (ssh.NewPublicKey), or undefined for P224. */
function sshPublicKey(publicKey: KeyObject): { type: string; blob: Buffer } | undefined {
    switch (algorithmOf(publicKey)) {
        case "RSA": {
            const { n, e } = jwk(publicKey);
            return { type: "ssh-rsa", blob: Buffer.concat([sshString("ssh-rsa"), sshMpint(b64u(e)), sshMpint(b64u(n))]) };
        }
        case "ECDSA": {
            const ssh = curves[curveOf(publicKey)].ssh;
            if (ssh === undefined) {
                return undefined;
            }
            const type = `ecdsa-sha2-${ssh}`;
            return { type, blob: Buffer.concat([sshString(type), sshString(ssh), sshString(ecPoint(publicKey))]) };
        }
        case "ED25519":
            return { type: "ssh-ed25519", blob: Buffer.concat([sshString("ssh-ed25519"), sshString(b64u(jwk(publicKey).x))]) };
    }
}

/** ssh.MarshalPrivateKey(key, ""): unencrypted openssh-key-v1, PEM-armoured by encoding/pem. */
function opensshPrivateKey(key: KeyObject): string {
    const pub = sshPublicKey(createPublicKey(key));
    if (pub === undefined) {
        return "";
    }
    const k = jwk(key);
    let rest: Buffer;
    switch (algorithmOf(key)) {
        case "RSA":
            rest = Buffer.concat([sshMpint(b64u(k.n)), sshMpint(b64u(k.e)), sshMpint(b64u(k.d)), sshMpint(b64u(k.qi)), sshMpint(b64u(k.p)), sshMpint(b64u(k.q))]);
            break;
        case "ECDSA": {
            const ssh = curves[curveOf(key)].ssh as string;
            rest = Buffer.concat([sshString(ssh), sshString(ecPoint(createPublicKey(key))), sshMpint(b64u(k.d))]);
            break;
        }
        case "ED25519":
            rest = Buffer.concat([sshString(b64u(k.x)), sshString(Buffer.concat([b64u(k.d), b64u(k.x)]))]);
            break;
    }
    const check = randomBytes(4);
    const parts = [check, check, sshString(pub.type), rest, sshString("")];
    for (let i = 1, len = Buffer.concat(parts).length; (len + i - 1) % 8 !== 0; i++) {
        parts.push(Buffer.from([i]));
    }
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0"),
        sshString("none"),
        sshString("none"),
        sshString(""),
        sshUint32(1),
        sshString(pub.blob),
        sshString(Buffer.concat(parts)),
    ]);
    return encodePem("OPENSSH PRIVATE KEY", body);
}

const goAsciiSpace = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);
/** UTF-8 encodings of the non-ASCII runes Go's unicode.IsSpace accepts. */
const goUnicodeSpaces = ["\u0085", "\u00a0", "\u1680", ...Array.from({ length: 11 }, (_, i) => String.fromCharCode(0x2000 + i)), "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"].map((s) =>
    Buffer.from(s, "utf8"),
);

/** strings.TrimSpace on bytes that start with a DER SEQUENCE tag (so only the end can trim). */
function goTrimSpaceEnd(bytes: Buffer): Buffer {
    let end = bytes.length;
    while (end > 0) {
        if (goAsciiSpace.has(bytes[end - 1])) {
            end--;
            continue;
        }
        const space = goUnicodeSpaces.find((s) => s.length <= end && bytes.subarray(end - s.length, end).equals(s));
        if (space === undefined) {
            break;
        }
        end -= space.length;
    }
    return bytes.subarray(0, end);
}

/** hashForState: SHA-1 hex of the (space-trimmed) value. */
function hashForState(der: Buffer): string {
    return der.length === 0 ? "" : createHash("sha1").update(goTrimSpaceEnd(der)).digest("hex");
}

/** The private-key resource's computed attributes for a key. */
export function keyOutputs(key: KeyObject): Props {
    const publicKey = createPublicKey(key);
    const spki = publicKey.export({ type: "spki", format: "der" });
    const algorithm = algorithmOf(key);
    const pemType = algorithm === "RSA" ? "pkcs1" : algorithm === "ECDSA" ? "sec1" : "pkcs8";
    const ssh = sshPublicKey(publicKey);
    return {
        id: hashForState(spki),
        privateKeyPem: key.export({ type: pemType, format: "pem" }) as string,
        privateKeyPemPkcs8: key.export({ type: "pkcs8", format: "pem" }) as string,
        privateKeyOpenssh: opensshPrivateKey(key),
        publicKeyPem: encodePem("PUBLIC KEY", spki),
        publicKeyOpenssh: ssh ? `${ssh.type} ${ssh.blob.toString("base64")}\n` : "",
        publicKeyFingerprintMd5: ssh ? (createHash("md5").update(ssh.blob).digest("hex").match(/../g) ?? []).join(":") : "",
        publicKeyFingerprintSha256: ssh ? `SHA256:${createHash("sha256").update(ssh.blob).digest("base64").replace(/=+$/, "")}` : "",
    };
}

async function generateKey(inputs: Props): Promise<KeyObject> {
    const algorithm = inputs.algorithm as Algorithm;
    switch (algorithm) {
        case "RSA": {
            const bits = inputs.rsaBits as number;
            if (!Number.isInteger(bits) || bits < 1024) {
                // Go 1.24+ refuses to generate keys under 1024 bits.
                throw new Error(`Unable to generate Key from configuration: crypto/rsa: ${bits}-bit keys are insecure`);
            }
            return (await generateKeyPairAsync("rsa", { modulusLength: bits, publicExponent: 0x10001 })).privateKey;
        }
        case "ECDSA": {
            const curve = curves[inputs.ecdsaCurve as Curve];
            return (await generateKeyPairAsync("ec", { namedCurve: curve.openssl })).privateKey;
        }
        case "ED25519":
            return (await generateKeyPairAsync("ed25519")).privateKey;
        default:
            throw new Error(`Invalid Key Algorithm: Key Algorithm "${algorithm}" is not supported`);
    }
}

// ---- signing through node:crypto ----

interface NodeKey {
    algorithm: { name: string; namedCurve?: string; hash?: string };
    type: "private" | "public";
    extractable: boolean;
    usages: string[];
    node: KeyObject;
}

/** The WebCrypto algorithm Go's x509 signs with for this (private or public) key. */
function signingAlgorithm(key: KeyObject): NodeKey["algorithm"] {
    switch (algorithmOf(key)) {
        case "RSA":
            return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
        case "ECDSA": {
            const curve = curves[curveOf(key)];
            return { name: "ECDSA", namedCurve: curve.web, hash: curve.hash };
        }
        case "ED25519":
            return { name: "Ed25519" };
    }
}

function nodeKey(key: KeyObject): NodeKey {
    return { algorithm: signingAlgorithm(key), type: key.type === "private" ? "private" : "public", extractable: true, usages: [], node: key };
}

/** Just the SubtleCrypto calls the generators make, done by node:crypto (which knows P-224). */
const nodeCrypto = {
    getRandomValues<T extends ArrayBufferView>(array: T): T {
        randomBytes(array.byteLength).copy(Buffer.from(array.buffer, array.byteOffset, array.byteLength));
        return array;
    },
    subtle: {
        async sign(algorithm: { name: string; hash?: string | { name: string } }, key: NodeKey, data: ArrayBuffer | ArrayBufferView) {
            const bytes = ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
            const hash = typeof algorithm.hash === "string" ? algorithm.hash : algorithm.hash?.name;
            const digest = hash === undefined ? null : hash.replace("-", "").toLowerCase();
            const signature =
                algorithm.name === "ECDSA"
                    ? sign(digest, bytes, { key: key.node, dsaEncoding: "ieee-p1363" })
                    : sign(algorithm.name === "Ed25519" ? null : digest, bytes, key.node);
            return signature.buffer.slice(signature.byteOffset, signature.byteOffset + signature.byteLength);
        },
        async exportKey(format: string, key: NodeKey) {
            if (format !== "spki") {
                throw new Error(`exportKey(${format}) is not needed by the harness`);
            }
            const der = publicOf(key.node).export({ type: "spki", format: "der" });
            return der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength);
        },
    },
} as unknown as Parameters<typeof x509.X509CertificateGenerator.create>[1];

// ---- certificate contents ----

const keyUsages: Record<string, x509.KeyUsageFlags> = {
    digital_signature: x509.KeyUsageFlags.digitalSignature,
    content_commitment: x509.KeyUsageFlags.nonRepudiation,
    key_encipherment: x509.KeyUsageFlags.keyEncipherment,
    data_encipherment: x509.KeyUsageFlags.dataEncipherment,
    key_agreement: x509.KeyUsageFlags.keyAgreement,
    cert_signing: x509.KeyUsageFlags.keyCertSign,
    crl_signing: x509.KeyUsageFlags.cRLSign,
    encipher_only: x509.KeyUsageFlags.encipherOnly,
    decipher_only: x509.KeyUsageFlags.decipherOnly,
};

const extendedKeyUsages: Record<string, string> = {
    any_extended: "2.5.29.37.0",
    server_auth: "1.3.6.1.5.5.7.3.1",
    client_auth: "1.3.6.1.5.5.7.3.2",
    code_signing: "1.3.6.1.5.5.7.3.3",
    email_protection: "1.3.6.1.5.5.7.3.4",
    ipsec_end_system: "1.3.6.1.5.5.7.3.5",
    ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
    ipsec_user: "1.3.6.1.5.5.7.3.7",
    timestamping: "1.3.6.1.5.5.7.3.8",
    ocsp_signing: "1.3.6.1.5.5.7.3.9",
    microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
    netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
    microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
    microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

export const supportedKeyUsages = [...Object.keys(keyUsages), ...Object.keys(extendedKeyUsages)].sort();

const oid = {
    country: "2.5.4.6",
    province: "2.5.4.8",
    locality: "2.5.4.7",
    street: "2.5.4.9",
    postalCode: "2.5.4.17",
    organization: "2.5.4.10",
    organizationalUnit: "2.5.4.11",
    commonName: "2.5.4.3",
    serialNumber: "2.5.4.5",
    emailAddress: "1.2.840.113549.1.9.1",
};

/** Go's encoding/asn1 marshals a string as PrintableString when every character allows it, else UTF8String. */
function directoryString(value: string): x509.JsonAttributeObject {
    return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value) ? { printableString: value } : { utf8String: value };
}

/** The subject's values by attribute, as Go's pkix.Name holds them. */
interface NameFields {
    country: string[];
    province: string[];
    locality: string[];
    street: string[];
    postalCode: string[];
    organization: string[];
    organizationalUnit: string[];
    commonName: string;
    serialNumber: string;
    emailAddress?: string;
}

/** createSubjectDistinguishedNames: the program's subject as pkix.Name fields. */
function subjectFields(subject: Props | undefined): NameFields {
    const s = subject ?? {};
    const one = (v: unknown) => (typeof v === "string" ? [v] : []);
    return {
        country: one(s.country),
        province: one(s.province),
        locality: one(s.locality),
        street: Array.isArray(s.streetAddresses) ? (s.streetAddresses as string[]) : [],
        postalCode: one(s.postalCode),
        organization: one(s.organization),
        organizationalUnit: one(s.organizationalUnit),
        commonName: typeof s.commonName === "string" ? s.commonName : "",
        serialNumber: typeof s.serialNumber === "string" ? s.serialNumber : "",
        emailAddress: typeof s.emailAddress === "string" ? s.emailAddress : undefined,
    };
}

/** pkix.Name.FillFromRDNSequence: known attributes only (an emailAddress is not kept). */
function parsedNameFields(name: x509.Name): NameFields {
    const last = (values: string[]) => values[values.length - 1] ?? "";
    return {
        country: name.getField(oid.country),
        province: name.getField(oid.province),
        locality: name.getField(oid.locality),
        street: name.getField(oid.street),
        postalCode: name.getField(oid.postalCode),
        organization: name.getField(oid.organization),
        organizationalUnit: name.getField(oid.organizationalUnit),
        commonName: last(name.getField(oid.commonName)),
        serialNumber: last(name.getField(oid.serialNumber)),
    };
}

function derLength(n: number): Buffer {
    if (n < 0x80) {
        return Buffer.from([n]);
    }
    const bytes = Buffer.from(hexBytes(BigInt(n)), "hex");
    return Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]);
}

/** The DER of one AttributeTypeAndValue with a 2.5.4.x type, for ordering a SET OF. */
function attributeDer(type: string, value: x509.JsonAttributeObject): Buffer {
    const tag = value.printableString !== undefined ? 0x13 : 0x0c;
    const text = Buffer.from(value.printableString ?? value.utf8String ?? "", "utf8");
    const arcs = type.split(".").map(Number);
    const id = Buffer.from([0x55, ...arcs.slice(2)]); // 2.5 -> 0x55; the remaining arcs are < 128 here
    const body = Buffer.concat([Buffer.from([0x06]), derLength(id.length), id, Buffer.from([tag]), derLength(text.length), text]);
    return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** pkix.Name.ToRDNSequence: one RDN per attribute type, in Go's order (a multi-valued RDN sorted as DER wants). */
function toName(fields: NameFields): x509.Name {
    const rdns: x509.JsonNameParams = [];
    const add = (type: string, values: string[]) => {
        if (values.length > 0) {
            const sorted = values.map(directoryString).sort((a, b) => Buffer.compare(attributeDer(type, a), attributeDer(type, b)));
            rdns.push({ [type]: sorted });
        }
    };
    add(oid.country, fields.country);
    add(oid.province, fields.province);
    add(oid.locality, fields.locality);
    add(oid.street, fields.street);
    add(oid.postalCode, fields.postalCode);
    add(oid.organization, fields.organization);
    add(oid.organizationalUnit, fields.organizationalUnit);
    add(oid.commonName, fields.commonName === "" ? [] : [fields.commonName]);
    add(oid.serialNumber, fields.serialNumber === "" ? [] : [fields.serialNumber]);
    if (fields.emailAddress !== undefined) {
        rdns.push({ [oid.emailAddress]: [{ ia5String: fields.emailAddress }] });
    }
    return new x509.Name(rdns);
}

const emptyName = Buffer.from([0x30, 0x00]);
const nameDer = (name: x509.Name) => Buffer.from(name.toArrayBuffer());

/** net.ParseIP: 4 or 16 bytes, or undefined (no zones, no leading zeros in IPv4). */
export function parseIp(text: string): Buffer | undefined {
    if (isIPv4(text)) {
        return Buffer.from(text.split(".").map(Number));
    }
    // An embedded IPv4 tail ("::ffff:1.2.3.4") stands for the last two groups.
    const v4 = /^(.*:)([^:]+\.[^:]*)$/.exec(text);
    if (v4 !== null) {
        if (!isIPv4(v4[2])) {
            return undefined;
        }
        const [a, b, c, d] = v4[2].split(".").map(Number);
        return parseIp(`${v4[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
    }
    const halves = text.split("::");
    if (halves.length > 2) {
        return undefined;
    }
    const groups = halves.map((h) => (h === "" ? [] : h.split(":")));
    const count = groups.reduce((n, g) => n + g.length, 0);
    if (groups.flat().some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g)) || (halves.length === 1 ? count !== 8 : count > 7)) {
        return undefined;
    }
    const words = halves.length === 1 ? groups[0] : [...groups[0], ...Array<string>(8 - count).fill("0"), ...groups[1]];
    const bytes = Buffer.alloc(16);
    words.forEach((w, i) => bytes.writeUInt16BE(parseInt(w, 16), i * 2));
    return bytes;
}

/** How Go's marshalSANs writes an IP: IPv4 (also IPv4-mapped IPv6) as 4 bytes, else 16. */
function sanIp(bytes: Buffer): string {
    const mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    if (bytes.length === 4 || mapped) {
        return [...bytes.subarray(bytes.length - 4)].join(".");
    }
    return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(":");
}

interface AltNames {
    dnsNames: string[];
    ips: Buffer[];
    uris: string[];
}

const isIA5 = (s: string) => [...s].every((c) => c.charCodeAt(0) < 0x80);

function altNamesFromInputs(inputs: Props): AltNames {
    const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : []);
    const ips = list(inputs.ipAddresses).map((ip) => {
        const bytes = parseIp(ip);
        if (bytes === undefined) {
            throw new Error(`Invalid IP address: Failed to parse ${JSON.stringify(ip)}`);
        }
        return bytes;
    });
    const uris = list(inputs.uris);
    for (const uri of uris) {
        // url.Parse refuses control characters, spaces and broken %-escapes.
        if ([...uri].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f) || /%(?![0-9A-Fa-f]{2})/.test(uri)) {
            throw new Error(`Invalid URI: Failed to parse ${JSON.stringify(uri)}`);
        }
    }
    return { dnsNames: list(inputs.dnsNames), ips, uris };
}

/** marshalSANs (DNS, then IP, then URI), or undefined when there are none. */
function altNameExtension(names: AltNames, critical: boolean): x509.Extension | undefined {
    for (const value of [...names.dnsNames, ...names.uris]) {
        if (!isIA5(value)) {
            throw new Error(`x509: ${JSON.stringify(value)} cannot be encoded as an IA5String`);
        }
    }
    const json: x509.JsonGeneralNames = [
        ...names.dnsNames.map((value) => ({ type: "dns" as const, value })),
        ...names.ips.map((ip) => ({ type: "ip" as const, value: sanIp(ip) })),
        ...names.uris.map((value) => ({ type: "url" as const, value })),
    ];
    return json.length > 0 ? new x509.SubjectAlternativeNameExtension(json, critical) : undefined;
}

/** generateSubjectKeyID: SHA-1 over the key as Go marshals it (not the SPKI bit string for Ed25519). */
function subjectKeyId(publicKey: KeyObject): string {
    let bytes: Buffer;
    switch (algorithmOf(publicKey)) {
        case "RSA":
            bytes = publicKey.export({ type: "pkcs1", format: "der" });
            break;
        case "ECDSA":
            bytes = ecPoint(publicKey);
            break;
        case "ED25519": {
            const raw = b64u(jwk(publicKey).x);
            bytes = Buffer.concat([Buffer.from([0x04, raw.length]), raw]); // asn1.Marshal([]byte): OCTET STRING
            break;
        }
    }
    return createHash("sha1").update(bytes).digest("hex");
}

/** An unsigned integer as hex of whole bytes (the library adds the sign byte DER needs). */
function hexBytes(n: bigint): string {
    const hex = n.toString(16);
    return hex.length % 2 === 0 ? hex : `0${hex}`;
}

/** A copy with its own ArrayBuffer (a Buffer may be a view into Node's shared pool). */
function bytesOf(data: Buffer | ArrayBuffer): Uint8Array {
    return new Uint8Array(data instanceof ArrayBuffer ? data.slice(0) : data);
}

/** time.Time.MarshalText in UTC: RFC 3339 with trailing zeros of the fraction dropped. */
export function rfc3339(date: Date): string {
    return date.toISOString().replace(/\.?0+Z$/, "Z");
}

interface CertificateSpec {
    subject: x509.Name;
    altNames: AltNames;
    publicKey: KeyObject;
    issuer?: { name: x509.Name; subjectKeyId?: string; publicKey: KeyObject };
    signer: KeyObject;
    inputs: Props;
    /** Self-signed certificates may ask for an authority key identifier (their own). */
    setAuthorityKeyId: boolean;
}

interface IssuedCertificate {
    id: string;
    certPem: string;
    validityStartTime: string;
    validityEndTime: string;
}

/** createCertificate followed by Go's x509.CreateCertificate. */
async function createCertificate(spec: CertificateSpec): Promise<IssuedCertificate> {
    const { inputs } = spec;
    const hours = inputs.validityPeriodHours as number;
    const notBefore = new Date();
    const notAfter = new Date(notBefore.getTime() + hours * 3_600_000);
    const serialBytes = randomBytes(16);
    const serial = BigInt(`0x${serialBytes.toString("hex")}`);

    const uses = (inputs.allowedUses as string[] | undefined) ?? [];
    const keyUsage = uses.reduce((acc, u) => acc | (keyUsages[u] ?? 0), 0);
    const extKeyUsage = uses.filter((u) => extendedKeyUsages[u] !== undefined).map((u) => extendedKeyUsages[u]);

    const subjectDer = nameDer(spec.subject);
    const isCa = inputs.isCaCertificate === true;
    if (isCa && subjectDer.equals(emptyName)) {
        throw new Error("Invalid Certificate Subject: Must contain at least one Distinguished Name when creating Certificate Authority (CA)");
    }
    const maxPathLength = typeof inputs.maxPathLength === "number" && inputs.maxPathLength >= 0 ? inputs.maxPathLength : 0;
    if (!isCa && maxPathLength > 0) {
        throw new Error("Failed to create certificate: x509: only CAs are allowed to specify MaxPathLen");
    }
    const ownKeyId = isCa || inputs.setSubjectKeyId === true ? subjectKeyId(spec.publicKey) : undefined;

    let authorityKeyId: string | undefined;
    const issuerName = spec.issuer?.name ?? spec.subject;
    if (spec.issuer === undefined) {
        if (spec.setAuthorityKeyId) {
            if (ownKeyId === undefined) {
                throw new Error("Invalid Certificate Authority: Could not determine Authority Key Identifier");
            }
            authorityKeyId = ownKeyId;
        }
    } else {
        if (!nameDer(spec.issuer.name).equals(subjectDer) && spec.issuer.subjectKeyId) {
            authorityKeyId = spec.issuer.subjectKeyId;
        }
        if (!createPublicKey(spec.signer).equals(spec.issuer.publicKey)) {
            throw new Error("Failed to create certificate: x509: provided PrivateKey doesn't match parent's PublicKey");
        }
    }

    const extensions: x509.Extension[] = [];
    if (keyUsage !== 0) {
        extensions.push(new x509.KeyUsagesExtension(keyUsage, true));
    }
    if (extKeyUsage.length > 0) {
        extensions.push(new x509.ExtendedKeyUsageExtension(extKeyUsage, false));
    }
    extensions.push(new x509.BasicConstraintsExtension(isCa, isCa && maxPathLength > 0 ? maxPathLength : undefined, true));
    if (ownKeyId !== undefined) {
        extensions.push(new x509.SubjectKeyIdentifierExtension(ownKeyId, false));
    }
    if (authorityKeyId !== undefined) {
        extensions.push(new x509.AuthorityKeyIdentifierExtension(authorityKeyId, false));
    }
    const san = altNameExtension(spec.altNames, subjectDer.equals(emptyName));
    if (san !== undefined) {
        extensions.push(san);
    }

    const whole = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000); // ASN.1 times hold whole seconds
    const cert = await x509.X509CertificateGenerator.create(
        {
            serialNumber: hexBytes(serial),
            subject: spec.subject,
            issuer: issuerName,
            notBefore: whole(notBefore),
            notAfter: whole(notAfter),
            publicKey: bytesOf(spec.publicKey.export({ type: "spki", format: "der" })),
            signingKey: nodeKey(spec.signer) as unknown as x509.X509CertificateCreateWithKeyParams["signingKey"],
            extensions,
        },
        nodeCrypto,
    );
    return {
        id: serial.toString(10),
        certPem: encodePem("CERTIFICATE", Buffer.from(cert.rawData)),
        validityStartTime: rfc3339(notBefore),
        validityEndTime: rfc3339(notAfter),
    };
}

function parseCertificatePem(text: string): x509.X509Certificate {
    const block = decodePem(text);
    if (block === undefined) {
        throw new Error('failed to decode PEM of expected type "CERTIFICATE" from bytes');
    }
    if (block.type !== "CERTIFICATE") {
        throw new Error(`invalid PEM type - expected "CERTIFICATE", got "${block.type}"`);
    }
    return new x509.X509Certificate(bytesOf(block.der));
}

function parseCertRequestPem(text: string): x509.Pkcs10CertificateRequest {
    const block = decodePem(text);
    if (block === undefined) {
        throw new Error('failed to decode PEM of expected type "CERTIFICATE REQUEST" from bytes');
    }
    if (block.type !== "CERTIFICATE REQUEST") {
        throw new Error(`invalid PEM type - expected "CERTIFICATE REQUEST", got "${block.type}"`);
    }
    return new x509.Pkcs10CertificateRequest(bytesOf(block.der));
}

// ---- validation (the schema's validators, run at check time like the provider's) ----

function known(value: unknown): boolean {
    return value !== undefined && value !== null && !containsUnknown(value);
}

function checkAtLeast(inputs: Props, key: string, min: number): void {
    const v = inputs[key];
    if (known(v) && (typeof v !== "number" || !Number.isInteger(v) || v < min)) {
        throw new Error(`${key}: value must be an integer of at least ${min}, got ${JSON.stringify(v)}`);
    }
}

function checkOneOf(inputs: Props, key: string, allowed: readonly string[]): void {
    const v = inputs[key];
    if (known(v) && !allowed.includes(v as string)) {
        throw new Error(`${key}: value must be one of: ${allowed.map((a) => `"${a}"`).join(", ")}, got ${JSON.stringify(v)}`);
    }
}

function checkStringList(inputs: Props, key: string, allowed?: readonly string[]): void {
    const v = inputs[key];
    if (!known(v)) {
        return;
    }
    if (!Array.isArray(v)) {
        throw new Error(`${key}: must be a list of strings`);
    }
    for (const item of v) {
        if (!known(item)) {
            continue;
        }
        if (typeof item !== "string" || (allowed && !allowed.includes(item)) || (!allowed && item.length === 0)) {
            const rule = allowed ? `one of: ${allowed.map((a) => `"${a}"`).join(", ")}` : "a string of at least 1 character";
            throw new Error(`${key}: every element must be ${rule}, got ${JSON.stringify(item)}`);
        }
    }
}

function checkPrivateKeyPem(inputs: Props, key: string): void {
    if (inputs[key] === undefined || inputs[key] === null) {
        // ExactlyOneOf(key, keyWo); the write-only variant is not implemented here.
        throw new Error(`${key}: exactly one of ${key} or ${key}Wo must be set`);
    }
}

function checkCertificateInputs(inputs: Props): void {
    checkAtLeast(inputs, "validityPeriodHours", 0);
    checkAtLeast(inputs, "earlyRenewalHours", 0);
    checkAtLeast(inputs, "maxPathLength", -1);
    checkStringList(inputs, "allowedUses", supportedKeyUsages);
}

// ---- renewal ----

/** ready_for_renewal as planned at create and update (the ReadyForRenewal plan modifier). */
function readyAtPlan(inputs: Props): boolean {
    const validity = inputs.validityPeriodHours as number;
    return validity === 0 || (inputs.earlyRenewalHours as number) >= validity;
}

/** modifyPlanIfCertificateReadyForRenewal: once in the early-renewal window, the plan replaces. */
function renewalDiff(olds: Props, news: Props, oldOutputs: Props, defaults: Props): DiffResult | undefined {
    const end = Date.parse(String(oldOutputs.validityEndTime));
    const early = news.earlyRenewalHours ?? defaults.earlyRenewalHours;
    if (!Number.isFinite(end) || typeof early !== "number" || end - early * 3_600_000 > Date.now()) {
        return undefined;
    }
    const a = { ...defaults, ...olds };
    const b = { ...defaults, ...news };
    const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => containsUnknown(b[k]) || !deepEqual(a[k], b[k]));
    return { verdict: "replace", changed: [...changed, "readyForRenewal"] };
}

// ---- handlers ----

const subjectPaths = [
    "subject.commonName",
    "subject.country",
    "subject.emailAddress",
    "subject.locality",
    "subject.organization",
    "subject.organizationalUnit",
    "subject.postalCode",
    "subject.province",
    "subject.serialNumber",
    "subject.streetAddresses[]",
];

const privateKeyDefaults: Props = { ecdsaCurve: "P224", rsaBits: 2048 };

export const privateKeyHandler: Handler = {
    type: "tls:index/privateKey:PrivateKey",
    inputs: ["algorithm", "ecdsaCurve", "rsaBits"],
    forceNew: "*",
    defaults: privateKeyDefaults,
    secretOutputs: ["privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"],
    async check(_ctx, news) {
        if (news.algorithm === undefined || news.algorithm === null) {
            throw new Error("algorithm: required");
        }
        checkOneOf(news, "algorithm", algorithms);
        checkOneOf(news, "ecdsaCurve", Object.keys(curves));
        return news;
    },
    async create(_ctx, inputs) {
        const all = { ...privateKeyDefaults, ...inputs };
        const { id, ...outputs } = keyOutputs(await generateKey(all));
        return { id: id as string, outputs: { ...all, ...outputs } };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};

const selfSignedDefaults: Props = { earlyRenewalHours: 0, isCaCertificate: false, setSubjectKeyId: false, setAuthorityKeyId: false };

export const selfSignedCertHandler: Handler = {
    type: "tls:index/selfSignedCert:SelfSignedCert",
    inputs: [
        "allowedUses[]",
        "dnsNames[]",
        "earlyRenewalHours",
        "ipAddresses[]",
        "isCaCertificate",
        "maxPathLength",
        "privateKeyPem",
        "setAuthorityKeyId",
        "setSubjectKeyId",
        ...subjectPaths,
        "uris[]",
        "validityPeriodHours",
    ],
    forceNew: "*",
    updatable: ["earlyRenewalHours"],
    defaults: selfSignedDefaults,
    secretOutputs: ["privateKeyPem"],
    async check(_ctx, news) {
        checkPrivateKeyPem(news, "privateKeyPem");
        checkCertificateInputs(news);
        checkStringList(news, "ipAddresses");
        checkStringList(news, "uris");
        return news;
    },
    async diff(_ctx, _id, olds, news, oldOutputs) {
        return renewalDiff(olds, news, oldOutputs, selfSignedDefaults);
    },
    async create(_ctx, inputs) {
        const all = { ...selfSignedDefaults, ...inputs };
        const { key, algorithm } = parsePrivateKeyPem(inputs.privateKeyPem as string);
        const cert = await createCertificate({
            subject: toName(subjectFields(inputs.subject as Props | undefined)),
            altNames: altNamesFromInputs(inputs),
            publicKey: createPublicKey(key),
            signer: key,
            inputs: all,
            setAuthorityKeyId: all.setAuthorityKeyId === true,
        });
        const { id, ...computed } = cert;
        return { id, outputs: { ...all, ...computed, keyAlgorithm: algorithm, readyForRenewal: readyAtPlan(all) } };
    },
    async update(_ctx, _id, _olds, news, oldOutputs) {
        const all = { ...selfSignedDefaults, ...news };
        return { ...oldOutputs, ...all, readyForRenewal: readyAtPlan(all) };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};

export const certRequestHandler: Handler = {
    type: "tls:index/certRequest:CertRequest",
    inputs: ["dnsNames[]", "ipAddresses[]", "privateKeyPem", ...subjectPaths, "uris[]"],
    forceNew: "*",
    secretOutputs: ["privateKeyPem"],
    async check(_ctx, news) {
        checkPrivateKeyPem(news, "privateKeyPem");
        checkStringList(news, "ipAddresses");
        checkStringList(news, "uris");
        return news;
    },
    async create(_ctx, inputs) {
        const { key, algorithm } = parsePrivateKeyPem(inputs.privateKeyPem as string);
        const san = altNameExtension(altNamesFromInputs(inputs), false);
        const csr = await x509.Pkcs10CertificateRequestGenerator.create(
            {
                name: toName(subjectFields(inputs.subject as Props | undefined)),
                extensions: san ? [san] : [],
                signingAlgorithm: signingAlgorithm(key),
                keys: { privateKey: nodeKey(key), publicKey: nodeKey(createPublicKey(key)) } as unknown as x509.Pkcs10CertificateRequestCreateParams["keys"],
            },
            nodeCrypto,
        );
        const der = Buffer.from(csr.rawData);
        return { id: hashForState(der), outputs: { ...inputs, certRequestPem: encodePem("CERTIFICATE REQUEST", der), keyAlgorithm: algorithm } };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};

const locallySignedDefaults: Props = { earlyRenewalHours: 0, isCaCertificate: false, setSubjectKeyId: false };

export const locallySignedCertHandler: Handler = {
    type: "tls:index/locallySignedCert:LocallySignedCert",
    inputs: [
        "allowedUses[]",
        "caCertPem",
        "caPrivateKeyPem",
        "certRequestPem",
        "earlyRenewalHours",
        "isCaCertificate",
        "maxPathLength",
        "setSubjectKeyId",
        "validityPeriodHours",
    ],
    forceNew: "*",
    updatable: ["earlyRenewalHours"],
    defaults: locallySignedDefaults,
    secretOutputs: ["caPrivateKeyPem"],
    async check(_ctx, news) {
        checkPrivateKeyPem(news, "caPrivateKeyPem");
        checkCertificateInputs(news);
        return news;
    },
    async diff(_ctx, _id, olds, news, oldOutputs) {
        return renewalDiff(olds, news, oldOutputs, locallySignedDefaults);
    },
    async create(ctx: HandlerContext, inputs) {
        const all = { ...locallySignedDefaults, ...inputs };
        let request: x509.Pkcs10CertificateRequest;
        try {
            request = parseCertRequestPem(inputs.certRequestPem as string);
        } catch (err) {
            throw new Error(`Failed to parse certificate request PEM: ${(err as Error).message}`);
        }
        let ca: { key: KeyObject; algorithm: Algorithm };
        try {
            ca = parsePrivateKeyPem(inputs.caPrivateKeyPem as string);
        } catch (err) {
            throw new Error(`Failed to parse CA private key PEM: ${(err as Error).message}`);
        }
        let caCert: x509.X509Certificate;
        try {
            caCert = parseCertificatePem(inputs.caCertPem as string);
        } catch (err) {
            throw new Error(`Failed to parse CA certificate PEM: ${(err as Error).message}`);
        }
        const constraints = caCert.getExtension(x509.BasicConstraintsExtension);
        if (!constraints?.ca) {
            ctx.log("warning: CA certificate does not appear to be a valid Certificate Authority");
        }
        const sanExtension = request.getExtension("2.5.29.17");
        const sans = sanExtension ? new x509.SubjectAlternativeNameExtension(sanExtension.rawData).names.items : [];
        const altNames: AltNames = {
            dnsNames: sans.filter((n) => n.type === "dns").map((n) => n.value),
            ips: sans
                .filter((n) => n.type === "ip")
                .map((n) => {
                    const ip = parseIp(n.value);
                    if (ip === undefined) {
                        throw new Error(`Failed to parse certificate request PEM: x509: cannot parse IP address ${n.value}`);
                    }
                    return ip;
                }),
            uris: sans.filter((n) => n.type === "url").map((n) => n.value),
        };
        const requestKey = createPublicKey({ key: Buffer.from(request.publicKey.rawData), format: "der", type: "spki" });
        const cert = await createCertificate({
            subject: toName(parsedNameFields(request.subjectName)),
            altNames,
            publicKey: requestKey,
            issuer: {
                name: caCert.subjectName,
                subjectKeyId: caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
                publicKey: new X509Certificate(Buffer.from(caCert.rawData)).publicKey,
            },
            signer: ca.key,
            inputs: all,
            setAuthorityKeyId: false,
        });
        const { id, ...computed } = cert;
        return { id, outputs: { ...all, ...computed, caKeyAlgorithm: ca.algorithm, readyForRenewal: readyAtPlan(all) } };
    },
    async update(_ctx, _id, _olds, news, oldOutputs) {
        const all = { ...locallySignedDefaults, ...news };
        return { ...oldOutputs, ...all, readyForRenewal: readyAtPlan(all) };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};

/** An explicit `new tls.Provider(...)`: its proxy only matters to the tls_certificate data source. */
export const tlsProviderHandler: Handler = {
    type: "pulumi:providers:tls",
    inputs: ["proxy", "version"],
    forceNew: [],
    async create() {
        return { id: "provider", outputs: {} };
    },
    async delete() {
        // A provider configuration owns nothing.
    },
};

export const tlsHandlers: readonly Handler[] = [privateKeyHandler, selfSignedCertHandler, certRequestHandler, locallySignedCertHandler, tlsProviderHandler];
