"""Generate examples/data/tickets_{bank,train,test}.jsonl: support tickets by topic, held-out issues unseen.

The quick experiment of examples/README.md needs a classification task whose held-out split is not a
near-copy of its training data (otherwise retrieval is a lookup and the experiment means nothing). Each
ticket is composed of up to five parts: an optional greeting, an optional label-neutral context sentence
(which order, which device, how long a customer: the same pool for every label), exactly one *issue*
sentence (the only part that carries the label), an optional label-neutral remark and an optional sign-off.
Slots ({product}, {amount}, ...) are filled at random.

Every label has 20 hand-written issue sentences. The first 14 are used by the bank and training splits,
the last 6 only by the test split. The held-out issues reword intents of the shared ones (a double
charge, a parcel stuck at customs) in different sentences, as real held-out tickets would: no held-out
ticket shares its issue sentence with any training or bank ticket, so a classifier (or a retriever) has to
generalise from vocabulary, not look up a phrasing. `examples/README.md` reports the nearest-neighbour overlap.

    python examples/data/make_tickets.py      # rewrites the three files byte for byte (seed 11)

Splits: `tickets_bank.jsonl` (300 rows: the draft harness's memory bank), `tickets_train.jsonl` (480 rows:
the training prompts), `tickets_test.jsonl` (240 rows: held out). Labels are balanced within each split;
texts are unique across all three. Fields: `text`, `label`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 11
HERE = Path(__file__).parent
LABELS = ("billing", "shipping", "returns", "account access", "technical issue", "product question")
SPLITS = {"bank": 300, "train": 480, "test": 240}  # rows per split, divisible by the six labels
HELD_OUT_ISSUES = 6  # the last issues of every label appear only in the test split

SLOTS: dict[str, tuple[str, ...]] = {
    "product": (
        "wireless headphones",
        "coffee grinder",
        "standing desk",
        "smart watch",
        "hiking backpack",
        "air purifier",
        "electric kettle",
        "phone case",
        "yoga mat",
        "desk lamp",
        "robot vacuum",
        "bluetooth speaker",
        "rice cooker",
        "office chair",
        "e-reader",
        "baby monitor",
    ),
    "amount": ("$12.99", "$24.50", "$49.00", "$89.95", "$120.00", "$7.49", "$310.00", "$64.20"),
    "order": ("#10482", "#20931", "#33107", "#48250", "#51766", "#60314", "#72205", "#89540"),
    "device": ("iPhone", "Android phone", "Windows laptop", "MacBook", "tablet", "Chromebook"),
    "days": ("three", "five", "ten", "twelve", "two"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "year": ("2015", "2018", "2020", "2022"),
}

GREETINGS = ("Hi,", "Hello,", "Hello team,", "Hi there.", "Good morning,", "Hey,", "Dear support,")
CONTEXTS = (  # label-neutral: the same pool for every label
    "I ordered the {product} on {weekday}.",
    "This is about order {order}.",
    "I have been a customer since {year}.",
    "I am writing from my {device}.",
    "I bought the {product} as a gift for my sister.",
    "My order number is {order}, for the {product}.",
    "I got the {product} a few weeks ago.",
    "I usually shop with you and have never had problems before.",
)
REMARKS = (  # label-neutral
    "This is the second time this has happened.",
    "It is quite urgent for me.",
    "I already checked your help pages.",
    "I would appreciate a quick answer.",
    "Your chat bot could not help.",
    "I have attached a screenshot.",
)
SIGN_OFFS = ("Thanks.", "Thank you!", "Regards, Sam", "Please advise.", "Best, Alex", "Cheers")

ISSUES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged {amount} twice for the same purchase.",
        "My card statement shows {amount} from you that I do not recognise.",
        "The invoice lists a higher price than the checkout page showed.",
        "I cancelled my subscription but you billed me {amount} again this month.",
        "The discount code was accepted but the total I paid did not go down.",
        "Could you send me a proper VAT invoice for my company?",
        "You took the payment of {amount} but my order still says unpaid.",
        "I paid with a gift card and my credit card was charged as well.",
        "The price dropped to {amount} a day after I paid full price; can you match it?",
        "Why is there an extra service fee on my bill?",
        "My bank says the payment of {amount} was taken but the money has not come back after the cancellation.",
        "Please update the billing address printed on my invoices.",
        "I was billed in euros instead of dollars and lost money on the exchange.",
        "The instalment plan charged me the full {amount} at once.",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "You charged my card twice for one purchase; please refund the duplicate charge.",
        "There is a charge of {amount} on my card statement that I never made.",
        "I cancelled the subscription last month, so why was I billed again?",
        "The invoice total is higher than the price I saw at checkout.",
        "My discount code did not reduce the amount I was charged.",
        "I need an invoice with the VAT shown for my company.",
    ),
    "shipping": (
        "The tracking number has shown no movement for {days} days.",
        "The courier marked my parcel as delivered but I never got it.",
        "I moved house; can the parcel go to my new address?",
        "My parcel has been held at customs since last week.",
        "The estimated delivery date keeps getting pushed back.",
        "Is there a faster delivery option? I need it by {weekday}.",
        "Only half of the items arrived in the box.",
        "The delivery driver left the box in the rain outside my building.",
        "Do you ship to Canada, and how long does it take?",
        "The parcel went to my old address even though I updated it.",
        "The carrier website says the package is lost in transit.",
        "It still says preparing for dispatch after {days} days.",
        "Can I pick the order up from a locker instead of home delivery?",
        "The courier asked me to pay an extra fee on the doorstep.",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "Tracking for my parcel has not updated since {weekday}; where is it?",
        "The parcel shows as delivered, but no delivery reached me.",
        "My package is still waiting at customs; when will it be delivered?",
        "The courier keeps moving the delivery date; when will my parcel arrive?",
        "Please send the parcel to my new address instead.",
        "Can I pay for faster delivery so it arrives by {weekday}?",
    ),
    "returns": (
        "I want to send the {product} back; it is still sealed.",
        "The {product} arrived damaged and I would like to return it.",
        "I sent the item back {days} days ago and the refund has not appeared.",
        "Could I swap it for a different colour instead of getting my money back?",
        "Am I still within the return window if I bought it five weeks ago?",
        "The refund I got was smaller than what I paid for the returned item.",
        "How do I print a return label?",
        "It does not fit, so I would like to exchange it for a bigger size.",
        "Do I have to pay for the return postage?",
        "You received my return but marked it as incomplete.",
        "Can I return just one item from a bundle?",
        "The store refused my return because I lost the receipt.",
        "I changed my mind about the {product}; how do I send it back?",
        "The replacement you sent for my return is the wrong model.",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "I would like to return the {product} for a refund; it is unused.",
        "My return was received {days} days ago and I still have no refund.",
        "Can I exchange the {product} for another size instead of a refund?",
        "Please send me a return label so I can send it back.",
        "The {product} was damaged on arrival; I want to return it.",
        "Is it too late to return something I bought a month ago?",
    ),
    "account access": (
        "I cannot sign in; the reset link in your email has expired.",
        "My account is locked after I typed the wrong password a few times.",
        "The verification code never arrives on my phone.",
        "I no longer have access to the email address on my profile.",
        "Someone else changed my password and I am locked out.",
        "The app logs me out every time I close it on my {device}.",
        "I keep getting an invalid credentials error even with the right password.",
        "How do I turn off two-step verification? I lost my phone.",
        "I want to merge my two customer profiles into one.",
        "The sign-in page just reloads without logging me in.",
        "I got an email saying my login was used from another country.",
        "My username was changed and I do not know the new one.",
        "I cannot create a new account; it says my email is already registered.",
        "The security questions do not accept my answers.",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "I forgot my password and the reset email never comes.",
        "My account got locked and I cannot sign in any more.",
        "The sign-in code is not being sent to my phone.",
        "Somebody changed my password; I cannot get into my account.",
        "I cannot log in on my {device}; it says wrong password.",
        "I lost access to the email on my account, how do I sign in?",
    ),
    "technical issue": (
        "The {product} will not switch on since the last update.",
        "Your app crashes whenever I open my order history on my {device}.",
        "The {product} keeps dropping its connection to my {device}.",
        "Pairing fails with error code 42 during setup.",
        "The {product} makes a buzzing noise and then turns itself off.",
        "The checkout page freezes after I enter my card details.",
        "The display of the {product} flickers constantly.",
        "The battery of the {product} drains within an hour.",
        "The firmware update got stuck at 60 percent.",
        "The companion app does not find the {product} on my wifi network.",
        "The touch buttons on the {product} stopped responding.",
        "Your website shows a blank page on my {device}.",
        "The {product} overheats after a few minutes of use.",
        "The {product} resets to factory settings every night.",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "Since the update the {product} does not turn on at all.",
        "The app keeps crashing on my {device} when I open it.",
        "My {product} loses its connection to my {device} all the time.",
        "Setup fails at the pairing step with an error.",
        "The {product} turns itself off after a strange noise.",
        "The screen of the {product} keeps flickering and then goes black.",
    ),
    "product question": (
        "Does the {product} have a warranty, and for how long?",
        "What are the dimensions of the {product}?",
        "Is the {product} compatible with my {device}?",
        "How is the new {product} different from last year's model?",
        "When will the {product} be back in stock?",
        "Can the {product} be used outdoors in winter?",
        "Which colours does the {product} come in?",
        "Is the {product} suitable for a small apartment?",
        "Does the {product} come with a charger in the box?",
        "How much does the {product} weigh?",
        "Is there a bundle deal if I buy two of the {product}?",
        "What materials is the {product} made of?",
        "Are spare parts for the {product} sold separately?",
        "Does the {product} work with voice assistants?",
        # held out: test split only; each rewords one of the intents above with different phrasing
        "How long is the warranty on the {product}?",
        "Will the {product} work with my {device}?",
        "Is the {product} going to be in stock again soon?",
        "What size is the {product}, and how heavy is it?",
        "Which colours can I get the {product} in?",
        "Can I use the {product} outside when it rains?",
    ),
}


def compose(issue: str, rng: random.Random) -> str:
    """One ticket: optional greeting and context, the issue, optional remark and sign-off.

    One value per slot for the whole ticket, so that the context and the issue name the same product.
    """
    values = {slot: rng.choice(choices) for slot, choices in SLOTS.items()}
    parts = []
    if rng.random() < 0.5:
        parts.append(rng.choice(GREETINGS))
    if rng.random() < 0.6:
        parts.append(rng.choice(CONTEXTS).format(**values))
    parts.append(issue.format(**values))
    if rng.random() < 0.4:
        parts.append(rng.choice(REMARKS))
    if rng.random() < 0.4:
        parts.append(rng.choice(SIGN_OFFS))
    return " ".join(parts)


def generate(seed: int = SEED) -> dict[str, list[dict[str, str]]]:
    """The three splits, each balanced over the labels and shuffled; every text unique across splits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict[str, str]]] = {}
    for split, size in SPLITS.items():
        rows = []
        for label in LABELS:
            issues = ISSUES[label]
            pool = issues[-HELD_OUT_ISSUES:] if split == "test" else issues[:-HELD_OUT_ISSUES]
            count = 0
            while count < size // len(LABELS):
                text = compose(pool[count % len(pool)], rng)
                if text not in seen:
                    seen.add(text)
                    rows.append({"text": text, "label": label})
                    count += 1
        rng.shuffle(rows)
        splits[split] = rows
    return splits


def render(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def path(split: str) -> Path:
    return HERE / f"tickets_{split}.jsonl"


if __name__ == "__main__":
    for split, rows in generate().items():
        path(split).write_text(render(rows), encoding="utf-8")
        print(f"wrote {len(rows)} tickets to {path(split)}")
