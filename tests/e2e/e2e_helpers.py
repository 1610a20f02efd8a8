"""Helpers for Trailkeeper's end-to-end suite: a real `trailkeeper serve` process on
loopback, the real AWS CLI v1 and boto3 pointed at it, and a SigV4-signed ingest client.

Nothing here fakes the server: every helper talks HTTP to the process it started.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from unittest import mock

import boto3
import botocore.auth
import botocore.config
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO = Path(__file__).resolve().parents[2]
# CI clones the repo fresh with shared/ beside it, exactly like the development tree.
SHARED_DATA = REPO.parent / "shared" / "data"
STRATUS_FILE = SHARED_DATA / "stratus-red-team-detonations.ndjson"
CORPUS_FILE = SHARED_DATA / "corpus" / "corpus.ndjson"

ACCOUNT_ID = "123456789012"
OTHER_ACCOUNT_ID = "210987654321"
LOOKUP_TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
AMZ_JSON = "application/x-amz-json-1.1"
HEALTH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Creds:
    """An access key pair and who it belongs to, as the server's config declares it."""

    name: str
    access_key_id: str
    secret_access_key: str
    account_id: str
    role: str
    accounts: tuple[str, ...] = ()

    @property
    def arn(self) -> str:
        if self.role == "root":
            return f"arn:aws:iam::{self.account_id}:root"
        return f"arn:aws:iam::{self.account_id}:user/{self.name}"

    @property
    def identity_type(self) -> str:
        return "Root" if self.role == "root" else "IAMUser"


ROOT = Creds("root", "AKIAE2EROOT000000001", "root-secret-e2e", ACCOUNT_ID, "root")
IMPORTER = Creds("importer", "AKIAE2EIMPORTER00001", "importer-secret", ACCOUNT_ID, "admin", ("*",))
READER = Creds("reader", "AKIAE2EREADER0000001", "reader-secret", ACCOUNT_ID, "reader")
WRITER = Creds("writer", "AKIAE2EWRITER0000001", "writer-secret", ACCOUNT_ID, "writer")
BOB = Creds("bob", "AKIAE2EBOB0000000001", "bob-secret", OTHER_ACCOUNT_ID, "admin")
USERS = (IMPORTER, READER, WRITER, BOB)


def config_toml(
    *,
    retention_days: int = 36500,
    requests_per_second: int | None = 100_000,
    users: Iterable[Creds] = USERS,
    extra: str = "",
    buckets_domain: str | None = None,
) -> str:
    """The server's config file. Retention reaches back a century so that the public
    records (2014–2026) stay inside Event History. `extra` is TOML appended at the end
    (for example `[[buckets.external]]` blocks); `buckets_domain` turns on virtual-hosted
    S3 addressing (`<bucket>.<domain>`)."""
    lines = [
        f'account_id = "{ACCOUNT_ID}"',
        "",
        "[history]",
        f"retention_days = {retention_days}",
    ]
    if buckets_domain is not None:
        lines += ["", "[buckets]", f'domain = "{buckets_domain}"']
    if requests_per_second is not None:
        lines += ["", "[limits]", f"requests_per_second = {requests_per_second}"]
    for user in users:
        lines += [
            "",
            "[[users]]",
            f'name = "{user.name}"',
            f'account_id = "{user.account_id}"',
            f'role = "{user.role}"',
            f'access_key_id = "{user.access_key_id}"',
            f'secret_access_key = "{user.secret_access_key}"',
        ]
        if user.accounts:
            lines.append("accounts = [" + ", ".join(f'"{a}"' for a in user.accounts) + "]")
    if extra:
        lines += ["", extra.rstrip("\n")]
    return "\n".join(lines) + "\n"


