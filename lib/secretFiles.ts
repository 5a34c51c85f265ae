// How credentials reach containers: as files uploaded before the container starts, never as
// environment values, command arguments or labels (all of which `docker inspect` shows).
import type * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { platform } from "../platform";

/** Read-only for the service's user, who owns the file; nobody else in the container reads it. */
export const secretFileMode = "0400";

/** The user a container runs as (platform.json users). */
export interface FileOwner {
    uid: number;
    gid: number;
}

/** An upload only `owner` can read. */
export function ownedUpload(file: string, content: pulumi.Input<string>, owner: FileOwner): docker.types.input.ContainerUpload {
    return { file, content: pulumi.secret(content), permissions: secretFileMode, owner: String(owner.uid), group: String(owner.gid) };
}

/** A credential and the file name it is delivered under (in platform.json paths.secrets). */
export interface SecretFile {
    name: string;
    value: pulumi.Input<string>;
}

export function secretPath(name: string): string {
    return `${platform.paths.secrets}/${name}`;
}

/** The uploads delivering `files` to `owner`, content kept secret in the state. */
export function secretUploads(files: SecretFile[], owner: FileOwner): docker.types.input.ContainerUpload[] {
    return files.map((f) => ownedUpload(secretPath(f.name), f.value, owner));
}

/** `NAME_FILE=<path>`: the convention of the postgres image and of the project's own scripts. */
export function fileVariable(variable: string, file: SecretFile): string {
    return `${variable}_FILE=${secretPath(file.name)}`;
}

/** Airflow's `_CMD` variant of a sensitive setting: Airflow runs the command for the value. */
export function airflowCommandVariable(variable: string, file: SecretFile): string {
    return `${variable}_CMD=cat ${secretPath(file.name)}`;
}
