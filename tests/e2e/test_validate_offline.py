"""`trailkeeper validate-logs` offline, over a stopped server's data directory, against the
real `aws cloudtrail validate-logs` over the same files served by the restarted server.

A multi-Region trail with log file validation logs for about ten seconds in two Regions
(log files every second, digests every two), then stops and writes its final digest. On
the untouched chain both tools print the same stdout, quietly and with --verbose, and exit
0. With a digest and a log file deleted from the middle of one Region's chain both print
the same lines and exit 1. With the newest digest deleted, the AWS CLI validates a shorter
chain and exits 0; Trailkeeper finds the digest its delivery state recorded missing and
exits 1.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import time
from dataclasses import dataclass

import pytest

from e2e_helpers import (
    ACCOUNT_ID,
    IMPORTER,
    TrailkeeperServer,
    aws_executable,
    clean_env,
    eventually,
    iso,
    make_record,
    trailkeeper_bin,
    utcnow,
)

BUCKET = "validated-logs"
TRAIL = "org-trail"
ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/{TRAIL}"
FAST = {"TRAILKEEPER_DELIVERY_INTERVAL_SECONDS": "1", "TRAILKEEPER_DIGEST_INTERVAL_SECONDS": "2"}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def trailkeeper_validate(server: TrailkeeperServer, *args: str) -> Run:
    """`trailkeeper validate-logs --data-dir <the server's> ...`, with nothing but the arguments."""
    proc = subprocess.run(
        [trailkeeper_bin(), "validate-logs", "--data-dir", str(server.data_dir), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def aws_validate(server: TrailkeeperServer, *args: str, region: str = "us-east-1") -> Run:
    """`aws --region <region> cloudtrail validate-logs ...` pointed at the server through the
    per-service endpoint variables: `--endpoint-url` would reach CloudTrail only, not S3.
    The Region must be given as `--region`: without it the CLI walks the trail's home
    Region, whatever the default Region is."""
    env = clean_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": IMPORTER.access_key_id,
            "AWS_SECRET_ACCESS_KEY": IMPORTER.secret_access_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": server.endpoint,
            "AWS_ENDPOINT_URL_S3": server.endpoint,
            "AWS_MAX_ATTEMPTS": "1",
            "TZ": "UTC",
        }
    )
    proc = subprocess.run(
        [aws_executable(), "--region", region, "cloudtrail", "validate-logs", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def chain(verbose_stdout: str) -> list[tuple[str, list[str]]]:
    """The digests a verbose run validated, newest first, each with its log files."""
    digests: list[tuple[str, list[str]]] = []
    for line in verbose_stdout.splitlines():
        kind, _, rest = line.partition(f"\ts3://{BUCKET}/")
        key = rest.split("\t")[0]
        if kind == "Digest file":
            digests.append((key, []))
        elif kind == "Log file":
            digests[-1][1].append(key)
    return digests


def digest_keys(verbose_stdout: str) -> list[str]:
    return [digest for digest, _ in chain(verbose_stdout)]


def log_keys(verbose_stdout: str) -> list[str]:
    return [log for _, logs in chain(verbose_stdout) for log in logs]


def delete_object(server: TrailkeeperServer, key: str) -> None:
    """Deletes a write-once object behind the server's back, as someone with access to the
    disk could: one file per object, named by the SHA-256 of its key."""
    assert not server.running
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = server.data_dir / "buckets" / BUCKET / "objects" / digest[:2] / digest
    assert path.is_file(), path
    path.unlink()


@pytest.fixture
def logged_chain(server_factory):
    """A stopped server whose trail logged ~10 s in us-east-1 and eu-west-1 with validation
    on, and the validation time range."""
    server = server_factory(extra_env=FAST)
    start = utcnow() - dt.timedelta(seconds=5)
    assert server.aws("s3api", "create-bucket", "--bucket", BUCKET).returncode == 0
    created = server.aws(
        "cloudtrail", "create-trail", "--name", TRAIL, "--s3-bucket-name", BUCKET,
        "--is-multi-region-trail", "--enable-log-file-validation",
    ).json()
    assert created["TrailARN"] == ARN and created["LogFileValidationEnabled"] is True
    assert server.aws("cloudtrail", "start-logging", "--name", TRAIL).returncode == 0
    for second in range(10):
        now = utcnow()
        server.ingest_ok(
            [make_record(event_time=now, event_name=f"Call{second}") for _ in range(3)]
            + [make_record(event_time=now, region="eu-west-1", event_name=f"Call{second}") for _ in range(2)]
        )
        time.sleep(1)
    assert server.aws("cloudtrail", "stop-logging", "--name", TRAIL).returncode == 0
    stopped = time.time()
    client = server.client()

    def final_digest_written() -> bool:
        status = client.get_trail_status(Name=TRAIL)
        latest = status.get("LatestDigestDeliveryTime")
        return latest is not None and latest.timestamp() >= stopped - 1 and "LatestDigestDeliveryError" not in status

    eventually(final_digest_written, timeout=30, interval=0.5, what="the final digest after StopLogging")
    # The chain is closed: nothing more is written. Let a delivery round or two pass to be sure.
    time.sleep(3)
    assert server.stop() == 0
    end = utcnow() + dt.timedelta(seconds=1)
    return server, iso(start), iso(end)


def test_the_same_verdicts_and_output_as_the_aws_cli(logged_chain):
    server, start, end = logged_chain
    window = ["--trail-arn", ARN, "--start-time", start, "--end-time", end]

    ours = {
        (region, verbose): trailkeeper_validate(server, *window, "--region", region, *(["--verbose"] if verbose else []))
        for region in ("us-east-1", "eu-west-1")
        for verbose in (False, True)
    }
    server.start()
    theirs = {
        (region, verbose): aws_validate(server, *window, *(["--verbose"] if verbose else []), region=region)
        for region in ("us-east-1", "eu-west-1")
        for verbose in (False, True)
    }
    for case, run in ours.items():
        assert theirs[case].returncode == 0, (case, theirs[case].stderr)
        assert (run.returncode, run.stderr) == (0, ""), (case, run.stderr)
        assert run.stdout == theirs[case].stdout, case
        assert theirs[case].stderr == "", case

    # The chain is real: several digests per Region, each listing log files, all valid.
    for region in ("us-east-1", "eu-west-1"):
        verbose = ours[(region, True)].stdout
        digests, logs = digest_keys(verbose), log_keys(verbose)
        assert len(digests) >= 4 and len(logs) >= 4, verbose
        assert all(f"/CloudTrail-Digest/{region}/" in key for key in digests)
        assert f"\n{len(digests)}/{len(digests)} digest files valid\n{len(logs)}/{len(logs)} log files valid\n" in verbose


def test_deletions_in_the_middle_of_the_chain_get_the_same_lines(logged_chain):
    server, start, end = logged_chain
    window = ["--trail-arn", ARN, "--start-time", start, "--end-time", end, "--region", "eu-west-1"]
    digests = chain(trailkeeper_validate(server, *window, "--verbose").stdout)
    middle, _ = digests[len(digests) // 2]
    log = next(logs[0] for digest, logs in digests if logs and digest != middle)
    delete_object(server, middle)
    delete_object(server, log)

    ours = trailkeeper_validate(server, *window)
    server.start()
    theirs = aws_validate(server, *window[:-2], region="eu-west-1")
    assert theirs.returncode == 1, theirs.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert f"Digest file\ts3://{BUCKET}/{middle}\tINVALID: not found\n\n" in ours.stderr
    assert f"Log file\ts3://{BUCKET}/{log}\tINVALID: not found\n\n" in ours.stderr


def test_a_deleted_newest_digest_is_caught_where_the_aws_cli_misses_it(logged_chain):
    server, start, end = logged_chain
    window = ["--trail-arn", ARN, "--start-time", start, "--end-time", end]
    untouched = trailkeeper_validate(server, *window, "--verbose")
    digests = digest_keys(untouched.stdout)
    newest = digests[0]
    delete_object(server, newest)

    ours = trailkeeper_validate(server, *window)
    server.start()
    theirs = aws_validate(server, *window)

    total = len(digests)
    assert theirs.returncode == 0 and theirs.stderr == "", "the AWS CLI sees a shorter chain, all valid"
    assert f"\n{total - 1}/{total - 1} digest files valid\n" in theirs.stdout
    assert ours.returncode == 1
    assert ours.stderr == f"Digest file\ts3://{BUCKET}/{newest}\tINVALID: not found\n\n"
    ratio = f"\n{total - 1}/{total} digest files valid, 1/{total} digest files INVALID\n"
    assert ratio in ours.stdout
    # Everything but the verdict on the deleted digest is the same.
    assert ours.stdout.replace(ratio, f"\n{total - 1}/{total - 1} digest files valid\n") == theirs.stdout
