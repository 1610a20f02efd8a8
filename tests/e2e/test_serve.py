"""`trailkeeper serve` as an operator meets it: configuration, first start, metrics, limits."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time

import urllib3

from e2e_helpers import (
    ACCOUNT_ID,
    READER,
    ROOT,
    Creds,
    TrailkeeperServer,
    config_toml,
    free_port,
    lookup_target,
    trailkeeper_bin,
)


def test_unknown_config_key_is_refused(tmp_path):
    config = tmp_path / "trailkeeper.toml"
    config.write_text("[history]\nretention_dayz = 30\n")
    proc = subprocess.run(
        [trailkeeper_bin(), "serve", "--data-dir", str(tmp_path / "data"),
         "--listen", f"127.0.0.1:{free_port()}", "--config", str(config)],
        env={"PATH": os.environ.get("PATH", ""), "TRAILKEEPER_ROOT_ACCESS_KEY_ID": ROOT.access_key_id,
             "TRAILKEEPER_ROOT_SECRET_ACCESS_KEY": ROOT.secret_access_key},
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "retention_dayz" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_metrics_are_prometheus_text(server):
    server.client().lookup_events(MaxResults=1)
    resp = urllib3.PoolManager().request("GET", f"{server.endpoint}/metrics", retries=False)
    assert resp.status == 200
    assert resp.headers.get("Content-Type", "").startswith("text/plain")
    text = resp.data.decode()
    assert re.search(r"^# TYPE \w+ (counter|gauge|histogram|summary|untyped)$", text, re.M), text[:500]
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples
    for line in samples:
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eE]+|.* (NaN|[+-]Inf)", line), line


def test_first_start_generates_root_credentials_once(tmp_path):
    server = TrailkeeperServer(tmp_path, config=None, root_from_env=False)
    try:
        server.start()
        time.sleep(0.2)
        output = server.log_path.read_text()
        key = re.search(r"aws_access_key_id\s+(\S+)", output)
        secret = re.search(r"aws_secret_access_key\s+(\S+)", output)
        assert key and secret, f"no ready-to-paste `aws configure` hint in:\n{output}"
        root = Creds("root", key.group(1), secret.group(1), ACCOUNT_ID, "root")
        # The generated keys work with the real CLI.
        result = server.aws("cloudtrail", "lookup-events", "--max-results", "1", creds=root)
        assert result.returncode == 0, result.stderr
        # They are kept in the data directory, readable by the owner only.
        holders = [p for p in server.data_dir.rglob("*") if p.is_file() and root.secret_access_key.encode() in p.read_bytes()]
        assert holders, "the generated secret is not stored in the data directory"
        for path in holders:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} is {oct(path.stat().st_mode)}"
        # A restart keeps them and does not print the secret again.
        server.stop()
        printed_before = server.log_path.read_text().count(root.secret_access_key)
        server.start()
        time.sleep(0.2)
        assert server.log_path.read_text().count(root.secret_access_key) == printed_before
        assert server.aws("cloudtrail", "lookup-events", "--max-results", "1", creds=root).returncode == 0
    finally:
        server.close()


def test_rate_limit_per_principal_from_the_environment(server_factory):
    server = server_factory(
        config=config_toml(requests_per_second=None),
        extra_env={"TRAILKEEPER_LIMITS_REQUESTS_PER_SECOND": "2"},
    )
    throttled = None
    deadline = time.monotonic() + 30
    sent = 0
    while time.monotonic() < deadline and sent < 5000:
        result = server.raw_api(lookup_target(), b'{"MaxResults": 1}', creds=READER)
        sent += 1
        if result.status != 200:
            throttled = result
            break
    assert throttled is not None, f"{sent} LookupEvents calls in a row, none throttled at 2 requests/s"
    assert throttled.status == 400, throttled.describe()
    assert throttled.error_code() == "ThrottlingException", throttled.describe()
    # The limit is per principal: another key is served at the same moment.
    other = server.raw_api(lookup_target(), b'{"MaxResults": 1}', creds=ROOT)
    assert other.status == 200, other.describe()
