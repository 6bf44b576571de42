"""The digest as Slack Block Kit messages: plain dicts, no SDK.

Slack's budgets are enforced here: at most 50 blocks a message and 3,000 characters a section
text; a longer digest is split across messages, each with a text fallback. Staff text (quotes,
titles, notes) is escaped for mrkdwn, so `<!channel>`, `<@U…>` or a link in a quote never pings
or links anyone in an exec channel.
"""

from collections.abc import Callable

from digests.digest import Digest, Owner, ThemeLine, people_count
from digests.render import STATUS, growth_label, sparkline

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000


def mrkdwn_escape(text: str) -> str:
    """Slack's three control characters; everything else is shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> dict:
    """A mrkdwn text object shown as written: Slack auto-links no bare URL or #channel in staff
    text (verbatim); the mentions we write ourselves, such as an owner's, still work."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _plain_owner(owner: Owner) -> str:
    return mrkdwn_escape(owner.name)


def section(text: str) -> dict:
    return {"type": "section", "text": mrkdwn(clip(text, MAX_SECTION))}


def _theme_block(line: ThemeLine, rank: int, owner: Callable[[Owner], str]) -> dict:
    who = owner(line.owner) if line.owner else "_unowned_"
    overdue = f" · *{', '.join(line.missed)}*" if line.overdue else ""
    back = " · _came back after being resolved_" if line.came_back else ""
    head = (
        f"*{rank}. {line.key} · {mrkdwn_escape(line.title)}*{back}\n"
        f"{line.this_week} this week · {line.total} in all · {people_count(line.reporters)} · "
        f"{mrkdwn_escape(growth_label(line))} · {sparkline(line.trend)}\n"
        f"Owner: {who} · Status: {STATUS.get(line.status, line.status)}{overdue}"
    )
    quotes = "".join(f"\n> “{mrkdwn_escape(' '.join(q.split()))}”" for q in line.quotes)
    room = MAX_SECTION - len(head)
    return section(head + (quotes if len(quotes) <= room else clip(quotes, room)))


def _list_blocks(title: str, lines: list[str], empty: str) -> list[dict]:
    """A titled list as as many sections as its 3,000-character budget needs."""
    lines = lines or [empty]
    blocks, current = [], f"*{title}*"
    for line in lines:
        line = clip(line, MAX_SECTION - len(title) - 10)
        if len(current) + 1 + len(line) > MAX_SECTION:
            blocks.append(section(current))
            current = f"*{title} (continued)*"
        current += "\n" + line
    blocks.append(section(current))
    return blocks


def digest_blocks(digest: Digest, owner: Callable[[Owner], str] = _plain_owner) -> list[dict]:
    """Every block of the digest in order. `owner` renders an owner (Slack: a mention)."""
    start, end = digest.start.strftime("%a %d %b"), digest.last_day.strftime("%a %d %b %Y")
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(digest.title, MAX_HEADER)}},
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    f"{start} – {end} ({digest.timezone}): {digest.submissions} submissions "
                    f"({digest.previous_submissions} the week before), {digest.active_themes} active themes"
                )
            ],
        },
        section(" ".join(mrkdwn_escape(sentence) for sentence in digest.brief)),
        section("*Top themes*" if digest.top else "*Top themes*\nNothing was logged this week."),
    ]
    blocks += [_theme_block(line, rank, owner) for rank, line in enumerate(digest.top, 1)]
    blocks += [section(more) for more in [digest.more(digest.top, digest.active_themes)] if more]
    blocks.append({"type": "divider"})

    def title_of(line) -> str:
        return f"{line.key} {mrkdwn_escape(line.title)}"

    def standing(line) -> str:  # every theme in the digest says who owns it and where it stands
        return f"{owner(line.owner) if line.owner else '_unowned_'} · {STATUS.get(line.status, line.status)}"

    blocks += _list_blocks(
        "Growing",
        [f"• {title_of(t)}: {mrkdwn_escape(growth_label(t))} · {standing(t)}" for t in digest.growing]
        + [f"• {more}" for more in [digest.more(digest.growing, digest.growing_total)] if more],
        "• No sharp growth.",
    )
    blocks += _list_blocks(
        "Needs an owner",
        [f"• {title_of(t)}: {t.this_week} this week, {t.total} in all · {standing(t)}" for t in digest.unowned]
        + [f"• {more}" for more in [digest.more(digest.unowned, digest.unowned_total)] if more],
        "• Every active theme has an owner.",
    )
    blocks += _list_blocks(
        "Overdue",
        [f"• {title_of(t)}: {', '.join(t.missed)} · {standing(t)}" for t in digest.overdue],
        "• Nothing overdue.",
    )
    blocks += _list_blocks(
        "Resolved this week",
        [
            f"• {r.key} {mrkdwn_escape(r.title)} ({STATUS.get(r.status, r.status)}, "
            f"{owner(r.owner) if r.owner else 'no owner'}, {people_count(r.reporters)} told): {mrkdwn_escape(r.note)}"
            for r in digest.resolved
        ],
        "• Nothing was closed this week.",
    )
    if digest.areas:
        blocks.append(section("*By area:* " + " · ".join(f"#{mrkdwn_escape(t)} {n}" for t, n in digest.areas)))
    blocks += _list_blocks(
        "Every submission",
        [mrkdwn_escape(f"{digest.accounted} {digest.quotes_rule}")]
        + [f"• {mrkdwn_escape(c)}" for c in digest.curation],
        "",
    )
    return blocks


def _block_text(block: dict) -> str:
    if "text" in block:
        return block["text"]["text"]
    if block["type"] == "context":
        return " ".join(element["text"] for element in block["elements"])
    return ""


def split_messages(blocks: list[dict], title: str) -> list[dict]:
    """Blocks in messages of at most 50, each {"text": fallback, "blocks": [...]}."""
    chunks = [blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)] or [[]]
    messages = []
    for number, chunk in enumerate(chunks, 1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        body = "\n".join(filter(None, (_block_text(b) for b in chunk if b["type"] != "header")))
        messages.append({"text": clip(f"{mrkdwn_escape(title)}{part}\n{body}", MAX_FALLBACK), "blocks": chunk})
    return messages


def render_slack(digest: Digest, owner: Callable[[Owner], str] = _plain_owner) -> list[dict]:
    """The digest as one or more Slack messages (chat.postMessage arguments without the channel)."""
    return split_messages(digest_blocks(digest, owner), digest.title)