def trailkeeper_bin() -> str:
    path = os.environ.get("TRAILKEEPER_BIN")
    if not path:
        raise RuntimeError("TRAILKEEPER_BIN is not set: run the suite through scripts/test-e2e")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"TRAILKEEPER_BIN={path} is not an executable file")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """The environment without anything that would point a client or the server elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "TRAILKEEPER_", "BOTO_"))
    }
    env["AWS_CONFIG_FILE"] = "/dev/null"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


# Clients built in this process (boto3) must not read the developer's ~/.aws either.
for _key in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_key]
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


class ServerError(AssertionError):
    pass


class TrailkeeperServer:
    """One `trailkeeper serve` process on 127.0.0.1, restartable on the same data dir and port."""

    def __init__(
        self,
        workdir: Path,
        *,
        config: str | None = None,
        extra_env: dict[str, str] | None = None,
        root_from_env: bool = True,
        file_size_limit: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "server.log"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = workdir / "trailkeeper.toml"
            self.config_path.write_text(config)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.endpoint = f"http://{self.host}:{self.port}"
        self.root = ROOT
        self.extra_env = dict(extra_env or {})
        self.root_from_env = root_from_env
        # The largest file the server may write (RLIMIT_FSIZE), as a full disk stops it.
        self.file_size_limit = file_size_limit
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- process control -------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            trailkeeper_bin(),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"{self.host}:{self.port}",
        ]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    def env(self) -> dict[str, str]:
        env = clean_env()
        env.update({"TRAILKEEPER_ACCOUNT_ID": ACCOUNT_ID, "RUST_BACKTRACE": "1"})
        if self.root_from_env:
            env["TRAILKEEPER_ROOT_ACCESS_KEY_ID"] = ROOT.access_key_id
            env["TRAILKEEPER_ROOT_SECRET_ACCESS_KEY"] = ROOT.secret_access_key
        env.update(self.extra_env)
        return env

    def start(self) -> "TrailkeeperServer":
        if self.running:
            raise ServerError("server already running")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self._limit_file_size if self.file_size_limit is not None else None,
            )
        finally:
            log.close()
        self.wait_healthy()
        return self

    def _limit_file_size(self) -> None:
        # Runs in the child before exec. A write past the limit then fails with EFBIG
        # instead of killing the server with SIGXFSZ (an ignored signal stays ignored
        # across exec). Only the soft limit, so that `limit_file_size` can lift it again.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, resource.RLIM_INFINITY))

    def limit_file_size(self, limit: int | None) -> None:
        """Sets the largest file the running server may write, as a disk that fills up or
        is freed would; None lifts the limit. The server must have been started with one."""
        assert self.file_size_limit is not None, "start the server with a file_size_limit"
        soft = resource.RLIM_INFINITY if limit is None else limit
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1.0, read=2.0))
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.proc is not None
            rc = self.proc.poll()
            if rc is not None:
                raise ServerError(
                    f"trailkeeper serve exited with code {rc} before /health answered\n"
                    f"command: {' '.join(self.command())}\n--- server output ---\n{self.log_tail()}"
                )
            try:
                resp = http.request("GET", f"{self.endpoint}/health")
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}: {resp.data[:200]!r}"
            except urllib3.exceptions.HTTPError as err:
                last = repr(err)
            time.sleep(0.1)
        raise ServerError(
            f"GET {self.endpoint}/health did not answer 200 within {timeout:.0f} s (last: {last})\n"
            f"command: {' '.join(self.command())}\n--- server output ---\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the graceful shutdown. Returns the exit code."""
        assert self.proc is not None, "server never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise ServerError(
                    f"server did not exit within {timeout:.0f} s of SIGTERM\n{self.log_tail()}"
                )
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9: no chance to flush or seal anything."""
        assert self.proc is not None, "server never started"
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> "TrailkeeperServer":
        if self.running:
            self.stop()
        return self.start()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server output)"
        return "\n".join(text.splitlines()[-lines:])

    # --- clients ---------------------------------------------------------------------

    def client(
        self,
        region: str = "us-east-1",
        creds: Creds = IMPORTER,
        service: str = "cloudtrail",
        **config: Any,
    ):
        """A boto3 client of `service` (CloudTrail unless told) for this server. No retries,
        so that every error the server sends surfaces as it is."""
        config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        session = boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            region_name=region,
        )
        return session.client(
            service,
            endpoint_url=self.endpoint,
            config=botocore.config.Config(**config),
        )

    def aws(
        self,
        *args: str,
        region: str = "us-east-1",
        creds: Creds = IMPORTER,
        timeout: float = 120,
    ) -> "CliResult":
        """Runs `aws --endpoint-url <server> ...` from the virtualenv, with no config files."""
        return run_aws_cli(self.endpoint, *args, region=region, creds=creds, timeout=timeout)

    def ingest(
        self,
        records: list[dict] | None = None,
        *,
        body: bytes | None = None,
        creds: Creds = IMPORTER,
        region: str = "us-east-1",
        ndjson: bool = False,
        gzip_body: bool = False,
        timeout: float = 60,
        http: urllib3.PoolManager | None = None,
    ) -> "HttpResult":
        """POST /v1/records, signed with SigV4 for service "cloudtrail"."""
        if body is None:
            assert records is not None
            if ndjson:
                body = "".join(json.dumps(r) + "\n" for r in records).encode()
            else:
                body = json.dumps({"Records": records}).encode()
        headers = {"Content-Type": "application/x-ndjson" if ndjson else "application/json"}
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return signed_request(
            "POST",
            f"{self.endpoint}/v1/records",
            body,
            headers,
            creds=creds,
            region=region,
            timeout=timeout,
            http=http,
        )

    def ingest_ok(self, records: list[dict], **kwargs: Any) -> dict:
        """Ingests and insists on HTTP 200; returns the parsed per-record summary."""
        result = self.ingest(records, **kwargs)
        if result.status != 200:
            raise AssertionError(
                f"POST /v1/records answered HTTP {result.status}: {result.text[:2000]}"
            )
        summary = result.json()
        assert len(summary["results"]) == len(records), (
            f"{len(records)} records sent, {len(summary['results'])} results: {result.text[:2000]}"
        )
        return summary

    def raw_api(
        self,
        target: str | None,
        body: bytes,
        *,
        creds: Creds | None = IMPORTER,
        region: str = "us-east-1",
        headers: dict[str, str] | None = None,
        now: dt.datetime | None = None,
    ) -> "HttpResult":
        """POST / as an AWS JSON 1.1 client would, with full control over target and body."""
        hdrs = {"Content-Type": AMZ_JSON}
        if target is not None:
            hdrs["X-Amz-Target"] = target
        hdrs.update(headers or {})
        return signed_request(
            "POST", f"{self.endpoint}/", body, hdrs, creds=creds, region=region, now=now
        )

    def trailkeeper_ingest(
        self,
        *paths: str,
        creds: Creds = IMPORTER,
        extra: Iterable[str] = (),
        stdin: bytes | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """`trailkeeper ingest PATH... --endpoint-url URL` with the keys in the environment."""
        env = clean_env()
        env.update(
            {
                "AWS_ACCESS_KEY_ID": creds.access_key_id,
                "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        return subprocess.run(
            [trailkeeper_bin(), "ingest", *paths, "--endpoint-url", self.endpoint, *extra],
            env=env,
            input=stdin.decode() if stdin is not None else None,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


# --- HTTP ------------------------------------------------------------------------------


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError as err:
            raise AssertionError(
                f"HTTP {self.status} body is not JSON ({err}): {self.text[:500]!r}"
            ) from None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def error_code(self) -> str:
        """The AWS error code: `__type` after any `#`, else the x-amzn-ErrorType header."""
        code = None
        try:
            body = json.loads(self.data)
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("__type") or body.get("code") or body.get("Code")
        if not code:
            code = self.header("x-amzn-ErrorType")
        if not code:
            return ""
        return code.split("#")[-1].split(":")[0]

    def describe(self) -> str:
        return f"HTTP {self.status} {self.headers} {self.text[:1000]}"


_HTTP = urllib3.PoolManager(retries=False, maxsize=16)


def signed_request(
    method: str,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    creds: Creds | None,
    region: str,
    service: str = "cloudtrail",
    now: dt.datetime | None = None,
    timeout: float = 60,
    http: urllib3.PoolManager | None = None,
) -> HttpResult:
    """Signs with botocore's SigV4Auth (optionally at a chosen clock time) and sends."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    if creds is not None:
        signer = SigV4Auth(
            Credentials(creds.access_key_id, creds.secret_access_key), service, region
        )
        if now is None:
            signer.add_auth(request)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: now):
                signer.add_auth(request)
    prepared = request.prepare()
    resp = (http or _HTTP).request(
        method,
        url,
        body=prepared.body,
        headers=dict(prepared.headers),
        timeout=urllib3.Timeout(connect=5.0, read=timeout),
        retries=False,
    )
    return HttpResult(resp.status, dict(resp.headers), resp.data)


