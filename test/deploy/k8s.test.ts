// The Kubernetes manifests in k8s/: every YAML document parses; every object validates
// against the Kubernetes schema (kubernetes-models) and has no field the schema does not know
// (the .d.ts of kubernetes-models list them: a typo such as readOnlyRootFileSystem would
// otherwise be silently ignored by the API server); every path a kustomization lists exists;
// each overlay renders (kubectl kustomize when installed, and a small built-in renderer for
// the features used here, checked against kubectl when both exist), and the rendered objects
// fit together: the sidecar's config loads with Decant's own config loader, the ports,
// probes, secrets, volumes and grace period agree with it and with each other.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { expect } from "chai";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Job } from "kubernetes-models/batch/v1/Job";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { loadConfig } from "../../src/config/config.js";

const ROOT = resolve(new URL("../../", import.meta.url).pathname);
const K8S = join(ROOT, "k8s");
const OVERLAYS = ["single", "migration", "unix-socket"] as const;

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Loading

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

function parseDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out: Obj[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${relative(ROOT, file)}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value as Obj);
  }
  return out;
}

const isKustomization = (file: string) => /(^|\/)kustomization\.ya?ml$/.test(file);

// ---------------------------------------------------------------------------------------
// Schema validation: kubernetes-models for the built-in kinds, a minimal check for the
// Prometheus Operator's ServiceMonitor (a CRD kubernetes-models does not have).

const MODELS: Record<string, { model: new (data: any) => { validate(): void }; dts: string }> = {
  "apps/v1/Deployment": { model: Deployment, dts: "kubernetes-models/apps/v1/Deployment.d.ts" },
  "batch/v1/Job": { model: Job, dts: "kubernetes-models/batch/v1/Job.d.ts" },
  "v1/ConfigMap": { model: ConfigMap, dts: "kubernetes-models/v1/ConfigMap.d.ts" },
  "v1/Secret": { model: Secret, dts: "kubernetes-models/v1/Secret.d.ts" },
  "v1/Service": { model: Service, dts: "kubernetes-models/v1/Service.d.ts" },
};
const gvk = (o: Obj) => `${o.apiVersion}/${o.kind}`;

const require = createRequire(import.meta.url);
const NODE_MODULES = join(dirname(require.resolve("kubernetes-models/package.json")), "..");

interface Shape {
  props: Map<string, string | null>; // property → .d.ts file of its (element) type, null = leaf/free-form
}
const shapes = new Map<string, Shape | null>();

/** The properties of the interface a kubernetes-models .d.ts file declares (null: a type alias, a leaf). */
function shapeOf(dtsFile: string): Shape | null {
  if (shapes.has(dtsFile)) return shapes.get(dtsFile)!;
  const text = readFileSync(dtsFile, "utf8");
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const spec = m[2]!;
    const file = spec.startsWith(".") ? resolve(dirname(dtsFile), `${spec}.d.ts`) : join(NODE_MODULES, `${spec}.d.ts`);
    imports.set(m[1]!, file);
  }
  const start = text.search(/^export interface I\w+(?: extends [\w, ]+)? \{$/m);
  if (start < 0) {
    shapes.set(dtsFile, null);
    return null;
  }
  const body = text.slice(start, text.indexOf("\n}", start));
  const props = new Map<string, string | null>();
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+)$/gm)) {
    const type = m[2]!.replace(/;$/, "");
    const ref = /^(?:Array<)?(I\w+)>?$/.exec(type);
    props.set(m[1]!, ref && imports.has(ref[1]!) ? imports.get(ref[1]!)! : null);
  }
  if (/ extends TypeMeta/.test(body)) {
    props.set("apiVersion", null);
    props.set("kind", null);
  }
  const shape = { props };
  shapes.set(dtsFile, shape);
  return shape;
}

