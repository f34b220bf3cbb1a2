"""The system check that finds PITTGOOGLE_AS_USER in settings.py, where it would reach the web server."""

from __future__ import annotations

from tom_pittgoogle.checks import check_as_user_not_in_settings


def test_as_user_in_settings_is_warned_of(settings, monkeypatch):
    monkeypatch.delenv("PITTGOOGLE_AS_USER", raising=False)
    settings.PITTGOOGLE_AS_USER = "alice"
    assert [warning.id for warning in check_as_user_not_in_settings()] == ["tom_pittgoogle.W001"]


def test_as_user_in_a_commands_environment_is_not_warned_of(settings, monkeypatch):
    # The environment is where it belongs (one command's); only settings.py reaches every web request.
    monkeypatch.setenv("PITTGOOGLE_AS_USER", "alice")
    if hasattr(settings, "PITTGOOGLE_AS_USER"):
        del settings.PITTGOOGLE_AS_USER
    assert check_as_user_not_in_settings() == []
