"""Customer data stays out: emails, card numbers, phone numbers and account ids are replaced
before a submission is stored and before any model sees it. Text is cleaned first (clean_text),
so whatever arrives can be stored on SQLite and PostgreSQL alike."""

import re

# C0 and C1 control characters and DEL (Unicode category Cc), but for tab and newline.
# PostgreSQL refuses NUL in text; the others are invisible, confuse terminals and exports.
SEPARATORS = re.compile("[\x0b\x0c\x1c-\x1f\x85]")  # control characters that separate words
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SURROGATE = re.compile(r"[\ud800-\udfff]")

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13 to 19 digits, optionally grouped by spaces or dashes; redacted only when Luhn-valid.
CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")  # a token of its own, not inside an id
# A phone number is told by its shape, not by being a run of digits: international (+ and a
# country code), national with its trunk 0 (07700 900123, 06 12 34 56 78, (02) 9876 5432), or
# the North American 3-3-4 (415-555-0134, (212) 555-0199, 1-800-555-0199); separators are
# spaces, dots, dashes and brackets. A bare run of digits is a phone only right after a word
# for calling ("call 4155550134"); otherwise it is an order number, an amount, a square root.
PHONE = re.compile(
    r"(?<![\w+/.,:#-])(?:"
    r"\+\d{1,3}(?:[ .\-]?\(?\d{1,5}+\)?)+"  # possessive: a long run of digits is cut into groups one way
    r"|\(?0\d{1,4}\)?(?:[ .\-]?\d{2,5}){1,4}"
    r"|(?:1[ .\-])?\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}"
    r")(?![\w/:,]|[.\-]\d)"
)
CALLING = re.compile(
    r"(?<!\[)\b(?:call|calls|called|calling|phone|phoned|tel|telephone|mobile|cell|ring|rang|sms|text|whatsapp)"
    r"\b[^\d\n+]{0,20}?(\+?\d[\d .\-()]{5,18}\d)(?![\w/:,]|[.\-]\d)",
    re.IGNORECASE,
)
# Words after which a number is an identifier, never a phone: "ticket 0123456789".
IDENTIFIER = re.compile(
    r"(?:order|ticket|case|ref|reference|invoice|inv|sku|parcel|tracking|batch|model|store|id|no|number|#)\W{0,3}$",
    re.IGNORECASE,
)
# An IBAN: a country, two check digits and up to 30 letters or digits, in groups of four or not;
# redacted only when its mod-97 check holds.
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
ACCOUNT = re.compile(
    r"\b(?:account|acct|a/c|customer id|member id|cust id)\s*(?:no\.?|number|#|id)?\s*[:#]?\s*"
    r"([A-Z0-9][A-Z0-9-]{4,})\b",
    re.IGNORECASE,
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[card]" if luhn_valid(digits) else match.group()


DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")


def _phone(match: re.Match) -> str:
    found = match.group()
    digits = re.sub(r"\D", "", found)
    international = found.startswith("+")
    separated = bool(re.search(r"[ .\-()]", found.strip()))
    if DATE.fullmatch(found) or not (8 if international else 9) <= len(digits) <= 15:
        return found
    if not international and IDENTIFIER.search(match.string[: match.start()]):
        return found  # "ticket 0123 4567 89": an identifier
    if not international and not separated and not 10 <= len(digits) <= 12:
        return found  # a bare 0… run is a phone only at a national number's length
    return "[phone]"


def _calling(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(1))
    if (
        IDENTIFIER.search(match.string[: match.start(1)])
        or not 7 <= len(digits) <= 15
        or DATE.fullmatch(match.group(1))
    ):
        return match.group()
    return match.group()[: match.start(1) - match.start()] + "[phone]"


def iban_valid(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ibans(text: str) -> str:
    """Each valid IBAN as [iban]. A candidate may run on into what follows it (a number, the next
    IBAN): the longest valid prefix, group by group, is the IBAN, and the search goes on right
    after it."""
    out, position = [], 0
    while (match := IBAN.search(text, position)) is not None:
        groups = match.group().split(" ")
        for end in range(len(groups), 0, -1):
            prefix = " ".join(groups[:end])
            if iban_valid(prefix):
                out.append(text[position : match.start()] + "[iban]")
                position = match.start() + len(prefix)
                break
        else:
            out.append(text[position : match.start() + 1])
            position = match.start() + 1
    return "".join(out) + text[position:]


def _account(match: re.Match) -> str:
    identifier = match.group(1)
    if not any(char.isdigit() for char in identifier):
        return match.group()  # "account settings", not an id
    return match.group()[: match.start(1) - match.start()] + "[account id]"


def clean_text(text: str) -> str:
    """Text any database stores: \\r\\n and \\r become \\n, vertical tab, form feed and the like
    become a space (they separate words), other control characters but tab are removed, and
    surrogates (not encodable as UTF-8) are joined when they form a pair and replaced by U+FFFD
    when they do not. Idempotent."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL.sub("", SEPARATORS.sub(" ", text))
    if SURROGATE.search(text):
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def redact(text: str) -> str:
    text = clean_text(text)
    text = EMAIL.sub("[email]", text)
    text = _ibans(text)  # before cards: an IBAN's digits may pass Luhn
    text = CARD.sub(_card, text)
    text = ACCOUNT.sub(_account, text)
    text = CALLING.sub(_calling, text)
    return PHONE.sub(_phone, text)
