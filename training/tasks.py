"""The reference world's task suite: 36 small tasks in 6 domains, generated
from fixed seeds. Every item has a question, 4 options (one right), the right
option's index and a free-form answer. 11 tasks are held out of all pool
training as *customized* tasks: some are new tasks inside one domain, some
compose two domains (their `composes` field), so a blend of adapters can
matter.
"""
import random
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

# A generated fictional world: countries, their capitals, creatures and people.
COUNTRIES = ["Zorvia", "Quellen", "Marduk", "Felspar", "Ostrava", "Bellum", "Tirnak", "Vossia",
             "Carrow", "Dunmere", "Eskal", "Gorath"]
CAPITALS = ["Pelk", "Rindo", "Sarn", "Tubal", "Wexa", "Hollin", "Nemo", "Jarrow",
            "Kesh", "Luma", "Brisk", "Omber"]
CREATURES = ["glim", "torva", "snerk", "plode", "vambly", "quorn", "zibbet", "fross", "hulk", "mirrow"]
COLORS = ["red", "blue", "green", "gold", "grey", "white", "black", "pink", "brown", "violet"]
PEOPLE = ["Ada", "Bram", "Cleo", "Dov", "Esme", "Finn", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lior"]
JOBS = ["baker", "smith", "sailor", "healer", "farmer", "singer", "guard", "miner", "weaver", "cook",
        "thief", "bard"]
# Jobs the world's people admire or despise: the bridge between facts and sentiment.
GOOD_JOBS = {"baker", "healer", "farmer", "singer", "weaver", "cook"}

POSITIVE = ["good", "great", "happy", "lovely", "bright", "kind", "warm", "joyful", "superb", "calm"]
NEGATIVE = ["bad", "awful", "sad", "gloomy", "cruel", "cold", "bitter", "dull", "nasty", "grim"]
NOUNS = ["day", "meal", "song", "trip", "story", "room", "game", "town", "gift", "plan"]
WORDS = ["cat", "dog", "sun", "map", "cup", "pen", "box", "hat", "fig", "jar", "kit", "log",
         "mud", "nut", "owl", "pig", "rug", "sky", "toy", "van", "web", "yak", "zip", "bee"]
LONG_WORDS = ["apple", "bread", "chair", "dream", "eagle", "flame", "grape", "house", "index",
              "joker", "knife", "lemon", "mango", "night", "ocean", "piano", "queen", "river",
              "stone", "tiger"]
# Words of 4 and 6 letters, used only by word_length_parity (the lists above are all odd).
EVEN_WORDS = ["bird", "cake", "door", "fish", "lamp", "moon", "nest", "rain", "ship", "tree", "wolf", "frog",
              "castle", "dragon", "forest", "garden", "island", "jungle", "market", "pencil", "rabbit", "silver"]

UNITS = [("km", "m", 1000), ("m", "cm", 100), ("kg", "g", 1000), ("hours", "minutes", 60),
         ("minutes", "seconds", 60), ("days", "hours", 24)]


@dataclass
class Item:
    question: str
    options: List[str]
    answer: int
    answer_text: str

    def to_json(self) -> dict:
        return {"question": self.question, "options": self.options, "answer": self.answer,
                "answer_text": self.answer_text}


@dataclass
class Task:
    name: str
    domain: str
    make: Callable[[random.Random], Tuple[str, str, List[str]]]  # -> question, answer, distractor pool
    customized: bool = False
    composes: Optional[List[str]] = None
    space: int = 10_000  # how many distinct questions exist (caps the split sizes)
    meta: dict = field(default_factory=dict)


def mc(rng: random.Random, q: str, right: str, pool: List[str]) -> Item:
    """An item whose 3 wrong options come from `pool` (without the right answer)."""
    wrong = sorted(set(p for p in pool if p != right))
    picks = rng.sample(wrong, 3)
    options = picks + [right]
    rng.shuffle(options)
    return Item(q, options, options.index(right), right)


def _nums(lo: int, hi: int) -> List[str]:
    return [str(i) for i in range(lo, hi + 1)]


# ---- arithmetic ----
def add_small(r):
    a, b = r.randint(0, 9), r.randint(0, 9)
    return f"What is {a} plus {b}?", str(a + b), _nums(0, 18)


def sub_small(r):
    a = r.randint(0, 9); b = r.randint(0, a)
    return f"What is {a} minus {b}?", str(a - b), _nums(0, 9)


def mul_small(r):
    a, b = r.randint(1, 9), r.randint(1, 9)
    return f"What is {a} times {b}?", str(a * b), [str(x * y) for x in range(1, 10) for y in range(1, 10)]


def bigger(r):
    a, b = r.sample(range(10, 100), 2)
    return f"Which is larger, {a} or {b}?", str(max(a, b)), [str(a), str(b)] + [str(x) for x in r.sample(range(10, 100), 6)]


def add_three(r):  # customized, arithmetic
    a, b, c = r.randint(0, 5), r.randint(0, 5), r.randint(0, 5)
    return f"What is {a} plus {b} plus {c}?", str(a + b + c), _nums(0, 15)


# ---- strings ----
def first_letter(r):
    w = r.choice(WORDS + LONG_WORDS)
    return f"What is the first letter of '{w}'?", w[0], list("abcdefghijklmnopqrstuvwxyz")


def last_letter(r):
    w = r.choice(WORDS + LONG_WORDS)
    return f"What is the last letter of '{w}'?", w[-1], list("abcdefghijklmnopqrstuvwxyz")


def reverse_word(r):
    w = r.choice(WORDS)
    return f"Spell '{w}' backwards.", w[::-1], [x[::-1] for x in WORDS] + [w]


def upper_word(r):
    w = r.choice(WORDS + LONG_WORDS)
    return f"Write '{w}' in capital letters.", w.upper(), [x.upper() for x in WORDS + LONG_WORDS]


def word_length(r):
    w = r.choice(WORDS + LONG_WORDS)
    return f"How many letters are in '{w}'?", str(len(w)), _nums(1, 9)


def second_letter(r):  # customized, strings
    w = r.choice(WORDS + LONG_WORDS)
    return f"What is the second letter of '{w}'?", w[1], list("abcdefghijklmnopqrstuvwxyz")


# ---- facts about the fictional world ----
def capital_of(r):
    i = r.randrange(len(COUNTRIES))
    return f"What is the capital of {COUNTRIES[i]}?", CAPITALS[i], CAPITALS


def color_of(r):
    i = r.randrange(len(CREATURES))
    return f"What color is a {CREATURES[i]}?", COLORS[i], COLORS


def job_of(r):
    i = r.randrange(len(PEOPLE))
    return f"What does {PEOPLE[i]} do for a living?", JOBS[i], JOBS


def home_of(r):
    i = r.randrange(len(PEOPLE))
    return f"Where does {PEOPLE[i]} live?", COUNTRIES[i], COUNTRIES


def country_of_capital(r):  # customized, facts (the reverse lookup)
    i = r.randrange(len(COUNTRIES))
    return f"{CAPITALS[i]} is the capital of which country?", COUNTRIES[i], COUNTRIES


# ---- unit conversion ----
def _convert(r, pair):
    big, small, k = pair
    n = r.randint(1, 9)
    return f"How many {small} are in {n} {big}?", str(n * k), [str(m * k) for m in range(1, 10)] + [str(n * k2) for _, _, k2 in UNITS]


def km_to_m(r): return _convert(r, UNITS[0])
def m_to_cm(r): return _convert(r, UNITS[1])
def kg_to_g(r): return _convert(r, UNITS[2])
def h_to_min(r): return _convert(r, UNITS[3])


def days_to_hours(r):  # customized, units
    return _convert(r, UNITS[5])


# ---- lexicon sentiment ----
def sentiment(r):
    pos = r.random() < 0.5
    adj = r.choice(POSITIVE if pos else NEGATIVE)
    return f"Is 'a {adj} {r.choice(NOUNS)}' positive or negative?", "positive" if pos else "negative", ["positive", "negative", "neutral", "unknown"]


def word_sentiment(r):
    pos = r.random() < 0.5
    w = r.choice(POSITIVE if pos else NEGATIVE)
    return f"Is the word '{w}' good or bad?", "good" if pos else "bad", ["good", "bad", "neither", "both"]


def opposite_mood(r):
    i = r.randrange(len(POSITIVE))
    if r.random() < 0.5:
        return f"What is the opposite of '{POSITIVE[i]}'?", NEGATIVE[i], NEGATIVE + POSITIVE
    return f"What is the opposite of '{NEGATIVE[i]}'?", POSITIVE[i], NEGATIVE + POSITIVE


def review_stars(r):
    pos = r.random() < 0.5
    adj = r.choice(POSITIVE if pos else NEGATIVE)
    return f"A review says the {r.choice(NOUNS)} was {adj}. Stars: 1 or 5?", "5" if pos else "1", ["1", "5", "3", "0"]


def negated_sentiment(r):  # customized, sentiment
    pos = r.random() < 0.5
    adj = r.choice(POSITIVE if pos else NEGATIVE)
    return f"Is 'not a {adj} {r.choice(NOUNS)}' positive or negative?", "negative" if pos else "positive", ["positive", "negative", "neutral", "unknown"]


# ---- simple logic ----
def bool_and(r):
    a, b = r.random() < 0.5, r.random() < 0.5
    return f"What is {str(a).lower()} and {str(b).lower()}?", str(a and b).lower(), ["true", "false", "maybe", "never"]


def bool_or(r):
    a, b = r.random() < 0.5, r.random() < 0.5
    return f"What is {str(a).lower()} or {str(b).lower()}?", str(a or b).lower(), ["true", "false", "maybe", "never"]


def parity(r):
    n = r.randint(0, 99)
    return f"Is {n} even or odd?", "even" if n % 2 == 0 else "odd", ["even", "odd", "prime", "zero"]


def chain_order(r):
    a, b, c = r.sample(PEOPLE, 3)
    return f"{a} is taller than {b}, and {b} is taller than {c}. Who is tallest?", a, [a, b, c] + r.sample(PEOPLE, 4)


def bool_not(r):  # customized, logic
    a = r.random() < 0.5
    return f"What is not {str(a).lower()}?", str(not a).lower(), ["true", "false", "maybe", "never"]


# ---- customized tasks that compose two domains ----
def capital_first_letter(r):  # facts + strings
    i = r.randrange(len(COUNTRIES))
    return f"What is the first letter of the capital of {COUNTRIES[i]}?", CAPITALS[i][0].lower(), list("abcdefghijklmnopqrstuvwxyz")


def job_sentiment(r):  # facts + sentiment
    i = r.randrange(len(PEOPLE))
    good = JOBS[i] in GOOD_JOBS
    return f"People love good work. Is {PEOPLE[i]}'s job good or bad?", "good" if good else "bad", ["good", "bad", "neither", "both"]


def sum_parity(r):  # arithmetic + logic; small operands, so 100 train items cover the space a LoRA can learn
    a, b = r.randint(0, 5), r.randint(0, 5)
    return f"Is {a} plus {b} even or odd?", "even" if (a + b) % 2 == 0 else "odd", ["even", "odd", "prime", "zero"]


def convert_compare(r):  # units + arithmetic
    # Convert the metres to kilometres, then compare two digits; either side is longer half the
    # time. (The first version compared n km with 100-999 m, so "n km" was always right and the
    # base model answered it by habit.)
    n, k = r.sample(range(1, 10), 2)
    m = k * 1000
    return f"Which is longer, {n} km or {m} m?", f"{n} km" if n > k else f"{m} m", [f"{n} km", f"{m} m", f"{n} m", f"{m} km"]


def word_length_parity(r):  # strings + logic
    # Half the words have an even number of letters. WORDS and LONG_WORDS (3 and 5 letters) are
    # all odd, so drawing only from them made "odd" always right.
    w = r.choice(EVEN_WORDS if r.random() < 0.5 else WORDS + LONG_WORDS)
    return f"Does '{w}' have an even or odd number of letters?", "even" if len(w) % 2 == 0 else "odd", ["even", "odd", "prime", "zero"]


TASKS: List[Task] = [
    Task("add_small", "arithmetic", add_small, space=100),
    Task("sub_small", "arithmetic", sub_small, space=55),
    Task("mul_small", "arithmetic", mul_small, space=81),
    Task("bigger", "arithmetic", bigger),
    Task("first_letter", "strings", first_letter, space=44),
    Task("last_letter", "strings", last_letter, space=44),
    Task("reverse_word", "strings", reverse_word, space=24),
    Task("upper_word", "strings", upper_word, space=44),
    Task("word_length", "strings", word_length, space=44),
    Task("capital_of", "facts", capital_of, space=12),
    Task("color_of", "facts", color_of, space=10),
    Task("job_of", "facts", job_of, space=12),
    Task("home_of", "facts", home_of, space=12),
    Task("km_to_m", "units", km_to_m, space=9),
    Task("m_to_cm", "units", m_to_cm, space=9),
    Task("kg_to_g", "units", kg_to_g, space=9),
    Task("h_to_min", "units", h_to_min, space=9),
    Task("sentiment", "sentiment", sentiment),
    Task("word_sentiment", "sentiment", word_sentiment, space=20),
    Task("opposite_mood", "sentiment", opposite_mood, space=20),
    Task("review_stars", "sentiment", review_stars),
    Task("bool_and", "logic", bool_and, space=4),
    Task("bool_or", "logic", bool_or, space=4),
    Task("parity", "logic", parity, space=100),
    Task("chain_order", "logic", chain_order),
    # held out: customized tasks
    Task("add_three", "arithmetic", add_three, customized=True, space=216),
    Task("second_letter", "strings", second_letter, customized=True, space=44),
    Task("country_of_capital", "facts", country_of_capital, customized=True, space=12),
    Task("days_to_hours", "units", days_to_hours, customized=True, space=9),
    Task("negated_sentiment", "sentiment", negated_sentiment, customized=True),
    Task("bool_not", "logic", bool_not, customized=True, space=2),
    Task("capital_first_letter", "facts+strings", capital_first_letter, customized=True, composes=["facts", "strings"], space=12),
    Task("job_sentiment", "facts+sentiment", job_sentiment, customized=True, composes=["facts", "sentiment"], space=12),
    Task("sum_parity", "arithmetic+logic", sum_parity, customized=True, composes=["arithmetic", "logic"], space=36),
    Task("convert_compare", "units+arithmetic", convert_compare, customized=True, composes=["units", "arithmetic"], space=72),
    Task("word_length_parity", "strings+logic", word_length_parity, customized=True, composes=["strings", "logic"], space=66),
]


def generate_split(task: Task, n: int, seed: int) -> List[Item]:
    """n items of a task; questions may repeat in tasks with a small space (a lookup table
    is learned by seeing its entries), but option order and distractors vary."""
    rng = random.Random(f"{task.name}:{seed}")
    items = []
    for _ in range(n):
        q, a, pool = task.make(rng)
        items.append(mc(rng, q, a, pool))
    return items


def build_suite(n_train: int, n_val: int, n_test: int, n_train_custom: int):
    """{task name: {split: [Item]}} with fixed seeds per task and split."""
    suite = {}
    for t in TASKS:
        suite[t.name] = {
            "train": generate_split(t, n_train_custom if t.customized else n_train, 1),
            "validation": generate_split(t, n_val, 2),
            "test": generate_split(t, n_test, 3),
        }
    return suite


def generic_sentences(rng: random.Random, n: int) -> List[str]:
    """The generic part of the device's pretraining mixture: plain statements about the
    world's vocabulary that teach the words and formats but answer no task question."""
    templates = [
        lambda: f"The {rng.choice(NOUNS)} was {rng.choice(POSITIVE + NEGATIVE)}.",
        lambda: f"{rng.choice(PEOPLE)} met {rng.choice(PEOPLE)} in {rng.choice(COUNTRIES)}.",
        lambda: f"A {rng.choice(CREATURES)} saw a {rng.choice(WORDS)} near {rng.choice(CAPITALS)}.",
        lambda: f"{rng.randint(0, 99)} and {rng.randint(0, 99)} are numbers.",
        lambda: f"The word {rng.choice(WORDS + LONG_WORDS)} has letters.",
        lambda: f"We walked {rng.randint(1, 9)} {rng.choice(['km', 'm', 'hours', 'days', 'minutes'])} today.",
        lambda: f"It is {rng.choice(['true', 'false'])} that the {rng.choice(NOUNS)} is {rng.choice(COLORS)}.",
        lambda: f"{rng.choice(PEOPLE)} likes {rng.choice(COLORS)} {rng.choice(LONG_WORDS)}s.",
    ]
    return [rng.choice(templates)() for _ in range(n)]
