"""The normalized form of usernames and emails and the characters they may not hold (pure
logic; the HTTP behaviour is in tests/security/test_lookalike_names.py)."""

import unicodedata

import pytest

from expertconnect import names


@pytest.mark.parametrize(
    "typed, key",
    [
        ("JohnDoe", "johndoe"),
        ("\u212aate", "kate"),  # Kelvin sign
        ("\uff2a\uff4f\uff48\uff4e", "john"),  # fullwidth
        ("\ufb01ona", "fiona"),  # ligature
        ("STRASSE", "strasse"),
        ("stra\u00dfe", "strasse"),  # case folding, not lower(): sharp s is "ss"
        ("\u0130van", "i\u0307van"),  # a dotted capital I stays apart from "ivan"
        ("\u03a3\u039f\u03a3", "\u03c3\u03bf\u03c3"),  # final sigma folds like sigma
    ],
)
def test_lookup_key_is_nfkc_and_case_folded(typed, key):
    assert names.lookup_key(typed) == key
    assert names.lookup_key(key) == key  # stable: a key is its own key


def test_display_form_keeps_the_case_the_user_typed():
    assert names.display_form("\uff2a\uff4f\uff48\uff4e") == "John"


def test_the_key_is_short_enough_for_an_index_entry():
    """lookup_key's docstring promises at most 5 UTF-8 bytes per character of an NFKC text:
    254 characters stay far below a btree entry's ~2700 bytes."""
    worst = max(
        len(names.lookup_key(ch).encode())
        for ch in map(chr, range(0x110000))
        if not 0xD800 <= ord(ch) < 0xE000 and unicodedata.normalize("NFKC", ch) == ch
    )
    assert worst <= 5


@pytest.mark.parametrize(
    "ch", ["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2067", "\x07", "\ue000", "\u0378"]
)
def test_invisible_controls_private_use_and_unassigned_are_found(ch):
    assert names.invisible_character(f"ab{ch}cd") == ch


def test_ordinary_names_hold_no_invisible_character():
    for text in ("john.doe+tag@example.com", "M\u00fcller", "\u5c71\u7530", "o'brien"):
        assert names.invisible_character(text) is None


@pytest.mark.parametrize(
    "email, mixed",
    [
        ("john@example.com", False),
        ("m\u00fcller@b\u00fccher.de", False),
        ("\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.com", False),
        ("\u5c71\u7530\u305f\u308d\u3046@example.jp", False),  # Han and Hiragana: one name
        ("j\u043ehn@example.com", True),
        ("john@\u0435xample.com", True),
        ("\u03b1lpha@example.com", True),  # a Greek alpha among Latin letters
    ],
)
def test_email_mixes_scripts_per_local_part_and_per_domain_label(email, mixed):
    assert names.email_mixes_scripts(email) is mixed
