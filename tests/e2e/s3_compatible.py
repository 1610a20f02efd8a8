"""A real S3-compatible server for the end-to-end suite: s3s-fs (filesystem-backed, SigV4
on), standing in for AWS S3, MinIO or Ceph RGW behind `[[buckets.external]]`.

`scripts/install-test-tools` builds s3s-fs into `<repo>/.tools` and `scripts/test-e2e`
exports its path as TRAILKEEPER_S3S_FS. A missing binary fails the run; nothing skips.

Known differences from AWS S3 that tests must not lean on: s3s-fs accepts a PutObject into
a bucket that does not exist (it creates the bucket's folder), and it checks
`If-None-Match: *` before writing rather than atomically.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config

from e2e_helpers import REPO, clean_env

S3S_FS_DEFAULT = REPO / ".tools" / "bin" / "s3s-fs"
START_TIMEOUT_SECONDS = 20.0
_ADDRESS = re.compile(r"server is running at (http://\S+)")


def s3s_fs_bin() -> str:
    path = Path(os.environ.get("TRAILKEEPER_S3S_FS") or S3S_FS_DEFAULT)
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"s3s-fs is not installed at {path}: run scripts/install-test-tools "
            "(scripts/test-e2e does it)"
        )
    return str(path)


@dataclass
class S3CompatibleServer:
    """One s3s-fs process on 127.0.0.1 with a port of its choosing and one access key.
    Its buckets are the folders of `root_dir`; each object is a file under its bucket."""

    workdir: Path
    access_key_id: str = "AKIAS3COMPATIBLE0001"
    secret_access_key: str = "s3-compatible-secret-key"
    region: str = "us-east-1"
    endpoint: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def root_dir(self) -> Path:
        return self.workdir / "buckets"

    @property
    def log_path(self) -> Path:
        return self.workdir / "s3s-fs.log"

    def start(self, port: int = 0) -> "S3CompatibleServer":
        """Starts s3s-fs on `port`, or on a port of its choosing."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        command = [
            s3s_fs_bin(),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--access-key", self.access_key_id,
            "--secret-key", self.secret_access_key,
            str(self.root_dir),
        ]
        env = clean_env()
        # s3s-fs logs the address it bound at info level, and nothing per request.
        env["RUST_LOG"] = "s3s_fs=info"
        with open(self.log_path, "ab") as log:
            # Where this start's output begins, taken before the process can write: a restart
            # appends to the log, and s3s-fs may report its address before Popen returns.
            logged_before = log.seek(0, os.SEEK_END)
            self.proc = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            match = _ADDRESS.search(self.log_bytes()[logged_before:].decode(errors="replace"))
            if match:
                self.endpoint = match.group(1)
                return self
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"s3s-fs exited with code {rc} before listening:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(
                    f"s3s-fs did not report its address within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_text()}"
                )
            time.sleep(0.05)

    def restart(self) -> "S3CompatibleServer":
        """Starts the stopped server again on the port it had, for clients configured with it."""
        return self.start(port=int(self.endpoint.rsplit(":", 1)[1]))

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_bytes(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def log_text(self) -> str:
        return self.log_bytes().decode(errors="replace") or "(no s3s-fs output)"

    def client(self, *, access_key_id: str | None = None, secret_access_key: str | None = None):
        """A boto3 S3 client for this server: path-style, no retries, this server's keys
        unless others are given."""
        session = boto3.session.Session(
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def external_bucket_toml(self, name: str) -> str:
        """The `[[buckets.external]]` block that maps bucket `name` to this server, for
        `config_toml(extra=...)`."""
        return "\n".join(
            [
                "[[buckets.external]]",
                f'name = "{name}"',
                f'endpoint = "{self.endpoint}"',
                f'region = "{self.region}"',
                f'access_key_id = "{self.access_key_id}"',
                f'secret_access_key = "{self.secret_access_key}"',
                "",
            ]
        )
