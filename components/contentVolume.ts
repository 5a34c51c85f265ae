import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { oneShotContainer } from "../lib/containers";
import { projectRoot } from "../platform";

export interface ContentVolumeArgs {
    /** Docker volume name; the sync container is `<volumeName>-sync`. */
    volumeName: string;
    /** Folder of the project (relative to its root) whose files the volume holds. */
    sourceDir: string;
    /** Image with a POSIX shell and coreutils, used to copy the files in. */
    syncImage: pulumi.Input<string>;
}

/** A file of `sourceDir` as an upload: read by the provider from the machine running Pulumi. */
export interface ContentFile {
    /** Path inside the folder, with forward slashes. */
    relative: string;
    /** Path relative to the project root, where Pulumi runs the program and its providers. */
    source: string;
    sha256: string;
}

const skipped = new Set(["__pycache__", ".pytest_cache", ".ruff_cache"]);

/** Every file under `sourceDir`, sorted, caches and bytecode left out. */
export function contentFiles(sourceDir: string, root = projectRoot): ContentFile[] {
    const files: ContentFile[] = [];
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
            const relativeToRoot = path.posix.join(dir, entry.name);
            if (entry.isDirectory()) {
                if (!skipped.has(entry.name)) walk(relativeToRoot);
            } else if (entry.isFile() && !entry.name.endsWith(".pyc")) {
                const bytes = fs.readFileSync(path.join(root, relativeToRoot));
                files.push({
                    relative: path.posix.relative(sourceDir, relativeToRoot),
                    source: relativeToRoot,
                    sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
                });
            }
        }
    };
    walk(sourceDir);
    return files.sort((a, b) => a.relative.localeCompare(b.relative));
}

const staging = "/content";
const mountPoint = "/volume";

/**
 * Shell run as root in the sync container: each file is written beside its target and renamed
 * over it (a reader sees the old file or the new one, never half of one), then files and folders
 * the folder no longer has are removed. Files are root-owned and read-only for everyone.
 */
export const syncScript = (staging: string, mountPoint: string) => [
    `cd '${staging}'`,
    `find . -type f | while IFS= read -r f; do`,
    `  mkdir -p "${mountPoint}/$(dirname "$f")"`,
    `  cp "$f" "${mountPoint}/$f.vpe-new" && chmod 0444 "${mountPoint}/$f.vpe-new" && mv -f "${mountPoint}/$f.vpe-new" "${mountPoint}/$f"`,
    "done",
    `cd '${mountPoint}'`,
    `find . -type f | while IFS= read -r f; do [ -e "${staging}/$f" ] || rm -f "$f"; done`,
    "find . -mindepth 1 -type d -empty -delete",
    "find . -type d -exec chmod 0555 {} +",
    `echo "synced $(find . -type f | wc -l) files"`,
].join("\n");

/**
 * A volume holding a folder of the project (DAGs, sample data), copied in by a one-shot container
 * through uploads: the files travel through the engine's API, so this works the same on a remote
 * engine, where a bind mount of the checkout would come up empty. An edit replaces only the sync
 * container; the services mounting the volume read the new files without being replaced.
 */
export class ContentVolume extends pulumi.ComponentResource {
    /** The volume's name, known at preview: consumers mount it by name and depend on `synced`. */
    declare readonly volumeName: string;
    /** The sync container; `dependsOn` it so a consumer starts on a filled volume. */
    declare readonly synced: docker.Container;
    declare readonly fileCount: number;

    constructor(name: string, args: ContentVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("vpe:platform:ContentVolume", name, {}, opts);
        const files = contentFiles(args.sourceDir);
        if (files.length === 0) {
            throw new Error(`ContentVolume ${name}: ${args.sourceDir} holds no file`);
        }
        // The content is not data: it is the project's, written again by every sync.
        const volume = new docker.Volume(args.volumeName, { name: args.volumeName }, { parent: this });
        const sync = oneShotContainer(
            {
                name: `${args.volumeName}-sync`,
                image: args.syncImage,
                user: "0:0",
                command: ["sh", "-ec", syncScript(staging, mountPoint)],
                volumes: [{ volumeName: volume.name, containerPath: mountPoint }],
                uploads: files.map((f) => ({ file: `${staging}/${f.relative}`, source: f.source, sourceHash: f.sha256 })),
            },
            { parent: this },
        );
        this.volumeName = args.volumeName;
        this.synced = sync.container;
        this.fileCount = files.length;
        this.registerOutputs({ volumeName: this.volumeName, synced: sync.succeeded });
    }
}