/** Paths of fields the schema does not know (kubectl --validate=strict would refuse them). */
function unknownFields(value: unknown, dtsFile: string, path = ""): string[] {
  const shape = shapeOf(dtsFile);
  if (!shape || value === null || typeof value !== "object") return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => unknownFields(v, dtsFile, `${path}[${i}]`));
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (!shape.props.has(key)) {
      out.push(`${path ? `${path}.` : ""}${key}`);
      continue;
    }
    const child = shape.props.get(key);
    if (child) out.push(...unknownFields(v, child, `${path ? `${path}.` : ""}${key}`));
  }
  return out;
}

function validateServiceMonitor(o: Obj): void {
  const fail = (msg: string) => {
    throw new Error(`ServiceMonitor ${o.metadata?.name}: ${msg}`);
  };
  if (o.apiVersion !== "monitoring.coreos.com/v1") fail("apiVersion must be monitoring.coreos.com/v1");
  if (typeof o.metadata?.name !== "string" || !o.metadata.name) fail("metadata.name is required");
  const allowedSpec = ["selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels", "podTargetLabels", "sampleLimit"];
  for (const k of Object.keys(o.spec ?? {})) if (!allowedSpec.includes(k)) fail(`spec.${k} is not a ServiceMonitor field`);
  const labels = o.spec?.selector?.matchLabels;
  if (!labels || typeof labels !== "object" || Object.keys(labels).length === 0) fail("spec.selector.matchLabels must select the Service");
  if (!Array.isArray(o.spec.endpoints) || o.spec.endpoints.length === 0) fail("spec.endpoints must list at least one endpoint");
  const allowedEndpoint = ["port", "targetPort", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings", "params", "tlsConfig", "bearerTokenSecret", "authorization"];
  for (const [i, e] of (o.spec.endpoints as Obj[]).entries()) {
    for (const k of Object.keys(e)) if (!allowedEndpoint.includes(k)) fail(`spec.endpoints[${i}].${k} is not an endpoint field`);
    if (typeof e.port !== "string" || !e.port) fail(`spec.endpoints[${i}].port must name a Service port`);
    if (e.interval !== undefined && !/^\d+(ms|s|m|h)$/.test(e.interval)) fail(`spec.endpoints[${i}].interval must be a duration such as 15s`);
    for (const [j, r] of ((e.relabelings ?? []) as Obj[]).entries()) {
      for (const k of Object.keys(r)) if (!["sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"].includes(k)) fail(`spec.endpoints[${i}].relabelings[${j}].${k} is not a relabeling field (camelCase, e.g. targetLabel)`);
    }
  }
}

function validateObject(o: Obj, where: string): void {
  if (o.apiVersion === "monitoring.coreos.com/v1" && o.kind === "ServiceMonitor") return validateServiceMonitor(o);
  const entry = MODELS[gvk(o)];
  if (!entry) throw new Error(`${where}: no schema for ${gvk(o)} in this test; add it to MODELS`);
  try {
    new entry.model(o).validate();
  } catch (err) {
    throw new Error(`${where}: ${gvk(o)} ${o.metadata?.name}: ${(err as Error).message}`);
  }
  const unknown = unknownFields(o, join(NODE_MODULES, entry.dts));
  if (unknown.length) throw new Error(`${where}: ${gvk(o)} ${o.metadata?.name}: unknown fields ${unknown.join(", ")}`);
}

// ---------------------------------------------------------------------------------------
// Rendering: a small kustomize for what k8s/ uses (resources, patches as strategic-merge
// files, labels without selectors, images), so the overlays are checked without kubectl.

const MERGE_KEYS: Record<string, string> = { containers: "name", initContainers: "name", env: "name", volumes: "name", volumeMounts: "mountPath", ports: "containerPort", imagePullSecrets: "name" };
const KNOWN_KUSTOMIZATION_KEYS = new Set(["apiVersion", "kind", "resources", "patches", "labels", "images"]);

function strategicMerge(base: unknown, patch: unknown, key = ""): unknown {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    const mk = MERGE_KEYS[key];
    if (!mk || !Array.isArray(base)) return structuredClone(patch);
    const out = (base as Obj[]).map((x) => structuredClone(x));
    const added: Obj[] = [];
    for (const p of patch as Obj[]) {
      const i = out.findIndex((b) => b[mk] === p[mk]);
      if (i >= 0) out[i] = strategicMerge(out[i], p) as Obj;
      else added.push(structuredClone(p));
    }
    return [...added, ...out];
  }
  if (typeof patch === "object" && patch !== null && typeof base === "object" && base !== null && !Array.isArray(base)) {
    const out: Obj = structuredClone(base as Obj);
    for (const [k, v] of Object.entries(patch as Obj)) {
      const merged = strategicMerge(out[k], v, k);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  return structuredClone(patch);
}

function renderOwn(dir: string): Obj[] {
  const kfile = ["kustomization.yaml", "kustomization.yml"].map((f) => join(dir, f)).find(existsSync);
  if (!kfile) throw new Error(`${relative(ROOT, dir)} has no kustomization.yaml`);
  const k = parseDocs(kfile)[0]!;
  for (const key of Object.keys(k)) if (!KNOWN_KUSTOMIZATION_KEYS.has(key)) throw new Error(`${relative(ROOT, kfile)}: the built-in renderer does not support ${key}; install kubectl (kubectl kustomize) or extend the renderer`);
  let objects: Obj[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    const p = join(dir, r);
    objects.push(...(statSync(p).isDirectory() ? renderOwn(p) : parseDocs(p)));
  }
  for (const patchRef of (k.patches ?? []) as Obj[]) {
    if (patchRef.target || patchRef.patch || !patchRef.path) throw new Error(`${relative(ROOT, kfile)}: the built-in renderer supports only patches: [{path}] (strategic merge)`);
    for (const patch of parseDocs(join(dir, patchRef.path))) {
      const i = objects.findIndex((o) => gvk(o) === gvk(patch) && o.metadata?.name === patch.metadata?.name);
      if (i < 0) throw new Error(`${patchRef.path}: no ${gvk(patch)} ${patch.metadata?.name} to patch`);
      objects[i] = strategicMerge(objects[i], patch) as Obj;
    }
  }
  for (const l of (k.labels ?? []) as Obj[]) {
    if (l.includeSelectors || l.includeTemplates) throw new Error(`${relative(ROOT, kfile)}: the built-in renderer supports labels without includeSelectors/includeTemplates`);
    objects = objects.map((o) => ({ ...o, metadata: { ...o.metadata, labels: { ...(o.metadata?.labels ?? {}), ...l.pairs } } }));
  }
  for (const img of (k.images ?? []) as Obj[]) {
    for (const o of objects) {
      for (const c of [...(o.spec?.template?.spec?.containers ?? []), ...(o.spec?.template?.spec?.initContainers ?? [])] as Obj[]) {
        const [name, tag] = String(c.image).split(":");
        if (name === img.name) c.image = `${img.newName ?? name}:${img.newTag ?? tag ?? "latest"}`;
      }
    }
  }
  return objects;
}

const KUBECTL = (() => {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore", timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
})();

function renderKubectl(dir: string): Obj[] {
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000 });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj).filter(Boolean);
}

