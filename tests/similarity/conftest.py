"""Shared fixtures of the similarity tests."""

import pytest
from sim_data import make_pair


@pytest.fixture
def pair():
    return make_pair()