def lookup_target(op: str = "LookupEvents") -> str:
    return LOOKUP_TARGET_PREFIX + op


# --- AWS CLI ---------------------------------------------------------------------------


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        if self.returncode != 0:
            raise AssertionError(f"aws {' '.join(self.args)} failed: rc={self.returncode}\n{self.stderr}")
        return json.loads(self.stdout) if self.stdout.strip() else {}

    def error_code(self) -> str | None:
        match = re.search(r"An error occurred \((\w+)\)", self.stderr)
        return match.group(1) if match else None


def aws_executable() -> str:
    candidate = Path(sys.executable).parent / "aws"
    if not candidate.exists():
        raise RuntimeError(f"the AWS CLI is not installed next to {sys.executable}")
    return str(candidate)


def run_aws_cli(
    endpoint: str,
    *args: str,
    region: str = "us-east-1",
    creds: Creds = IMPORTER,
    timeout: float = 120,
) -> CliResult:
    env = clean_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "TZ": "UTC",
        }
    )
    argv = [aws_executable(), "--endpoint-url", endpoint, "--output", "json", *args]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    return CliResult(list(args), proc.returncode, proc.stdout, proc.stderr)


def aws_validate_logs(endpoint: str, *args: str, region: str = "us-east-1", creds: Creds = IMPORTER) -> CliResult:
    """`aws --region <region> cloudtrail validate-logs ...` with both of its services on
    Trailkeeper: through the per-service endpoint variables, because `--endpoint-url` would
    reach its CloudTrail client only, not its S3 one. `--region` is the Region whose digests
    it walks; without it the CLI walks the trail's home Region, whatever the default is."""
    env = clean_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL_CLOUDTRAIL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_MAX_ATTEMPTS": "1",
            "TZ": "UTC",
        }
    )
    argv = [aws_executable(), "--region", region, "cloudtrail", "validate-logs", *args]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