/** Lists sorted by their merge key (kustomize and the built-in renderer order new items differently). */
function canonical(v: unknown, key = ""): unknown {
  if (Array.isArray(v)) {
    const items = v.map((x) => canonical(x));
    const mk = MERGE_KEYS[key];
    return mk ? items.sort((a, b) => String((a as Obj)[mk]).localeCompare(String((b as Obj)[mk]))) : items;
  }
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Obj)[k], k)]));
  return v;
}
const byIdentity = (objs: Obj[]) => new Map(objs.map((o) => [`${gvk(o)}/${o.metadata.name}`, canonical(o)]));

// ---------------------------------------------------------------------------------------
// Helpers for the rendered objects

function env(container: Obj): Record<string, string> {
  // What the process would see, with Secret values and downward-API fields as placeholders.
  const out: Record<string, string> = {};
  for (const e of (container.env ?? []) as Obj[]) {
    if (e.value !== undefined) out[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) out[e.name] = `secret-${e.valueFrom.secretKeyRef.key}`;
    else if (e.valueFrom?.fieldRef) out[e.name] = "example-app-5d9c7b6f4-abcde";
    else if (e.valueFrom?.configMapKeyRef) out[e.name] = "configmap-value";
  }
  return out;
}

function containerPort(container: Obj, port: number | string): number {
  if (typeof port === "number") return port;
  const p = ((container.ports ?? []) as Obj[]).find((x) => x.name === port);
  if (!p) throw new Error(`container ${container.name} declares no port named ${port}`);
  return p.containerPort as number;
}

