"""A byte-level fuzzer for the REST inference endpoint: random bytes under every media type, and valid
binary and JSON bodies mutated (bytes flipped, inserted or cut, lengths and encodings lied about). The
server must answer each with a 200 or a 4xx JSON error, never a 5xx, and keep answering.

Hand-written rather than a fuzzing library (hypothesis, atheris): the mutations that matter are the
extension's own lengths and headers, and a seeded ``random.Random`` makes every run repeatable.
``python -m attrition_tools.fuzz URL [--requests N] [--seed S]`` runs it against a server; the tests and
the soak run it too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from attrition_runtime.binary import HEADER_LENGTH
from attrition_runtime.client import EXAMPLE_EMPLOYEE, binary_request, v2_request

Body = tuple[bytes, dict[str, str]]
MEDIA_TYPES = (
    None,
    "application/json",
    "application/octet-stream",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
)
ODD_LENGTHS = ("-1", "0", "1", "99999999999999999999", "1e3", "", "07", "0x10", "+5")


@dataclass
class Seeds:
    """The valid bodies that mutations start from."""

    binary: Body = field(default_factory=lambda: binary_request([EXAMPLE_EMPLOYEE] * 3, binary_outputs=True))
    json: bytes = field(default_factory=lambda: json.dumps(v2_request([EXAMPLE_EMPLOYEE] * 2)).encode())


def garbage(rng: random.Random, seeds: Seeds) -> Body:
    headers = {}
    media_type = rng.choice(MEDIA_TYPES)
    if media_type:
        headers["Content-Type"] = media_type
    if rng.random() < 0.3:
        headers[HEADER_LENGTH] = rng.choice(ODD_LENGTHS)
    return rng.randbytes(rng.randrange(0, 1024)), headers


def flipped(rng: random.Random, seeds: Seeds) -> Body:
    raw, headers = rng.choice([seeds.binary, (seeds.json, {"Content-Type": "application/json"})])
    body = bytearray(raw)
    for _ in range(rng.randrange(1, 6)):
        body[rng.randrange(len(body))] = rng.randrange(256)
    return bytes(body), headers


def cut_or_grown(rng: random.Random, seeds: Seeds) -> Body:
    raw, headers = seeds.binary
    at = rng.randrange(len(raw))
    if rng.random() < 0.5:
        return raw[:at], headers
    return raw[:at] + rng.randbytes(rng.randrange(1, 64)) + raw[at:], headers


def lying_lengths(rng: random.Random, seeds: Seeds) -> Body:
    raw, headers = seeds.binary
    length = int(headers[HEADER_LENGTH])
    if rng.random() < 0.5:
        return raw, {
            **headers,
            HEADER_LENGTH: rng.choice([*ODD_LENGTHS, str(length + rng.randrange(-50, 50))]),
        }
    header = json.loads(raw[:length])
    tensor = rng.choice(header["inputs"])
    tensor["parameters"]["binary_data_size"] = rng.choice([-1, 0, 2**63, 2**31, 7, "8", None, 1.5, True])
    encoded = json.dumps(header).encode()
    return encoded + raw[length:], {**headers, HEADER_LENGTH: str(len(encoded))}


def lying_encodings(rng: random.Random, seeds: Seeds) -> Body:
    raw, headers = rng.choice([seeds.binary, (seeds.json, {"Content-Type": "application/json"})])
    encoding = rng.choice(["gzip", "deflate", "br", "gzip, gzip", "x-gzip", "compress"])
    if rng.random() < 0.5:
        raw = gzip.compress(raw)[: rng.randrange(5, 200)]
    return raw, {**headers, "Content-Encoding": encoding}


MUTATIONS: tuple[Callable[[random.Random, Seeds], Body], ...] = (
    garbage,
    flipped,
    cut_or_grown,
    lying_lengths,
    lying_encodings,
)
#: The mutations whose bodies are never a valid request (the soak counts a 200 to them as wrong).
SURELY_BAD = (garbage, lying_encodings)


def bodies(seed: int, count: int, mutations=MUTATIONS) -> Iterator[Body]:
    rng, seeds = random.Random(seed), Seeds()
    for _ in range(count):
        yield rng.choice(mutations)(rng, seeds)


def surely_bad(seed: int, count: int) -> list[Body]:
    """Bodies no server may accept: the catalogue's byte-level cases and never-valid mutations."""
    from attrition_tools.bad_requests import BAD_BODIES

    catalogue = [build() for build, _, _ in BAD_BODIES.values()]
    return catalogue + list(bodies(seed, max(count - len(catalogue), 0), SURELY_BAD))


@dataclass
class Report:
    statuses: Counter = field(default_factory=Counter)
    #: Answers that break the rule: a 5xx, or a 4xx whose body is not a JSON error.
    problems: list[str] = field(default_factory=list)


def run(url: str, requests: int, seed: int = 0) -> Report:
    """POST ``requests`` fuzzed bodies to ``url`` (one connection, in order)."""
    import requests as http

    report = Report()
    with http.Session() as session:
        for body, headers in bodies(seed, requests):
            answer = session.post(url, data=body, headers=headers, timeout=30)
            report.statuses[answer.status_code] += 1
            if answer.status_code >= 500 or (answer.status_code >= 400 and not _json_error(answer)):
                report.problems.append(
                    f"{answer.status_code} {answer.text[:200]!r} for {headers} {body[:80]!r}"
                )
    return report


def _json_error(answer) -> bool:
    try:
        return isinstance(answer.json().get("error"), str)
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the inference URL, http://host:port/v2/models/<name>/infer")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = run(args.url, args.requests, args.seed)
    print(dict(sorted(report.statuses.items())))
    print("\n".join(report.problems[:20]))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
