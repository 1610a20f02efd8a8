"""Fixtures for the end-to-end suite: real `trailkeeper serve` processes on loopback.

Run through `scripts/test-e2e`, which builds the binary, installs the pinned AWS CLI v1,
boto3, pytest and DuckDB into a virtualenv and s3s-fs into .tools, and exports
TRAILKEEPER_BIN and TRAILKEEPER_S3S_FS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from e2e_helpers import (
    CORPUS_FILE,
    STRATUS_FILE,
    TrailkeeperServer,
    config_toml,
    trailkeeper_bin,
)
from s3_compatible import S3CompatibleServer, s3s_fs_bin

_OPEN_SERVERS: list[TrailkeeperServer] = []


def pytest_configure(config: pytest.Config) -> None:
    # Never skip: a missing binary or missing test data is a failure of the run.
    try:
        trailkeeper_bin()
        s3s_fs_bin()
    except RuntimeError as err:
        raise pytest.UsageError(str(err)) from None
    for path in (STRATUS_FILE, CORPUS_FILE):
        if not path.is_file():
            raise pytest.UsageError(
                f"test data {path} is missing: the suite expects shared/ beside the repository"
            )


def open_server(workdir: Path, *, config: str | None = None, **kwargs) -> TrailkeeperServer:
    server = TrailkeeperServer(workdir, config=config, **kwargs)
    _OPEN_SERVERS.append(server)
    try:
        server.start()
    except BaseException:
        close_server(server)
        raise
    return server


def close_server(server: TrailkeeperServer) -> None:
    server.close()
    if server in _OPEN_SERVERS:
        _OPEN_SERVERS.remove(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in list(_OPEN_SERVERS):
            report.sections.append(
                (f"trailkeeper server log ({server.endpoint}, {server.log_path})", server.log_tail(60))
            )


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., TrailkeeperServer]]:
    """Starts servers for one test (default config with the e2e users); kills them after."""
    started: list[TrailkeeperServer] = []

    def make(*, config: str | None = None, name: str | None = None, **kwargs) -> TrailkeeperServer:
        workdir = tmp_path / (name or f"server{len(started)}")
        workdir.mkdir()
        server = open_server(workdir, config=config if config is not None else config_toml(), **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        close_server(server)


@pytest.fixture
def server(server_factory) -> TrailkeeperServer:
    """A fresh server with the default e2e config, for one test."""
    return server_factory()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory: pytest.TempPathFactory, request) -> Iterator[Callable[..., TrailkeeperServer]]:
    """Starts servers shared by the tests of one module; kills them after the module."""
    started: list[TrailkeeperServer] = []
    module = request.module.__name__.rsplit(".", 1)[-1]

    def make(*, config: str | None = None, name: str = "server", **kwargs) -> TrailkeeperServer:
        workdir = tmp_path_factory.mktemp(f"{module}-{name}")
        server = open_server(workdir, config=config if config is not None else config_toml(), **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        close_server(server)


@pytest.fixture(scope="module")
def module_server(module_server_factory) -> TrailkeeperServer:
    """One server shared by a test module (its data set is ingested once)."""
    return module_server_factory()


@pytest.fixture
def s3_compatible_server(tmp_path: Path) -> Iterator[S3CompatibleServer]:
    """A real S3-compatible server (s3s-fs, SigV4 on) on 127.0.0.1 for one test, with its own
    keys and an empty root. `external_bucket_toml(name)` maps a bucket to it in the config."""
    workdir = tmp_path / "s3-compatible"
    workdir.mkdir()
    server = S3CompatibleServer(workdir)
    try:
        yield server.start()
    finally:
        server.close()
