// The contract between the engine and a resource-type handler (the harness's stand-in for a
// provider plugin). Handlers receive plain inputs (secrets unwrapped) and return plain outputs.
import type { Props } from "../wire";

export interface ProviderConfig {
    urn: string;
    type: string;
    /** Plain provider inputs (the values a provider's Configure receives). */
    inputs: Props;
}

export interface HandlerContext {
    urn: string;
    name: string;
    /** The project directory; relative paths in inputs resolve against it, like the provider's cwd. */
    cwd: string;
    /** The explicit provider resource, if the program passed one. */
    provider?: ProviderConfig;
    log(message: string): void;
    /** Records a measured figure (build seconds, image bytes, ...) for the run summary. */
    metric(name: string, value: number): void;
}

export interface CreateResult {
    id: string;
    outputs: Props;
}

/** Thrown when the real action started (an ID exists) but did not complete. */
export class PartialCreateError extends Error {
    constructor(
        message: string,
        readonly id: string,
        readonly outputs: Props,
    ) {
        super(message);
        this.name = "PartialCreateError";
    }
}

export type DiffVerdict = "same" | "update" | "replace";

export interface DiffResult {
    verdict: DiffVerdict;
    /** Top-level input keys that differ. */
    changed: string[];
    /** Set when the provider itself requires delete-before-replace. */
    deleteBeforeReplace?: boolean;
}

export interface Handler {
    type: string;
    /**
     * Every input path the handler implements (`a.b`, `a[].b`, `a{}` for a free-form map).
     * Any other path the program sets fails the run (the fidelity rule).
     */
    inputs: readonly string[];
    /** Top-level inputs whose change needs a new resource; `"*"` means all but `updatable`. */
    forceNew: readonly string[] | "*";
    updatable?: readonly string[];
    /** Provider-side defaults, applied before diffing so unset and default compare equal. */
    defaults?: Props;
    /** The input the provider auto-names (`<resource name>-<7 hex>`) when the program leaves it unset. */
    autoName?: string;
    /** Outputs the real provider marks secret. */
    secretOutputs?: readonly string[];
    /** Input normalisation the provider's Check performs (may read the filesystem). */
    check?(ctx: HandlerContext, news: Props, olds: Props | undefined): Promise<Props>;
    /**
     * The previous inputs as the provider's diff sees them: with the values its read stored in
     * state (e.g. normalised by the engine) in place of what the program sent. Default: the inputs.
     */
    stored?(olds: Props, oldOutputs: Props): Props;
    /** A provider-specific diff; when absent the engine compares inputs. */
    diff?(ctx: HandlerContext, id: string, olds: Props, news: Props, oldOutputs: Props): Promise<DiffResult | undefined>;
    create(ctx: HandlerContext, inputs: Props): Promise<CreateResult>;
    update?(ctx: HandlerContext, id: string, olds: Props, news: Props, oldOutputs: Props): Promise<Props>;
    delete(ctx: HandlerContext, id: string, inputs: Props, outputs: Props): Promise<void>;
}
