"""What a submission is about: policy friction, a customer pain point, or other; and its #tags."""

import re

TAG = re.compile(r"(?<![\w&#])#([A-Za-z][\w-]{1,39})")

# Word starts that point at our own rules, tools and processes getting in the way.
POLICY_CUES = (
    "policy",
    "policies",
    "approv",
    "sup",
    "supervisor",
    "manager",
    "tl",
    "rule",
    "process",
    "procedure",
    "allowed",
    "waive",
    "waiver",
    "require",
    "mandatory",
    "script",
    "disclaimer",
    "macro",
    "ticket",
    "tix",
    "escalat",
    "form",
    "sign-off",
    "sign off",
    "crm",
    "system",
    "tool",
    "workaround",
    "permission",
    "authori",
    "compliance",
    "sop",
    "queue",
    "internal",
    "window",
    "callback",
    "by design",
    "only",
    "limit",
    "category",
    "fee",
    "can we",
    "why does",
    "why do we",
    "should",
    "pls consider",
    "we have to",
    "we must",
    "we can't",
    "we cannot",
    "have to",
    "need a",
    "needs a",
    "button",
    "sync",
    "verification",
    "store credit",
)
# Word starts that point at what customers go through.
CUSTOMER_CUES = (
    "customer",
    "cx",
    "caller",
    "client",
    "complain",
    "frustrat",
    "angry",
    "upset",
    "furious",
    "confus",
    "crash",
    "broken",
    "doesn't work",
    "does not work",
    "error",
    "hold time",
    "on hold",
    "checkout",
    "app",
    "website",
    "delivery",
    "package",
    "charged",
    "login",
    "she",
    "he",
    "her",
    "his",
    "they",
    "dispute",
)


def tags_of(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for tag in TAG.findall(text):
        seen.setdefault(tag.lower(), None)
    return list(seen)


def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(" + "|".join(re.escape(cue) for cue in sorted(cues, key=len, reverse=True)) + ")")


POLICY_PATTERN, CUSTOMER_PATTERN = _cue_pattern(POLICY_CUES), _cue_pattern(CUSTOMER_CUES)


def _score(text: str, pattern: re.Pattern) -> int:
    """How many different cues occur in the text."""
    return len(set(pattern.findall(text)))


POLICY_WEIGHT = 1.5  # a rule in the way is the point of the message even when a customer is in it


def infer_kind(text: str) -> str:
    """`policy` when our own rules dominate, `customer` when the customer's experience does."""
    lowered = text.lower()
    policy, customer = _score(lowered, POLICY_PATTERN), _score(lowered, CUSTOMER_PATTERN)
    if policy == customer == 0:
        return "other"
    return "policy" if policy * POLICY_WEIGHT >= customer else "customer"