const hostOf = (hostPort: string) => hostPort.slice(0, hostPort.lastIndexOf(":")).replace(/^\[|\]$/g, "");
const portOf = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
const isLoopback = (host: string) => /^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(host);

function exampleSecrets(): Obj[] {
  return yamlFiles(K8S)
    .filter((f) => !isKustomization(f))
    .flatMap(parseDocs)
    .filter((o) => o.kind === "Secret");
}

// ---------------------------------------------------------------------------------------

describe("deploy: Kubernetes manifests (k8s/)", function () {
  this.timeout(120_000);
  const files = yamlFiles(K8S);
  const patchFiles = new Set<string>();
  for (const f of files.filter(isKustomization)) {
    for (const p of (parseDocs(f)[0]?.patches ?? []) as Obj[]) if (p.path) patchFiles.add(resolve(dirname(f), p.path));
  }

  it("has a base and the single, migration and unix-socket overlays", () => {
    for (const d of ["base", ...OVERLAYS.map((o) => `overlays/${o}`)]) expect(existsSync(join(K8S, d, "kustomization.yaml")), `k8s/${d}/kustomization.yaml`).to.equal(true);
  });

  it("parses every YAML document, and every object validates against its schema with no unknown fields", () => {
    let objects = 0;
    for (const f of files) {
      const docs = parseDocs(f);
      expect(docs.length, `${relative(ROOT, f)} holds no document`).to.be.greaterThan(0);
      if (isKustomization(f)) continue;
      for (const o of docs) {
        expect(o.apiVersion, `${relative(ROOT, f)}: apiVersion`).to.be.a("string");
        expect(o.kind, `${relative(ROOT, f)}: kind`).to.be.a("string");
        if (patchFiles.has(f)) {
          // A partial object: required fields may be missing, but no field may be unknown.
          const entry = MODELS[gvk(o)];
          expect(entry, `${relative(ROOT, f)}: a patch for ${gvk(o)}`).to.not.equal(undefined);
          expect(unknownFields(o, join(NODE_MODULES, entry!.dts)), `${relative(ROOT, f)}: unknown fields`).to.deep.equal([]);
        } else {
          validateObject(o, relative(ROOT, f));
        }
        objects++;
      }
    }
    expect(objects).to.be.greaterThan(5);
  });

  it("the unknown-field check catches a typo (so the check above means something)", () => {
    const typos: [string, (d: Obj) => void][] = [
      ["securityContext.readOnlyRootFileSystem", (d) => (d.spec.template.spec.containers[1].securityContext.readOnlyRootFileSystem = true)],
      ["httpGet.paht", (d) => (d.spec.template.spec.containers[1].livenessProbe.httpGet.paht = "/x")],
      ["secretKeyRef.nmae", (d) => (d.spec.template.spec.containers[1].env[0].valueFrom.secretKeyRef.nmae = "x")],
      ["emptyDir.sizelimit", (d) => (d.spec.template.spec.volumes[1].emptyDir.sizelimit = "1Gi")],
      ["metadata.label", (d) => (d.spec.template.metadata.label = {})],
    ];
    for (const [field, apply] of typos) {
      const typo = parseDocs(join(K8S, "base/deployment.yaml"))[0]!;
      apply(typo);
      expect(() => validateObject(typo, "typo"), field).to.throw(new RegExp(`unknown fields .*${field.replace(".", "\\.")}`));
    }
    const bad = parseDocs(join(K8S, "base/deployment.yaml"))[0]!;
    bad.spec.template.spec.containers[1].resources.limits.cpu = "one";
    expect(() => validateObject(bad, "bad")).to.throw(/quantity/);
  });

  it("every resource and patch a kustomization lists exists", () => {
    for (const f of files.filter(isKustomization)) {
      const k = parseDocs(f)[0]!;
      expect(k.kind, relative(ROOT, f)).to.equal("Kustomization");
      const paths = [...((k.resources ?? []) as string[]), ...((k.patches ?? []) as Obj[]).map((p) => p.path).filter(Boolean)];
      expect(paths.length, `${relative(ROOT, f)} lists nothing`).to.be.greaterThan(0);
      for (const p of paths) expect(existsSync(join(dirname(f), p)), `${relative(ROOT, f)}: ${p} does not exist`).to.equal(true);
    }
  });

  if (!KUBECTL) {
    console.warn("\n!!! kubectl is not installed: the overlays are rendered by the test's own small kustomize only (install kubectl to check them with kubectl kustomize too).\n");
  }

  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      const dir = join(K8S, "overlays", overlay);
      let objects: Obj[];
      let deployment: Obj;
      let sidecar: Obj;
      let configMap: Obj;
      let tmp: string;

      before(() => {
        const own = renderOwn(dir);
        objects = own;
        if (KUBECTL) {
          objects = renderKubectl(dir);
          expect(byIdentity(own), "the built-in renderer and kubectl kustomize disagree").to.deep.equal(byIdentity(objects));
        }
        deployment = objects.find((o) => o.kind === "Deployment")!;
        sidecar = (deployment.spec.template.spec.containers as Obj[]).find((c) => c.name === "decant")!;
        const volume = (deployment.spec.template.spec.volumes as Obj[]).find((v) => v.configMap);
        configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === volume?.configMap?.name)!;
        tmp = mkdtempSync(join(tmpdir(), "decant-k8s-"));
      });
      after(() => rmSync(tmp, { recursive: true, force: true }));

      it(`renders (${KUBECTL ? "kubectl kustomize, and the built-in renderer agrees" : "built-in renderer"}) into objects that all validate`, () => {
        expect(objects.map((o) => o.kind).sort()).to.deep.equal(overlay === "migration" ? ["ConfigMap", "Deployment", "Job", "Service"] : ["ConfigMap", "Deployment", "Service"]);
        for (const o of objects) validateObject(o, `${overlay} (rendered)`);
        for (const o of objects) expect(o.metadata.labels?.["decant.dev/mode"], `${o.kind} label decant.dev/mode`).to.equal(overlay);
      });

      if (overlay === "migration") {
        it("runs backfill-workers as an Indexed Job: the sidecar's image, config and target", () => {
          const job = objects.find((o) => o.kind === "Job")!;
          expect(job.spec.completionMode).to.equal("Indexed");
          expect(job.spec.parallelism).to.be.at.least(2);
          expect(job.spec.completions).to.equal(job.spec.parallelism);
          expect(job.spec.template.spec.restartPolicy).to.equal("Never");
          const worker = (job.spec.template.spec.containers as Obj[])[0]!;
          expect(worker.args.slice(0, 1)).to.deep.equal(["backfill-worker"]);
          expect(worker.image, "the same image as the sidecar").to.equal(sidecar.image);
          const env = (c: Obj, name: string) => (c.env as Obj[]).find((e) => e.name === name);
          expect(env(worker, "DECANT_TARGET")?.value, "the same target as the sidecars").to.equal(env(sidecar, "DECANT_TARGET")?.value);
          const mount = (worker.volumeMounts as Obj[]).find((m) => m.name === "decant-config")!;
          expect(mount.mountPath).to.equal((sidecar.volumeMounts as Obj[]).find((m) => m.name === "decant-config")!.mountPath);
          expect((job.spec.template.spec.volumes as Obj[]).find((v) => v.name === "decant-config")!.configMap.name).to.equal(configMap.metadata.name);
          expect(worker.args.slice(1)).to.deep.equal(sidecar.args.slice(1), "the same --config");
        });
      }

      it("runs an app container and the Decant sidecar from the image built by make image", () => {
        const names = (deployment.spec.template.spec.containers as Obj[]).map((c) => c.name);
        expect(names).to.include("app");
        expect(sidecar, "a container named decant").to.not.equal(undefined);
        expect(sidecar.image).to.match(/\/decant:[\w.-]+$/);
        // args, when given, must be the image's CMD form: serve --config <file>
        expect(sidecar.args?.slice(0, 2)).to.deep.equal(["serve", "--config"]);
        expect(sidecar.command, "the image's ENTRYPOINT (node bin/decant.js) is kept").to.equal(undefined);
      });

      it("hardens the sidecar: non-root, read-only root filesystem with a writable emptyDir, no privilege escalation, no capabilities, requests and limits", () => {
        const sc = sidecar.securityContext;
        expect(sc.runAsNonRoot).to.equal(true);
        expect(sc.runAsUser, "numeric uid (the image's USER 1000)").to.be.a("number").and.greaterThan(0);
        expect(sc.readOnlyRootFilesystem).to.equal(true);
        expect(sc.allowPrivilegeEscalation).to.equal(false);
        expect(sc.capabilities.drop).to.deep.equal(["ALL"]);
        expect(sc.capabilities.add ?? []).to.deep.equal([]);
        expect(sc.privileged ?? false).to.equal(false);
        const writable = (sidecar.volumeMounts as Obj[]).filter((m) => !m.readOnly);
        const volumes = deployment.spec.template.spec.volumes as Obj[];
        expect(writable.some((m) => volumes.find((v) => v.name === m.name)?.emptyDir), "an emptyDir for SQLite data").to.equal(true);
        for (const kind of ["requests", "limits"]) {
          expect(sidecar.resources[kind].cpu, `resources.${kind}.cpu`).to.be.a("string");
          expect(sidecar.resources[kind].memory, `resources.${kind}.memory`).to.be.a("string");
        }
        const heap = /--max-old-space-size=(\d+)/.exec(env(sidecar).NODE_OPTIONS ?? "");
        if (heap) expect(Number(heap[1]) * 1024 * 1024, "V8 heap below the memory limit").to.be.lessThan(quantityBytes(sidecar.resources.limits.memory));
        expect(deployment.spec.template.spec.securityContext?.runAsNonRoot).to.equal(true);
      });

      it("mounts decant.yaml from a ConfigMap, and it loads with Decant's config loader (secrets from the environment)", () => {
        const configPath = sidecar.args[2] as string;
        const mount = (sidecar.volumeMounts as Obj[]).find((m) => configPath.startsWith(`${m.mountPath}/`));
        expect(mount, `a volume mounted above ${configPath}`).to.not.equal(undefined);
        expect(mount!.readOnly).to.equal(true);
        const volume = (deployment.spec.template.spec.volumes as Obj[]).find((v) => v.name === mount!.name)!;
        expect(volume.configMap?.name).to.equal(configMap?.metadata?.name);
        const key = configPath.slice(mount!.mountPath.length + 1);
        expect(configMap.data).to.have.property(key);
        const file = join(tmp, key);
        writeFileSync(file, configMap.data[key]);
        const config = loadConfig(file, env(sidecar));
        expect(config.current).to.match(/^postgres:\/\/app:secret-pg-password@/);
        if (overlay === "migration") {
          expect(config.target).to.match(/^mysql:\/\/app:secret-mysql-password@/);
          expect(config.adminToken, "the Migration service requires a token").to.equal("secret-token");
        } else {
          expect(config.target).to.equal(undefined);
        }
        // No password is written literally anywhere: decant.yaml refers to the environment,
        // and the environment takes it from Secrets.
        expect(configMap.data[key]).to.not.match(/:\/\/[^/@:${}]+:[^@${}]+@/);
        for (const e of (sidecar.env ?? []) as Obj[]) if (typeof e.value === "string") expect(e.value, e.name).to.not.match(/:\/\/[^/@:${}]+:[^@${}]+@/);
      });

      it("every ${VAR} in decant.yaml and the environment is set in the sidecar's environment", () => {
        const vars = env(sidecar);
        const texts = [...Object.values(configMap.data as Record<string, string>), ...((sidecar.env ?? []) as Obj[]).map((e) => e.value ?? "")];
        const refs = texts.flatMap((t) => [...t.matchAll(/\$\{([^}:]+)\}/g)].map((m) => m[1]!));
        expect(refs.length).to.be.greaterThan(0);
        for (const r of refs) expect(vars, `\${${r}}`).to.have.property(r);
      });

      it("every Secret it references has an example (with that key) in k8s/", () => {
        const examples = exampleSecrets();
        const refs = ((sidecar.env ?? []) as Obj[]).map((e) => e.valueFrom?.secretKeyRef).filter(Boolean) as Obj[];
        expect(refs.length).to.be.greaterThan(0);
        for (const ref of refs) {
          const found = examples.some((s) => s.metadata.name === ref.name && (ref.key in (s.stringData ?? {}) || ref.key in (s.data ?? {})));
          expect(found, `an example Secret ${ref.name} with key ${ref.key}`).to.equal(true);
          expect(ref.optional ?? false, `${ref.name}/${ref.key} must not be optional`).to.equal(false);
        }
      });

      it("keeps gRPC on loopback, serves metrics on the pod IP, and probes /livez (startup, liveness) and /readyz (readiness) on the metrics port", () => {
        const config = loadConfig(writeTmp(tmp, configMap.data["decant.yaml"]), env(sidecar));
        const metricsPort = portOf(config.metricsListen);
        expect(isLoopback(hostOf(config.metricsListen)), "metrics_listen must not be loopback: Prometheus and the kubelet use the pod IP").to.equal(false);
        expect(config.listen.startsWith("unix:") || isLoopback(hostOf(config.listen)) || Boolean(config.tls), "gRPC on loopback or a Unix socket, or with TLS").to.equal(true);
        for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
          const p = sidecar[probe];
          expect(p, probe).to.not.equal(undefined);
          if (p.grpc) {
            expect(config.listen.startsWith("unix:"), `${probe}: the kubelet's gRPC probe cannot reach a Unix socket`).to.equal(false);
            // The kubelet dials the pod IP without TLS: only possible with a non-loopback, plaintext listener.
            expect(isLoopback(hostOf(config.listen)), `${probe}: a gRPC probe cannot reach a loopback listener`).to.equal(false);
            expect(config.tls, `${probe}: the kubelet's gRPC probe cannot use TLS`).to.equal(undefined);
            expect(p.grpc.port).to.equal(portOf(config.listen));
          } else {
            // Liveness must not follow the store (an outage would restart every pod); readiness must.
            expect(p.httpGet?.path, probe).to.equal(probe === "readinessProbe" ? "/readyz" : "/livez");
            expect(containerPort(sidecar, p.httpGet.port), `${probe} port`).to.equal(metricsPort);
          }
        }
        const annotations = deployment.spec.template.metadata.annotations;
        expect(annotations["prometheus.io/scrape"]).to.equal("true");
        expect(Number(annotations["prometheus.io/port"])).to.equal(metricsPort);
        expect(annotations["prometheus.io/path"] ?? "/metrics").to.equal("/metrics");
        expect(containerPort(sidecar, "decant-metrics"), "the scrape config keeps the port named decant-metrics").to.equal(metricsPort);
        for (const p of (sidecar.ports ?? []) as Obj[]) expect(p.containerPort, "no declared port that is bound to loopback").to.not.equal(portOf(config.listen));
        // The status page on the metrics port can pause/resume the backfill and run a
        // verification: reachable from the pod network, it must require the admin token.
        if (config.target) expect(config.adminToken, "a migration with metrics_listen off loopback needs an admin token").to.be.a("string");
      });

      if (overlay === "unix-socket") {
        it("serves gRPC on a socket in an emptyDir that the app mounts too, shared through the pod's fsGroup, and the app's DECANT_ADDR names it", () => {
          const config = loadConfig(writeTmp(tmp, configMap.data["decant.yaml"]), env(sidecar));
          expect(config.listen).to.match(/^unix:\//);
          const socketPath = config.listen.slice(5);
          const spec = deployment.spec.template.spec;
          const mountOf = (c: Obj) => ((c.volumeMounts ?? []) as Obj[]).find((m) => socketPath.startsWith(`${m.mountPath}/`));
          const app = (spec.containers as Obj[]).find((c) => c.name === "app")!;
          const [own, theirs] = [mountOf(sidecar), mountOf(app)];
          expect(own, "the sidecar mounts the socket's directory").to.not.equal(undefined);
          expect(theirs?.name, "the app mounts the same volume").to.equal(own!.name);
          expect(own!.readOnly ?? false, "the sidecar creates the socket in it").to.equal(false);
          expect((spec.volumes as Obj[]).find((v) => v.name === own!.name)?.emptyDir, "an emptyDir (lives and dies with the pod)").to.not.equal(undefined);
          expect(spec.securityContext?.fsGroup, "an fsGroup, so the app may connect to the 0660 socket").to.be.a("number");
          expect(env(app).DECANT_ADDR).to.equal(config.listen);
        });
      }

      it("gives the sidecar a preStop hook and a grace period that covers it plus drain_timeout_ms", () => {
        const config = loadConfig(writeTmp(tmp, configMap.data["decant.yaml"]), env(sidecar));
        const pre = sidecar.lifecycle?.preStop;
        expect(pre, "preStop").to.not.equal(undefined);
        const sleepSeconds = pre.sleep ? Number(pre.sleep.seconds) : pre.exec?.command?.[0] === "sleep" ? Number(pre.exec.command[1]) : NaN;
        expect(sleepSeconds, "preStop sleeps").to.be.greaterThan(0);
        const grace = deployment.spec.template.spec.terminationGracePeriodSeconds as number;
        expect(grace, "terminationGracePeriodSeconds ≥ preStop + drain + 5 s to close the stores").to.be.at.least(sleepSeconds + config.drainTimeoutMs / 1000 + 5);
      });

      it("the Service selects the pods and names the metrics port", () => {
        const service = objects.find((o) => o.kind === "Service")!;
        const podLabels = deployment.spec.template.metadata.labels;
        for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>)) expect(podLabels[k], `pod label ${k}`).to.equal(v);
        for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels as Record<string, string>)) expect(podLabels[k], `selector ${k}`).to.equal(v);
        const containers = deployment.spec.template.spec.containers as Obj[];
        for (const p of service.spec.ports as Obj[]) {
          if (typeof p.targetPort === "string") expect(containers.some((c) => ((c.ports ?? []) as Obj[]).some((cp) => cp.name === p.targetPort)), `targetPort ${p.targetPort}`).to.equal(true);
        }
        expect((service.spec.ports as Obj[]).some((p) => p.name === "decant-metrics")).to.equal(true);
      });
    });
  }

  it("the optional ServiceMonitor selects the Service's metrics port and sets job=\"decant\"", () => {
    const sm = parseDocs(join(K8S, "base/servicemonitor.yaml"))[0]!;
    validateServiceMonitor(sm);
    const service = parseDocs(join(K8S, "base/service.yaml"))[0]!;
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(service.metadata.labels[k], `Service label ${k}`).to.equal(v);
    for (const e of sm.spec.endpoints as Obj[]) expect((service.spec.ports as Obj[]).map((p) => p.name)).to.include(e.port);
    const relabel = (sm.spec.endpoints[0].relabelings as Obj[]).find((r) => r.targetLabel === "job");
    expect(relabel?.replacement, "the rules and the dashboard select job=\"decant\"").to.equal("decant");
    const base = parseDocs(join(K8S, "base/kustomization.yaml"))[0]!;
    expect(base.resources, "optional: the CRD may be missing").to.not.include("servicemonitor.yaml");
    expect(() => validateServiceMonitor({ ...sm, spec: { ...sm.spec, endpoints: [{ port: "x", targetlabel: "job" }] } })).to.throw(/targetlabel/);
  });
});

function writeTmp(dir: string, text: string): string {
  const file = join(dir, `decant-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
}

function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`cannot read the quantity ${q}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}
