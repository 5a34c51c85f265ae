// The property wire format of the Pulumi resource monitor protocol (what a RegisterResourceRequest
// carries and what the engine stores): secrets, unknowns and resource references are objects
// tagged with a signature key. Handlers work on plain values; state keeps the wire form so that
// secretness survives a round trip.

export const sigKey = "4dabf18193072939515e22adb298388d";
export const secretSig = "1b47061264138c4ac30d75fd1eb44270";
export const resourceSig = "5cf8f73096256a8f31e491e813e4eb8e";
export const outputValueSig = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
export const assetSig = "c44067f5952c0a294b673a41bacd8c17";
export const archiveSig = "0def7320c3a5731c473e5ecbe6d01bc7";
/** Stands for a value not known until an earlier resource is created (preview only). */
export const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Props = Record<string, unknown>;

function signature(value: unknown): string | undefined {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        const sig = (value as Props)[sigKey];
        return typeof sig === "string" ? sig : undefined;
    }
    return undefined;
}

export function isSecret(value: unknown): boolean {
    return signature(value) === secretSig;
}

export function secret(value: unknown): Props {
    return { [sigKey]: secretSig, value };
}

/** True when the value or anything inside it is a secret. */
export function containsSecret(value: unknown): boolean {
    if (isSecret(value)) {
        return true;
    }
    if (Array.isArray(value)) {
        return value.some(containsSecret);
    }
    if (value !== null && typeof value === "object") {
        return Object.values(value).some(containsSecret);
    }
    return false;
}

export function containsUnknown(value: unknown): boolean {
    if (value === unknownValue) {
        return true;
    }
    if (Array.isArray(value)) {
        return value.some(containsUnknown);
    }
    if (value !== null && typeof value === "object") {
        return Object.values(value).some(containsUnknown);
    }
    return false;
}

/**
 * The plain value a provider receives: secrets unwrapped, resource references replaced by their
 * ID (custom resources) or URN (components), as the engine does for providers that do not accept
 * references. Assets are not part of this project's contract, so they fail loudly.
 */
export function plain(value: unknown): unknown {
    if (Array.isArray(value)) {
        return value.map(plain);
    }
    if (value === null || typeof value !== "object") {
        return value;
    }
    const obj = value as Props;
    switch (signature(obj)) {
        case secretSig:
            return plain(obj.value);
        case resourceSig:
            return typeof obj.id === "string" && obj.id !== "" ? obj.id : obj.urn;
        case outputValueSig:
            return "value" in obj ? plain(obj.value) : unknownValue;
        case assetSig:
        case archiveSig:
            throw new Error("assets and archives are not supported by the harness");
        default:
            return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plain(v)]));
    }
}

export function plainProps(props: Props): Props {
    return plain(props) as Props;
}

/** Wire form of provider outputs: listed keys, and keys whose input was secret, become secret. */
export function wireOutputs(outputs: Props, secretKeys: Iterable<string>, inputs: Props): Props {
    const secrets = new Set(secretKeys);
    for (const [key, value] of Object.entries(inputs)) {
        if (containsSecret(value)) {
            secrets.add(key);
        }
    }
    const result: Props = {};
    for (const [key, value] of Object.entries(outputs)) {
        if (value === undefined) {
            continue;
        }
        result[key] = secrets.has(key) && !isSecret(value) ? secret(value) : value;
    }
    return result;
}

export function deepEqual(a: unknown, b: unknown): boolean {
    if (a === b) {
        return true;
    }
    if (Array.isArray(a) || Array.isArray(b)) {
        return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
    }
    if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
        return false;
    }
    const ak = Object.keys(a).filter((k) => (a as Props)[k] !== undefined);
    const bk = Object.keys(b).filter((k) => (b as Props)[k] !== undefined);
    return ak.length === bk.length && ak.every((k) => deepEqual((a as Props)[k], (b as Props)[k]));
}

/**
 * Every leaf path the value sets, in the notation handlers declare: `a.b` for object keys,
 * `a[]` for list elements, `a{}` for the values of a free-form map (keys are data, not schema).
 * Empty lists/objects count as set at their own path.
 */
export function setPaths(value: unknown, prefix: string, freeForm: ReadonlySet<string>): string[] {
    if (value === undefined || value === null) {
        return [];
    }
    if (Array.isArray(value)) {
        const inner = value.flatMap((v) => setPaths(v, `${prefix}[]`, freeForm));
        return inner.length > 0 ? inner : [prefix];
    }
    if (typeof value === "object") {
        if (freeForm.has(prefix)) {
            return [prefix];
        }
        const entries = Object.entries(value as Props).filter(([, v]) => v !== undefined && v !== null);
        const inner = entries.flatMap(([k, v]) => setPaths(v, prefix === "" ? k : `${prefix}.${k}`, freeForm));
        return inner.length > 0 || prefix === "" ? inner : [prefix];
    }
    return [prefix];
}

/** Reads a dotted path (list markers `[]` are skipped: lists compare as a whole). */
export function getPath(value: unknown, path: string): unknown {
    let current = value;
    for (const part of path.replace(/\[\]/g, "").split(".")) {
        if (current === null || typeof current !== "object") {
            return undefined;
        }
        current = (current as Props)[part];
    }
    return current;
}

export function setPath(target: Props, path: string, value: unknown): void {
    const parts = path.replace(/\[\]/g, "").split(".");
    let current: Props = target;
    for (const part of parts.slice(0, -1)) {
        const next = current[part];
        if (next === null || typeof next !== "object") {
            current[part] = {};
        }
        current = current[part] as Props;
    }
    current[parts[parts.length - 1]] = value;
}
