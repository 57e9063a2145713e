#!/usr/bin/env bash
# The main job, end to end, on a local API server: start kube-apiserver + etcd, install the
# SealedSecret CRD, start seal-operator, seal an example Secret with `seal encrypt` (the
# recipient read from the operator's ConfigMap), apply it, and show the Secret and Events.
# Needs only what ./test.sh needs; talks to the API server with curl (no kubectl needed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf '\n==> %s\n' "$*" >&2; }

tests/cluster/cluster up
eval "$(tests/cluster/cluster env)"
export KUBECONFIG
state=${SEAL_CLUSTER_DIR:-/tmp/seal-cluster}
api="https://127.0.0.1:${SEAL_APISERVER_PORT:-16443}"
token=$(cat "$state/admin.token")
kube() { # method path [content-type body-file]
    local args=(-fsS --cacert "$state/pki/ca.crt" -H "Authorization: Bearer $token" -X "$1" "$api$2")
    [ $# -ge 4 ] && args+=(-H "Content-Type: $3" --data-binary "@$4")
    curl "${args[@]}"
}
pretty() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), indent=2))'; }

say "building seal and seal-operator"
cargo build --quiet -p seal-cli -p seal-operator
bin=target/debug
work=$(mktemp -d)
trap 'kill $(cat "$work/operator.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

say "installing the SealedSecret CRD (charts/seal-operator/crds/sealedsecrets.seal.dev.yaml)"
kube PATCH "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/sealedsecrets.seal.dev?fieldManager=seal-demo&force=true" \
    application/apply-patch+yaml charts/seal-operator/crds/sealedsecrets.seal.dev.yaml >/dev/null
for ns in seal-system demo; do
    printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s"}}' "$ns" >"$work/ns.json"
    kube PATCH "/api/v1/namespaces/$ns?fieldManager=seal-demo" application/apply-patch+yaml "$work/ns.json" >/dev/null
done

say "starting seal-operator (keys in namespace seal-system; audit log: $work/audit.log)"
"$bin/seal-operator" --namespace seal-system --log-format text --leader-election=false \
    --http-addr 127.0.0.1:18080 --metrics-addr 127.0.0.1:19090 >"$work/audit.log" 2>"$work/operator.log" &
echo $! >"$work/operator.pid"
for _ in $(seq 1 100); do
    curl -fsS http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS http://127.0.0.1:18080/readyz >/dev/null || { tail -20 "$work/operator.log" >&2; exit 1; }
"$bin/seal" keys

say "sealing an example Secret (recipient from the operator's ConfigMap)"
cat >"$work/secret.yaml" <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: database
  namespace: demo
  labels: {app: shop}
type: kubernetes.io/basic-auth
stringData:
  username: shop
  password: correct-horse-battery-staple
YAML
"$bin/seal" encrypt "$work/secret.yaml" -o "$work/sealed.yaml"
cat "$work/sealed.yaml"

say "applying the SealedSecret"
kube PATCH "/apis/seal.dev/v1/namespaces/demo/sealedsecrets/database?fieldManager=seal-demo" \
    application/apply-patch+yaml "$work/sealed.yaml" >/dev/null
for _ in $(seq 1 100); do
    kube GET /api/v1/namespaces/demo/secrets/database >/dev/null 2>&1 && break
    sleep 0.1
done

cat >"$work/show.py" <<'PY'
import base64, json, sys
what, doc = sys.argv[1], json.load(sys.stdin)
if what == "secret":
    meta = doc["metadata"]
    shown = {"metadata": {k: meta[k] for k in ("name", "namespace", "labels", "ownerReferences") if k in meta},
             "type": doc.get("type"), "data": doc.get("data")}
    print(json.dumps(shown, indent=2))
    for key, value in doc.get("data", {}).items():
        print(f"  {key} decodes to: {base64.b64decode(value).decode()}")
elif what == "status":
    print(json.dumps(doc.get("status"), indent=2))
else:
    for e in doc["items"]:
        r = e["regarding"]
        print(f'  {e["type"]:8} {e["reason"]:12} {r["kind"]}/{r["name"]}: {e.get("note", "")}')
PY
say "the Secret the operator wrote (an example value, shown to prove the round trip)"
kube GET /api/v1/namespaces/demo/secrets/database | python3 "$work/show.py" secret
say "the SealedSecret's status"
kube GET /apis/seal.dev/v1/namespaces/demo/sealedsecrets/database | python3 "$work/show.py" status
say "Events"
kube GET /apis/events.k8s.io/v1/namespaces/demo/events | python3 "$work/show.py" events
kube GET /apis/events.k8s.io/v1/namespaces/seal-system/events | python3 "$work/show.py" events
say "audit log"
cat "$work/audit.log"
say "done: the API server keeps running (tests/cluster/cluster down stops it)"
