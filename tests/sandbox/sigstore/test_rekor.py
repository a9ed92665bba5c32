"""Rekor v1 stand-in: the log checked independently of sigstore-python, and its HTTP API."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest
import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore._internal.rekor.client import RekorClient
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext

from sandbox.sigstore import SigstoreStandIn


@pytest.fixture(scope="module")
def standin() -> Iterator[SigstoreStandIn]:
    with SigstoreStandIn(issuer="http://127.0.0.1:18081") as s:
        yield s


@pytest.fixture(scope="module")
def bundles(standin: SigstoreStandIn) -> list[Bundle]:
    ctx = SigningContext.from_trust_config(ClientTrustConfig.from_json(standin.trust_config_json()))
    with ctx.signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        return [signer.sign_artifact(b"artifact %d" % i) for i in range(7)]


# -- an independent RFC 9162 section 2.1.3.2 inclusion verifier (iterative, not recursive) --
def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def _root_from_proof(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    assert 0 <= index < size
    fn, sn, r = index, size - 1, leaf
    for p in path:
        assert sn != 0, "proof too long"
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0, "proof too short"
    return r


def _naive_root(leaves: list[bytes]) -> bytes:
    """Bottom-up tree construction: pair neighbours, promote an odd last node."""
    level = leaves
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _rekor_key(standin: SigstoreStandIn) -> ec.EllipticCurvePublicKey:
    root = json.loads(standin.trust_config_json())["trustedRoot"]
    key = serialization.load_der_public_key(
        base64.b64decode(root["tlogs"][0]["publicKey"]["rawBytes"])
    )
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def _check_note(note: str, key: ec.EllipticCurvePublicKey, key_id: bytes) -> tuple[str, int, bytes]:
    body, _, sigs = note.partition("\n\n")
    assert note.count("\n\n") == 1 and sigs.endswith("\n")
    origin, size, root_b64 = body.split("\n")
    dash, name, blob = sigs.rstrip("\n").split(" ")
    assert dash == "\u2014" and origin.startswith(name + " - ")
    raw = base64.b64decode(blob)
    assert raw[:4] == key_id[:4]
    key.verify(raw[4:], (body + "\n").encode(), ec.ECDSA(hashes.SHA256()))
    return origin, int(size), base64.b64decode(root_b64)


def test_inclusion_proofs_checkpoints_and_sets_independently(
    standin: SigstoreStandIn, bundles: list[Bundle]
) -> None:
    key = _rekor_key(standin)
    key_id = hashlib.sha256(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    for bundle in bundles:
        entry = json.loads(bundle.to_json())["verificationMaterial"]["tlogEntries"][0]
        proof = entry["inclusionProof"]
        body = base64.b64decode(entry["canonicalizedBody"])
        index, size = int(proof["logIndex"]), int(proof["treeSize"])
        path = [base64.b64decode(h) for h in proof["hashes"]]
        root = base64.b64decode(proof["rootHash"])
        assert _root_from_proof(index, size, _leaf(body), path) == root
        _, note_size, note_root = _check_note(proof["checkpoint"]["envelope"], key, key_id)
        assert (note_size, note_root) == (size, root)
        assert base64.b64decode(entry["logId"]["keyId"]) == key_id
        # The body is RFC 8785 canonical JSON.
        assert rfc8785.dumps(json.loads(body)) == body
        set_payload = rfc8785.dumps(
            {
                "body": entry["canonicalizedBody"],
                "integratedTime": int(entry["integratedTime"]),
                "logID": key_id.hex(),
                "logIndex": int(entry["logIndex"]),
            }
        )
        key.verify(
            base64.b64decode(entry["inclusionPromise"]["signedEntryTimestamp"]),
            set_payload,
            ec.ECDSA(hashes.SHA256()),
        )
        cert = bundle.signing_certificate
        assert cert.not_valid_before_utc.timestamp() <= int(entry["integratedTime"])
        assert int(entry["integratedTime"]) <= cert.not_valid_after_utc.timestamp()


def test_whole_log_root_matches_signed_tree_head(
    standin: SigstoreStandIn, bundles: list[Bundle]
) -> None:
    info = httpx.get(f"{standin.url}/api/v1/log").json()
    size = info["treeSize"]
    assert size == len(standin.rekor_entries) >= len(bundles)
    leaves = []
    for i in range(size):
        (entry,) = (
            httpx.get(f"{standin.url}/api/v1/log/entries", params={"logIndex": i}).json().values()
        )
        assert entry["logIndex"] == i
        leaves.append(_leaf(base64.b64decode(entry["body"])))
    assert _naive_root(leaves).hex() == info["rootHash"]
    key = _rekor_key(standin)
    key_id = hashlib.sha256(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).digest()
    _, note_size, note_root = _check_note(info["signedTreeHead"], key, key_id)
    assert note_size == size and note_root.hex() == info["rootHash"]
    assert info["treeID"].isdigit()


def test_hashedrekord_body_is_rekor_canonical(bundles: list[Bundle]) -> None:
    bundle = bundles[0]
    body = json.loads(
        base64.b64decode(
            json.loads(bundle.to_json())["verificationMaterial"]["tlogEntries"][0][
                "canonicalizedBody"
            ]
        )
    )
    cert_pem = bundle.signing_certificate.public_bytes(serialization.Encoding.PEM)
    assert body == {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(b"artifact 0").hexdigest()}
            },
            "signature": {
                "content": base64.b64encode(bundle.signature).decode(),
                "publicKey": {"content": base64.b64encode(cert_pem).decode()},
            },
        },
    }


def test_entry_lookups_through_the_real_client(
    standin: SigstoreStandIn, bundles: list[Bundle]
) -> None:
    client = RekorClient(standin.url)
    info = client.log.get()
    assert info.tree_size == len(standin.rekor_entries)
    bundle = bundles[3]
    index = bundle.log_entry._inner.log_index
    by_index = client.log.entries.get(log_index=index)
    assert by_index._inner.canonicalized_body == bundle.log_entry._inner.canonicalized_body
    uuid = hashlib.sha256(b"\x00" + bundle.log_entry._inner.canonicalized_body).hexdigest()
    by_uuid = client.log.entries.get(uuid=uuid)
    assert by_uuid._inner.log_index == index
    # The 80-hex EntryID (tree id + uuid) is accepted too.
    raw = httpx.get(f"{standin.url}/api/v1/log/entries", params={"logIndex": index}).json()
    (entry_id,) = raw
    assert len(entry_id) == 80 and entry_id.endswith(uuid)
    assert httpx.get(f"{standin.url}/api/v1/log/entries/{entry_id}").json() == raw


def test_retrieve_finds_the_entry_for_materials(
    standin: SigstoreStandIn, bundles: list[Bundle]
) -> None:
    from sigstore._internal.rekor import _hashedrekord_from_parts
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    bundle = bundles[2]
    hashed = Hashed(digest=hashlib.sha256(b"artifact 2").digest(), algorithm=HashAlgorithm.SHA2_256)
    expected = _hashedrekord_from_parts(bundle.signing_certificate, bundle.signature, hashed)
    found = RekorClient(standin.url).log.entries.retrieve.post(expected)
    assert found is not None
    assert found._inner.log_index == bundle.log_entry._inner.log_index
    other = Hashed(digest=hashlib.sha256(b"nope").digest(), algorithm=HashAlgorithm.SHA2_256)
    missing = _hashedrekord_from_parts(bundle.signing_certificate, bundle.signature, other)
    assert RekorClient(standin.url).log.entries.retrieve.post(missing) is None


def _proposed(bundle: Bundle, data: bytes) -> dict[str, object]:
    pem = bundle.signing_certificate.public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "signature": {
                "content": base64.b64encode(bundle.signature).decode(),
                "publicKey": {"content": base64.b64encode(pem).decode()},
            },
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(data).hexdigest()}},
        },
    }


def test_duplicate_entry_conflicts(standin: SigstoreStandIn, bundles: list[Bundle]) -> None:
    size = len(standin.rekor_entries)
    response = httpx.post(
        f"{standin.url}/api/v1/log/entries", json=_proposed(bundles[1], b"artifact 1")
    )
    assert response.status_code == 409
    assert response.json()["code"] == 409
    assert response.headers["Location"].startswith("/api/v1/log/entries/")
    assert len(standin.rekor_entries) == size


@pytest.mark.parametrize(
    "mutate",
    ["bad signature", "bad hash length", "unknown kind", "not base64"],
)
def test_invalid_entries_are_rejected(
    standin: SigstoreStandIn, bundles: list[Bundle], mutate: str
) -> None:
    proposed = _proposed(bundles[0], b"artifact 0")
    spec = proposed["spec"]
    assert isinstance(spec, dict)
    if mutate == "bad signature":
        proposed = _proposed(bundles[0], b"artifact 1")  # signature over another digest
    elif mutate == "bad hash length":
        spec["data"]["hash"]["value"] = "abcd"
    elif mutate == "unknown kind":
        proposed["kind"] = "rekord"
    else:
        spec["signature"]["content"] = "%%%"
    size = len(standin.rekor_entries)
    response = httpx.post(f"{standin.url}/api/v1/log/entries", json=proposed)
    assert response.status_code == 400
    assert response.json()["code"] == 400 and response.json()["message"]
    assert len(standin.rekor_entries) == size


def test_unknown_entry_is_404(standin: SigstoreStandIn) -> None:
    assert (
        httpx.get(f"{standin.url}/api/v1/log/entries", params={"logIndex": 10_000}).status_code
        == 404
    )
    assert httpx.get(f"{standin.url}/api/v1/log/entries/{'0' * 64}").status_code == 404
