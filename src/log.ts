// Logs: JSON lines when not on a terminal (production), readable in a terminal. One line per
// start, stop, configuration and error; never per request by default.
//
// A logger of our own rather than winston: the sidecar needs four levels and two fixed
// formats, and winston with its dependencies was ~2.5 MB of an idle sidecar's RSS. The lines
// are the ones winston's json() and printf formats wrote: JSON with sorted keys and an ISO
// timestamp, or "HH:mm:ss <coloured level> message {fields}" on a terminal.

export type LogLevel = "error" | "warn" | "info" | "debug";
export type LogFields = Record<string, unknown>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
}

const SEVERITY: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 5 }; // npm's numbers, as in winston
const COLOUR: Record<LogLevel, number> = { error: 31, warn: 33, info: 32, debug: 34 };

/** JSON with object keys sorted at every depth, bigints as strings and cycles as "[Circular]". */
export function stableJson(value: unknown, ancestors: object[] = []): string | undefined {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") value = (value as { toJSON(): unknown }).toJSON();
  if (typeof value === "bigint") return `"${value}"`;
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (ancestors.includes(value)) return '"[Circular]"';
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return `[${value.map((v) => stableJson(v, ancestors) ?? "null").join(",")}]`;
    const fields: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const json = stableJson((value as LogFields)[key], ancestors);
      if (json !== undefined) fields.push(`${JSON.stringify(key)}:${json}`);
    }
    return `{${fields.join(",")}}`;
  } finally {
    ancestors.pop();
  }
}

const two = (n: number) => String(n).padStart(2, "0");

export function createLogger(options: { level?: string; format?: "json" | "pretty" | "auto"; stream?: NodeJS.WritableStream } = {}): Logger {
  const pretty = options.format === "pretty" || ((options.format ?? "auto") === "auto" && Boolean(process.stderr.isTTY));
  const threshold = SEVERITY[(options.level ?? "info") as LogLevel] ?? SEVERITY.info;
  const out = options.stream ?? process.stderr;
  const line = (level: LogLevel, message: string, fields: LogFields = {}): string => {
    if (!pretty) return stableJson({ ...fields, level, message, timestamp: new Date().toISOString() })!;
    const { level: _level, message: _message, timestamp: _timestamp, ...rest } = fields;
    // Fields in the order given; stableJson when JSON.stringify cannot (bigints, cycles).
    let extra = "";
    if (Object.keys(rest).length) {
      try {
        extra = ` ${JSON.stringify(rest)}`;
      } catch {
        extra = ` ${stableJson(rest)}`;
      }
    }
    const now = new Date();
    return `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())} \u001b[${COLOUR[level]}m${level}\u001b[39m ${message}${extra}`;
  };
  const at =
    (level: LogLevel) =>
    (message: string, fields?: LogFields): void => {
      if (SEVERITY[level] <= threshold) out.write(`${line(level, message, fields)}\n`);
    };
  return { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}

const ignore = (): void => {};
export const silentLogger = (): Logger => ({ error: ignore, warn: ignore, info: ignore, debug: ignore });
