"""The built-in S3 bucket store, driven by the real AWS CLI (`aws s3`, `aws s3api`) and boto3
against Trailkeeper's own endpoint: buckets, uploads and downloads, listings, ranges,
metadata, errors in S3's words, tenancy, virtual-hosted addressing, presigned URLs,
streaming (aws-chunked) uploads, and the audit records every call leaves."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import botocore.config
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from e2e_helpers import (
    ACCOUNT_ID,
    BOB,
    IMPORTER,
    READER,
    ROOT,
    Creds,
    by_attr,
    config_toml,
    eventually,
    lookup_all,
    run_aws_cli,
    signed_request,
)
from test_tls import tls_server  # noqa: F401  (the HTTPS server fixture)

S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def s3_client(endpoint: str, creds: Creds = ROOT, region: str = "us-east-1", verify=None, **config):
    config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
    session = boto3.session.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        region_name=region,
    )
    return session.client("s3", endpoint_url=endpoint, verify=verify, config=botocore.config.Config(**config))


def error_code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


@pytest.fixture
def s3(server):
    return s3_client(server.endpoint)


def test_cli_makes_a_bucket_uploads_lists_and_downloads(server, tmp_path: Path):
    assert server.aws("s3", "mb", "s3://cli-logs", creds=ROOT).returncode == 0
    listed = server.aws("s3", "ls", creds=ROOT)
    assert listed.returncode == 0 and "cli-logs" in listed.stdout, listed.stderr

    source = tmp_path / "trail.json"
    source.write_bytes(b'{"Records": []}\n' * 100)
    up = server.aws("s3", "cp", str(source), "s3://cli-logs/AWSLogs/trail.json", creds=ROOT)
    assert up.returncode == 0, up.stderr
    top = server.aws("s3", "ls", "s3://cli-logs/", creds=ROOT)
    assert "PRE AWSLogs/" in top.stdout, top.stdout
    inner = server.aws("s3", "ls", "s3://cli-logs/AWSLogs/", creds=ROOT)
    assert "trail.json" in inner.stdout and str(source.stat().st_size) in inner.stdout, inner.stdout

    target = tmp_path / "back.json"
    down = server.aws("s3", "cp", "s3://cli-logs/AWSLogs/trail.json", str(target), creds=ROOT)
    assert down.returncode == 0, down.stderr
    assert target.read_bytes() == source.read_bytes()

    head = server.aws("s3api", "head-object", "--bucket", "cli-logs", "--key", "AWSLogs/trail.json", creds=ROOT).json()
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"] == '"%s"' % hashlib.md5(source.read_bytes()).hexdigest()


def test_list_objects_with_prefix_delimiter_and_url_encoding(server, s3):
    s3.create_bucket(Bucket="listing")
    for key in ["logs/a b+c.txt", "logs/2026/01/x.gz", "logs/2026/02/y.gz", "logs/z.txt", "other/q"]:
        s3.put_object(Bucket="listing", Key=key, Body=b"x")
    result = server.aws(
        "s3api", "list-objects", "--bucket", "listing", "--prefix", "logs/", "--delimiter", "/",
        "--encoding-type", "url", creds=ROOT,
    ).json()
    # Asked for explicitly, the encoding reaches the user as S3 sends it.
    assert [item["Key"] for item in result["Contents"]] == ["logs/a%20b%2Bc.txt", "logs/z.txt"]
    assert [item["Prefix"] for item in result["CommonPrefixes"]] == ["logs/2026/"]

    # boto3 asks for url encoding on its own and decodes the answer.
    page = s3.list_objects(Bucket="listing", Prefix="logs/", Delimiter="/")
    assert [item["Key"] for item in page["Contents"]] == ["logs/a b+c.txt", "logs/z.txt"]
    assert page["IsTruncated"] is False


def test_get_object_ranges_and_head_object_metadata(server, s3, tmp_path: Path):
    s3.create_bucket(Bucket="ranges")
    server.aws(
        "s3api", "put-object", "--bucket", "ranges", "--key", "digest.json.gz", "--body", str(_file(tmp_path, b"0123456789")),
        "--metadata", "signature=abcdef,signature-algorithm=SHA256withRSA", creds=ROOT,
    ).json()
    out = tmp_path / "part"
    part = server.aws("s3api", "get-object", "--bucket", "ranges", "--key", "digest.json.gz", "--range", "bytes=2-5", str(out), creds=ROOT).json()
    assert out.read_bytes() == b"2345"
    assert part["ContentRange"] == "bytes 2-5/10" and part["ContentLength"] == 4
    assert s3.get_object(Bucket="ranges", Key="digest.json.gz", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.get_object(Bucket="ranges", Key="digest.json.gz", Range="bytes=7-")["Body"].read() == b"789"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="ranges", Key="digest.json.gz", Range="bytes=10-")
    assert error_code(err.value) == "InvalidRange"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416

    head = server.aws("s3api", "head-object", "--bucket", "ranges", "--key", "digest.json.gz", creds=ROOT).json()
    assert head["Metadata"] == {"signature": "abcdef", "signature-algorithm": "SHA256withRSA"}
    assert head["ContentLength"] == 10


def _file(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "body.bin"
    path.write_bytes(body)
    return path


def test_errors_carry_s3_codes(server, s3):
    s3.create_bucket(Bucket="full")
    s3.put_object(Bucket="full", Key="k", Body=b"x")
    result = server.aws("s3api", "delete-bucket", "--bucket", "full", creds=ROOT)
    assert result.error_code() == "BucketNotEmpty", result.stderr
    missing_key = server.aws("s3api", "get-object", "--bucket", "full", "--key", "nope", "/dev/null", creds=ROOT)
    assert missing_key.error_code() == "NoSuchKey", missing_key.stderr
    missing_bucket = server.aws("s3api", "list-objects", "--bucket", "no-such-bucket", creds=ROOT)
    assert missing_bucket.error_code() == "NoSuchBucket", missing_bucket.stderr
    taken = server.aws("s3api", "create-bucket", "--bucket", "full", creds=ROOT)
    assert taken.error_code() == "BucketAlreadyOwnedByYou", taken.stderr
    invalid = server.aws("s3api", "create-bucket", "--bucket", "Not_Valid", creds=ROOT)
    assert invalid.error_code() == "InvalidBucketName", invalid.stderr
    # HEAD errors have no body: botocore can only report the status.
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket="full", Key="nope")
    assert error_code(err.value) == "404"

    s3.delete_object(Bucket="full", Key="k")
    s3.delete_bucket(Bucket="full")
    assert "full" not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_error_bodies_are_s3_xml(server):
    result = signed_request(
        "GET", f"{server.endpoint}/no-such-bucket?list-type=2", b"", {}, creds=ROOT, region="us-east-1", service="s3"
    )
    assert result.status == 404
    assert result.header("Content-Type") == "application/xml"
    request_id = result.header("x-amz-request-id")
    assert request_id and result.header("x-amz-id-2")
    error = ET.fromstring(result.data)
    assert error.tag == "Error"
    assert error.findtext("Code") == "NoSuchBucket"
    assert error.findtext("Message") == "The specified bucket does not exist"
    assert error.findtext("BucketName") == "no-such-bucket"
    assert error.findtext("RequestId") == request_id

    wrong_secret = Creds("root", ROOT.access_key_id, "not-the-secret", ACCOUNT_ID, "root")
    bad = signed_request("GET", f"{server.endpoint}/", b"", {}, creds=wrong_secret, region="us-east-1", service="s3")
    assert (bad.status, ET.fromstring(bad.data).findtext("Code")) == (403, "SignatureDoesNotMatch")
    unknown = Creds("x", "AKIAUNKNOWN000000000", "secret-xyz", ACCOUNT_ID, "root")
    bad = signed_request("GET", f"{server.endpoint}/", b"", {}, creds=unknown, region="us-east-1", service="s3")
    assert (bad.status, ET.fromstring(bad.data).findtext("Code")) == (403, "InvalidAccessKeyId")
    anonymous = signed_request("GET", f"{server.endpoint}/", b"", {}, creds=None, region="us-east-1", service="s3")
    assert (anonymous.status, ET.fromstring(anonymous.data).findtext("Code")) == (403, "AccessDenied")


def test_accounts_are_walled_off_and_roles_apply(server, s3, tmp_path: Path):
    s3.create_bucket(Bucket="root-only")
    s3.put_object(Bucket="root-only", Key="secret.txt", Body=b"root data")
    for args in (["s3", "ls", "s3://root-only"], ["s3api", "get-object", "--bucket", "root-only", "--key", "secret.txt", "/dev/null"]):
        result = server.aws(*args, creds=BOB)
        assert result.returncode != 0 and "AccessDenied" in result.stderr, result.stderr
    bob = s3_client(server.endpoint, BOB)
    assert "root-only" not in [bucket["Name"] for bucket in bob.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as err:
        bob.put_object(Bucket="root-only", Key="planted", Body=b"x")
    assert error_code(err.value) == "AccessDenied"

    # A reader of the account reads but does not write.
    reader = s3_client(server.endpoint, READER)
    assert reader.get_object(Bucket="root-only", Key="secret.txt")["Body"].read() == b"root data"
    upload = server.aws("s3", "cp", str(_file(tmp_path, b"r")), "s3://root-only/by-reader", creds=READER)
    assert upload.returncode != 0 and "AccessDenied" in upload.stderr, upload.stderr
    with pytest.raises(ClientError) as err:
        reader.delete_object(Bucket="root-only", Key="secret.txt")
    assert error_code(err.value) == "AccessDenied"


def test_list_objects_v2_pages_with_max_keys(s3):
    s3.create_bucket(Bucket="paging")
    keys = [f"AWSLogs/{ACCOUNT_ID}/CloudTrail/us-east-1/2026/01/{n:02d}/file.json.gz" for n in range(1, 8)]
    for key in reversed(keys):
        s3.put_object(Bucket="paging", Key=key, Body=b"x")
    first = s3.list_objects_v2(Bucket="paging", MaxKeys=3)
    assert [item["Key"] for item in first["Contents"]] == keys[:3]
    assert first["IsTruncated"] is True and first["KeyCount"] == 3 and first["MaxKeys"] == 3
    second = s3.list_objects_v2(Bucket="paging", MaxKeys=3, ContinuationToken=first["NextContinuationToken"])
    assert [item["Key"] for item in second["Contents"]] == keys[3:6]
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="paging", PaginationConfig={"PageSize": 3}))
    assert [len(page["Contents"]) for page in pages] == [3, 3, 1]
    assert [item["Key"] for page in pages for item in page["Contents"]] == keys
    after = s3.list_objects_v2(Bucket="paging", StartAfter=keys[4], FetchOwner=True)
    assert [item["Key"] for item in after["Contents"]] == keys[5:]
    assert after["Contents"][0]["Owner"]["DisplayName"] == ACCOUNT_ID
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket="paging", ContinuationToken="not a token")
    assert error_code(err.value) == "InvalidArgument"


@pytest.fixture
def localhost_resolves(monkeypatch):
    """`*.localhost` names resolve to 127.0.0.1 in this process, as browsers and systemd do
    (this machine's resolver does not)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == "localhost" or host.endswith(".localhost")):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_virtual_hosted_addressing_under_the_configured_domain(server_factory, localhost_resolves):
    server = server_factory(config=config_toml(buckets_domain="s3.localhost"))
    path_style = s3_client(server.endpoint)
    path_style.create_bucket(Bucket="vhost-logs")
    endpoint = f"http://s3.localhost:{server.port}"
    virtual = s3_client(endpoint, s3={"addressing_style": "virtual"})
    sent_hosts = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: sent_hosts.append(urlsplit(request.url).netloc))
    virtual.put_object(Bucket="vhost-logs", Key="dir/a b.txt", Body=b"virtual")
    assert virtual.get_object(Bucket="vhost-logs", Key="dir/a b.txt")["Body"].read() == b"virtual"
    assert [item["Key"] for item in virtual.list_objects_v2(Bucket="vhost-logs")["Contents"]] == ["dir/a b.txt"]
    assert sent_hosts and all(host == f"vhost-logs.s3.localhost:{server.port}" for host in sent_hosts), sent_hosts
    # The same object, path-style.
    assert path_style.get_object(Bucket="vhost-logs", Key="dir/a b.txt")["Body"].read() == b"virtual"


