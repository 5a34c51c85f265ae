// Figures the benchmarks share.

/** The middle value (the upper one of an even count): a run the benchmark really measured. */
export function median(values: number[]): number {
    return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}
