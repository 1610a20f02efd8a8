"""`trailkeeper validate-logs` offline, over a stopped server's data directory, against the
real `aws cloudtrail validate-logs` over the same files served by the restarted server.

A multi-Region trail with log file validation logs for about ten seconds in two Regions
(log files every second, digests every two), then stops and writes its final digest. On
the untouched chain both tools print the same stdout, quietly and with --verbose, and exit
0. With a digest and a log file deleted from the middle of one Region's chain, and with
digests and log files tampered every way the AWS CLI tells apart (edited on disk while the
server is stopped), both print the same stdout and stderr and exit 1. With the newest digest
deleted, the AWS CLI validates a shorter chain and exits 0; Trailkeeper finds the digest its
delivery state recorded missing (offline from the state file, online from the server's
digest-chains API) and exits 1.
"""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
import time
from dataclasses import dataclass

import pytest

from bucket_files import copy_object, object_path, read_object
from e2e_helpers import (
    aws_validate_logs,
    ACCOUNT_ID,
    IMPORTER,
    TrailkeeperServer,
    clean_env,
    eventually,
    iso,
    make_record,
    stop_logging_and_wait_for_the_closing_digest,
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


def trailkeeper_validate_online(server: TrailkeeperServer, *args: str) -> Run:
    """`trailkeeper validate-logs --endpoint-url <the server> ...`, with the AWS keys in the
    environment: the same walk over the server's CloudTrail and S3 APIs."""
    env = clean_env()
    env.update({"AWS_ACCESS_KEY_ID": IMPORTER.access_key_id, "AWS_SECRET_ACCESS_KEY": IMPORTER.secret_access_key})
    proc = subprocess.run(
        [trailkeeper_bin(), "validate-logs", "--endpoint-url", server.endpoint, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def aws_validate(server: TrailkeeperServer, *args: str, region: str = "us-east-1") -> Run:
    done = aws_validate_logs(server.endpoint, *args, region=region)
    return Run(done.returncode, done.stdout, done.stderr)


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
    disk could."""
    assert not server.running
    path = object_path(server.data_dir, BUCKET, key)
    assert path.is_file(), path
    path.unlink()


def rewrite_object(server: TrailkeeperServer, key: str, *, body: bytes | None = None,
                   metadata: dict | None = None, as_key: str | None = None) -> None:
    """Rewrites a write-once object behind the server's back: a new body or user metadata,
    optionally stored under another key."""
    assert not server.running
    stored = copy_object(server.data_dir, BUCKET, key, as_key) if as_key else read_object(server.data_dir, BUCKET, key)
    if body is not None:
        stored.body = body
    if metadata is not None:
        stored.header["metadata"]["user_metadata"] = metadata
    stored.save()


def user_metadata(server: TrailkeeperServer, key: str) -> dict:
    return read_object(server.data_dir, BUCKET, key).header["metadata"]["user_metadata"]


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
    stop_logging_and_wait_for_the_closing_digest(server, TRAIL, BUCKET)
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
    online = {
        (region, verbose): trailkeeper_validate_online(server, *window, "--region", region, *["--verbose"] * verbose)
        for region, verbose in ours
    }
    for case, run in ours.items():
        assert theirs[case].returncode == 0, (case, theirs[case].stderr)
        assert (run.returncode, run.stderr) == (0, ""), (case, run.stderr)
        assert run.stdout == theirs[case].stdout, case
        assert theirs[case].stderr == "", case
        assert (online[case].returncode, online[case].stdout, online[case].stderr) == (0, run.stdout, ""), case

    # A trail that does not exist: the AWS CLI's exception, its message and exit code 255.
    missing = ["--trail-arn", ARN + "-gone", "--start-time", start, "--end-time", end]
    failed = [trailkeeper_validate_online(server, *missing), aws_validate(server, *missing)]
    server.stop()
    failed.append(trailkeeper_validate(server, *missing))
    for run in failed:
        assert (run.returncode, run.stdout, run.stderr) == (255, "", f"\nA trail could not be found for {ARN}-gone\n")

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
    online = trailkeeper_validate_online(server, *window)

    total = len(digests)
    assert (online.returncode, online.stdout, online.stderr) == (1, ours.stdout, ours.stderr), (
        "online, the server's digest-chains API names the deleted digest as the delivery state does offline"
    )
    assert theirs.returncode == 0 and theirs.stderr == "", "the AWS CLI sees a shorter chain, all valid"
    assert f"\n{total - 1}/{total - 1} digest files valid\n" in theirs.stdout
    assert ours.returncode == 1
    assert ours.stderr == f"Digest file\ts3://{BUCKET}/{newest}\tINVALID: not found\n\n"
    ratio = f"\n{total - 1}/{total} digest files valid, 1/{total} digest files INVALID\n"
    assert ratio in ours.stdout
    # Everything but the verdict on the deleted digest is the same.
    assert ours.stdout.replace(ratio, f"\n{total - 1}/{total - 1} digest files valid\n") == theirs.stdout


def test_tampered_files_get_the_same_lines(logged_chain):
    """Every kind of tampering the AWS CLI tells apart, digests in one Region and log files
    in the other, and both tools print the same stdout and stderr, quietly and verbosely."""
    server, start, end = logged_chain
    window = ["--trail-arn", ARN, "--start-time", start, "--end-time", end]
    digests = [key for key, _ in chain(trailkeeper_validate(server, *window, "--verbose").stdout)]
    assert len(digests) >= 5, digests
    not_hex = dict(user_metadata(server, digests[0]), signature="zz" * 256)
    rewrite_object(server, digests[0], metadata=not_hex)  # binascii: Non-hexadecimal digit found
    rewrite_object(server, digests[1], body=b"not a gzip stream")  # invalid format
    flipped = dict(user_metadata(server, digests[2]))
    flipped["signature"] = flipped["signature"][:-1] + ("0" if flipped["signature"][-1] != "0" else "1")
    rewrite_object(server, digests[2], metadata=flipped)  # signature verification failed
    rewrite_object(server, digests[4], as_key=digests[3])  # has been moved from its original location

    west = window + ["--region", "eu-west-1"]
    logs = [log for _, logs in chain(trailkeeper_validate(server, *west, "--verbose").stdout) for log in logs]
    assert len(logs) >= 3, logs
    forged = gzip.compress(b'{"Records":[]}')
    rewrite_object(server, logs[0], body=forged)  # hash value doesn't match
    rewrite_object(server, logs[1], body=forged + b"appended")  # unexpected data after end of compressed stream
    rewrite_object(server, logs[2], body=b"plain text")  # invalid format

    cases = [(region, verbose) for region in ("us-east-1", "eu-west-1") for verbose in (False, True)]
    ours = {
        (region, verbose): trailkeeper_validate(server, *window, "--region", region, *["--verbose"] * verbose)
        for region, verbose in cases
    }
    server.start()
    theirs = {
        (region, verbose): aws_validate(server, *window, *["--verbose"] * verbose, region=region)
        for region, verbose in cases
    }
    online = {
        (region, verbose): trailkeeper_validate_online(server, *window, "--region", region, *["--verbose"] * verbose)
        for region, verbose in cases
    }
    for case in cases:
        assert theirs[case].returncode == 1, (case, theirs[case].stderr)
        assert ours[case].stderr == theirs[case].stderr, case
        assert ours[case].stdout == theirs[case].stdout, case
        assert ours[case].returncode == 1, case
        assert (online[case].returncode, online[case].stdout, online[case].stderr) == (
            1, theirs[case].stdout, theirs[case].stderr), case
    east, west_errors = ours[("us-east-1", False)].stderr, ours[("eu-west-1", False)].stderr
    for key, reason in [(digests[0], "Non-hexadecimal digit found"), (digests[1], "invalid format"), (digests[2], "signature verification failed"),
                        (digests[3], "has been moved from its original location")]:
        assert f"Digest file\ts3://{BUCKET}/{key}\tINVALID: {reason}\n\n" in east
    for key, reason in [(logs[0], "hash value doesn't match"), (logs[1], "unexpected data after end of compressed stream"),
                        (logs[2], "invalid format")]:
        assert f"Log file\ts3://{BUCKET}/{key}\tINVALID: {reason}\n\n" in west_errors
