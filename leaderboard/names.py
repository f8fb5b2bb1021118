"""Every string the leaderboard shows, checked: no look-alikes, no invisible or reordering characters.

Why: the table is read by people, and two strings that *look* the same must
*be* the same. Attackers used zero-width spaces, right-to-left overrides,
Cyrillic homoglyphs, NUL and ANSI escapes to make three variants that all read
``eps0.1-b1.5-s0`` and a submitter called "hf-unlearn maintainers ✔ verified".

The rules, in order:

* text is NFKC-normalised (full-width letters, ligatures and the like fold to
  their plain forms) and stripped;
* no character of Unicode category Cc (control: NUL, ESC, newlines), Cf
  (format: zero-width, bidi overrides, BOM), Co (private use), Cs
  (surrogates), Cn (unassigned), Zl / Zp (U+2028 / U+2029), and no space
  other than U+0020;
* *names* (submitter, method names, model and dataset ids, variant names) use a
  confusable-safe ASCII alphabet: letters, digits, ``- _ . /`` (and ``@`` and
  single spaces for the submitter name);
* reserved names ("maintainers", "verified", "official", "hf-unlearn", the
  reference method names, ...) are refused whatever their case, punctuation or
  look-alike letters (compared by ``skeleton``) in *free-text* names: a name
  typed into a form or passed with ``--submitter``, and a display name;
* a *Hub account* name (the Space's OAuth login, resolved by the Hub, not typed
  by the submitter) is an identity, not a claim: it is checked for the Hub's
  characters only (``check_account``), so real logins such as
  ``anonymous-dev`` or ``admin-lab`` can submit. It is shown as ``@name``
  linked to the account, and a leading ``@`` is reserved for accounts: a
  free-text name cannot start with one, so no typed name reads as an account.

``skeleton`` is also the key of the per-account rate limit, so "Eve", "Eve."
and a Cyrillic "Evе" count as one submitter.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Unicode categories refused anywhere in shown text (see the module docstring).
BAD_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})

SUBMITTER_RE = re.compile(r"^[A-Za-z0-9@._/-]+(?: [A-Za-z0-9@._/-]+)*$")
# ORG/NAME as on the Hub: each part starts with a letter or digit; no "..", no "--" (the Hub's own rules).
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
VARIANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LOCAL_PATH_RE = re.compile(r"^[A-Za-z0-9._/-]{1,300}$")
# A Hub user name as the Hub issues them (letters, digits, '-', '_', '.'; starts with a letter or digit).
ACCOUNT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
METHOD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# Look-alike letters folded to the ASCII letter they imitate (Cyrillic, Greek, a few symbols).
# Names are ASCII-only anyway; the fold makes the rate-limit key and the reserved-name check robust
# if a caller compares a name that came from elsewhere (an OAuth user name, an old store).
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ᴠ": "v",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "µ": "u", "μ": "u",
    # digits and letters that read alike in many fonts
    "0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "$": "s",
}
# Whole-name reserved words (compared by skeleton) and reserved substrings (anywhere in the skeleton).
RESERVED_NAMES = ("retrain", "none", "nounlearning", "reference", "references", "admin", "administrator",
                  "system", "leaderboard", "anonymous")
RESERVED_SUBSTRINGS = ("maintainer", "verified", "official", "hfunlearn", "huggingface")


def _error(message: str) -> Exception:
    # Imported lazily: submission.py imports this module.
    from leaderboard.submission import SubmissionError

    return SubmissionError(message)


def shown(value: Any, width: int = 60) -> str:
    """``repr`` shortened for an error message; ``ascii`` so invisible characters are visible as escapes."""
    text = ascii(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def bad_character(text: str, *, multiline: bool = False) -> tuple[str, str] | None:
    """The first refused character of ``text`` and its category, or None."""
    for ch in text:
        if multiline and ch in "\n\t":
            continue
        category = unicodedata.category(ch)
        if category in BAD_CATEGORIES or (category.startswith("Z") and ch != " "):
            return ch, category
    return None


def check_text(field: str, value: Any, max_chars: int, *, required: bool = True, multiline: bool = False) -> str | None:
    """Free text that will be shown (a description, a link): NFKC, stripped, printable, bounded."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise _error(f"{field} is required (1 to {max_chars} characters)")
        return None
    if not isinstance(value, str):
        raise _error(f"{field} = {shown(value)}: expected text")
    if len(value) > 4 * max_chars + 64:  # before normalising: NFKC can expand text up to 18x
        raise _error(f"{field} is {len(value)} characters long; the limit is {max_chars}")
    bad = bad_character(value, multiline=multiline)
    if bad is not None:
        ch, category = bad
        raise _error(
            f"{field} contains the character U+{ord(ch):04X} ({category}: control, format, bidi, zero-width or "
            "line-separator characters are refused); only printable characters and plain spaces are accepted"
        )
    value = unicodedata.normalize("NFKC", value).strip()
    if len(value) > max_chars:
        raise _error(f"{field} is {len(value)} characters long; the limit is {max_chars}")
    bad = bad_character(value, multiline=multiline)  # NFKC may create some (e.g. from compatibility forms)
    if bad is not None:
        raise _error(f"{field} contains the character U+{ord(bad[0]):04X} ({bad[1]}) after NFKC normalisation")
    return value


