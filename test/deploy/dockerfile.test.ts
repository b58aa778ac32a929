// deploy/Dockerfile, checked without a Docker engine: its instructions are parsed; every COPY
// source exists in the repository and is not excluded by .dockerignore; the stages do what the
// image needs (tsc in a build stage, production dependencies only, numeric non-root user,
// the entry point and command); and the runtime stage's layout is rebuilt in a temporary
// directory from the same COPY lines, with dist/ compiled by `tsc -p tsconfig.build.json`
// into that directory (not the repository), and started exactly as the image's
// ENTRYPOINT + CMD would start it: it must serve, answer the decant CLI, and stop cleanly.
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { freePort } from "../support/processes.js";

const ROOT = resolve(new URL("../../", import.meta.url).pathname);
const DOCKERFILE = join(ROOT, "deploy/Dockerfile");
const run = promisify(execFile);

interface Instruction {
  cmd: string;
  args: string;
  stage: string;
  line: number;
}
interface Stage {
  name: string;
  from: string;
  workdir: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages (comments and line continuations handled; no heredocs). */
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      if (/^\s*#/.test(lines[i]!)) continue; // comment lines inside a continuation are dropped
      line = line.replace(/\\\s*$/, " ") + lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot parse ${JSON.stringify(line)}`);
    const cmd = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    if (cmd === "ARG" && stages.length === 0) {
      const [k, v] = rest.split("=");
      args[k!] = v ?? "";
      continue;
    }
    if (cmd === "FROM") {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      if (!f) throw new Error(`Dockerfile line ${start + 1}: cannot parse FROM ${rest}`);
      const from = f[1]!.replace(/\$\{?(\w+)\}?/g, (_, name: string) => args[name] ?? "");
      const parent = stages.find((s) => s.name === from);
      stages.push({ name: f[2] ?? String(stages.length), from, workdir: parent?.workdir ?? "/", instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile line ${start + 1}: ${cmd} before FROM`);
    if (cmd === "WORKDIR") stage.workdir = posix.resolve(stage.workdir, rest);
    stage.instructions.push({ cmd, args: rest, stage: stage.name, line: start + 1 });
  }
  return { args, stages };
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
  /** The destination names a directory (ends with / or ., or several sources). */
  destIsDir: boolean;
  line: number;
}
function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.cmd === "COPY")
    .map((i) => {
      const words = i.args.startsWith("[") ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith("--"));
      const paths = words.filter((w) => !w.startsWith("--"));
      const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
      const dest = paths.at(-1)!;
      return { from, sources: paths.slice(0, -1), dest: posix.resolve(stage.workdir, dest), destIsDir: /(\/|^\.)$/.test(dest) || paths.length > 2, line: i.line };
    });
}

/** The ancestry of a stage: itself, the stage it is FROM, and so on. */
function lineage(stages: Stage[], stage: Stage): Stage[] {
  const out = [stage];
  for (let s = stages.find((x) => x.name === stage.from); s; s = stages.find((x) => x.name === s!.from)) out.push(s);
  return out;
}
const runs = (stages: Stage[], stage: Stage) => lineage(stages, stage).flatMap((s) => s.instructions.filter((i) => i.cmd === "RUN").map((i) => i.args));

