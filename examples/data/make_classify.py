"""Generate examples/data/classify.jsonl and classify_labels.json: short customer-support tickets by topic.

Each ticket is a template below filled with slot values drawn from a seeded random generator, so both
files are reproducible byte for byte: `python examples/data/make_classify.py` rewrites them. Fields of
each line: `text` (the ticket) and `label` (one of LABELS). Tickets are unique and the order is shuffled.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 7
PER_LABEL = 20
HERE = Path(__file__).parent
OUTPUT = HERE / "classify.jsonl"
LABELS_OUTPUT = HERE / "classify_labels.json"

LABELS = ("billing", "shipping", "returns", "account access", "technical issue", "product question")

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
    ),
    "amount": ("$12.99", "$24.50", "$49.00", "$89.95", "$120.00", "$7.49"),
    "days": ("three", "five", "ten", "two weeks'", "eight"),
    "order": ("#10482", "#20931", "#33107", "#48250", "#51766", "#60314"),
    "device": ("iPhone", "Android phone", "Windows laptop", "MacBook", "tablet"),
    "feature": ("battery", "warranty", "size", "color options", "noise cancelling", "power usage"),
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged {amount} twice for order {order}. Please fix the duplicate payment.",
        "My invoice for the {product} shows {amount} but the checkout page said less.",
        "Why did my card get billed {amount} this month when I cancelled my subscription?",
        "The coupon was not applied and I paid {amount} for the {product}. Can I get the difference?",
        "I need a VAT invoice for order {order}; the receipt does not list the tax.",
        "There is an unknown charge of {amount} on my statement from your store.",
    ),
    "shipping": (
        "Order {order} has not arrived and the tracking has not updated in {days} days.",
        "The courier says my {product} was delivered but there is nothing at my door.",
        "Can you ship the {product} to a different address? I moved last week.",
        "My package for order {order} is stuck in customs. When will it be delivered?",
        "Delivery was promised in {days} days and the {product} still has not shipped.",
        "Do you offer express delivery for the {product}? I need it before the weekend.",
    ),
    "returns": (
        "I would like to return the {product}; it is unopened. How do I get a return label?",
        "The {product} arrived broken. I want to send it back for a full refund.",
        "I returned order {order} {days} days ago and have not received my refund yet.",
        "Can I exchange the {product} for a different model instead of a refund?",
        "The return window says 30 days. Is it too late to send back the {product}?",
        "You refunded {amount} but I paid more for the {product}. Please check my return.",
    ),
    "account access": (
        "I cannot log in to my account; the password reset email never arrives.",
        "My account got locked after too many sign-in attempts on my {device}.",
        "The two-factor code is not accepted when I sign in from my {device}.",
        "I forgot which email I used for my account and cannot sign in to track order {order}.",
        "Someone changed the password on my account. Please help me get back in.",
        "After updating the app on my {device} it keeps logging me out of my account.",
    ),
    "technical issue": (
        "The {product} will not turn on after the latest firmware update.",
        "Your app crashes on my {device} whenever I open the order history page.",
        "The {product} disconnects from my {device} every few minutes.",
        "The setup guide for the {product} fails at the pairing step with error 42.",
        "The {product} makes a loud buzzing noise and then shuts itself off.",
        "The website checkout page freezes on my {device} after I enter my address.",
    ),
    "product question": (
        "Does the {product} come with a warranty, and how long does it last?",
        "What is the {feature} of the {product}? The description does not say.",
        "Is the {product} compatible with my {device}?",
        "How does the {product} compare with last year's model in {feature}?",
        "Will the {product} be back in stock soon, and are there more {feature}?",
        "Can the {product} be used outdoors, and what about its {feature}?",
    ),
}


def fill(template: str, rng: random.Random) -> str:
    """The template with each {slot} replaced by a random value of that slot."""
    return template.format(**{slot: rng.choice(values) for slot, values in SLOTS.items()})


def generate(per_label: int = PER_LABEL, seed: int = SEED) -> list[dict[str, str]]:
    """`per_label` unique tickets for every label, shuffled; templates are used in rotation."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for label in LABELS:
        seen: set[str] = set()
        attempt = 0
        while len(seen) < per_label:
            text = fill(TEMPLATES[label][attempt % len(TEMPLATES[label])], rng)
            attempt += 1
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    return rows


def render(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def render_labels() -> str:
    return json.dumps(list(LABELS), indent=2) + "\n"


if __name__ == "__main__":
    rows = generate()
    OUTPUT.write_text(render(rows), encoding="utf-8")
    LABELS_OUTPUT.write_text(render_labels(), encoding="utf-8")
    print(f"wrote {len(rows)} tickets to {OUTPUT} and {len(LABELS)} labels to {LABELS_OUTPUT}")
