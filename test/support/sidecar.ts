import { loadConfig, type Config } from "../../src/config/config.js";
import { DecantClient, type ClientOptions } from "../../src/client/client.js";
import { silentLogger, type Logger } from "../../src/log.js";
import { startSidecar, type Sidecar, type SidecarHooks } from "../../src/server/sidecar.js";

/** A real sidecar in this process on random loopback ports, and a real client for it. */
export async function startTestSidecar(env: Record<string, string> = {}, options: { logger?: Logger; hooks?: SidecarHooks; client?: ClientOptions; configPath?: string } = {}) {
  const config: Config = loadConfig(options.configPath, { DECANT_CURRENT: "memory:", DECANT_LISTEN: "127.0.0.1:0", DECANT_METRICS_LISTEN: "127.0.0.1:0", DECANT_DRAIN_TIMEOUT_MS: "2000", ...env });
  const sidecar: Sidecar = await startSidecar(config, options.logger ?? silentLogger(), options.hooks);
  const client = new DecantClient(`127.0.0.1:${sidecar.grpcPort}`, options.client);
  return {
    sidecar,
    client,
    config,
    async stop() {
      client.close();
      await sidecar.stop();
    },
  };
}
