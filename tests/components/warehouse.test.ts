import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { roleNames } from "../../components/warehouse";
import { countedTables, warehouseTables } from "../../warehouse/tables";
import { platform } from "../../platform";
import { byType, dynamicNamed, isSecret, named, reveal, runStack, types } from "../support/stack";
import { projectRoot } from "../support/stackConfig";

type Grant = { database: string; role: string; objectType: string; objects?: string[]; privileges: string[]; schema?: string };

describe("Warehouse", () => {
    const run = runStack("dev");
    const grants = byType(run, types.pgGrant).map((g) => ({ ...(g.inputs as unknown as Grant), resource: g }));

    it("talks to PostgreSQL through an explicit provider built from the container's outputs", () => {
        const provider = byType(run, types.pgProvider);
        assert.equal(provider.length, 1);
        const inputs = provider[0].inputs;
        assert.equal(inputs.host, "127.0.0.1");
        assert.equal(inputs.port, "15432", "the provider schema carries port as a string");
        assert.equal(inputs.sslmode, "disable");
        assert.ok(isSecret(inputs.password));
        for (const r of byType(run, types.pgGrant)) {
            assert.ok(r.options.provider.includes("pulumi:providers:postgresql::vpe-dev-postgresql"), `${r.name} uses the default provider`);
        }
    });

    it("creates (or takes over) the Airflow metadata and warehouse databases", () => {
        const dbs = dynamicNamed(run, "db").map((d) => [d.inputs.name, reveal(d.inputs.owner)]);
        assert.deepEqual(dbs.sort(), [
            [platform.databases.airflow, roleNames.airflow],
            [platform.databases.warehouse, "postgres"],
        ]);
    });

    it("works on roles and databases through the admin connection, its password secret in inputs and state", () => {
        for (const r of [...dynamicNamed(run, "role"), ...dynamicNamed(run, "db")]) {
            assert.equal(r.inputs.host, "127.0.0.1", r.name);
            assert.equal(r.inputs.port, 15432, r.name);
            assert.equal(r.inputs.adminUser, "postgres", r.name);
            assert.ok(isSecret(r.inputs.adminPassword), r.name);
            assert.deepEqual(r.options.additionalSecretOutputs, ["adminPassword", "password"], r.name);
        }
    });

    it("keeps databases and roles on destroy unless the user asks to delete data", () => {
        for (const r of [...dynamicNamed(run, "role"), ...dynamicNamed(run, "db")]) {
            assert.equal(r.options.retainOnDelete, true, `${r.name} would be dropped by destroy`);
        }
        const purge = runStack("dev", { overrides: { "vpe:deleteDataOnDestroy": "true" } });
        for (const r of [...dynamicNamed(purge, "role"), ...dynamicNamed(purge, "db")]) {
            assert.equal(r.options.retainOnDelete, false, r.name);
        }
    });

    it("creates one login role per consumer with a generated secret password", () => {
        const roles = dynamicNamed(run, "role");
        const { monitoring, ...consumers } = roleNames;
        assert.deepEqual(roles.map((r) => r.inputs.name).sort(), Object.values(consumers).sort(), `no ${monitoring} role without metrics`);
        for (const role of roles) {
            assert.ok(isSecret(role.inputs.password), role.name);
            assert.equal(role.inputs.memberOf, undefined, `${role.name} is a member of another role`);
        }
    });

    it("with metrics on, adds the monitoring role: pg_monitor, CONNECT to the warehouse and SELECT on its tables, nothing more", () => {
        const prod = runStack("prod");
        const role = dynamicNamed(prod, "role").find((r) => r.inputs.name === roleNames.monitoring);
        assert.ok(role, "no monitoring role");
        assert.deepEqual(role.inputs.memberOf, ["pg_monitor"]);
        assert.ok(isSecret(role.inputs.password));
        const granted = byType(prod, types.pgGrant).map((g) => g.inputs as unknown as Grant).filter((g) => g.role === roleNames.monitoring);
        assert.deepEqual(
            granted.map((g) => [g.objectType, g.database, g.objects ?? [], g.privileges]),
            [
                ["database", platform.databases.warehouse, [], ["CONNECT"]],
                ["table", platform.databases.warehouse, countedTables, ["SELECT"]],
            ],
        );
        assert.deepEqual([...countedTables].sort(), [...warehouseTables.staging, ...warehouseTables.star, ...warehouseTables.statistics].sort());
    });

    it("applies the warehouse migrations through the migrations resource, with the files as inputs", () => {
        const migrations = named(run, "vpe-dev-warehouse-migrations");
        assert.equal(migrations.type, types.dynamic);
        const files = fs.readdirSync(path.join(projectRoot, "warehouse", "migrations")).filter((f) => f.endsWith(".sql")).sort();
        const declared = (reveal(migrations.inputs.migrations) as { name: string }[]).map((m) => m.name);
        assert.deepEqual(declared, files);
        assert.equal(migrations.inputs.database, platform.databases.warehouse);
        assert.ok(isSecret(migrations.inputs.password));
    });

    it("grants after the schema exists, least privilege per role", () => {
        // Grants run one after another, the first after the migrations.
        const [first, ...rest] = grants;
        assert.ok(first.resource.options.dependencies.some((d) => d.endsWith("::vpe-dev-warehouse-migrations")), "the first grant does not wait for the migrations");
        rest.forEach((g, i) => {
            assert.ok(g.resource.options.dependencies.includes(grants[i].resource.urn), `${g.resource.name} runs beside ${grants[i].resource.name}`);
        });
        const privileges = (role: string, objectType: string) =>
            grants.filter((g) => g.role === role && g.objectType === objectType);
        assert.deepEqual(privileges("public", "database").map((g) => g.privileges), [[], []], "PUBLIC may still connect");
        assert.deepEqual(privileges(roleNames.writer, "database").map((g) => g.privileges), [["CONNECT", "TEMPORARY"]]);
        assert.deepEqual(privileges(roleNames.analyst, "database").map((g) => g.privileges), [["CONNECT"]]);
        const analystTables = privileges(roleNames.analyst, "table");
        assert.equal(analystTables.length, 1);
        assert.deepEqual(analystTables[0].privileges, ["SELECT"]);
        assert.ok(!analystTables[0].objects!.some((t) => warehouseTables.staging.includes(t)), "analyst reads staging");
        const writerTables = privileges(roleNames.writer, "table");
        assert.ok(writerTables.every((g) => g.objects!.length > 0), "writer grants name their tables");
        const writerOn = (table: string) => writerTables.filter((g) => g.objects!.includes(table)).flatMap((g) => g.privileges);
        assert.deepEqual(writerOn("event").sort(), ["INSERT", "SELECT"]);
        assert.deepEqual(writerOn("location"), ["SELECT"], "the triggers, not the writer, write the star schema");
        assert.ok(writerOn("event_stats_country_year").includes("TRUNCATE"));
        assert.deepEqual(privileges(roleNames.airflow, "table"), [], "airflow has no warehouse rights");
    });

    it("classifies every table the migrations create, so none is left without grants", () => {
        const dir = path.join(projectRoot, "warehouse", "migrations");
        const sql = fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).map((f) => fs.readFileSync(path.join(dir, f), "utf8")).join("\n");
        const created = [...sql.matchAll(/create\s+(?:or\s+replace\s+)?(?:table|view)\s+(?:if\s+not\s+exists\s+)?(?:public\.)?"?([a-z_]+)"?/gi)].map((m) => m[1].toLowerCase());
        const classified = Object.values(warehouseTables).flat();
        assert.deepEqual([...new Set(created)].sort(), [...classified].sort());
    });
});
