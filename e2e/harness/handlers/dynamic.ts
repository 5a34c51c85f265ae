// pulumi-nodejs:dynamic:Resource: the provider's code travels in the `__provider` input as a
// serialized module. It is loaded the way Pulumi's dynamic provider host loads it
// (require-from-string, then `.handler()`), and its check/diff/create/update/delete are called
// with the same arguments the host passes (olds are the previous outputs).
import type { Props } from "../wire";
import type { DiffResult, Handler } from "./types";

// require-from-string ships without types; the host uses it exactly like this.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => { handler(): DynamicProvider };

const providerKey = "__provider";

interface DynamicProvider {
    check?(olds: Props, news: Props): Promise<{ inputs?: Props; failures?: { property: string; reason: string }[] }>;
    diff?(id: string, olds: Props, news: Props): Promise<{ changes?: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
    create(inputs: Props): Promise<{ id: string; outs?: Props }>;
    update?(id: string, olds: Props, news: Props): Promise<{ outs?: Props } | undefined>;
    delete?(id: string, props: Props): Promise<void>;
}

const cache = new Map<string, DynamicProvider>();

function load(props: Props): DynamicProvider {
    const code = props[providerKey];
    if (typeof code !== "string") {
        throw new Error(`${providerKey}: missing serialized dynamic provider`);
    }
    let provider = cache.get(code);
    if (provider === undefined) {
        provider = requireFromString(code).handler();
        if ("configure" in provider) {
            throw new Error("dynamic provider configure() is not supported by the harness");
        }
        cache.set(code, provider);
    }
    return provider;
}

function withProvider(outs: Props | undefined, props: Props): Props {
    return { ...(outs ?? {}), [providerKey]: props[providerKey] };
}

export const dynamicHandler: Handler = {
    type: "pulumi-nodejs:dynamic:Resource",
    // The resource's own provider code consumes every input, so all are implemented.
    inputs: ["*"],
    forceNew: [],
    async check(_ctx, news, olds) {
        const provider = load(news);
        if (provider.check === undefined) {
            return news;
        }
        const result = await provider.check(olds ?? {}, news);
        if (result.failures && result.failures.length > 0) {
            throw new Error(result.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
        }
        return { ...(result.inputs ?? news), [providerKey]: news[providerKey] };
    },
    async diff(_ctx, id, _olds, news, oldOutputs): Promise<DiffResult | undefined> {
        const provider = load(news);
        if (provider.diff === undefined) {
            return undefined;
        }
        const result = await provider.diff(id, oldOutputs, news);
        if (result.changes === undefined) {
            return undefined;
        }
        const replaces = result.replaces ?? [];
        const verdict = replaces.length > 0 ? "replace" : result.changes ? "update" : "same";
        return { verdict, changed: replaces, deleteBeforeReplace: result.deleteBeforeReplace };
    },
    async create(_ctx, inputs) {
        const result = await load(inputs).create(inputs);
        return { id: result.id, outputs: withProvider(result.outs, inputs) };
    },
    async update(_ctx, id, _olds, news, oldOutputs) {
        const provider = load(news);
        const result = provider.update ? ((await provider.update(id, oldOutputs, news)) ?? {}) : {};
        return withProvider(result.outs, news);
    },
    async delete(_ctx, id, _inputs, outputs) {
        const provider = load(outputs);
        if (provider.delete) {
            await provider.delete(id, outputs);
        }
    },
};
