// How credentials reach containers: as files uploaded before the container starts, never as
// environment values, command arguments or labels (all of which `docker inspect` shows).
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { platform } from "../platform";

/**
 * Uploads are owned by root:root, and every service user is in group 0 (its primary group, or a
 * supplementary one: `secretReaderGroups`), so group-read is the narrowest mode it can read. An
 * upload's `owner` cannot be used instead: Docker then chowns the file to the container's user,
 * looked up by name on the host, which fails for a numeric user on Docker 20.10.
 */
export const secretFileMode = "0440";

/** Supplementary groups for a service whose user's primary group is not 0. */
export const secretReaderGroups = ["0"];

/** An upload readable by group 0 alone, its content secret in the state. */
export function secretUpload(file: string, content: pulumi.Input<string>): docker.types.input.ContainerUpload {
    return { file, content: pulumi.secret(content), permissions: secretFileMode };
}

/** A credential and the file name it is delivered under (in platform.json paths.secrets). */
export interface SecretFile {
    name: string;
    value: pulumi.Input<string>;
}

export function secretPath(name: string): string {
    return `${platform.paths.secrets}/${name}`;
}

/** The uploads delivering `files`. */
export function secretUploads(files: SecretFile[]): docker.types.input.ContainerUpload[] {
    return files.map((f) => secretUpload(secretPath(f.name), f.value));
}

/** `NAME_FILE=<path>`: the convention of the postgres image and of the project's own scripts. */
export function fileVariable(variable: string, file: SecretFile): string {
    return `${variable}_FILE=${secretPath(file.name)}`;
}

/** Airflow's `_CMD` variant of a sensitive setting: Airflow runs the command for the value. */
export function airflowCommandVariable(variable: string, file: SecretFile): string {
    return `${variable}_CMD=cat ${secretPath(file.name)}`;
}
