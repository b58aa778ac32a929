import { MemoryStore } from "../../src/backends/memory.js";
import { conformance } from "../conformance/suite.js";

conformance("memory", { open: async () => new MemoryStore() });