def test_presigned_urls(server, s3):
    s3.create_bucket(Bucket="presigned")
    # Presigning with Signature Version 4 must be asked for against a custom endpoint.
    s3 = s3_client(server.endpoint, signature_version="s3v4")
    http = urllib3.PoolManager(retries=False)
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "presigned", "Key": "up load"}, ExpiresIn=60)
    assert http.request("PUT", put_url, body=b"via a link").status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "up load"}, ExpiresIn=60)
    answer = http.request("GET", get_url)
    assert (answer.status, answer.data) == (200, b"via a link")
    tampered = http.request("GET", get_url.replace("up%20load", "other"))
    assert tampered.status == 403 and ET.fromstring(tampered.data).findtext("Code") == "SignatureDoesNotMatch"
    # AWS CLI v1 presigns with Signature Version 2, which S3 has retired.
    legacy = server.aws("s3", "presign", "s3://presigned/up load", creds=ROOT)
    answer = http.request("GET", legacy.stdout.strip())
    assert answer.status == 400 and ET.fromstring(answer.data).findtext("Code") == "InvalidRequest"


def test_conditional_gets(s3):
    s3.create_bucket(Bucket="conditions")
    etag = s3.put_object(Bucket="conditions", Key="k", Body=b"body")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="conditions", Key="k", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="conditions", Key="k", IfMatch='"0000"')
    assert error_code(err.value) == "PreconditionFailed"
    assert s3.get_object(Bucket="conditions", Key="k", IfMatch=etag)["Body"].read() == b"body"


