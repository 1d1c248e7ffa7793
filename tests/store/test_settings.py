"""The ``[s3]`` settings: MinIO-style environment names, validation, secrets kept out of sight."""

from __future__ import annotations

import pytest

from engine.config import load_settings
from engine.core.errors import ConfigError
from engine.data.store import StoreSettings
from engine.logs import register_secrets, scrub


def test_the_minio_style_environment_names_fill_the_s3_section():
    s3 = load_settings(
        env={
            "TICKDECK_S3_ENDPOINT": "127.0.0.1:9000",
            "TICKDECK_S3_BUCKET": "history",
            "TICKDECK_S3_ACCESS_KEY": "minio-user",
            "TICKDECK_S3_SECRET_KEY": "minio-secret",
            "TICKDECK_S3_SECURE": "false",
        }
    ).s3
    assert (s3.endpoint, s3.bucket, s3.access_key, s3.secret_key, s3.secure) == (
        "127.0.0.1:9000",
        "history",
        "minio-user",
        "minio-secret",
        False,
    )


def test_the_section_variable_beats_its_minio_style_twin():
    settings = load_settings(
        env={"TICKDECK_S3_BUCKET": "from-twin", "TICKDECK_S3__BUCKET": "from-section"}
    )
    assert settings.s3.bucket == "from-section"


def test_an_invalid_bucket_name_names_the_setting_and_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"TICKDECK_S3_BUCKET": "Not_A_Bucket"})
    assert caught.value.key == "s3.bucket"
    assert "(from TICKDECK_S3_BUCKET)" in str(caught.value)


def test_the_keys_stay_out_of_the_settings_repr():
    text = repr(StoreSettings(endpoint="h:1", access_key="key-123456", secret_key="secret-123456"))
    assert "key-123456" not in text and "secret-123456" not in text


def test_a_registered_secret_key_is_scrubbed_from_log_lines():

    register_secrets(["s3-secret-abcdef"])
    assert scrub("signing with s3-secret-abcdef failed") == "signing with ******** failed"


@pytest.mark.parametrize(
    ("endpoint", "secure", "expected"),
    [
        ("127.0.0.1:9000", False, ("127.0.0.1:9000", False)),
        ("https://minio.example:9000/", False, ("minio.example:9000", True)),
        ("http://127.0.0.1:9000", True, ("127.0.0.1:9000", False)),
    ],
)
def test_a_url_endpoints_scheme_decides_tls(endpoint, secure, expected):
    assert StoreSettings(endpoint=endpoint, secure=secure).host_and_tls() == expected
