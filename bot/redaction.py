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
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# International or national phone numbers: at least 7 digits with the usual separators.
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])"
    r"|(?<![\w+])\+?\d{7,15}(?![\w])"
)
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
    digits = re.sub(r"\D", "", match.group())
    if DATE.fullmatch(match.group()) or not 7 <= len(digits) <= 15:
        return match.group()
    return "[phone]"


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
    text = CARD.sub(_card, text)
    text = ACCOUNT.sub(_account, text)
    return PHONE.sub(_phone, text)