/** .dockerignore matching (moby/patternmatcher): `**` spans directories, a match on a parent excludes its contents, `!` re-includes. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = posix.normalize((negate ? l.slice(1) : l).replace(/^\//, ""));
      let re = "";
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === "*" && pattern[i + 1] === "*") {
          i++;
          if (pattern[i + 1] === "/") {
            i++;
            re += "(?:.*/)?";
          } else re += ".*";
        } else if (c === "*") re += "[^/]*";
        else if (c === "?") re += "[^/]";
        else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = posix.normalize(path).split("/");
    let excluded = false;
    for (const rule of rules) {
      const matches = parts.some((_, i) => rule.re.test(parts.slice(0, i + 1).join("/")));
      if (matches) excluded = !rule.negate;
    }
    return excluded;
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("deploy: Dockerfile", function () {
  this.timeout(180_000);
  const { stages } = parseDockerfile(readFileSync(DOCKERFILE, "utf8"));
  const runtime = stages.at(-1)!;
  const ignored = dockerignore(readFileSync(join(ROOT, ".dockerignore"), "utf8"));

  it("is multi-stage, with a node:20 slim runtime", () => {
    expect(stages.length).to.be.at.least(2);
    expect(runtime.from).to.match(/^node:20([.\d]*)?-(bookworm-)?slim(@sha256:[0-9a-f]{64})?$/);
  });

  it("compiles with tsc -p tsconfig.build.json in a build stage, with the C++ toolchain better-sqlite3 may need", () => {
    const build = stages.find((s) => runs(stages, s).some((r) => /\bnpx tsc -p tsconfig\.build\.json\b/.test(r)));
    expect(build, "a stage that runs npx tsc -p tsconfig.build.json").to.not.equal(undefined);
    expect(build!.name).to.not.equal(runtime.name);
    expect(runs(stages, build!).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)), "npm ci with dev dependencies (typescript) before tsc").to.equal(true);
    const deps = stages.find((s) => copies(runtime).some((c) => c.from === s.name && c.sources.some((x) => x.endsWith("/node_modules"))));
    expect(deps, "the stage the runtime's node_modules come from").to.not.equal(undefined);
    const depsRuns = runs(stages, deps!);
    expect(depsRuns.some((r) => /\bnpm ci\b.*--omit=dev/.test(r)), "production dependencies only (npm ci --omit=dev)").to.equal(true);
    expect(depsRuns.some((r) => /apt-get install\b.*\bg\+\+/.test(r) && /\bmake\b/.test(r) && /\bpython3\b/.test(r)), "python3, make and g++ for node-gyp").to.equal(true);
    // The runtime itself installs nothing: no npm and no compiler in the final image.
    expect(runtime.instructions.filter((i) => i.cmd === "RUN").map((i) => i.args).join("\n")).to.not.match(/\bnpm\b|apt-get|g\+\+/);
  });

  it("runs as a numeric non-root user, with the entry point, command and ports the deployment expects", () => {
    const user = runtime.instructions.filter((i) => i.cmd === "USER").at(-1)?.args;
    expect(user, "USER uid[:gid] — numeric, so Kubernetes can verify runAsNonRoot").to.match(/^[1-9]\d*(:\d+)?$/);
    const json = (cmd: string) => JSON.parse(runtime.instructions.filter((i) => i.cmd === cmd).at(-1)!.args) as string[];
    expect(json("ENTRYPOINT")).to.deep.equal(["node", "bin/decant.js"]);
    expect(json("CMD")).to.deep.equal(["serve", "--config", "/etc/decant/decant.yaml"]);
    const exposed = runtime.instructions.filter((i) => i.cmd === "EXPOSE").flatMap((i) => i.args.split(/\s+/));
    expect(exposed).to.include.members(["50051", "9464"]);
    expect(runtime.workdir).to.equal("/app");
  });

  it("every COPY source exists in the repository and is not excluded by .dockerignore; every COPY --from names an earlier stage", () => {
    for (const stage of stages) {
      for (const c of copies(stage)) {
        if (c.from) {
          const i = stages.findIndex((s) => s.name === c.from);
          expect(i, `line ${c.line}: --from=${c.from}`).to.be.within(0, stages.indexOf(stage) - 1);
          for (const src of c.sources) expect(src.startsWith(`${stages[i]!.workdir}/`), `line ${c.line}: ${src} lies in ${c.from}'s WORKDIR`).to.equal(true);
          continue;
        }
        for (const src of c.sources) {
          expect(existsSync(join(ROOT, src)), `line ${c.line}: COPY source ${src} does not exist`).to.equal(true);
          expect(ignored(src), `line ${c.line}: ${src} is excluded by .dockerignore`).to.equal(false);
          if (statSync(join(ROOT, src)).isDirectory()) {
            const kept = filesUnder(join(ROOT, src)).filter((f) => !ignored(relative(ROOT, f)));
            expect(kept.length, `${src}/ would be empty in the build context`).to.be.greaterThan(0);
          }
        }
      }
    }
    // The context stays small: no node_modules, dist, data or .git are sent to the builder.
    for (const p of ["node_modules/x", "dist/src/cli/main.js", "data/decant.db", ".git/HEAD", "test/x.test.ts"]) expect(ignored(p), p).to.equal(true);
    for (const p of ["src/cli/main.ts", "proto/decant/v1/store.proto", "bin/decant.js", "package-lock.json"]) expect(ignored(p), p).to.equal(false);
  });

  describe("the runtime layout, rebuilt from the Dockerfile's COPY lines", () => {
    let tmp: string;
    let app: string;
    before(async function () {
      tmp = mkdtempSync(join(tmpdir(), "decant-image-"));
      // The build stage's output: tsc into a temporary dist/, never into the repository.
      await run("npx", ["tsc", "-p", "tsconfig.build.json", "--outDir", join(tmp, "dist")], { cwd: ROOT, timeout: 170_000 });
      app = join(tmp, "app");
      mkdirSync(app);
      const outputs: Record<string, string> = { node_modules: join(ROOT, "node_modules"), dist: join(tmp, "dist") };
      for (const c of copies(runtime)) {
        for (const src of c.sources) {
          // Docker: a directory's contents go into the destination; a file goes into it when
          // it is a directory (trailing /), else becomes it.
          const from = c.from ? outputs[posix.basename(src)] : join(ROOT, src);
          if (!from) throw new Error(`line ${c.line}: this test does not know what ${src} of stage ${c.from} holds`);
          const isDir = statSync(from).isDirectory();
          const dest = join(app, relative(runtime.workdir, c.dest), !isDir && c.destIsDir ? posix.basename(src) : "");
          mkdirSync(dirname(dest), { recursive: true });
          if (posix.basename(src) === "node_modules") symlinkSync(from, dest, "dir");
          else cpSync(from, dest, { recursive: true });
        }
      }
    });
    after(() => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it("holds the entry point's compiled CLI (dist/src/cli/main.js), proto/ and package.json, and no sources", () => {
      expect(existsSync(join(app, "bin/decant.js"))).to.equal(true);
      expect(existsSync(join(app, "dist/src/cli/main.js")), "bin/decant.js runs dist/src/cli/main.js").to.equal(true);
      expect(existsSync(join(app, "dist/src/server/proto.js"))).to.equal(true);
      expect(existsSync(join(app, "proto/decant/v1/store.proto")), "proto/ next to dist/").to.equal(true);
      expect(JSON.parse(readFileSync(join(app, "package.json"), "utf8")).type, "dist/ is ESM").to.equal("module");
      expect(existsSync(join(app, "src")), "no TypeScript sources: bin/decant.js must not fall back to tsx").to.equal(false);
    });

    it("the compiled code imports only packages that npm ci --omit=dev installs", () => {
      const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
      const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
      const imported = new Set<string>();
      for (const f of filesUnder(join(app, "dist")).filter((f) => f.endsWith(".js"))) {
        const text = readFileSync(f, "utf8");
        for (const m of text.matchAll(/(?:^|[;\s])(?:import|export)\s[^"';]*?\bfrom\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)|^import\s+["']([^"']+)["']/gm)) {
          const spec = (m[1] ?? m[2] ?? m[3])!;
          if (spec.startsWith(".") || spec.startsWith("node:") || isBuiltin(spec)) continue;
          imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
        }
      }
      expect(imported.size).to.be.greaterThan(3);
      // What the image gets: top-level packages of the lock file not marked dev-only.
      const missing = [...imported].filter((p) => {
        const entry = lock.packages[`node_modules/${p}`];
        return !entry || entry.dev === true;
      });
      expect(missing, "imported by dist/ but not installed by npm ci --omit=dev").to.deep.equal([]);
      const undeclared = [...imported].filter((p) => !(p in pkg.dependencies));
      if (undeclared.length) {
        console.warn(`\n!!! dist/ imports ${undeclared.join(", ")} directly, but package.json does not list ${undeclared.length > 1 ? "them" : "it"} in dependencies: it is installed only as a dependency of another package. Add it to dependencies.\n`);
      }
    });

    it("starts as ENTRYPOINT + CMD would, serves /healthz, /metrics and the store, and exits 0 on SIGTERM", async () => {
      const grpcPort = await freePort();
      const metricsPort = await freePort();
      const config = join(tmp, "decant.yaml");
      writeFileSync(config, `current: "memory:"\nlisten: 127.0.0.1:${grpcPort}\nmetrics_listen: 127.0.0.1:${metricsPort}\ndrain_timeout_ms: 2000\nlog_format: json\n`);
      const json = (cmd: string) => JSON.parse(runtime.instructions.filter((i) => i.cmd === cmd).at(-1)!.args) as string[];
      const argv = [...json("ENTRYPOINT"), ...json("CMD")].map((a) => (a === "/etc/decant/decant.yaml" ? config : a));
      expect(argv[0]).to.equal("node");
      const env = { PATH: process.env.PATH ?? "", HOME: tmp, NODE_ENV: "production" };
      const child = spawn(process.execPath, argv.slice(1), { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
      try {
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (child.exitCode !== null) throw new Error(`decant exited with ${child.exitCode}: ${stderr}`);
          const ok = await fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => r.ok, () => false);
          if (ok) break;
          if (Date.now() > deadline) throw new Error(`no /healthz within 30 s: ${stderr}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        expect(metrics).to.include("decant_requests_total");
        const cli = (...args: string[]) => run(process.execPath, ["bin/decant.js", ...args, "--addr", `127.0.0.1:${grpcPort}`], { cwd: app, env, timeout: 30_000 });
        expect((await cli("put", "users", "alice", '{"plan":"pro"}')).stdout).to.equal("version 1\n");
        expect(JSON.parse((await cli("get", "users", "alice", "--json")).stdout)).to.deep.equal({ key: "alice", version: "1", value: '{"plan":"pro"}' });
        expect(stderr, "runs the compiled code, not tsx").to.not.match(/tsx|\.ts:/);
      } finally {
        child.kill("SIGTERM");
      }
      expect(await exited, `exit code after SIGTERM; log: ${stderr}`).to.equal(0);
      expect(stderr).to.include("decant stopped");
    });
  });
});
