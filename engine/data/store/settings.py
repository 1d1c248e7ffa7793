"""The history store's settings: the ``[s3]`` section of the config.

``endpoint`` is ``host:port`` (a URL is accepted and its scheme sets ``secure``
when ``secure`` is left alone). No endpoint means no store: the backfill chain
starts at the next source. The keys are secrets, masked by ``config show`` and
scrubbed from logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_SECRET = "secret"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(slots=True, frozen=True)
class StoreSettings:
    """Where the history store lives, how to reach it, and the local cache in front of it."""

    endpoint: str | None = None  # host:port of an S3-compatible server (MinIO); None: no store
    bucket: str = "tickdeck"
    prefix: str = ""  # a folder inside the bucket, for several stores in one bucket
    access_key: str | None = field(default=None, repr=False, metadata={_SECRET: "ends"})
    secret_key: str | None = field(default=None, repr=False, metadata={_SECRET: "nothing"})
    secure: bool = True  # TLS; a loopback MinIO usually needs false
    region: str | None = None
    cache_dir: str | None = None  # None: platformdirs' user cache dir for tickdeck
    cache_max_mb: int = 1024
    backfill_days: int = 30  # bars loaded for the watchlist at engine start
    timeout_s: float = 5.0  # connect/read timeout of one request to the store

    def __post_init__(self) -> None:
        if self.endpoint is not None:
            endpoint = self.endpoint.strip()
            _check(bool(endpoint), "endpoint must not be empty (use none for no store)")
            object.__setattr__(self, "endpoint", endpoint)
        bucket = self.bucket.strip()
        _check(
            3 <= len(bucket) <= 63 and bucket.replace("-", "").replace(".", "").isalnum(),
            f"bucket must be 3-63 letters, digits, '-' or '.', got '{self.bucket}'",
        )
        _check(bucket == bucket.lower(), f"bucket must be lower case, got '{self.bucket}'")
        object.__setattr__(self, "bucket", bucket)
        object.__setattr__(self, "prefix", self.prefix.strip("/ "))
        _check(
            self.cache_max_mb >= 0, f"cache_max_mb must be zero or more, got {self.cache_max_mb}"
        )
        _check(
            self.backfill_days >= 0,
            f"backfill_days must be zero or more, got {self.backfill_days}",
        )
        _check(self.timeout_s > 0, f"timeout_s must be more than zero, got {self.timeout_s}")

    @property
    def configured(self) -> bool:
        return self.endpoint is not None

    def host_and_tls(self) -> tuple[str, bool]:
        """The endpoint as ``host:port`` and whether to use TLS (a URL's scheme decides)."""
        endpoint = self.endpoint or ""
        for scheme, tls in (("https://", True), ("http://", False)):
            if endpoint.startswith(scheme):
                return endpoint[len(scheme) :].rstrip("/"), tls
        return endpoint.rstrip("/"), self.secure
