import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { platform } from "../../platform";
import { byType, filesOf, named, runStack, types } from "../support/stack";

describe("MutualTls", () => {
    const dev = runStack("dev");

    it("makes a per-stack ECDSA P-256 CA, signing only certificates", () => {
        const ca = named(dev, "vpe-dev-tls-g1-ca").inputs as Record<string, any>;
        assert.equal(ca.isCaCertificate, true);
        assert.deepEqual(ca.allowedUses, ["cert_signing", "crl_signing", "digital_signature"]);
        assert.equal(ca.validityPeriodHours, platform.tls.caValidityHours);
        assert.match(ca.subject.commonName, /^vpe-dev CA, generation 1$/);
        for (const key of byType(dev, types.tlsKey)) {
            assert.deepEqual([key.inputs.algorithm, key.inputs.ecdsaCurve], ["ECDSA", "P256"], key.name);
        }
        assert.equal(byType(dev, types.tlsKey).length, 3);
    });

    it("signs a server certificate for the executor's alias (also a client, for its own probe) and a client certificate for Airflow", () => {
        const server = named(dev, "vpe-dev-tls-g1-server").inputs as Record<string, any>;
        const client = named(dev, "vpe-dev-tls-g1-client").inputs as Record<string, any>;
        assert.deepEqual(server.allowedUses, ["digital_signature", "key_agreement", "server_auth", "client_auth"]);
        assert.deepEqual(client.allowedUses, ["digital_signature", "key_agreement", "client_auth"]);
        const csr = (role: string) => named(dev, `vpe-dev-tls-g1-${role}-csr`).inputs as Record<string, any>;
        assert.deepEqual(csr("server").dnsNames, [platform.aliases.executor]);
        assert.equal(csr("server").subject.commonName, platform.aliases.executor);
        assert.deepEqual(csr("client").dnsNames, []);
        for (const cert of [server, client]) {
            assert.equal(cert.validityPeriodHours, platform.tls.certValidityHours);
            assert.equal(cert.earlyRenewalHours, platform.tls.earlyRenewalHours);
        }
    });

    it("delivers the executor's identity to the executor only, the key as a secret readable by group 0", () => {
        const files = filesOf(dev, "vpe-dev-executor");
        const path = (name: string) => `${platform.tls.dir}/${name}`;
        assert.match(files.get(path(platform.tls.caFile))?.content ?? "", /vpe-dev-tls-g1-ca\n/);
        assert.match(files.get(path(platform.tls.certFile))?.content ?? "", /vpe-dev-tls-g1-server\n/);
        const key = files.get(path(platform.tls.keyFile));
        assert.match(key?.content ?? "", /vpe-dev-tls-g1-server-key\n/);
        assert.deepEqual([key?.permissions, key?.owner, key?.secret], ["0440", ":", true]);
        assert.equal(files.get(path(platform.tls.certFile))?.permissions, "0444");
    });

    it("replaces the CA, every certificate and key when vpe:tls.generation is raised", () => {
        const rotated = runStack("dev", { overrides: { "vpe:tls": '{"generation": 2}' } });
        const names = (run: typeof dev) =>
            run.resources.filter((r) => r.type.startsWith("tls:")).map((r) => r.name).sort();
        assert.deepEqual(names(rotated), names(dev).map((n) => n.replace("-g1-", "-g2-")));
        assert.match(filesOf(rotated, "vpe-dev-executor").get(`${platform.tls.dir}/${platform.tls.keyFile}`)?.content ?? "", /-g2-server-key/);
        assert.match(filesOf(rotated, "vpe-dev-airflow-scheduler").get(`${platform.tls.dir}/${platform.tls.keyFile}`)?.content ?? "", /-g2-client-key/);
    });

    it("rejects a generation below 1, naming the key", () => {
        const bad = runStack("dev", { overrides: { "vpe:tls": '{"generation": 0}' } });
        assert.match(bad.error ?? "", /vpe:tls\.generation: Too small/);
    });
});
