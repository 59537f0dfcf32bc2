"""``api.rate_limits`` and ``api.trusted_proxies``: defaults, units, clear errors."""

from __future__ import annotations

import ipaddress
import os

import pytest

from nms.app.settings import load_settings
from nms.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("NMS_"):
            monkeypatch.delenv(name)


def test_defaults_limit_guessing_and_trust_no_proxy():
    api = load_settings().api
    assert api.trusted_proxies == ()
    limits = api.rate_limits
    assert limits.auth_failures_per_address == "10/minute"
    assert limits.auth_failures_per_key == "10/minute"
    assert limits.case_creation_per_customer == "60/hour"
    assert limits.comments_per_customer == "120/hour"
    assert limits.storage_url == "memory://"


def test_file_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "nms.yaml"
    path.write_text(
        "api:\n  trusted_proxies: [10.0.0.0/8, '::1']\n"
        "  rate_limits:\n    comments_per_customer: 10/minute;100/day\n"
        "    storage_url: redis://127.0.0.1:6379/2\n"
    )
    monkeypatch.setenv("NMS_API__RATE_LIMITS__CASE_CREATION_PER_CUSTOMER", "off")
    api = load_settings(path).api
    assert api.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert api.rate_limits.comments_per_customer == "10/minute;100/day"
    assert api.rate_limits.case_creation_per_customer == "off"
    assert api.rate_limits.storage_url == "redis://127.0.0.1:6379/2"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "api:\n  rate_limits:\n    auth_failures_per_address: ten\n",
            "api.rate_limits.auth_failures_per_address: 'ten' is not a rate limit",
        ),
        (
            "api:\n  rate_limits:\n    comments_per_customer: 0/hour\n",
            "api.rate_limits.comments_per_customer: '0/hour': the amount must be at least 1",
        ),
        (
            "api:\n  rate_limits:\n    storage_url: memcached://x\n",
            "api.rate_limits.storage_url: 'memcached://x': use 'memory://' or 'redis://",
        ),
        (
            "api:\n  rate_limits:\n    storage_url: redis://:hunter2@/0\n",
            "api.rate_limits.storage_url: 'redis://:***@/0': a Redis URL needs a host",
        ),
        (
            "api:\n  rate_limits:\n    storage_url: redis://h:99999/0\n",
            "api.rate_limits.storage_url: 'redis://h:99999/0': Port out of range",
        ),
        (
            "api:\n  rate_limits:\n    storage_timeout: 0s\n",
            "api.rate_limits.storage_timeout: must be greater than zero",
        ),
        ("api:\n  rate_limits:\n    key_prefix: 'a b'\n", "api.rate_limits.key_prefix"),
        ("api:\n  rate_limits:\n    per_customer: 1/hour\n", "api.rate_limits.per_customer"),
        ("api:\n  trusted_proxies: [proxy.example]\n", "api.trusted_proxies.0"),
        ("api:\n  trusted_proxies: 10.0.0.0/8\n", "api.trusted_proxies"),
    ],
)
def test_bad_values_name_the_key(tmp_path, yaml_text, expected):
    path = tmp_path / "nms.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)
    assert "hunter2" not in str(info.value)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("NMS_API__RATE_LIMITS__AUTH_FAILURES_PER_KEY", "lots")
    with pytest.raises(
        ConfigError,
        match=r"NMS_API__RATE_LIMITS__AUTH_FAILURES_PER_KEY: api\.rate_limits\.auth_failures",
    ):
        load_settings()
