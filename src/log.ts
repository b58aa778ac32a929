// winston: JSON when not on a terminal (production), readable in a terminal. One line per
// start, stop, configuration and error; never per request by default.
import winston from "winston";

export type Logger = winston.Logger;

export function createLogger(options: { level?: string; format?: "json" | "pretty" | "auto"; stream?: NodeJS.WritableStream } = {}): Logger {
  const pretty = options.format === "pretty" || ((options.format ?? "auto") === "auto" && Boolean(process.stderr.isTTY));
  const format = pretty
    ? winston.format.combine(
        winston.format.timestamp({ format: "HH:mm:ss" }),
        winston.format.colorize(),
        winston.format.printf(({ level, message, timestamp, ...rest }) => {
          const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : "";
          return `${String(timestamp)} ${level} ${String(message)}${extra}`;
        }),
      )
    : winston.format.combine(winston.format.timestamp(), winston.format.json());
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] });
  return winston.createLogger({ level: options.level ?? "info", format, transports: [transport] });
}

export const silentLogger = (): Logger => winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
