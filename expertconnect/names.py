"""Usernames and emails as people type them and as they are compared: the one normalized form
(Unicode NFKC, then case folding) that uniqueness, login and the login lockout all use, and
the characters a name may not hold (invisible ones, direction controls, mixed scripts)."""

from __future__ import annotations

import unicodedata

# Code points that render as nothing but are not format characters (Cf): the combining
# grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation
# selectors. With Cf they make up Unicode's Default_Ignorable_Code_Point set.
_INVISIBLE_OUTSIDE_CF = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
# Format (zero-width space/joiner/non-joiner, word joiner, BOM, bidi marks, overrides and
# isolates, soft hyphen, tags), control, surrogate, private-use and unassigned code points.
_REFUSED_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn"})

# Scripts whose letters one name may mix: Japanese and Korean are written in several.
_EAST_ASIAN = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"})


def display_form(text: str) -> str:
    """What is stored and shown: the text in NFKC, so that fullwidth letters, ligatures
    ("ﬁ"), the Kelvin sign and other compatibility forms become the plain letters they
    stand for."""
    return unicodedata.normalize("NFKC", text)


def lookup_key(text: str) -> str:
    """What is compared: NFKC, case folded (str.casefold, as Django folds usernames), NFKC
    again since folding can leave a string unnormalized. Equal keys are one account. At most
    5 UTF-8 bytes per character of the display form, far below an index entry's limit."""
    return unicodedata.normalize("NFKC", display_form(text).casefold())


def invisible_character(text: str) -> str | None:
    """The first character that is invisible, controls text direction or is no character
    at all (unassigned, private use), or None."""
    for ch in text:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES or ord(ch) in _INVISIBLE_OUTSIDE_CF:
            return ch
    return None


def _script(ch: str) -> str | None:
    """The script of a letter, from its Unicode name ("CYRILLIC SMALL LETTER ER" ->
    "CYRILLIC"); None for what scripts share (digits, punctuation, marks, modifier letters)."""
    if unicodedata.category(ch) not in ("Lu", "Ll", "Lt", "Lo"):
        return None
    script = unicodedata.name(ch, "").split(" ", 1)[0]
    return "EAST_ASIAN" if script in _EAST_ASIAN else script


def mixes_scripts(text: str) -> bool:
    """True when `text` has letters of more than one script: "paypal" with its first "a" in
    Cyrillic (U+0430) looks like the Latin word but is not NFKC-equal to it."""
    scripts = {s for s in map(_script, text) if s is not None}
    return len(scripts) > 1


def email_mixes_scripts(email: str) -> bool:
    """Whether the local part, or any one label of the domain, mixes scripts. Each may be in
    its own script (an all-Cyrillic local part at a ".com" domain is fine; "john" with a
    Cyrillic "o", U+043E, is not). Expects one "@", as the email format check guarantees."""
    local, _, domain = email.rpartition("@")
    return mixes_scripts(local) or any(mixes_scripts(label) for label in domain.split("."))
