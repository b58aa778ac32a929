// Kept for the importers outside src/backends (server, config): the plumbing lives in kit.ts.
export { redactUrl } from "./kit.js";
