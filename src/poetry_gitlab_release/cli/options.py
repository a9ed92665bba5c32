"""Options every command that talks to GitLab shares, defined once so their help agrees."""

from __future__ import annotations

from cleo.helpers import option
from cleo.io.inputs.option import Option


def host_option() -> Option:
    return option(
        "host",
        None,
        "GitLab URL [env: GITLAB_HOST; CI: CI_SERVER_URL; default https://gitlab.com].",
        flag=False,
    )


def ca_file_option() -> Option:
    return option(
        "ca-file",
        None,
        "CA bundle (PEM) for a GitLab with a private certificate authority "
        "[env: GITLAB_RELEASE_CA_FILE; else Poetry's certificates.<repository>.cert; else SSL_CERT_FILE].",
        flag=False,
    )


def client_cert_option() -> Option:
    return option(
        "client-cert",
        None,
        "TLS client certificate and its private key (one PEM file) for a GitLab that requires "
        "mutual TLS [env: GITLAB_RELEASE_CLIENT_CERT; else Poetry's "
        "certificates.<repository>.client-cert].",
        flag=False,
    )


def insecure_http_option() -> Option:
    return option(
        "allow-insecure-http", None, "Allow plain http:// to a host other than localhost."
    )
