"""Customer data stays out: emails, card numbers, phone numbers and account ids are replaced
before a submission is stored and before any model sees it."""

import re

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


def redact(text: str) -> str:
    text = EMAIL.sub("[email]", text)
    text = CARD.sub(_card, text)
    text = ACCOUNT.sub(_account, text)
    return PHONE.sub(_phone, text)
