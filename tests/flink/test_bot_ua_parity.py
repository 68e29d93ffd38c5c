"""IS_BOT_UA (the jar's Java function: literal prefilter + LRU cache) answers exactly what the
normative Python rule answers (`common.ivt.default_bot_matcher().matches`) on a large seeded
corpus: browser agents, agents built from every pattern, near misses of the prefilter's literals
(one character changed, case changed, cut short), random printable and non-ASCII strings, agents
with line breaks around a pattern (Python's and Java's UNIX_LINES ^ $), very long agents, the
empty string and NULL. The full alternation (`IsBotUa.compile`, the matcher before the prefilter)
answers too for the agents that differ, if any, so a failure says whose difference it is.

The Java side runs as `com.clickagg.flink.ivt.BotUaCheck check` (bench/bot_ua.py: classpath =
the built jar + PyFlink's table API and Flink's shaded Jackson), one JVM for the whole corpus."""
from __future__ import annotations

import json
import random
import string
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bot_ua  # noqa: E402

from common import ivt  # noqa: E402

SEED = 20261207


def _case_flip(s: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(s) if c.isalpha()]
    if not letters:
        return s
    i = rng.choice(letters)
    return s[:i] + s[i].swapcase() + s[i + 1:]


def _one_changed(s: str, rng: random.Random) -> str:
    i = rng.randrange(len(s))
    c = rng.choice([ch for ch in string.ascii_letters + string.digits + " /-." if ch != s[i]])
    return s[:i] + c + s[i + 1:]


def corpus(literals: list[tuple[str, list[str] | None]]) -> list[str | None]:
    rng = random.Random(SEED)
    agents: list[str | None] = [None, "", "a", "ab", "\n", "bot", "Bot", "Mozilla/5.0"]
    browsers = [bot_ua.browser_agent(rng) for _ in range(4000)]
    agents += browsers
    for pattern, lits in literals:
        # built to match: alone, at the start or embedded (bot_agent picks), around line breaks
        sample = bot_ua.pattern_sample(pattern, rng)
        agents += [bot_ua.bot_agent(pattern, rng), f"{rng.choice(browsers)} {sample}", f"{sample}\n",
                   f"x\n{sample}", f"{sample[:-1]}\n{sample[-1:]}", f"{sample}\r\n"]
        near = rng.choice(lits) if lits else pattern.replace("\\", "")
        # near misses: the literal with one character changed, a letter's case flipped, cut short
        # at either end (the first 3 characters of `near[:-1]` still hit the index), upper case;
        # alone or in a browser agent
        for miss in (_one_changed(near, rng), _case_flip(near, rng), near[:-1], near[1:], near.upper()):
            agents.append(rng.choice([miss, f"{rng.choice(browsers)} ({miss}/1.0)"]))
        for literal in lits or ():  # a literal without the rest of its pattern (a bot if it is the pattern)
            agents.append(f"Mozilla/5.0 (compatible; {literal})")
    printable = string.printable  # includes \t \n \r \x0b \x0c
    for _ in range(3000):
        agents.append("".join(rng.choice(printable) for _ in range(rng.randint(0, 200))))
    for _ in range(500):
        agents.append("".join(rng.choice(string.ascii_letters + " /;()éü中文日本😀\u00a0\u2028")
                              for _ in range(rng.randint(1, 120))))
    for _ in range(1000):  # line breaks inside browser and bot agents
        ua = rng.choice([rng.choice(browsers), bot_ua.bot_agent(rng.choice(literals)[0], rng)])
        i = rng.randint(0, len(ua))
        agents.append(ua[:i] + rng.choice(["\n", "\r", "\r\n", "\n\n", "\u2028", "\x85"]) + ua[i:])
    for _ in range(20):  # very long agents (2-10 k characters), a bot or not at the end
        body = " ".join(rng.choice(browsers) for _ in range(rng.randint(15, 80)))
        tail = rng.choice(["", bot_ua.bot_agent(rng.choice(literals)[0], rng)])
        agents.append(body + " " + tail)
    return agents


@pytest.fixture(scope="module")
def literals():
    return bot_ua.literals()


