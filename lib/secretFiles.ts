// How credentials reach containers: as files uploaded before the container starts, never as
// environment values, command arguments or labels (all of which `docker inspect` shows).
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { platform } from "../platform";

/**
 * Uploaded files are owned by root:root; every service user is in group 0 (as its primary or a
 * supplementary group), so group-read is the narrowest mode its user can read.
 */
export const secretFileMode = "0440";

/** A credential and the file name it is delivered under (in platform.json paths.secrets). */
export interface SecretFile {
    name: string;
    value: pulumi.Input<string>;
}

export function secretPath(name: string): string {
    return `${platform.paths.secrets}/${name}`;
}

/** The uploads delivering `files`, content kept secret in the state. */
export function secretUploads(files: SecretFile[]): docker.types.input.ContainerUpload[] {
    return files.map((f) => ({ file: secretPath(f.name), content: pulumi.secret(f.value), permissions: secretFileMode }));
}

/** `NAME_FILE=<path>`: the convention of the postgres image and of the project's own scripts. */
export function fileVariable(variable: string, file: SecretFile): string {
    return `${variable}_FILE=${secretPath(file.name)}`;
}

/** Airflow's `_CMD` variant of a sensitive setting: Airflow runs the command for the value. */
export function airflowCommandVariable(variable: string, file: SecretFile): string {
    return `${variable}_CMD=cat ${secretPath(file.name)}`;
}
