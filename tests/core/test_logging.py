"""Log formats: JSON lines in production (and tests), one readable line per record in
development; mails never in the log stream (core/mail_backends.py)."""

import json
import logging

from django.core import mail

from core.logging import JsonFormatter, TextFormatter, formatter_for


def _record(message="GET /x 200", **extra):
    record = logging.LogRecord("xenx.access", logging.INFO, "", 0, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_the_format_follows_the_settings_module():
    assert isinstance(formatter_for("xenx.settings.development"), TextFormatter)
    assert isinstance(formatter_for(""), TextFormatter)  # manage.py's default
    assert isinstance(formatter_for("xenx.settings.production"), JsonFormatter)
    assert isinstance(formatter_for("xenx.settings.test"), JsonFormatter)


def test_a_readable_line_holds_the_fields_and_escapes_control_characters():
    line = TextFormatter().format(
        _record("request\nforged", request_id="abc", status=200, user_id=None)
    )
    assert "\n" not in line
    assert " INFO    xenx.access request\\x0aforged request_id=abc status=200" in line
    assert "user_id" not in line  # unset fields left out


def test_a_traceback_follows_its_line_indented():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record("failed")
        record.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(record).splitlines()
    assert first.endswith("xenx.access failed")
    assert rest and all(line.startswith("    ") for line in rest)


def test_production_lines_are_json():
    assert json.loads(JsonFormatter().format(_record(status=200)))["status"] == 200


def test_the_default_mail_backend_logs_one_line_and_keeps_the_body_in_a_file(
    settings, tmp_path, caplog
):
    settings.EMAIL_BACKEND = "core.mail_backends.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    with caplog.at_level(logging.INFO, logger="xenx.email"):
        mail.send_mail("Reset your password", "secret link /r/xyz", None, ["a@x.io"])
    [record] = caplog.records
    assert record.getMessage().startswith("mail to a@x.io: Reset your password (in ")
    assert "xyz" not in caplog.text
    [saved] = tmp_path.iterdir()
    assert "secret link /r/xyz" in saved.read_text()
