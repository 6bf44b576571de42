"""How the offline namer chooses: which words may name a theme, and which phrase names it.

The end-to-end rules (a fixed labelled sample, the hostile reporter, a lead's rename) are in
tests/test_titles.py; these pin the choices behind them on small, hand-made themes."""

import json

import numpy as np
from sqlmodel import Session

from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from digests.naming import PhraseNamer, is_content, supported_phrases
from digests.theming import REPRESENTATIVES
from storage import queries
from storage.models import Submission
from tests.conftest import ask
from tests.test_openai_models import chat_server, title_model

BILLS = [
    "my water bill is due tomorrow and i can't see the amount",
    "when is the water bill due this month",
    "customer asks when the water bill is due",
    "water bill due date is missing from the app",
]
CALLS = [
    "the app won't let me call the branch",
    "customer cannot call the branch from the app",
    "call the branch button does nothing",
]
NAMES = [
    "changing the name on an account takes a week",
    "customer wants to change the name on the account",
    "name change on a joint account is stuck",
]


def test_nouns_and_verbs_that_name_a_problem_are_content_words():
    # scikit-learn's English stop list holds them; a bank's themes need them.
    for word in ("bill", "call", "name", "amount", "interest", "system", "find", "due"):
        assert is_content(word), word
    for word in ("the", "and", "get", "take", "keep", "please", "customer"):
        assert not is_content(word), word


def test_domain_words_tell_themes_apart_in_their_titles():
    titles = [name.title.lower() for name in PhraseNamer().name([BILLS, CALLS, NAMES])]
    assert "bill" in titles[0] and "due" in titles[0]
    assert "call" in titles[1]
    assert "name" in titles[2]
    assert len(set(titles)) == 3


def test_chat_lower_case_i_reads_as_i_in_a_title():
    texts = ["how far am i from the airport", "far am i from the airport now", "so far am i from the airport"]
    [name] = PhraseNamer().name([texts])
    assert name.title == "Far am I from the airport"


def test_a_content_word_still_needs_two_reporters():
    # "system" became a content word: one reporter saying it cannot put it in a title.
    support = PhraseNamer._support(["the booking system is down again", "bookings fail all morning"])
    assert not any("system" in " ".join(p).lower() for p in supported_phrases("the booking system is down", support))


# Hand-made vectors: "card" is what the first two themes share, "declined" what the first and
# the third share; each theme is mostly about its object, as a bank's themes are.
DIRECTIONS = {"card": 0, "declined": 1, "stolen": 2, "loan": 3}


