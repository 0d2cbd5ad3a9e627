// render.mjs DIR: what `kubectl kustomize DIR` renders, for kustomizations
// that only list resource files (deploy/kustomization.yaml keeps to that).
// The tests use it where kubectl is missing, and compare the two where it
// is not. Anything else in the kustomization is refused, not ignored.
//
// render.mjs --same A.yaml B.yaml: exit 1 unless both hold the same
// objects (in any order, with any key order).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";

function docs(path) {
  const out = [];
  for (const doc of parseAllDocuments(readFileSync(path, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${path}: ${doc.errors[0].message}`);
      process.exit(1);
    }
    const obj = doc.toJS();
    if (obj) out.push(obj);
  }
  return out;
}

const sorted = (v) =>
  Array.isArray(v) ? v.map(sorted)
  : v && typeof v === "object"
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : v;
const canon = (list) => list.map((o) => JSON.stringify(sorted(o))).sort();

const args = process.argv.slice(2);
if (args[0] === "--same" && args.length === 3) {
  const a = canon(docs(args[1])), b = canon(docs(args[2]));
  if (a.length !== b.length || a.some((s, i) => s !== b[i])) {
    console.error(`${args[1]} and ${args[2]} do not hold the same objects`);
    process.exit(1);
  }
  process.exit(0);
}
if (args.length !== 1) {
  console.error("usage: node render.mjs DIR | --same A.yaml B.yaml");
  process.exit(2);
}
const dir = args[0];
const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"));
const extra = Object.keys(k).filter(
  (key) => !["apiVersion", "kind", "resources"].includes(key));
if (extra.length) {
  console.error(`render.mjs: cannot render ${extra.join(", ")}; use kubectl kustomize`);
  process.exit(2);
}
const out = [];
for (const file of k.resources) out.push(...docs(join(dir, file)).map((o) => stringify(o)));
process.stdout.write(out.join("---\n"));
