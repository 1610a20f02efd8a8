"""The S3-compatible server the suite delivers to (s3s-fs) works as a real service: boto3
creates a bucket, puts and lists objects, its SigV4 check refuses wrong keys, and a
conditional PUT (`If-None-Match: *`) refuses to replace an object. A Trailkeeper config
that maps a bucket to it with `[[buckets.external]]` starts."""

from __future__ import annotations

import botocore.exceptions
import pytest
import urllib3

from e2e_helpers import ServerError, config_toml


def error_code(err: botocore.exceptions.ClientError) -> tuple[int, str]:
    return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]


def test_boto3_creates_puts_and_lists(s3_compatible_server):
    s3 = s3_compatible_server.client()
    bucket = s3_compatible_server.create_bucket("trail-logs")
    s3.head_bucket(Bucket=bucket)
    assert (s3_compatible_server.root_dir / bucket).is_dir()

    keys = [
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/a.json.gz",
        "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/03/b.json.gz",
        "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/02/c.json.gz",
    ]
    for key in keys:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=key.encode(),
            ContentType="application/x-gzip",
            Metadata={"trail-arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"},
        )
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/123456789012/CloudTrail/")
    assert [o["Key"] for o in listed["Contents"]] == keys[:2]
    assert listed["KeyCount"] == 2

    head = s3.head_object(Bucket=bucket, Key=keys[0])
    assert head["ContentType"] == "application/x-gzip"
    assert head["Metadata"] == {"trail-arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/t"}
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read() == keys[0].encode()
    # Each object is a plain file under the bucket's folder.
    assert (s3_compatible_server.root_dir / bucket / keys[0]).read_bytes() == keys[0].encode()


def test_conditional_put_refuses_to_replace(s3_compatible_server):
    s3 = s3_compatible_server.client()
    bucket = s3_compatible_server.create_bucket("trail-logs")
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/02/once.json.gz"

    s3.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert error_code(caught.value) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"

    # Without the condition, a PUT replaces the object: the write-once rule is the client's.
    s3.put_object(Bucket=bucket, Key=key, Body=b"third")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"third"


def test_sigv4_is_enforced(s3_compatible_server):
    bucket = s3_compatible_server.create_bucket("trail-logs")

    wrong_secret = s3_compatible_server.client(secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        wrong_secret.list_objects_v2(Bucket=bucket)
    assert error_code(caught.value) == (403, "SignatureDoesNotMatch")

    unknown_key = s3_compatible_server.client(access_key_id="AKIANOBODY0000000001")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unknown_key.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    anonymous = urllib3.PoolManager(retries=False, timeout=5.0)
    response = anonymous.request("GET", f"{s3_compatible_server.endpoint}/{bucket}?list-type=2")
    assert response.status == 403, response.data[:500]
    assert not list(s3_compatible_server.root_dir.joinpath(bucket).iterdir())


def test_missing_bucket_is_reported(s3_compatible_server):
    s3 = s3_compatible_server.client()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.list_objects_v2(Bucket="no-such-bucket")
    assert error_code(caught.value) == (404, "NoSuchBucket")


def test_trailkeeper_accepts_the_external_bucket_block(s3_compatible_server, server_factory):
    block = s3_compatible_server.external_bucket_toml("trail-logs")
    assert block.startswith("[[buckets.external]]\n")
    assert f'endpoint = "{s3_compatible_server.endpoint}"' in block
    config = config_toml(extra=block)
    server = server_factory(config=config)
    assert server.running
    assert config.rstrip().endswith(block.rstrip())
    # The block is read, not ignored: the same bucket mapped twice stops the server.
    with pytest.raises(ServerError, match="listed twice"):
        server_factory(config=config_toml(extra=block + "\n" + block), name="twice")
