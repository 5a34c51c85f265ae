import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { byType, runStack, types } from "../support/stack";

describe("Network", () => {
    it("is one user-defined bridge network that every container joins", () => {
        const run = runStack("dev");
        const networks = byType(run, types.network);
        assert.equal(networks.length, 1);
        assert.deepEqual(networks[0].inputs, { name: "vpe-dev-net", driver: "bridge" });
        const offNetwork = byType(run, types.container).filter((c) => {
            const nets = (c.inputs.networksAdvanced as { name: string }[] | undefined) ?? [];
            return !nets.some((n) => n.name === "vpe-dev-net");
        });
        // Volume init and sync containers need no network; everything else must be on it.
        assert.deepEqual(offNetwork.map((c) => c.name).sort(), ["vpe-dev-airflow-keys-init", "vpe-dev-backups-init", "vpe-dev-buffer-init", "vpe-dev-dags-sync", "vpe-dev-data-sync", "vpe-dev-logs-init"]);
    });
});
