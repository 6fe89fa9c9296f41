"""CloudSettings: one broker credential for the cloud, and the broker URL it connects to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cloud.settings import CloudSettings


def settings(**values: object) -> CloudSettings:
    return CloudSettings(**values)  # type: ignore[arg-type]


def test_without_a_login_in_the_url_the_cloud_logs_in_with_its_own_account() -> None:
    s = settings(
        mqtt_url="mqtt://127.0.0.1:1883", cloud_mqtt_username="cloud-a", cloud_mqtt_password="pw-a"
    )
    assert s.mqtt_login == ("cloud-a", "pw-a")


def test_without_any_credential_the_cloud_connects_anonymously() -> None:
    assert settings(mqtt_url="mqtt://127.0.0.1:1883").mqtt_login == (None, None)


def test_a_url_login_is_used_when_no_account_password_is_set() -> None:
    s = settings(mqtt_url="mqtt://someone:p%40ss@127.0.0.1:1883")
    assert s.mqtt_login == ("someone", "p@ss")


def test_a_url_login_equal_to_the_account_is_accepted() -> None:
    s = settings(mqtt_url="mqtt://ruang-cloud:p%40ss@127.0.0.1:1883", cloud_mqtt_password="p@ss")
    assert s.mqtt_login == ("ruang-cloud", "p@ss")


@pytest.mark.parametrize(
    "url",
    [
        "mqtt://ruang-cloud:other-password@127.0.0.1:1883",  # same user, another password
        "mqtt://someone-else:the-password@127.0.0.1:1883",  # another user
    ],
)
def test_a_url_login_differing_from_the_account_refuses_to_load(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(mqtt_url=url, cloud_mqtt_password="the-password")
    text = str(caught.value)
    assert "RUANG_CLOUD_MQTT_PASSWORD" in text and "RUANG_MQTT_URL" in text
    # The error names the settings, not the secrets.
    assert "the-password" not in text and "other-password" not in text


def test_mqtts_urls_mean_tls_on_8883_with_the_login_percent_decoded() -> None:
    broker = settings(mqtt_url="mqtts://cloud%2Fa:p%3Ass@broker.example").mqtt_broker
    assert (broker.host, broker.port, broker.tls) == ("broker.example", 8883, True)
    assert (broker.username, broker.password) == ("cloud/a", "p:ss")


def test_a_malformed_broker_url_refuses_to_load() -> None:
    with pytest.raises(ValidationError, match="mqtt:// or mqtts://"):
        settings(mqtt_url="http://127.0.0.1:1883")
