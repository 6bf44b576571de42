"""Redaction you can measure: recall on the customer data of a labelled corpus (emails, phones of
thirteen countries, Luhn-valid cards, IBANs, account ids) and false positives on the negatives
(order numbers, amounts, dates, times, arithmetic). A case is caught when its secret is gone from
the redacted text, and a negative is a false positive when redaction changes it at all.

    python bench/redaction.py [CORPUS.csv]      (default: tests/data/redaction_corpus.csv)
"""

import csv
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.redaction import redact  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "redaction_corpus.csv"


def measure(path: Path = CORPUS) -> dict:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    caught, total, false_positive, negatives = Counter(), Counter(), Counter(), Counter()
    missed, wrong = [], []
    for row in rows:
        kind = row["category"].split("-")[0] if row["category"].startswith("phone") else row["category"]
        redacted = redact(row["text"])
        if row["category"].startswith("negative"):
            negatives[row["category"]] += 1
            if redacted != row["text"]:
                false_positive[row["category"]] += 1
                wrong.append((row["text"], redacted))
            continue
        total[kind] += 1
        if row["secret"] not in redacted:
            caught[kind] += 1
        else:
            missed.append((row["category"], row["text"], redacted))
    return {
        "caught": caught,
        "total": total,
        "false_positive": false_positive,
        "negatives": negatives,
        "missed": missed,
        "wrong": wrong,
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS
    result = measure(path)
    caught, total = result["caught"], result["total"]
    print(
        f"## Redaction on {path.name}: {sum(total.values())} cases of customer data, "
        f"{sum(result['negatives'].values())} negatives\n"
    )
    print("| kind | cases | redacted | recall |")
    print("|---|---:|---:|---:|")
    for kind in sorted(total):
        print(f"| {kind} | {total[kind]} | {caught[kind]} | {100 * caught[kind] / total[kind]:.1f}% |")
    all_caught, all_total = sum(caught.values()), sum(total.values())
    print(f"| **all** | {all_total} | {all_caught} | **{100 * all_caught / all_total:.1f}%** |\n")
    print("| negatives | cases | changed (false positives) |")
    print("|---|---:|---:|")
    for kind in sorted(result["negatives"]):
        print(f"| {kind.removeprefix('negative-')} | {result['negatives'][kind]} | {result['false_positive'][kind]} |")
    changed = sum(result["false_positive"].values())
    redacted_any = all_caught + changed
    precision = all_caught / redacted_any if redacted_any else 1.0
    print(
        f"\nPrecision {100 * precision:.1f}% · recall {100 * all_caught / all_total:.1f}% · "
        f"{changed} of {sum(result['negatives'].values())} negatives changed."
    )
    for category, text, redacted in result["missed"]:
        print(f"- missed ({category}): {text!r} → {redacted!r}")
    for text, redacted in result["wrong"]:
        print(f"- changed: {text!r} → {redacted!r}")


if __name__ == "__main__":
    main()
