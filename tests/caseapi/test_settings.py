"""The case service's settings: one place for every default, clear errors, durations."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from caseapi.cases.enums import CasePriority
from caseapi.settings import (
    CaseSettings,
    DatabaseSettings,
    DispatcherSettings,
    MaintenanceSettings,
    NotificationSettings,
    RepairTimeSettings,
    check_mqtt_url,
    format_duration,
    parse_duration,
    positive,
)

H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("10m", 600), ("24h", 86400), ("3d", 259200), ("1h30m", 5400)],
)
def test_durations_round_trip(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "10", "ten minutes", "10x", "m10", "5q", 10, None, True])
def test_bad_durations_say_what_is_wrong(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_duration(bad)


def test_positive() -> None:
    assert positive(H) == H
    with pytest.raises(ValueError, match="must be greater than zero"):
        positive(timedelta(0))


def test_case_defaults_become_the_sla() -> None:
    sla = CaseSettings().sla()
    assert (sla.monitoring_window_p1, sla.monitoring_window_p2) == (24 * H, 72 * H)
    assert (sla.first_response, sla.unassigned_after) == (timedelta(minutes=30), H)
    assert (sla.reminder_after, sla.close_after, sla.auto_close_recheck) == (48 * H, 96 * H, H)
    assert dict(sla.ttr) == {CasePriority.P1: 4 * H, CasePriority.P2: 8 * H, CasePriority.P3: None}
    assert sla.dispatch_notice == 24 * H
    custom = CaseSettings.model_validate(
        {
            "monitoring_window": {"p1": "2h"},
            "ttr": {"p3": "3d"},
            "waiting_customer": {"recheck": "5m"},
        }
    ).sla()
    assert custom.monitoring_window_p1 == 2 * H
    assert custom.ttr[CasePriority.P3] == 72 * H
    assert custom.auto_close_recheck == timedelta(minutes=5)
    assert RepairTimeSettings(p1=None).p1 is None


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (CaseSettings, {"first_response": "0s"}, "must be greater than zero"),
        (CaseSettings, {"monitoring_window": {"p2": "0s"}}, "must be greater than zero"),
        (CaseSettings, {"ticker_interval": 10}, "10 has no unit"),
        (CaseSettings, {"monitoring_windows": {}}, "Extra inputs are not permitted"),
        (NotificationSettings, {"backoff_cap": "1s"}, "backoff_cap must not be shorter"),
        (NotificationSettings, {"mqtt_url": "http://x"}, "is not an MQTT URL"),
        (NotificationSettings, {"smtp_port": 0}, "greater than or equal to 1"),
        (MaintenanceSettings, {"refresh": "0s"}, "must be greater than zero"),
        (DatabaseSettings, {"url": "mysql://x"}, "must start with 'sqlite"),
    ],
)
def test_bad_values_are_refused_with_a_reason(
    section: type[CaseSettings | NotificationSettings | MaintenanceSettings | DatabaseSettings],
    values: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message):
        section.model_validate(values)


def test_sections_are_frozen() -> None:
    settings = CaseSettings()
    with pytest.raises(ValidationError):
        settings.first_response = H  # type: ignore[misc]


def test_the_dispatcher_gets_the_notification_settings() -> None:
    section = NotificationSettings(
        smtp_host="mail.example",
        smtp_password=SecretStr("s3cret"),
        mqtt_url="mqtt://broker:1883",
        max_attempts=3,
    )
    dispatcher = section.dispatcher(batch_size=7)
    assert isinstance(dispatcher, DispatcherSettings)
    assert (dispatcher.smtp_host, dispatcher.smtp_password) == ("mail.example", "s3cret")
    assert (dispatcher.mqtt_url, dispatcher.max_attempts, dispatcher.batch_size) == (
        "mqtt://broker:1883",
        3,
        7,
    )
    default = NotificationSettings().dispatcher()
    assert (default.smtp_port, default.smtp_from, default.mqtt_topic_prefix) == (
        25,
        "noc@localhost",
        "nms/v1",
    )
    assert (default.email_enabled, default.mqtt_enabled) == (False, False)
    with pytest.raises(ValueError, match="claim_timeout"):
        replace(default, send_timeout=600.0)


def test_mqtt_urls() -> None:
    assert check_mqtt_url("mqtts://broker:8883") == "mqtts://broker:8883"
    with pytest.raises(ValueError, match="Port out of range"):
        check_mqtt_url("mqtt://broker:99999")
