"""Talks to GitLab over HTTP; knows nothing of Poetry or Sigstore."""
