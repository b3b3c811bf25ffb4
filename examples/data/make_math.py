"""Generate examples/data/math.jsonl: grade-school arithmetic word problems with worked solutions.

Every problem is built from a template below with numbers drawn from a seeded random generator, so the
file is reproducible byte for byte: `python examples/data/make_math.py` rewrites it. Fields:
`question` (the problem), `answer` (the short final answer, as text), `solution` (a short worked solution
that ends with the answer in \\boxed{}).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

SEED = 20260
COUNT = 80
OUTPUT = Path(__file__).with_name("math.jsonl")

NAMES = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Kemi", "Leo")
ITEMS = (("apple", "apples"), ("pencil", "pencils"), ("notebook", "notebooks"), ("cookie", "cookies"))

Problem = tuple[str, str, str]  # question, answer, solution


def shopping_total(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    singular, plural = rng.choice(ITEMS)
    count, price, extra = rng.randint(3, 9), rng.randint(2, 8), rng.randint(5, 15)
    total = count * price + extra
    question = (
        f"{name} buys {count} {plural} at ${price} each and a bag for ${extra}. "
        f"How many dollars does {name} spend in total?"
    )
    cost = count * price
    solution = f"The {plural} cost {count} x {price} = {cost}. Adding the bag: {cost} + {extra} = {total}."
    return question, str(total), solution


def change_from_bill(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    bill = rng.choice((20, 50, 100))
    count, price = rng.randint(2, 6), rng.randint(2, bill // 8)
    change = bill - count * price
    question = (
        f"{name} pays with a ${bill} bill for {count} tickets that cost ${price} each. "
        f"How much change, in dollars, does {name} get?"
    )
    solution = f"The tickets cost {count} x {price} = {count * price}. Change: {bill} - {count * price} = {change}."
    return question, str(change), solution


def equal_sharing(rng: random.Random) -> Problem:
    people, each = rng.randint(3, 8), rng.randint(4, 12)
    leftover = rng.randint(0, people - 1)
    total = people * each + leftover
    question = (
        f"A teacher shares {total} stickers equally among {people} students and keeps the stickers "
        f"left over. How many stickers does each student get?"
    )
    solution = f"{total} / {people} = {each} remainder {leftover}, so each student gets {each}."
    return question, str(each), solution


def speed_distance(rng: random.Random) -> Problem:
    speed, hours = rng.choice((40, 45, 50, 60, 72, 80)), rng.randint(2, 6)
    distance = speed * hours
    question = f"A train travels at {speed} km per hour for {hours} hours. How many kilometres does it travel?"
    solution = f"Distance = speed x time = {speed} x {hours} = {distance}."
    return question, str(distance), solution


def fraction_of_quantity(rng: random.Random) -> Problem:
    denominator = rng.choice((3, 4, 5, 6, 8))
    numerator = rng.randint(1, denominator - 1)
    total = denominator * rng.randint(3, 12)
    part = total * numerator // denominator
    question = f"A farm has {total} chickens and {numerator}/{denominator} of them are brown. How many are brown?"
    solution = f"{numerator}/{denominator} of {total} = {total} / {denominator} x {numerator} = {part}."
    return question, str(part), solution


def percent_discount(rng: random.Random) -> Problem:
    price = rng.choice((20, 40, 60, 80, 120, 160, 200))  # multiples of 20: every discount is whole
    percent = rng.choice((10, 20, 25, 50))
    sale = price * (100 - percent) // 100
    question = f"A jacket costs ${price}. It is on sale for {percent}% off. What is the sale price in dollars?"
    discount = price * percent // 100
    solution = f"The discount is {percent}% of {price} = {discount}. Sale price: {price} - {discount} = {sale}."
    return question, str(sale), solution


def packs_needed(rng: random.Random) -> Problem:
    per_pack, guests = rng.choice((6, 8, 10, 12)), rng.randint(15, 60)
    packs = -(-guests // per_pack)  # ceiling division
    question = (
        f"Juice boxes come in packs of {per_pack}. How many packs are needed so that each of "
        f"{guests} guests gets one juice box?"
    )
    quotient, remainder = divmod(guests, per_pack)
    solution = f"{guests} / {per_pack} = {quotient} remainder {remainder}, so {packs} packs are needed."
    return question, str(packs), solution


def ages(rng: random.Random) -> Problem:
    first, second = rng.sample(NAMES, 2)
    age, gap, years = rng.randint(6, 14), rng.randint(2, 9), rng.randint(2, 10)
    answer = age + gap + years
    question = (
        f"{first} is {age} years old. {second} is {gap} years older than {first}. "
        f"How old will {second} be in {years} years?"
    )
    now = age + gap
    solution = f"{second} is {age} + {gap} = {now} now, and in {years} years: {now} + {years} = {answer}."
    return question, str(answer), solution


def rectangle_area(rng: random.Random) -> Problem:
    length, width = rng.randint(4, 20), rng.randint(3, 15)
    question = (
        f"A garden is a rectangle {length} metres long and {width} metres wide. What is its area in square metres?"
    )
    solution = f"Area = length x width = {length} x {width} = {length * width}."
    return question, str(length * width), solution


def fraction_left(rng: random.Random) -> Problem:
    slices = rng.choice((6, 8, 10, 12))
    eaten = rng.randint(1, slices - 1)
    left = Fraction(slices - eaten, slices)
    eaten_text = "1 slice is" if eaten == 1 else f"{eaten} slices are"
    question = f"A pizza is cut into {slices} equal slices and {eaten_text} eaten. What fraction is left?"
    solution = f"{slices - eaten} of {slices} slices are left: {slices - eaten}/{slices}"
    solution += "." if left.denominator == slices else f" = {left}."
    return question, str(left), solution


def average(rng: random.Random) -> Problem:
    count = rng.randint(3, 5)
    mean = rng.randint(60, 90)
    scores = [mean + rng.randint(-8, 8) for _ in range(count - 1)]
    scores.append(mean * count - sum(scores))  # the last score makes the mean a whole number
    listed = ", ".join(map(str, scores[:-1])) + f" and {scores[-1]}"
    question = f"A student scored {listed} on {count} tests. What is the average score?"
    solution = f"The total is {sum(scores)}, and {sum(scores)} / {count} = {mean}."
    return question, str(mean), solution


def unit_price(rng: random.Random) -> Problem:
    count = rng.choice((4, 5, 8))
    cents = rng.choice((25, 50, 75, 125, 150))
    total = Fraction(count * cents, 100)
    price = Fraction(cents, 100)
    question = f"{count} bottles of water cost ${float(total):.2f} together. What does one bottle cost, in dollars?"
    solution = f"{float(total):.2f} / {count} = {float(price):.2f}."
    return question, f"{float(price):g}", solution


TEMPLATES: tuple[Callable[[random.Random], Problem], ...] = (
    shopping_total,
    change_from_bill,
    equal_sharing,
    speed_distance,
    fraction_of_quantity,
    percent_discount,
    packs_needed,
    ages,
    rectangle_area,
    fraction_left,
    average,
    unit_price,
)


def generate(count: int = COUNT, seed: int = SEED) -> list[dict[str, str]]:
    """`count` distinct problems, cycling through the templates in order, numbers drawn from `seed`."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    while len(rows) < count:
        question, answer, solution = TEMPLATES[len(rows) % len(TEMPLATES)](rng)
        if question in seen:  # small templates can repeat themselves; draw again
            continue
        seen.add(question)
        rows.append({"question": question, "answer": answer, "solution": f"{solution} \\boxed{{{answer}}}"})
    return rows


def render(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


if __name__ == "__main__":
    OUTPUT.write_text(render(generate()), encoding="utf-8")
    print(f"wrote {COUNT} problems to {OUTPUT}")
