// random RandomPassword and RandomBytes (terraform-provider-random): every input replaces,
// values come from a CSPRNG, and the generated values are secret outputs.
import { randomBytes, randomInt } from "node:crypto";
import type { Props } from "../wire";
import type { Handler } from "./types";

const sets = {
    lower: "abcdefghijklmnopqrstuvwxyz",
    upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    numeric: "0123456789",
    special: "!@#$%&*()-_=+[]{}<>:?",
};

function pick(chars: string, count: number): string[] {
    return Array.from({ length: count }, () => chars[randomInt(chars.length)]);
}

function shuffle(items: string[]): string[] {
    for (let i = items.length - 1; i > 0; i--) {
        const j = randomInt(i + 1);
        [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
}

/** The provider's algorithm: the minimum of each class first, the rest from all enabled classes. */
export function generatePassword(inputs: Props): string {
    const length = inputs.length as number;
    const special = typeof inputs.overrideSpecial === "string" ? inputs.overrideSpecial : sets.special;
    const classes: [boolean, string, number][] = [
        [inputs.lower !== false, sets.lower, (inputs.minLower as number | undefined) ?? 0],
        [inputs.upper !== false, sets.upper, (inputs.minUpper as number | undefined) ?? 0],
        [inputs.numeric !== false, sets.numeric, (inputs.minNumeric as number | undefined) ?? 0],
        [inputs.special !== false, special, (inputs.minSpecial as number | undefined) ?? 0],
    ];
    const enabled = classes.filter(([on, chars]) => on && chars.length > 0);
    const minimum = enabled.reduce((n, [, , min]) => n + min, 0);
    if (!Number.isInteger(length) || length < 1 || minimum > length) {
        throw new Error(`length: must be a positive integer of at least the sum of min* (${minimum}), got ${length}`);
    }
    if (enabled.length === 0) {
        throw new Error("lower/upper/numeric/special: at least one character class must be enabled");
    }
    const chars = enabled.flatMap(([, set, min]) => pick(set, min));
    chars.push(...pick(enabled.map(([, set]) => set).join(""), length - chars.length));
    return shuffle(chars).join("");
}

export const randomPasswordHandler: Handler = {
    type: "random:index/randomPassword:RandomPassword",
    inputs: [
        "length",
        "special",
        "overrideSpecial",
        "upper",
        "lower",
        "numeric",
        "minLower",
        "minUpper",
        "minNumeric",
        "minSpecial",
        "keepers{}",
    ],
    forceNew: "*",
    defaults: { special: true, upper: true, lower: true, numeric: true, minLower: 0, minUpper: 0, minNumeric: 0, minSpecial: 0 },
    secretOutputs: ["result"],
    async create(_ctx, inputs) {
        return { id: "none", outputs: { ...inputs, result: generatePassword(inputs) } };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};

export const randomBytesHandler: Handler = {
    type: "random:index/randomBytes:RandomBytes",
    inputs: ["length", "keepers{}"],
    forceNew: "*",
    secretOutputs: ["base64", "hex"],
    async create(_ctx, inputs) {
        const length = inputs.length as number;
        if (!Number.isInteger(length) || length < 1) {
            throw new Error(`length: must be a positive integer, got ${length}`);
        }
        const bytes = randomBytes(length);
        return { id: "none", outputs: { ...inputs, base64: bytes.toString("base64"), hex: bytes.toString("hex") } };
    },
    async delete() {
        // Nothing exists outside the state.
    },
};
