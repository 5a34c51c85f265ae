// The resource types the harness can apply; any other type fails the run.
import { containerHandler } from "./container";
import { imageHandler } from "./dockerImage";
import { networkHandler, remoteImageHandler, secretHandler, volumeHandler } from "./dockerObjects";
import { dynamicHandler } from "./dynamic";
import {
    databaseHandler,
    defaultPrivilegesHandler,
    grantHandler,
    postgresqlProviderHandler,
    roleHandler,
    schemaHandler,
} from "./postgresql";
import { randomBytesHandler, randomPasswordHandler } from "./random";
import { serviceHandler } from "./service";
import { tlsHandlers } from "./tls";
import type { Handler } from "./types";

const dockerProviderHandler: Handler = {
    type: "pulumi:providers:docker",
    inputs: ["host", "version"],
    forceNew: [],
    async create() {
        return { id: "provider", outputs: {} };
    },
    async delete() {
        // A provider configuration owns nothing on the engine.
    },
};

const all: Handler[] = [
    networkHandler,
    volumeHandler,
    imageHandler,
    remoteImageHandler,
    containerHandler,
    serviceHandler,
    secretHandler,
    randomPasswordHandler,
    randomBytesHandler,
    dynamicHandler,
    postgresqlProviderHandler,
    roleHandler,
    databaseHandler,
    schemaHandler,
    grantHandler,
    defaultPrivilegesHandler,
    dockerProviderHandler,
    ...tlsHandlers,
];

export const handlers: ReadonlyMap<string, Handler> = new Map(all.map((h) => [h.type, h]));
