// Typed view of docker/platform.json, the one source of truth for values shared by the
// TypeScript program, the Python services and the Dockerfiles (as build args).
import platformJson from "./docker/platform.json";

export const platform = platformJson;

export const projectRoot = __dirname;

/** `uid:gid` string for a platform user, as Docker's `user` input expects. */
export function userSpec(user: { uid: number; gid: number }): string {
    return `${user.uid}:${user.gid}`;
}
