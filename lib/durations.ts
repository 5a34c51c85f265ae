// Durations as the docker provider stores them. It reads healthcheck durations back from the
// engine and records Go's time.Duration.String() ("1m0s", never "60s"); the next preview diffs the
// program's value against that, so any other spelling is a change on every `pulumi up`.

/** Whole seconds in Go's canonical duration form: 0 -> "0s", 45 -> "45s", 90 -> "1m30s", 3600 -> "1h0m0s". */
export function goDuration(seconds: number): string {
    if (!Number.isInteger(seconds) || seconds < 0) {
        throw new Error(`goDuration: expected a whole number of seconds >= 0, got ${seconds}`);
    }
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = seconds % 60;
    if (hours > 0) {
        return `${hours}h${minutes}m${rest}s`;
    }
    return minutes > 0 ? `${minutes}m${rest}s` : `${rest}s`;
}

/**
 * Whole seconds as the docker provider reads a swarm service's durations back: Go's form without
 * trailing zero units (60 -> "1m", 3600 -> "1h", 90 -> "1m30s"). Services store this, not goDuration.
 */
export function swarmDuration(seconds: number): string {
    return goDuration(seconds).replace(/m0s$/, "m").replace(/h0m$/, "h");
}
