"""Fixtures for the topology tests: the bundled 92-image RDMs."""

import pytest


@pytest.fixture(scope="session")
def k92():
    from brainalign.datasets import load_kriegeskorte92

    return load_kriegeskorte92()