def test_every_pattern_is_indexed_or_residual_and_literals_occur_in_the_pattern(literals):
    patterns = ivt.load_bot_patterns()
    assert [p for p, _ in literals] == list(patterns)
    indexed = [(p, lits) for p, lits in literals if lits is not None]
    residual = [p for p, lits in literals if lits is None]
    print(f"patterns {len(patterns)}: {len(indexed)} with a literal, {len(residual)} residual {residual}")
    assert len(indexed) >= 0.95 * len(patterns), residual
    for p, lits in indexed:
        # one literal per top-level alternative, each a piece of the pattern's text
        assert 1 <= len(lits) <= p.count("|") + 1, (p, lits)
        assert all(len(lit) >= 3 and lit in p.replace("\\", "") for lit in lits), (p, lits)


def test_java_is_bot_ua_equals_python_on_the_corpus(literals):
    agents = corpus(literals)
    assert len(agents) >= 20_000
    matcher = ivt.default_bot_matcher()
    expected = [matcher.matches(ua) for ua in agents]
    lines = bot_ua.run_java("check", agents)
    header, answers = lines[0], lines[1:]
    print(header)
    assert len(answers) == len(agents)
    function = [a == "1" for a in answers]
    trues = sum(expected)
    print(f"{len(agents)} agents: {trues} bots, {len(agents) - trues} not")
    # the corpus can fail the test both ways
    assert trues >= 3000 and len(agents) - trues >= 10_000, trues
    wrong = [ua for ua, e, f in zip(agents, expected, function) if e != f]
    if wrong:  # whose fault: the prefilter's (the full alternation agrees with Python) or the engines'
        full = bot_ua.run_java("check", wrong, "--full")[1:]
        detail = [(ua, matcher.matches(ua), a) for ua, a in zip(wrong, full)]
        pytest.fail(f"{len(wrong)} agents where IS_BOT_UA != Python; (agent, Python, IS_BOT_UA + full "
                    f"alternation), e.g. {detail[:5]}")


# constructs the list may not hold (today every pattern of the list has a literal): residual
# patterns (inline flags, backreference, short alternatives), quantified characters, classes,
# groups, escapes, anchors; valid in both engines with the same meaning
SYNTHETIC = ["(?i:spider)", "(a)x\\1", "ab|cd", "xy", "ab?cdef", "x*yzw", "qu+ick", "Fetch(er)?Bot",
             "[Bb]ot|Crawl", "\\d{3}-agent", "pre{1,2}fix", "\\bwget", "^Go-http-client\\/", "MSIE [0-9]\\.0; W",
             "tail\\.end$", "a.b.cde", "[^a-z]zzz\\.", "(?:ab|cd)efg", "lit\\(eral\\)", "ha\\?\\*\\+"]


def test_prefilter_equals_the_full_alternation_on_synthetic_patterns(tmp_path):
    rng = random.Random(SEED)
    samples = [bot_ua.pattern_sample(p, rng) for p in SYNTHETIC for _ in range(5)]
    pieces = samples + ["SPIDER", "abcdef", "acdef", "yzw", "quuuick", "FetcherBot", "FetchBot", "Crawl", "bot",
                        "123-agent", "prefix", "preefix", "pfix", "xwget", "Go-http-client/1.1", "tail.end\n",
                        "tail.endx", "lit(eral)", "ha?*+", "ab", "cd", "axa", "axax"]
    heads, tails = ["", "Mozilla/5.0 ", "x\n", "ua "], ["", " (+x)", "\n", "\r\n"]
    agents = [rng.choice(heads) + rng.choice(pieces) + rng.choice(tails) for _ in range(3000)]
    agents += [bot_ua.browser_agent(rng) for _ in range(500)] + [""]
    path = tmp_path / "patterns.json"
    path.write_text(json.dumps(SYNTHETIC), encoding="utf-8")
    lines = bot_ua.run_java("prefilter", agents, str(path))
    print(lines[0])
    # residual: (?i:spider), (a)x\1, ab|cd and [Bb]ot|Crawl (an alternative's literal < 3), xy
    assert lines[0] == f"patterns {len(SYNTHETIC)} literal {len(SYNTHETIC) - 5} residual 5", lines[0]
    python = ivt.BotMatcher(SYNTHETIC)
    expected = [("1" if python.matches(ua) else "0") * 2 for ua in agents]
    assert 500 < sum(e == "11" for e in expected) < len(agents) - 500
    wrong = [(ua, e, a) for ua, e, a in zip(agents, expected, lines[1:]) if e != a]
    assert not wrong, f"{len(wrong)} agents (agent, Python twice, prefilter + full alternation): {wrong[:5]}"
