"""The Rasa server's options: the HTTP API off by default, and then JWT only, never a URL token."""

from __future__ import annotations

import time

import jwt

from bot.assistant.servers.rasa import api_options
from bot.assistant.servers.rasa_api import JWT_METHOD, api_token, auth_header
from bot.core import secrets
from bot.core.settings import Settings


def test_the_http_api_is_off_by_default(tmp_path):
    secrets.ensure(tmp_path)
    settings = Settings.from_env({"VAR_DIR": str(tmp_path)})

    assert api_options(settings) == {"enable_api": False}


def test_when_enabled_the_api_takes_a_jwt_and_no_url_token(tmp_path):
    secrets.ensure(tmp_path)
    settings = Settings.from_env({"VAR_DIR": str(tmp_path), "RASA_API": "true", "RASA_JWT_SECRET": "j" * 40})

    assert api_options(settings) == {
        "enable_api": True,
        "auth_token": None,
        "jwt_secret": "j" * 40,
        "jwt_method": "HS256",
    }


def test_the_api_token_is_an_admin_jwt_that_expires(tmp_path):
    settings = Settings(var_dir=tmp_path, rasa_jwt_secret="k" * 40)

    payload = jwt.decode(api_token(settings, lifetime=60), "k" * 40, algorithms=[JWT_METHOD])

    assert payload["user"] == {"username": "assistant", "role": "admin"}
    assert time.time() < payload["exp"] <= time.time() + 61


def test_the_token_travels_in_the_authorization_header(tmp_path):
    settings = Settings(var_dir=tmp_path, rasa_jwt_secret="k" * 40)

    [(name, value)] = auth_header(settings).items()

    assert name == "Authorization" and value.startswith("Bearer ")
