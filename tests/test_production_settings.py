"""The settings a production deployment uses pass Django's deployment checks, and pages carry a CSP."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def _production_environment(var_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Start from a clean slate: nothing the test run or the developer's shell set may leak in.
        if not key.startswith(("PATRONAGE_", "DJANGO_", "EMAIL_", "SESSION_", "LOGIN_"))
        and key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "REDIS_URL"}
    }
    env.update(
        {
            "DEBUG": "false",
            "PATRONAGE_HTTPS": "true",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "example.org",
            "PATRONAGE_VAR_DIR": str(var_dir),
        }
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed command, no user input
        [sys.executable, str(ROOT / "manage.py"), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output
    assert "ERRORS" not in output


def test_production_settings_turn_on_secure_cookies_and_hsts(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS >= 31536000)"
    )
    env = _production_environment(tmp_path) | {"DJANGO_SETTINGS_MODULE": "patronage.settings"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    result = subprocess.run(  # noqa: S603 - fixed command, no user input
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "True", "True"]


@pytest.mark.django_db
def test_responses_carry_a_content_security_policy(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    policy = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in policy
    assert "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
