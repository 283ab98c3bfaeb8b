"""Names that look alike, over real HTTP: usernames and emails are compared in one normalized
form (NFKC + case folding), so a compatibility spelling of a name is that name (a duplicate
at registration, the same lockout at login) and a different letter that PostgreSQL's lower()
used to fold onto it (a dotted capital I) is another name; invisible and direction-control
characters and mixed-script emails are refused."""

from __future__ import annotations

import uuid

import pytest
from helpers import PASSWORD, api_request

DUPLICATE_EMAIL = {"errors": {"email": ["A user with that email already exists."]}}
DUPLICATE_USERNAME = {"errors": {"username": ["A user with that username already exists."]}}
MIXED_SCRIPTS = (
    "Letters of different scripts (such as Latin and Cyrillic) cannot be mixed before the @ "
    "or within one part of the domain."
)
# Zero-width space, non-joiner and joiner, word joiner, BOM, left-to-right and right-to-left
# marks, right-to-left override, left-to-right isolate, pop directional isolate, Arabic letter
# mark, soft hyphen, Hangul filler, variation selector 16.
INVISIBLE = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u200e",
    "\u200f",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u061c",
    "\u00ad",
    "\u3164",
    "\ufe0f",
]
# Printable ASCII to its fullwidth form: "a" to U+FF41, "@" to U+FF20.
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


def _fullwidth(text: str) -> str:
    return "".join(FULLWIDTH.get(ch, ch) for ch in text)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def _register(api, **fields):
    tag = _tag()
    body = {
        "username": f"name_{tag}",
        "email": f"name_{tag}@example.com",
        "password": PASSWORD,
        **fields,
    }
    return api("POST", "/api/users/register/", json=body)


def _login(url: str, username: str, password: str = PASSWORD, address: str = "198.51.100.1"):
    return api_request(
        url,
        "POST",
        "/api/users/login/",
        headers={"X-Forwarded-For": address},
        json={"username": username, "password": password},
    )


def test_a_dotted_capital_i_is_not_an_i_at_login(server, make_user):
    ivan = make_user(username=f"ivan_{_tag()}")
    # PostgreSQL's lower() folded U+0130 onto "i": this logged in to ivan's account.
    for spelling in ("\u0130" + ivan.username[1:], "\u0130" + ivan.username[1:].upper()):
        r = _login(server.url, spelling)
        assert r.status == 401 and r.json == {"error": "Invalid username or password"}
    assert _login(server.url, ivan.username.upper()).json["id"] == ivan.id


def test_a_kelvin_sign_is_the_letter_k_one_name_one_account(server, api, make_user):
    kate = make_user(username=f"kate_{_tag()}")
    kelvin = "\u212a" + kate.username[1:]
    # NFKC makes the Kelvin sign a K: the same name, so it cannot be a second account...
    assert _register(api, username=kelvin).json == DUPLICATE_USERNAME
    assert _register(api, username=_fullwidth(kate.username)).json == DUPLICATE_USERNAME
    # ...and it reaches kate's own account only, as "KATE" does.
    assert _login(server.url, kelvin).json["id"] == kate.id


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(lambda e: e.replace("fi", "\ufb01"), id="ligature"),
        pytest.param(_fullwidth, id="fullwidth"),
        pytest.param(lambda e: _fullwidth(e).upper(), id="fullwidth-capitals"),
        pytest.param(lambda e: e.replace("@", "\uff20"), id="fullwidth-at"),
        pytest.param(lambda e: e.replace(".com", "\u2024com"), id="one-dot-leader"),
        pytest.param(
            lambda e: "".join(chr(0x1D41A + ord(c) - 0x61) if "a" <= c <= "z" else c for c in e),
            id="mathematical-bold",
        ),
        pytest.param(lambda e: e.replace("i", "\u2170"), id="roman-numeral-one"),
    ],
)
def test_a_compatibility_look_alike_of_an_email_is_a_duplicate(api, make_user, spell):
    owner = make_user(email=f"fiona_{_tag()}@example.com")
    look_alike = spell(owner.email)
    assert look_alike != owner.email
    r = _register(api, email=look_alike)
    assert r.status == 400 and r.json == DUPLICATE_EMAIL


def test_names_are_stored_in_their_nfkc_form(api):
    tag = _tag()
    r = _register(api, username=_fullwidth(f"Joe_{tag}"), email=f"\ufb01_{tag}@Example.com")
    assert r.status == 201, r.text
    assert r.json["username"] == f"Joe_{tag}"  # the case the user typed, for display
    assert r.json["email"] == f"fi_{tag}@Example.com"


@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_invisible_and_direction_control_characters_are_refused(api, ch):
    tag = _tag()
    message = (
        f"Invisible, control and text-direction characters are not allowed (found U+{ord(ch):04X})."
    )
    r = _register(api, username=f"ab{ch}cd_{tag}")
    assert r.status == 400 and r.json == {"errors": {"username": [message]}}
    r = _register(api, email=f"ab{ch}cd_{tag}@example.com")
    assert r.status == 400 and r.json == {"errors": {"email": [message]}}
    r = _register(api, email=f"abcd_{tag}@exa{ch}mple.com")
    assert r.status == 400 and r.json == {"errors": {"email": [message]}}


def test_a_right_to_left_override_cannot_disguise_an_existing_email(api, make_user):
    owner = make_user(email=f"moc.elpmaxe_{_tag()}@example.com")
    r = _register(api, email="\u202e" + owner.email)
    assert r.status == 400 and list(r.json["errors"]) == ["email"]


def test_emails_that_mix_scripts_are_refused_single_script_ones_are_not(api):
    digits = str(uuid.uuid4().int)[:10]
    cyrillic_o, cyrillic_e = "\u043e", "\u0435"
    for email in (
        f"j{cyrillic_o}hn{digits}@example.com",  # Latin and Cyrillic before the @
        f"john{digits}@{cyrillic_e}xample.com",  # and in one label of the domain
    ):
        r = _register(api, email=email)
        assert r.status == 400 and r.json == {"errors": {"email": [MIXED_SCRIPTS]}}
    # One script per part is fine: an all-Cyrillic local part at a Latin domain.
    assert _register(api, email=f"\u0438\u0432\u0430\u043d{digits}@example.com").status == 201


def test_failures_with_any_spelling_of_a_username_share_one_lockout(start_server, make_user):
    own = start_server(RATE_LIMITS_AUTH_PER_MINUTE="3", SERVER_TRUSTED_PROXIES="127.0.0.1")
    kate = make_user(username=f"kate_{_tag()}")
    spellings = [kate.username.upper(), "\u212a" + kate.username[1:], _fullwidth(kate.username)]
    for i, spelling in enumerate(spellings):
        r = _login(own.url, spelling, "wrong-password", f"203.0.113.{i}")
        assert r.status == 401
    # Three failures of one name: locked out, even with the right password and a fresh address.
    r = _login(own.url, kate.username, PASSWORD, "203.0.113.99")
    assert r.status == 429 and r.headers["Retry-After"]
