// Validates Kubernetes objects of CRD kinds against the schemas of the pinned @kubernetes-models
// packages (generated from the released CRDs): node validate.mjs < documents.json prints, as JSON, one
// list of problems per document. Strict, as the API server's strict field validation is: the
// generated validators check types, enums, patterns and required fields but let unknown fields pass
// (CRD schemas prune them silently), so every object is read through a Proxy that records which
// fields the validator looked at; a field it never read is one the schema does not have.
import { readFileSync } from "node:fs";

const PACKAGES = {
  "gateway.networking.k8s.io": "gateway-api",
  "cert-manager.io": "cert-manager",
  "security.istio.io": "istio",
  "networking.istio.io": "istio",
  "monitoring.coreos.com": "prometheus-operator",
};
const ROOT = new URL("./node_modules/@kubernetes-models/", import.meta.url);

async function validatorFor(apiVersion, kind) {
  const [group, version] = apiVersion.split("/");
  const pkg = PACKAGES[group];
  if (!pkg) return null;
  const model = new URL(`${pkg}/${group}/${version}/${kind}.js`, ROOT);
  let source;
  try {
    source = readFileSync(model, "utf8");
  } catch {
    return null;
  }
  const schema = source.match(/_schemas\/(\w+)\.js/)[1];
  return (await import(new URL(`${pkg}/_schemas/${schema}.js`, ROOT))).validate;
}

// A deep copy of value whose every object records, in unread, the fields not yet looked at.
function tracked(value, path, unread) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item, i) => tracked(item, `${path}/${i}`, unread));
  const copy = {};
  for (const [key, item] of Object.entries(value)) {
    unread.add(`${path}/${key}`);
    copy[key] = tracked(item, `${path}/${key}`, unread);
  }
  const seen = (key) => typeof key === "string" && unread.delete(`${path}/${key}`);
  return new Proxy(copy, {
    get: (target, key, receiver) => (seen(key), Reflect.get(target, key, receiver)),
    has: (target, key) => (seen(key), Reflect.has(target, key)),
    // A map (labels, annotations) or a free-form object is walked key by key: all of it is known.
    ownKeys: (target) => (Object.keys(target).forEach(seen), Reflect.ownKeys(target)),
  });
}

async function problems(doc) {
  const validate = await validatorFor(doc.apiVersion ?? "", doc.kind ?? "");
  if (!validate) return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  const unread = new Set();
  if (!validate(tracked(doc, "", unread))) {
    return validate.errors.map((e) => `${e.instancePath || "/"}: ${e.keyword} ${JSON.stringify(e.params)}`);
  }
  return [...unread].map((path) => `${path}: unknown field`);
}

const docs = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(await Promise.all(docs.map(problems))));
