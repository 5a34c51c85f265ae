import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { oneShotContainer } from "../lib/containers";

export interface PreparedVolumeArgs {
    /** Docker volume name; also the Pulumi resource name. */
    volumeName: string;
    /** Image with a POSIX shell, used once to set ownership and mode. */
    initImage: pulumi.Input<string>;
    /** Subfolders to create, e.g. one per service writing logs. */
    subdirs: string[];
    owner: { uid: number; gid: number };
    /** Octal mode for the volume root and each subfolder; never world-writable. */
    mode: string;
    /** Keep the volume (and its data) when the stack is destroyed or the volume replaced. */
    retainOnDelete: boolean;
}

/**
 * A named volume whose ownership and mode are set by a one-shot init container, so services
 * running as non-root users (sharing group 0) can write to it without chmod 777.
 */
export class PreparedVolume extends pulumi.ComponentResource {
    /** The volume name, available only once the init container succeeded. */
    declare readonly name: pulumi.Output<string>;

    constructor(name: string, args: PreparedVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:PreparedVolume", name, {}, opts);
        validate(name, args);
        const volume = new docker.Volume(
            args.volumeName,
            { name: args.volumeName },
            { parent: this, retainOnDelete: args.retainOnDelete },
        );
        const init = oneShotContainer(
            {
                name: `${args.volumeName}-init`,
                image: args.initImage,
                user: "0:0",
                command: ["sh", "-ec", prepareScript(args)],
                volumes: [{ volumeName: volume.name, containerPath: mountPoint }],
            },
            { parent: this },
        );
        this.name = pulumi.all([volume.name, init.succeeded]).apply(([volumeName]) => volumeName);
        this.registerOutputs({ name: this.name });
    }
}

const mountPoint = "/volume";

function validate(name: string, args: PreparedVolumeArgs): void {
    if (!/^[0-7]{3,4}$/.test(args.mode) || (parseInt(args.mode, 8) & 0o002) !== 0) {
        throw new Error(`PreparedVolume ${name}: mode ${args.mode} must be octal and not world-writable`);
    }
    for (const dir of args.subdirs) {
        if (!/^[A-Za-z0-9._-]+$/.test(dir) || dir === "." || dir === "..") {
            throw new Error(`PreparedVolume ${name}: subdir ${JSON.stringify(dir)} must be a plain folder name`);
        }
    }
}

/** Shell run as root in the init container; fails if anything ends up world-writable. */
export function prepareScript(
    args: Pick<PreparedVolumeArgs, "subdirs" | "owner" | "mode">,
    root = mountPoint,
): string {
    const dirs = [".", ...args.subdirs].map((d) => `'${d}'`).join(" ");
    return [
        `cd '${root}'`,
        "umask 002",
        `for d in ${dirs}; do mkdir -p "$d"; chown ${args.owner.uid}:${args.owner.gid} "$d"; chmod ${args.mode} "$d"; done`,
        `if [ -n "$(find . -xdev -perm -0002 ! -type l -print -quit)" ]; then echo "world-writable entries in volume" >&2; exit 1; fi`,
        `stat -c '%n %u:%g %a' ${dirs}`,
    ].join("\n");
}
