// The gRPC listener on a Unix domain socket (listen: unix:PATH): a sidecar shares its pod, so
// an emptyDir socket is the app's channel without TCP. The directory is created if missing, a
// socket file left by a process that is gone is replaced, and the socket is made 0660 so the
// app's containers reach it through a shared group (fsGroup in Kubernetes) and nobody else does.
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";

export const SOCKET_MODE = 0o660;

/** Refuses a path that is not a socket or that a live process serves; removes a stale socket file. */
async function removeStale(path: string): Promise<void> {
  const stat = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!stat) return;
  if (!stat.isSocket()) throw new Error(`${path} exists and is not a socket; remove it or choose another path`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => (probe.destroy(), resolve(true)));
    probe.once("error", () => resolve(false));
  });
  if (live) throw new Error(`another process serves ${path}`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

/** Listens on `path`; libuv removes the socket file when the server closes. */
export async function listenUnix(path: string, accept: (socket: Socket) => void): Promise<Server> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o750 });
    await removeStale(path);
    const server = createServer(accept);
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, () => resolve()));
    await chmod(path, SOCKET_MODE).catch((err) => {
      server.close();
      throw err;
    });
    return server;
  } catch (err) {
    throw new Error(`listen: cannot bind unix:${path}: ${(err as Error).message}`);
  }
}