def test_uploads_are_checked_against_their_checksums(server, s3):
    s3.create_bucket(Bucket="checked")
    # botocore sends x-amz-checksum-crc32 (over HTTP, as a header) and the server checks it.
    s3.put_object(Bucket="checked", Key="k", Body=b"data", ChecksumAlgorithm="CRC32")
    s3.put_object(Bucket="checked", Key="k2", Body=b"data", ChecksumAlgorithm="SHA256")
    wrong_md5 = "AAAAAAAAAAAAAAAAAAAAAA=="
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="checked", Key="k3", Body=b"data", ContentMD5=wrong_md5)
    assert error_code(err.value) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="checked", Key="k3")


def test_streaming_uploads_over_tls_decode_their_chunks(tls_server, tmp_path: Path):  # noqa: F811
    endpoint, cert = tls_server
    client = s3_client(endpoint, IMPORTER, verify=str(cert))
    modes = []
    client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: modes.append(request.headers.get("x-amz-content-sha256"))
    )
    client.create_bucket(Bucket="tls-logs")
    body = bytes(range(256)) * 5000
    client.put_object(Bucket="tls-logs", Key="big.bin", Body=body)
    # Over HTTPS botocore sends an aws-chunked body with a CRC32 trailer.
    assert [mode.decode() if isinstance(mode, bytes) else mode for mode in modes] == ["STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
    assert client.get_object(Bucket="tls-logs", Key="big.bin")["Body"].read() == body

    source = _file(tmp_path, body[::-1])
    up = run_aws_cli(endpoint, "s3", "cp", str(source), "s3://tls-logs/cli.bin", "--ca-bundle", str(cert), creds=IMPORTER)
    assert up.returncode == 0, up.stderr
    assert client.get_object(Bucket="tls-logs", Key="cli.bin")["Body"].read() == body[::-1]


def _chunk_signed_upload(server, bucket: str, key: str, chunks: list[bytes], *, tamper: bool = False):
    """A PUT with `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, as the Java and Go SDKs send it:
    botocore signs the seed request, the chunks are signed here by the documented chain."""
    decoded = b"".join(chunks)
    url = f"{server.endpoint}/{bucket}/{key}"
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "X-Amz-Decoded-Content-Length": str(len(decoded)),
    }
    request = AWSRequest(method="PUT", url=url, data=b"", headers=headers)
    SigV4Auth(Credentials(ROOT.access_key_id, ROOT.secret_access_key), "s3", "us-east-1").add_auth(request)
    amz_date = request.headers["X-Amz-Date"]
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    signing_key = mac(mac(mac(mac(b"AWS4" + ROOT.secret_access_key.encode(), amz_date[:8]), "us-east-1"), "s3"), "aws4_request")
    previous = seed
    body = b""
    for chunk in chunks + [b""]:
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()]
        )
        previous = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        sent = chunk[:-1] + b"!" if tamper and chunk else chunk
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    send_headers = dict(request.headers)
    send_headers["Content-Length"] = str(len(body))
    return urllib3.PoolManager(retries=False).request("PUT", url, body=body, headers=send_headers)


