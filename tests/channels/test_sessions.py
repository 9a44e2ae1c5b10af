"""Signed socket.io session ids: only ids this server issued verify."""

from __future__ import annotations

import pytest

from bot.assistant.channels.sessions import SessionTokens, is_session_shaped

TOKENS = SessionTokens("secret-one")


def test_an_issued_id_verifies_and_has_the_reserved_shape():
    token = TOKENS.issue()
    assert TOKENS.verify(token)
    assert is_session_shaped(token)


def test_every_issued_id_is_new():
    assert len({TOKENS.issue() for _ in range(200)}) == 200


def test_an_id_signed_with_another_secret_is_refused():
    assert not TOKENS.verify(SessionTokens("secret-two").issue())


def test_a_tampered_nonce_or_signature_is_refused():
    nonce, signature = TOKENS.issue().split(".")
    flipped = "A" if nonce[0] != "A" else "B"
    assert not TOKENS.verify(f"{flipped}{nonce[1:]}.{signature}")
    assert not TOKENS.verify(f"{nonce}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}")
    assert not TOKENS.verify(f"{nonce}.{TOKENS.issue().split('.')[1]}")


@pytest.mark.parametrize(
    "claimed",
    [None, "", "12345678", "0" * 32, "a" * 45, "a" * 22 + "." + "b" * 22, 42, {"session_id": "x"}, ["x"], "x" * 10_000],
)
def test_guessed_or_malformed_ids_are_refused(claimed):
    assert not TOKENS.verify(claimed)


def test_the_shape_is_all_a_rest_sender_must_avoid():
    assert is_session_shaped("a" * 22 + "." + "b" * 22)
    assert not is_session_shaped("maria.lopez@example.org")
    assert not is_session_shaped("e2e-0123456789ab")


def test_an_empty_secret_is_refused():
    with pytest.raises(ValueError):
        SessionTokens("")
