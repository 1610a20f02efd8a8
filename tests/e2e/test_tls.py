"""HTTPS: Trailkeeper serves TLS from a certificate and key in its config, the real clients
verify it, and the audit record of a call over TLS carries CloudTrail's tlsDetails."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import boto3
import botocore.config
import pytest
import urllib3

from e2e_helpers import ACCOUNT_ID, IMPORTER, clean_env, config_toml, eventually, free_port, run_aws_cli, trailkeeper_bin


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path):
    cert, key = make_certificate(tmp_path)
    config = tmp_path / "trailkeeper.toml"
    config.write_text(config_toml() + f'\n[tls]\ncert = "{cert}"\nkey = "{key}"\n')
    port = free_port()
    env = clean_env()
    env.update({"TRAILKEEPER_ROOT_ACCESS_KEY_ID": "AKIAE2EROOT000000001", "TRAILKEEPER_ROOT_SECRET_ACCESS_KEY": "root-secret-e2e"})
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [trailkeeper_bin(), "serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}", "--config", str(config)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    endpoint = f"https://127.0.0.1:{port}"
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(cert), retries=False, timeout=2.0)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        try:
            if http.request("GET", f"{endpoint}/health").status == 200:
                break
        except urllib3.exceptions.HTTPError:
            pass
        assert time.monotonic() < deadline, "the TLS server did not answer /health"
        time.sleep(0.1)
    yield endpoint, cert
    proc.kill()
    proc.wait()
    log.close()


def test_boto3_and_the_cli_call_over_verified_tls(tls_server):
    endpoint, cert = tls_server
    session = boto3.session.Session(aws_access_key_id=IMPORTER.access_key_id, aws_secret_access_key=IMPORTER.secret_access_key, region_name="us-east-1")
    client = session.client("cloudtrail", endpoint_url=endpoint, verify=str(cert), config=botocore.config.Config(retries={"max_attempts": 1}))
    client.lookup_events(MaxResults=1)

    # A read-only call's record is durable at the next group commit, not before its answer.
    events = eventually(
        lambda: client.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])["Events"],
        what="the call over TLS in Event History",
    )
    record = json.loads(events[-1]["CloudTrailEvent"])
    assert record["recipientAccountId"] == ACCOUNT_ID
    tls = record["tlsDetails"]
    assert tls["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
    assert tls["cipherSuite"].startswith("TLS")
    assert tls["clientProvidedHostHeader"] == endpoint.removeprefix("https://")

    result = run_aws_cli(endpoint, "cloudtrail", "lookup-events", "--max-results", "1", "--ca-bundle", str(cert), creds=IMPORTER)
    assert result.returncode == 0, result.stderr


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    endpoint, _ = tls_server
    http = urllib3.PoolManager(retries=False, timeout=2.0)
    with pytest.raises(urllib3.exceptions.HTTPError):
        http.request("GET", endpoint.replace("https://", "http://") + "/health")
