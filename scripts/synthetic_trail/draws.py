"""Identifiers, addresses and weights drawn from a given `random.Random`, never from the OS, so
the seed fixes every one of them."""

from __future__ import annotations

import random
import string

ALNUM = string.ascii_letters + string.digits
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # what AWS key and unique ids draw from


def rand_chars(rng: random.Random, alphabet: str, n: int) -> str:
    size = len(alphabet)
    return "".join([alphabet[b % size] for b in rng.randbytes(n)])


def hex_digits(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (uuid.uuid4 would read the OS entropy pool)."""
    h = f"{rng.getrandbits(128) & UUID4_CLEAR | UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def cumulative_weights(rng: random.Random, n: int) -> list[float]:
    """Skewed but bounded weights, so a principal has favourite calls and rare ones."""
    ws = [rng.uniform(0.15, 1.0) ** 2 for _ in range(n)]
    cum: list[float] = []
    total = 0.0
    for w in ws:
        total += w
        cum.append(total)
    return cum


def addresses(rng: random.Random, prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}.{rng.randrange(2, 254)}" for _ in range(n))


def aws_ip(rng: random.Random) -> str:
    first = rng.choice((3, 18, 34, 35, 44, 52, 54))
    return f"{first}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def new_unique_id(rng: random.Random, prefix: str) -> str:
    return prefix + rand_chars(rng, KEY_ALPHABET, 17)
