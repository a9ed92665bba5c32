"""ClientTrustConfig JSON: a trustedRoot (CA chain, CT key, Rekor key) plus SigningConfig v0.2."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.sigstore.ca import CertificateAuthority
from sandbox.sigstore.keys import b64, key_id, spki_der

TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
OPERATOR = "sigstore-standin.local"


def _rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _transparency_log(url: str, key: ec.EllipticCurvePublicKey, start: str) -> dict[str, Any]:
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": b64(spki_der(key)),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": start},
        },
        "logId": {"keyId": b64(key_id(key))},
    }


def trusted_root(
    *,
    url: str,
    ca: CertificateAuthority,
    ct_key: ec.EllipticCurvePublicKey,
    rekor_key: ec.EllipticCurvePublicKey,
) -> dict[str, Any]:
    start = _rfc3339(ca.not_before)
    return {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [_transparency_log(url, rekor_key, start)],
        "certificateAuthorities": [
            {
                "subject": {"organization": "sigstore-standin", "commonName": "sigstore-standin"},
                "uri": url,
                "certChain": {
                    "certificates": [
                        {"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))}
                        for c in ca.chain
                    ]
                },
                "validFor": {"start": start},
            }
        ],
        "ctlogs": [_transparency_log(url, ct_key, start)],
        "timestampAuthorities": [],
    }


def signing_config(*, url: str, oidc_url: str, start: dt.datetime) -> dict[str, Any]:
    def service(service_url: str) -> dict[str, Any]:
        return {
            "url": service_url,
            "majorApiVersion": 1,
            "validFor": {"start": _rfc3339(start)},
            "operator": OPERATOR,
        }

    return {
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [service(url)],
        "oidcUrls": [service(oidc_url)],
        "rekorTlogUrls": [service(url)],
        "tsaUrls": [],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }


def client_trust_config(
    *,
    url: str,
    oidc_url: str,
    ca: CertificateAuthority,
    ct_key: ec.EllipticCurvePublicKey,
    rekor_key: ec.EllipticCurvePublicKey,
) -> str:
    document = {
        "mediaType": TRUST_CONFIG_MEDIA_TYPE,
        "trustedRoot": trusted_root(url=url, ca=ca, ct_key=ct_key, rekor_key=rekor_key),
        "signingConfig": signing_config(url=url, oidc_url=oidc_url, start=ca.not_before),
    }
    return json.dumps(document, indent=2) + "\n"
