#!/usr/bin/env python3
"""Writes test vectors for `seal import bitnami` with an implementation of the sealed-secrets
format that is not seal's: kubesealpy (PyPI), on top of the `cryptography` package.

    python3 cli/tests/bitnami/make_vectors.py cli/tests/bitnami/vectors
    python3 cli/tests/bitnami/make_vectors.py OUT --namespace NS --unsealed SECRETS.yaml

With --namespace, every object is placed in NS (for the end-to-end test, which runs in a
namespace of its own); with --unsealed, the Secrets the Bitnami controller would make from
the convertible files are written to SECRETS.yaml too (test values, for that test to create
them as the controller would).

Writes OUT/keys.yaml (two controller keys, as `kubectl get secret -n kube-system -l
sealedsecrets.bitnami.com/sealed-secrets-key -o yaml` prints them), OUT/repo/*.yaml (Bitnami
SealedSecrets: every scope, both keys, 0 bytes to 1 MiB, and files seal must refuse) and
OUT/expected.json (per file, per object, per item: length and SHA-256 of the value). The
values are made up for the test; no value is written in the clear.
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import sys

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from kubesealpy.scopes import SealingScope
from kubesealpy.sealer import Sealer

KEY_BITS = 2048


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def certificate(key):
    # As the controller makes it: self-signed, CN sealed-secret, O sealed-secret.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def key_secret(name, key, pem_format, created):
    b64 = lambda b: base64.b64encode(b).decode()
    pem = key.private_bytes(
        serialization.Encoding.PEM, pem_format, serialization.NoEncryption()
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "creationTimestamp": created,
            "generateName": "sealed-secrets-key",
            "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
            "name": name,
            "namespace": "kube-system",
            "resourceVersion": "1234",
            "uid": "6f1c1d2e-0000-4000-8000-00000000000" + name[-1],
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(certificate(key).public_bytes(serialization.Encoding.PEM)),
            "tls.key": b64(pem),
        },
    }


def value(length, seed):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:length])


PLACE = lambda ns: ns


def sealed(sealer, name, namespace, scope, items, template=None, label_for=None):
    namespace = PLACE(namespace)
    if template:
        template["metadata"]["namespace"] = namespace
    ns_for_label, name_for_label = label_for or (namespace, name)
    annotations = {}
    if scope == SealingScope.CLUSTER_WIDE:
        annotations["sealedsecrets.bitnami.com/cluster-wide"] = "true"
    elif scope == SealingScope.NAMESPACE_WIDE:
        annotations["sealedsecrets.bitnami.com/namespace-wide"] = "true"
    metadata = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    encrypted = {
        key: base64.b64encode(
            sealer.seal_value(v, namespace=ns_for_label, name=name_for_label, scope=scope)
        ).decode()
        for key, v in items.items()
    }
    spec = {"encryptedData": encrypted}
    spec["template"] = template or {"metadata": {"name": name, "namespace": namespace, "creationTimestamp": None}}
    return {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": metadata, "spec": spec}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--namespace")
    parser.add_argument("--unsealed")
    args = parser.parse_args()
    out = args.out
    global PLACE
    if args.namespace:
        PLACE = lambda ns: args.namespace
    unsealed = []
    repo = os.path.join(out, "repo")
    os.makedirs(repo, exist_ok=True)
    first, second, stranger = new_key(), new_key(), new_key()
    keys = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [
            key_secret("sealed-secrets-keyabcd1", first, serialization.PrivateFormat.TraditionalOpenSSL, "2025-01-01T00:00:00Z"),
            key_secret("sealed-secrets-keyefgh2", second, serialization.PrivateFormat.PKCS8, "2025-02-01T00:00:00Z"),
        ],
    }
    with open(os.path.join(out, "keys.yaml"), "w") as f:
        yaml.safe_dump(keys, f, sort_keys=False)

    by_first, by_second, by_stranger = (Sealer(k.public_key()) for k in (first, second, stranger))
    expected = {}
    files = {}

    def add(file, docs, items_per_doc):
        files[file] = docs
        if items_per_doc is not None:
            for d, items in zip(docs, items_per_doc):
                template = d["spec"]["template"]
                meta = {k: v for k, v in template["metadata"].items() if k in ("labels", "annotations")}
                meta.update(name=d["metadata"]["name"], namespace=d["metadata"]["namespace"])
                secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                          "data": {k: base64.b64encode(v).decode() for k, v in items.items()}}
                for field in ("type", "immutable"):
                    if field in template:
                        secret[field] = template[field]
                unsealed.append(secret)
            expected[file] = {
                f"{d['metadata']['namespace']}/{d['metadata']['name']}": {
                    k: {"length": len(v), "sha256": hashlib.sha256(v).hexdigest()} for k, v in items.items()
                }
                for d, items in zip(docs, items_per_doc)
            }

    strict_items = {"empty": b"", "password": value(24, "strict"), "binary": value(300, "bin")}
    add(
        "strict.yaml",
        [
            sealed(
                by_first, "db", "prod", SealingScope.STRICT, strict_items,
                template={
                    "metadata": {
                        "name": "db", "namespace": "prod", "creationTimestamp": None,
                        "labels": {"app": "db"}, "annotations": {"team": "storage"},
                    },
                    "type": "kubernetes.io/basic-auth",
                    "immutable": True,
                },
            )
        ],
        [strict_items],
    )
    ns_items = {"token": value(40, "ns")}
    add("namespace-wide.yaml", [sealed(by_first, "api", "prod", SealingScope.NAMESPACE_WIDE, ns_items)], [ns_items])
    cw_items = {"ca.crt": value(1000, "cw")}
    add("cluster-wide.yaml", [sealed(by_first, "ca", "shared", SealingScope.CLUSTER_WIDE, cw_items)], [cw_items])
    second_items = {"key": value(64, "second")}
    add("second-key.yaml", [sealed(by_second, "rotated", "prod", SealingScope.STRICT, second_items)], [second_items])
    big_items = {"blob": value(1024 * 1024, "big")}
    add("large.yaml", [sealed(by_second, "big", "prod", SealingScope.STRICT, big_items)], [big_items])
    a_items, b_items = {"a": value(5, "a")}, {"b": value(6, "b")}
    add(
        "nested/two.yaml",
        [sealed(by_first, "one", "dev", SealingScope.STRICT, a_items), sealed(by_second, "two", "dev", SealingScope.STRICT, b_items)],
        [a_items, b_items],
    )

    # Files seal must refuse, each for its own reason.
    tampered = sealed(by_first, "tampered", "prod", SealingScope.STRICT, {"v": value(32, "t")})
    raw = bytearray(base64.b64decode(tampered["spec"]["encryptedData"]["v"]))
    raw[-1] ^= 0x01
    tampered["spec"]["encryptedData"]["v"] = base64.b64encode(bytes(raw)).decode()
    add("refused/tampered.yaml", [tampered], None)
    add("refused/wrong-key.yaml", [sealed(by_stranger, "stranger", "prod", SealingScope.STRICT, {"v": value(8, "s")})], None)
    add(
        "refused/wrong-namespace.yaml",
        [sealed(by_first, "db", "staging", SealingScope.STRICT, {"v": value(8, "w")}, label_for=("prod", "db"))],
        None,
    )
    templated = sealed(by_first, "templated", "prod", SealingScope.STRICT, {"user": value(4, "u")})
    templated["spec"]["template"]["data"] = {"dsn": "postgres://{{ .user }}@db"}
    add("refused/template.yaml", [templated], None)
    legacy = sealed(by_first, "legacy", "prod", SealingScope.STRICT, {})
    del legacy["spec"]["encryptedData"]
    legacy["spec"]["data"] = base64.b64encode(by_first.seal_value(b"{}", namespace="prod", name="legacy")).decode()
    add("refused/legacy.yaml", [legacy], None)

    for file, docs in files.items():
        path = os.path.join(repo, file)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False, width=1 << 30)
    if args.unsealed:
        with open(args.unsealed, "w") as f:
            yaml.safe_dump_all(unsealed, f, sort_keys=False, width=1 << 30)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