# --- records ---------------------------------------------------------------------------


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def make_record(
    *,
    event_time: dt.datetime,
    event_name: str = "DescribeInstances",
    event_source: str = "ec2.amazonaws.com",
    region: str = "us-east-1",
    account: str | None = ACCOUNT_ID,
    username: str = "alice",
    access_key_id: str = "AKIAIOSFODNN7EXAMPLE",
    read_only: bool | None = True,
    resources: list[dict] | None = None,
    event_id: str | None = "auto",
    category: str | None = "Management",
    identity: dict | None = None,
    **extra: Any,
) -> dict:
    """A CloudTrail record shaped like the ones AWS writes (eventVersion 1.11)."""
    rec: dict[str, Any] = {
        "eventVersion": "1.11",
        "userIdentity": identity
        or {
            "type": "IAMUser",
            "principalId": "AIDAE2EEXAMPLE" + username.upper()[:6],
            "arn": f"arn:aws:iam::{account or ACCOUNT_ID}:user/{username}",
            "accountId": account or ACCOUNT_ID,
            "accessKeyId": access_key_id,
            "userName": username,
        },
        "eventTime": iso(event_time),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0abc"}]}},
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "managementEvent": category in (None, "Management"),
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"{event_source.split('.')[0]}.{region}.amazonaws.com",
        },
    }
    if read_only is not None:
        rec["readOnly"] = read_only
    if event_id == "auto":
        rec["eventID"] = str(uuid.uuid4())
    elif event_id is not None:
        rec["eventID"] = event_id
    if category is not None:
        rec["eventCategory"] = category
    if account is not None:
        rec["recipientAccountId"] = account
    if resources is not None:
        rec["resources"] = resources
    rec.update(extra)
    return rec


def parse_event_time(text: Any) -> dt.datetime | None:
    """The timestamp shapes of real records: CloudTrail's `YYYY-MM-DDTHH:MM:SSZ`, with
    fractional seconds, a space for `T`, a numeric offset, or no zone (UTC). None when the
    value is not a time at all."""
    if not isinstance(text, str):
        return None
    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}(?::?\d{2})?)?",
        text,
    )
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    zone = m.group(8)
    tz = dt.timezone.utc
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        return dt.datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz).astimezone(
            dt.timezone.utc
        )
    except ValueError:
        return None


def expected_username(rec: dict) -> str | None:
    """LookupEvents' Username: the IAM user name, or the role session name."""
    ident = rec.get("userIdentity") or {}
    kind = ident.get("type")
    if kind == "IAMUser":
        return ident.get("userName")
    if kind in ("AssumedRole", "FederatedUser"):
        arn = ident.get("arn") or ""
        return arn.rsplit("/", 1)[-1] if "/" in arn else None
    return None


