// Generated credentials shared by every component.
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

/** Generated passwords contain only characters that are safe inside connection URLs. */
export function urlSafePassword(name: string, parent: pulumi.Resource): random.RandomPassword {
    return new random.RandomPassword(name, { length: 32, special: false }, { parent });
}
