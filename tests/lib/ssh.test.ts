import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type SshTarget, SshError, explainSshFailure, freeLocalPort, openTunnel, parseSshUrl, runOverSsh, sshArgs } from "../../lib/ssh";

const options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/keys/known_hosts"];
const target: SshTarget = { url: "ssh://deploy@srv:2222", user: "deploy", host: "srv", port: 2222, options };

describe("ssh", () => {
    it("parses ssh:// docker hosts, with or without user and port", () => {
        assert.deepEqual(parseSshUrl("ssh://deploy@10.1.2.3:2222"), { target: { url: "ssh://deploy@10.1.2.3:2222", user: "deploy", host: "10.1.2.3", port: 2222 } });
        assert.deepEqual(parseSshUrl("ssh://srv.example.org"), { target: { url: "ssh://srv.example.org", user: undefined, host: "srv.example.org", port: undefined } });
        assert.match((parseSshUrl("ssh://deploy@srv:70000") as { problem: string }).problem, /port 70000/);
        assert.match((parseSshUrl("ssh://deploy@srv/some/path") as { problem: string }).problem, /must be ssh:\/\/user@host/);
    });

    it("runs ssh with the stack's options first, a connect timeout unless they set one, and no terminal", () => {
        assert.deepEqual(sshArgs(target, ["--", "true"]), [...options, "-o", "ConnectTimeout=10", "-p", "2222", "-T", "deploy@srv", "--", "true"]);
        assert.deepEqual(sshArgs({ ...target, port: undefined, options: ["-o", "ConnectTimeout=3"] }, []), ["-o", "ConnectTimeout=3", "-T", "deploy@srv"]);
    });

    it("explains ssh's failures: which file, key or daemon to fix", () => {
        const cases: [string, RegExp][] = [
            ["Host key verification failed.", /host key is not in \/keys\/known_hosts/],
            ["@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.", /host key changed.*replace its line in \/keys\/known_hosts/],
            ["deploy@srv: Permission denied (publickey).", /login was refused: check the user .* -i in docker:sshOpts/],
            ["ssh: connect to host srv port 2222: Connection refused", /is sshd running/],
            ["ssh: connect to host srv port 2222: Connection timed out", /could not be reached/],
            ["bash: line 1: docker: command not found", /cannot run docker on the server/],
            ["bind [127.0.0.1]:35432: Address already in use\nchannel_setup_fwd_listener_tcpip: cannot listen to port: 35432", /already taken on this machine/],
        ];
        for (const [stderr, expected] of cases) assert.match(explainSshFailure(target, stderr), expected, stderr);
        assert.match(explainSshFailure(target, "something new"), /^ssh said: something new$/);
    });

    it("fails within seconds, naming the server and the cause, when nothing listens for SSH", async () => {
        const port = await freeLocalPort();
        const closed: SshTarget = { url: `ssh://deploy@127.0.0.1:${port}`, user: "deploy", host: "127.0.0.1", port, options };
        const started = Date.now();
        assert.throws(() => runOverSsh(closed, ["true"], "asking the engine"), (err: Error) => {
            assert.ok(err instanceof SshError);
            assert.match(err.message, new RegExp(`^ssh://deploy@127\\.0\\.0\\.1:${port}: asking the engine failed: nothing accepts SSH connections there`));
            return true;
        });
        await assert.rejects(openTunnel(closed, [{ localPort: await freeLocalPort(), remoteHost: "127.0.0.1", remotePort: 5432 }]), /the SSH tunnel failed: nothing accepts SSH connections/);
        assert.ok(Date.now() - started < 10_000);
    });
});
