// Typed view of docker/platform.json, the one source of truth for values shared by the
// TypeScript program, the Python services and the Dockerfiles (as build args), and of
// docker/images.json, the upstream image tags. The tags live apart because every image the
// project builds contains platform.json: a tag there would rebuild, and replace, every
// container whenever one upstream image moves to another release.
import imagesJson from "./docker/images.json";
import platformJson from "./docker/platform.json";

export const platform = { ...platformJson, images: imagesJson };

export const projectRoot = __dirname;

/** `uid:gid` string for a platform user, as Docker's `user` input expects. */
export function userSpec(user: { uid: number; gid: number }): string {
    return `${user.uid}:${user.gid}`;
}