def test_chunk_signed_streaming_uploads(server, s3):
    s3.create_bucket(Bucket="chunked")
    chunks = [b"a" * 65536, b"b" * 1024]
    answer = _chunk_signed_upload(server, "chunked", "object", chunks)
    assert answer.status == 200, answer.data
    assert s3.get_object(Bucket="chunked", Key="object")["Body"].read() == b"".join(chunks)
    tampered = _chunk_signed_upload(server, "chunked", "tampered", chunks, tamper=True)
    assert tampered.status == 403 and ET.fromstring(tampered.data).findtext("Code") == "SignatureDoesNotMatch"
    with pytest.raises(ClientError):
        s3.head_object(Bucket="chunked", Key="tampered")


def test_objects_survive_a_restart(server, s3):
    s3.create_bucket(Bucket="durable", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="durable", Key="k", Body=b"kept", Metadata={"signature": "00ff"})
    server.restart()
    again = s3_client(server.endpoint)
    got = again.get_object(Bucket="durable", Key="k")
    assert got["Body"].read() == b"kept" and got["Metadata"] == {"signature": "00ff"}
    assert again.get_bucket_location(Bucket="durable")["LocationConstraint"] == "eu-west-1"
    assert again.head_bucket(Bucket="durable")["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"


def test_s3_calls_are_recorded_in_the_callers_history(server, s3):
    s3.create_bucket(Bucket="audited")
    s3.put_object(Bucket="audited", Key="k", Body=b"x")
    with pytest.raises(ClientError):
        s3.delete_bucket(Bucket="audited")
    s3.list_buckets()
    s3.get_bucket_location(Bucket="audited")
    s3.get_object(Bucket="audited", Key="k")
    cloudtrail = server.client(creds=ROOT)

    def management_events():
        events = lookup_all(cloudtrail, LookupAttributes=by_attr("EventSource", "s3.amazonaws.com"))
        names = sorted(event["EventName"] for event in events)
        return events if names == ["CreateBucket", "DeleteBucket", "GetBucketLocation", "ListBuckets"] else None

    events = eventually(management_events, what="the S3 management events in Event History")
    records = {event["EventName"]: json.loads(event["CloudTrailEvent"]) for event in events}
    create = records["CreateBucket"]
    assert create["eventSource"] == "s3.amazonaws.com" and create["readOnly"] is False
    assert create["requestParameters"] == {"bucketName": "audited", "Host": f"127.0.0.1:{server.port}"}
    assert create["resources"] == [{"accountId": ACCOUNT_ID, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::audited"}]
    assert create["userIdentity"]["arn"] == ROOT.arn and create["eventCategory"] == "Management"
    failed = records["DeleteBucket"]
    assert failed["errorCode"] == "BucketNotEmpty"
    assert failed["errorMessage"] == "The bucket you tried to delete is not empty"
    assert records["GetBucketLocation"]["requestParameters"]["location"] == ""
    assert records["ListBuckets"]["readOnly"] is True and "resources" not in records["ListBuckets"]
    # Object reads and writes are data events, which Event History does not hold.
    assert not [event for event in events if event["EventName"] in ("PutObject", "GetObject")]
    for event in events:
        assert [r["ResourceName"] for r in event.get("Resources", [])] in ([], ["arn:aws:s3:::audited"])
