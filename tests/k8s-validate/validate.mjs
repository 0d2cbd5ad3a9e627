// validate.mjs RENDERED.yaml [--json OUT]
//
// Checks every object of a multi-document YAML against the Kubernetes API
// schemas of the npm package kubernetes-models, offline, in two ways:
//  1. the model's validate(): the OpenAPI schema (types, required fields,
//     formats, enums);
//  2. TypeScript's excess-property check against the model's interface,
//     because the schemas allow unknown fields and a typo'd field name
//     (hostNetwrok) must fail too: every object becomes a typed object
//     literal in a generated file that tsc --strict compiles.
// --json writes the objects as a JSON array (for further checks).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? null : args.splice(i, 2)[1];
};
const jsonOut = opt("--json");
if (args.length !== 1) {
  console.error("usage: node validate.mjs RENDERED.yaml [--json OUT]");
  process.exit(2);
}

function load(path) {
  const objs = [];
  for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
    if (doc.errors.length) throw new Error(`${path}: ${doc.errors[0].message}`);
    const o = doc.toJS();
    if (o) objs.push(o);
  }
  return objs;
}

const name = (o) =>
  `${o.kind} ${o.metadata?.namespace ? o.metadata.namespace + "/" : ""}${o.metadata?.name}`;
const objs = load(args[0]);
let failed = 0;
const fail = (msg) => {
  console.error(`INVALID: ${msg}`);
  failed++;
};
if (!objs.length) fail("no objects");

// 1. The schemas.
const types = [];
for (const o of objs) {
  if (typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
    fail(`an object without apiVersion/kind: ${JSON.stringify(o).slice(0, 80)}`);
    types.push(null);
    continue;
  }
  // One module per kind: importing a whole API group makes tsc read
  // every type in it (seconds instead of one).
  const module = `kubernetes-models/${o.apiVersion}/${o.kind}`;
  let mod;
  try {
    mod = await import(module);
  } catch {
    fail(`${name(o)}: unknown kind ${o.kind} in apiVersion ${o.apiVersion}`);
    types.push(null);
    continue;
  }
  if (!mod[o.kind]) {
    fail(`${name(o)}: ${module} has no ${o.kind}`);
    types.push(null);
    continue;
  }
  try {
    new mod[o.kind](o).validate();
  } catch (e) {
    fail(`${name(o)}: ${e.message}`);
  }
  types.push({ module, iface: `I${o.kind}` });
}

// 2. Unknown fields: tsc on typed object literals.
const modules = [...new Set(types.filter(Boolean).map((t) => t.module))];
const lines = modules.map((m, i) => `import type * as m${i} from "${m}";`);
const first = lines.length + 1;
types.forEach((t, i) => {
  lines.push(t ? `export const o${i}: m${modules.indexOf(t.module)}.${t.iface} = ${JSON.stringify(objs[i])};`
               : `export const o${i} = null;`);
});
const work = mkdtempSync(join(tmpdir(), "h2lb-k8s-validate-"));
try {
  // Module resolution finds kubernetes-models through the symlink.
  symlinkSync(join(here, "node_modules"), join(work, "node_modules"));
  writeFileSync(join(work, "check.ts"), lines.join("\n") + "\n");
  try {
    execFileSync(process.execPath, [
      join(here, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict",
      "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext",
      "--skipLibCheck", "--pretty", "false", join(work, "check.ts"),
    ], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    const out = (e.stdout || "") + (e.stderr || "");
    for (const l of out.split("\n").filter(Boolean)) {
      const m = /check\.ts\((\d+),\d+\): (.*)$/.exec(l);
      const i = m ? Number(m[1]) - first : -1;
      fail(i >= 0 && i < objs.length ? `${name(objs[i])}: ${m[2]}` : l);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (jsonOut) writeFileSync(jsonOut, JSON.stringify(objs, null, 1));
if (failed) process.exit(1);
console.log(`valid: ${objs.map(name).join(", ")}`);
