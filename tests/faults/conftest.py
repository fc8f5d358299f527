"""The fault world (helpers_faults.World: shards, teacher, SAE, label cache, a finished run),
built once per session for every module here; tests damage copies of it, never the world."""

import pytest
from helpers_faults import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory)
