import { MemoryStore } from "../../src/backends/memory.js";
import { instrumentStore } from "../../src/metrics/instrumented.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { conformance } from "../conformance/suite.js";

conformance("memory", { open: async () => new MemoryStore() });
// The sidecar hands the migration instrumented stores: the wrapper must be the same store (its fence included).
conformance("memory, instrumented", { open: async () => instrumentStore(new MemoryStore(), "current", new Metrics(false)) });