def bag_of_words(texts: list[str]) -> np.ndarray:
    vectors = np.zeros((len(texts), len(DIRECTIONS)), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            if word in DIRECTIONS:
                vectors[row, DIRECTIONS[word]] += 1.0
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


CARD_DECLINED = ["card declined", "my card declined", "card declined again", "the card declined twice"]
CARD_STOLEN = ["card stolen", "my card stolen", "card stolen again", "the card stolen twice"]
LOAN_DECLINED = ["loan declined", "my loan declined", "loan declined again", "the loan declined twice"]
GROUPS = [CARD_DECLINED, CARD_STOLEN, LOAN_DECLINED]
CENTRES = np.array([[3.0, 1.0, 0.0, 0.0], [3.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 3.0]])


def test_the_title_tells_its_theme_from_its_neighbours():
    # "Card" is the phrase closest to the first theme's centre (0.95 against 0.89 for "Card
    # declined"), but it fits the stolen-card theme as well; "Declined" fits the loan theme as
    # well. "Card declined" is the one a reader can tell from both: the domain word stays
    # because it tells this theme from another.
    unit = CENTRES / np.linalg.norm(CENTRES, axis=1, keepdims=True)
    card, card_declined = bag_of_words(["card", "card declined"])
    assert card @ unit[0] > card_declined @ unit[0]
    names = PhraseNamer(embed=bag_of_words).name(GROUPS, CENTRES)
    assert names[0].title == "Card declined"
    assert "Card" in names[0].alternatives  # for when another theme has the title
    assert "Declined" not in names[0].alternatives  # cut off from its start: "card declined"


def phrases_of(text: str, others: list[str]) -> list[str]:
    support = PhraseNamer._support([text, *others])
    return [" ".join(p) for p in supported_phrases(text, support)]


def test_a_title_keeps_the_question_words_it_hangs_on():
    # "Far am I from orlando" is not English: the phrase keeps its "how" (and "how many", "what
    # date"), which add no content word, so grounding is unchanged.
    others = ["how far is orlando from here", "how many miles am I from orlando", "what date do I get paid"]
    assert "how far am I from orlando" in phrases_of("how far am I from orlando", others)
    assert not any(p.startswith("far") for p in phrases_of("how far am I from orlando", others))
    assert "how many miles am I from orlando" in phrases_of("how many miles am I from orlando", others)
    assert "what date do I get paid" in phrases_of("tell me what date do I get paid", ["paid on what date"])
    # "what" leads only as the word right before: "what the weather" reads worse than "weather".
    assert "weather forecast" in phrases_of("what the weather forecast", ["weather forecast please"])
    assert "what the weather forecast" not in phrases_of("what the weather forecast", ["weather forecast please"])


def test_a_title_does_not_start_inside_a_run_of_content_words():
    # "Limit on my visa" of "credit limit on my visa" drops the word that says what the limit is.
    others = ["what is the credit limit on my visa", "visa credit limit too low"]
    phrases = phrases_of("raise the credit limit on my visa", others)
    assert "credit limit on my visa" in phrases
    assert not any(p.startswith("limit") for p in phrases)


def test_a_title_stays_inside_one_sentence_and_leaves_hashtags_out():
    # Agents tag their messages ("#chatbot the bot loops"); a tag is not a word of the sentence.
    others = ["the chatbot loops forever. nobody answers", "bot loops forever, chatbot is useless"]
    phrases = phrases_of("#chatbot the bot loops forever. nobody answers", others)
    assert "bot loops forever" in phrases
    assert not any(p.lower().startswith("chatbot the bot") for p in phrases)
    assert not any("forever nobody" in p for p in phrases)  # never across the full stop
    # Nor across "but": "Address changed in CRM but billing" is half of a second clause.
    others = ["address changed in CRM, billing lags", "billing still old but address changed in CRM"]
    phrases = phrases_of("address changed in CRM but billing still has the old one", others)
    assert "address changed in CRM" in phrases and not any("but" in p for p in phrases)


def test_two_reporters_share_a_word_whatever_its_ending():
    # "loops" and "looping" are one word: the two reporters ground "chatbot loops".
    assert "chatbot loops" in phrases_of("the chatbot loops", ["chatbot looping again"])
    assert "chatbot loops" not in phrases_of("the chatbot loops", ["chatbot crashed again"])
    assert phrases_of("refund refunds", ["refund refunds"]) == ["refund"]  # a repeat, however inflected


def test_a_number_alone_names_nothing():
    # "45" told a reader nothing; a number may stand beside a word that says what it is.
    assert phrases_of("what is 45 times 3", ["45 divided by 9"]) == []
    assert "401k rollover" in phrases_of("401k rollover please", ["401k rollover rules"])


def test_one_theme_alone_gets_the_phrase_closest_to_its_centre():
    names = PhraseNamer(embed=bag_of_words).name([CARD_DECLINED], CENTRES[:1])
    assert names[0].title == "Card"  # nothing to tell it from: the phrase nearest what it is about


def test_naming_some_themes_reads_all_of_them_for_contrast():
    everything = PhraseNamer(embed=bag_of_words).name(GROUPS, CENTRES)
    some = PhraseNamer(embed=bag_of_words).name(GROUPS, CENTRES, wanted=[2, 0])
    assert some == [everything[2], everything[0]]


def test_a_title_model_is_sent_at_most_the_usual_texts(engine, settings, clock):
    """The offline namer reads up to 16 reporters' texts; a model is still sent at most 8."""
    answer = json.dumps({"title": "Refunds wait for supervisor approval", "summary": "Agents wait days."})
    with chat_server(answer) as server:
        service = FrictionService(engine, settings, HashingEmbedder(), clock=clock, title_model=title_model(server))
        for n in range(20):
            ask(service, f"U{n}", f"refund {n} waits days for supervisor approval")
        service.theming.recluster(clock())
        sent = [json.loads(call.json()["messages"][1]["content"].split("\n", 1)[1]) for call in server.calls]
    assert sent and all(2 <= len(texts) <= REPRESENTATIVES for texts in sent)


def test_a_title_its_reporters_no_longer_ground_is_made_again(service, clock):
    """Re-clustering can change a theme's members without changing its size: the title must not
    outlive the reporters whose words made it."""
    for n, text in enumerate(["what does serendipity mean", "what does epicurean mean", "what does verbose mean"]):
        ask(service, f"U{n}", text)
    service.theming.recluster(clock())
    with Session(service.engine) as session:
        theme = queries.follow_merges(session, theme_id=session.get(Submission, 1).theme_id)
        assert theme.size == 3, "the test needs the three in one theme"
        # As if the second "serendipity" had gone to another theme and "verbose" had come in.
        theme.title, theme.named_size = "Serendipity", theme.size
        session.add(theme)
        session.commit()
    service.theming.recluster(clock())
    with Session(service.engine) as session:
        title = queries.follow_merges(session, theme_id=session.get(Submission, 1).theme_id).title
    assert "serendipity" not in title.lower()


def test_a_title_is_kept_while_its_reporters_ground_it(service, clock):
    for n, text in enumerate(["what does serendipity mean", "define serendipity", "serendipity meaning"]):
        ask(service, f"U{n}", text)
    service.theming.recluster(clock())
    with Session(service.engine) as session:
        theme = queries.follow_merges(session, theme_id=session.get(Submission, 1).theme_id)
        theme.title, theme.named_size = "Serendipity, defined", theme.size
        session.add(theme)
        session.commit()
    service.theming.recluster(clock())
    with Session(service.engine) as session:
        assert queries.follow_merges(session, theme_id=session.get(Submission, 1).theme_id).title == (
            "Serendipity, defined"
        )


def test_a_title_writes_each_word_as_most_reporters_do():
    # The phrase comes from someone who typed "crm"; most wrote "CRM", and so does the title.
    texts = [
        "crm billing mismatch again",
        "CRM billing mismatch on 6 accounts",
        "CRM and billing disagree",
        "the CRM billing mismatch",
    ]
    assert PhraseNamer().name([texts])[0].title.startswith("CRM billing mismatch")