def to_datetime(value: Any) -> dt.datetime:
    """EventTime as boto3 (datetime) or the CLI (epoch number or ISO string) returns it."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    parsed = parse_event_time(str(value).replace("+00:00", "Z"))
    if parsed is None:
        raise AssertionError(f"EventTime {value!r} is not a timestamp")
    return parsed


def first_difference(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Where two JSON values first differ, as a readable path; None if they are equal."""
    if type(expected) is not type(actual) and not (
        isinstance(expected, (int, float))
        and isinstance(actual, (int, float))
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    ):
        return f"{path}: expected {expected!r} ({type(expected).__name__}), got {actual!r} ({type(actual).__name__})"
    if isinstance(expected, dict):
        for key in expected:
            if key not in actual:
                return f"{path}.{key}: missing (expected {expected[key]!r})"
        for key in actual:
            if key not in expected:
                return f"{path}.{key}: unexpected field {actual[key]!r}"
        for key in expected:
            diff = first_difference(expected[key], actual[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = first_difference(e, a, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if expected != actual:
        return f"{path}: expected {expected!r}, got {actual!r}"
    return None


def assert_event_matches(event: dict, rec: dict, *, where: str = "") -> None:
    """Checks one LookupEvents `Event` against the record it was made from, field by field."""
    ctx = f"{where} EventId={event.get('EventId')!r}"
    assert event.get("EventId") == rec["eventID"], f"{ctx}: EventId"
    assert event.get("EventName") == rec["eventName"], f"{ctx}: EventName {event.get('EventName')!r}"
    assert event.get("EventSource") == rec["eventSource"], f"{ctx}: EventSource {event.get('EventSource')!r}"
    if isinstance(rec.get("readOnly"), bool):
        want = "true" if rec["readOnly"] else "false"
        assert event.get("ReadOnly") == want, f"{ctx}: ReadOnly {event.get('ReadOnly')!r}, want {want!r}"
    key = (rec.get("userIdentity") or {}).get("accessKeyId")
    if key:
        assert event.get("AccessKeyId") == key, f"{ctx}: AccessKeyId {event.get('AccessKeyId')!r}, want {key!r}"
    else:
        assert not event.get("AccessKeyId"), f"{ctx}: AccessKeyId {event.get('AccessKeyId')!r}, record has none"
    user = expected_username(rec)
    if user is not None:
        assert event.get("Username") == user, f"{ctx}: Username {event.get('Username')!r}, want {user!r}"
    want_time = parse_event_time(rec["eventTime"])
    got_time = to_datetime(event.get("EventTime"))
    assert want_time is not None
    assert abs((got_time - want_time).total_seconds()) < 1, f"{ctx}: EventTime {got_time} want {want_time}"
    want_resources = [
        {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
        for r in (rec.get("resources") or [])
    ]
    got_resources = [
        {"ResourceType": r.get("ResourceType"), "ResourceName": r.get("ResourceName")}
        for r in (event.get("Resources") or [])
    ]
    assert got_resources == want_resources, f"{ctx}: Resources {event.get('Resources')!r}, want {want_resources!r}"
    assert isinstance(event.get("CloudTrailEvent"), str), f"{ctx}: CloudTrailEvent must be a JSON string"
    diff = first_difference(rec, json.loads(event["CloudTrailEvent"]))
    assert diff is None, f"{ctx}: CloudTrailEvent differs from the record: {diff}"


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.1, what: str = "") -> Any:
    """Retries `check` until it returns a truthy value (events are visible ≤ 1 s after ack)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}: last={last!r}")
        time.sleep(interval)


def lookup_all(client, **params: Any) -> list[dict]:
    """Every event a LookupEvents query matches, through boto3's paginator."""
    events: list[dict] = []
    for page in client.get_paginator("lookup_events").paginate(**params):
        events.extend(page.get("Events", []))
    return events


def by_attr(key: str, value: str) -> list[dict]:
    return [{"AttributeKey": key, "AttributeValue": value}]


def read_ndjson(path: Path) -> list[dict]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def run_id() -> str:
    return uuid.uuid4().hex[:10]


def stop_logging_and_wait_for_the_closing_digest(server: "TrailkeeperServer", trail: str, bucket: str) -> None:
    """Stops `trail` logging and waits until its us-east-1 chain is closed: the newest digest
    vouches for the log file that holds the StopLogging record. (A digest's end time alone
    cannot tell the closing digest from a periodic one cut in the same second as the stop.)"""
    assert server.aws("cloudtrail", "stop-logging", "--name", trail).returncode == 0
    cloudtrail = server.client()
    s3 = server.client(service="s3", s3={"addressing_style": "path"})
    stop_attribute = [{"AttributeKey": "EventName", "AttributeValue": "StopLogging"}]
    stop_id = eventually(
        lambda: cloudtrail.lookup_events(LookupAttributes=stop_attribute, MaxResults=1)["Events"][0]["EventId"],
        what="the StopLogging event",
    )

    def closed() -> bool:
        prefix = f"AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/us-east-1/"
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        if not keys:
            return False
        newest = json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=keys[-1])["Body"].read()))
        for log_file in newest["logFiles"]:
            body = s3.get_object(Bucket=log_file["s3Bucket"], Key=log_file["s3Object"])["Body"].read()
            if any(record["eventID"] == stop_id for record in json.loads(gzip.decompress(body))["Records"]):
                return True
        return False

    eventually(closed, timeout=20, interval=0.5, what="the digest that closes the chain")
