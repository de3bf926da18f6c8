"""Shared test set-up: no network, a private cache/data folder, reproducible seeds."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # a bare pytest runs offline too (the Makefile sets it as well)
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

# property tests draw the same examples on every run (CI never sees a new, unreviewed case);
# `pytest --hypothesis-profile=explore` searches afresh
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Any attempt to open a non-loopback connection fails the test."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1", "")):
            return real_connect(self, address)
        if not isinstance(address, tuple):  # unix sockets
            return real_connect(self, address)
        raise RuntimeError(f"Tests must not touch the network (tried to connect to {address!r}).")

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Point the feature cache at a per-test folder."""
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "brainalign_cache"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