def skeleton(text: str) -> str:
    """A comparison key that ignores case, punctuation, spacing, invisible characters and look-alikes.

    ``skeleton("Eve.") == skeleton("evе") == skeleton("E v e") == "eve"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")
    out = []
    for ch in text:
        ch = _CONFUSABLES.get(ch, ch)
        if ch.isascii() and ch.isalnum():
            out.append(_CONFUSABLES.get(ch, ch))
    joined = "".join(out).replace("rn", "m").replace("vv", "w")
    return joined


def is_reserved(name: str) -> str | None:
    """The reserved word ``name`` imitates (as a whole, as one of its words, or anywhere for the
    ``RESERVED_SUBSTRINGS``), or None."""
    key = skeleton(name)
    tokens = {skeleton(t) for t in re.split(r"[^0-9A-Za-z\u0080-\U0010ffff]+|_", name) if t} | {key}
    for word in RESERVED_NAMES:
        if skeleton(word) in tokens:
            return word
    for word in RESERVED_SUBSTRINGS:
        if skeleton(word) in key:
            return word
    return None


def check_submitter(value: Any, max_chars: int = 80, *, field: str = "submitter name") -> str:
    """A free-text name (submitter or display name): ASCII letters, digits, ``@ . _ / -`` and single spaces;
    not starting with ``@`` (the mark of a Hub account); not a reserved name."""
    name = check_text(field, value, max_chars)
    assert name is not None
    if not SUBMITTER_RE.match(name):
        raise _error(
            f"{field} = {shown(name)}: use ASCII letters, digits, '@', '.', '_', '/', '-' and single spaces "
            "(no look-alike letters from other scripts, no markup)"
        )
    if name.startswith("@"):
        raise _error(f"{field} = {shown(name)}: a leading '@' marks a signed-in Hub account on the board; "
                     "write the name without it")
    reserved = is_reserved(name)
    if reserved:
        raise _error(f"{field} = {shown(name)} imitates the reserved name {reserved!r}; choose another name")
    return name


def check_account(value: Any) -> str:
    """A Hub account name the caller has verified (the Space's OAuth login or a token's ``whoami``).

    Characters only: the Hub decides who owns a name, so a real login that happens to contain a reserved
    word ("anonymous-dev", "admin-lab") is still its owner's identity. It is shown as ``@name``, which no
    free-text name can imitate (``check_submitter`` refuses a leading ``@``).
    """
    if not isinstance(value, str) or not ACCOUNT_RE.match(value):
        raise _error(f"Hub account name = {shown(value)}: expected letters, digits, '-', '_' or '.' "
                     "(as the Hub issues them)")
    return value


def hub_account(submitter: Any) -> str:
    """The Hub account name of a stored submitter, or "" when the name was typed (not verified by the Hub)."""
    if isinstance(submitter, dict) and submitter.get("account") is True and isinstance(submitter.get("name"), str):
        return submitter["name"]
    return ""


def submitter_label(submitter: Any) -> str:
    """How a stored submitter is shown: ``@account`` or the free-text name, with the display name before it
    (``"Eve Lab (@eve)"``). Only fields the store validated reach here."""
    if not isinstance(submitter, dict):
        return ""
    name = str(submitter.get("name") or "")
    ident = f"@{name}" if submitter.get("account") is True and name else name
    display_name = submitter.get("display_name")
    return f"{display_name} ({ident})" if isinstance(display_name, str) and display_name else ident


def check_method_name(field: str, value: Any, known: tuple[str, ...] = ()) -> str:
    """A new method's name: ``[a-z][a-z0-9_]{0,39}``, not reserved, not a look-alike of a known method."""
    if not isinstance(value, str) or not METHOD_NAME_RE.match(value):
        raise _error(f"{field} = {shown(value)}: expected a name matching [a-z][a-z0-9_]{{0,39}}")
    if value in known:
        raise _error(f"{field} {value!r} is already a known method; use it without declaring it")
    key = skeleton(value)
    for other in known:
        if key == skeleton(other):
            raise _error(f"{field} {value!r} reads like the known method {other!r}; choose a distinct name")
    reserved = is_reserved(value)
    if reserved:
        raise _error(f"{field} {value!r} imitates the reserved name {reserved!r}; choose another name")
    return value


def is_hub_id(value: Any) -> bool:
    """Whether ``value`` is a plain ``ORG/NAME`` Hub id (ASCII, no ``..`` or ``--``): safe to link to the Hub."""
    return isinstance(value, str) and bool(HUB_ID_RE.match(value)) and ".." not in value and "--" not in value


def check_hub_id(field: str, value: Any) -> str:
    """An ``ORG/NAME`` Hub id, ASCII, without ``..`` or ``--``."""
    if not is_hub_id(value):
        raise _error(f"{field} = {shown(value)}: expected a Hub id like 'org/name' (ASCII letters, digits, '-', '_', '.')")
    return value


def check_model_id(field: str, value: Any, *, allow_local: bool = False) -> str:
    """A model id as shown in the table: a Hub id, or (on a local store) a plain ASCII path."""
    if is_hub_id(value):
        return value
    if allow_local and isinstance(value, str) and LOCAL_PATH_RE.match(value) and not value.startswith("-"):
        return value
    accepted = "a Hub model id like 'org/name'"
    if allow_local:
        accepted += " or a plain ASCII path"
    raise _error(f"{field} = {shown(value)}: expected {accepted}")


def check_variant_name(field: str, value: Any) -> str:
    """A variant (dataset config) name: ASCII letters, digits, ``. _ -``."""
    if not isinstance(value, str) or not VARIANT_RE.match(value):
        raise _error(f"{field} = {shown(value)}: expected a variant name of ASCII letters, digits, '.', '_', '-'")
    return value
