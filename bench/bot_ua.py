"""Cache-miss cost of IS_BOT_UA per distinct user agent: the full alternation of the ~1,500
crawler patterns (`IsBotUa.compile(patterns)` + find(), the matcher before the prefilter) against
the literal prefilter (`IsBotUa.Prefilter`, what the job runs now), in ONE JVM, on the same
distinct agents (mostly browser agents, some bots), both warmed up, rounds alternating:

    .venv/bin/python bench/bot_ua.py [--agents 5000] [--bots 0.1] [--warmup 3] [--rounds 5]
    .venv/bin/python bench/bot_ua.py --smoke   # seconds: 600 agents, 0.3 s warm-up, 3 rounds

Printed: microseconds per agent of each (median of the rounds), new / old, and that both gave the
same answer for every agent (the bench exits 1 otherwise). The LRU cache in front of both is not
measured: on a hit neither runs. The timing loop is Java (com.clickagg.flink.ivt.BotUaCheck in
the job jar; a call per agent through a pipe would measure the pipe). Needs the built jar
(functions/aggregate/target/clickagg-flink-deps.jar: `make setup`) and the Flink table API and
Flink's shaded Jackson from PyFlink's lib/ (.venv-flink). tests/flink/test_bot_ua_parity.py
reuses the agent generators and the Java runner below.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

try:
    from re import _parser as sre_parse  # Python 3.11+
    from re import _constants as sre_constants
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[1]
JAR = REPO / "functions" / "aggregate" / "target" / "clickagg-flink-deps.jar"
PATTERNS_FILE = REPO / "functions" / "common" / "ivt_data" / "crawler_user_agents.json"
MAIN = "com.clickagg.flink.ivt.BotUaCheck"


# --- the Java side --------------------------------------------------------------------------------
def pyflink_lib() -> Path:
    """PyFlink's lib/ (Flink's table API and shaded Jackson, which the job jar leaves to the runtime)."""
    try:
        import pyflink  # the Flink venv

        lib = Path(pyflink.__file__).resolve().parent / "lib"
        if lib.is_dir():
            return lib
    except ImportError:
        pass
    for lib in sorted((REPO / ".venv-flink" / "lib").glob("python3*/site-packages/pyflink/lib")):
        return lib
    raise SystemExit("PyFlink's lib/ not found: `make setup` builds .venv-flink")


def classpath() -> str:
    if not JAR.is_file():
        raise SystemExit(f"{JAR} missing: build it with `make setup` (mvn -f functions/aggregate/pom.xml package)")
    lib = pyflink_lib()
    jars = [JAR, *sorted(lib.glob("flink-table-api-java-uber-*.jar")), *sorted(lib.glob("flink-dist-*.jar"))]
    return os.pathsep.join(str(j) for j in jars)


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def run_java(mode: str, agents: list[str | None] = (), *args: str, timeout: float = 900) -> list[str]:
    """BotUaCheck MODE with the agents on stdin (one JSON string a line): its stdout lines."""
    stdin = "".join(json.dumps(ua) + "\n" for ua in agents)
    done = subprocess.run([java(), "-Xss4m", "-cp", classpath(), MAIN, mode, *args], input=stdin.encode(),
                          capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{MAIN} {mode} exited {done.returncode}: {done.stderr.decode()[-3000:]}")
    return done.stdout.decode("utf-8").splitlines()


def literals() -> list[tuple[str, list[str] | None]]:
    """(pattern, the prefilter's literals (one per top-level alternative) or None: residual) per
    pattern, from the Java code."""
    return [tuple(json.loads(line)) for line in run_java("literals")]


def load_patterns() -> list[str]:
    return json.loads(PATTERNS_FILE.read_text(encoding="utf-8"))


# --- agents ---------------------------------------------------------------------------------------
def browser_agent(rng: random.Random) -> str:
    """A real-looking browser user agent (Chrome, Firefox, Safari, Edge, Opera, Samsung; desktop, Android, iOS)."""
    chrome = f"{rng.randint(100, 131)}.0.{rng.randint(4000, 6800)}.{rng.randint(0, 250)}"
    firefox = f"{rng.randint(100, 133)}.0"
    webkit = "537.36"
    windows = rng.choice(["Windows NT 10.0; Win64; x64", "Windows NT 10.0; WOW64", "Windows NT 6.1; Win64; x64"])
    mac = f"Macintosh; Intel Mac OS X 10_15_{rng.randint(0, 7)}"
    linux = rng.choice(["X11; Linux x86_64", "X11; Ubuntu; Linux x86_64", "X11; Fedora; Linux x86_64"])
    android = f"Linux; Android {rng.randint(9, 15)}; {rng.choice(['SM-G991B', 'Pixel 7', 'SM-A536B', 'M2101K6G', 'K', 'moto g(60)'])}"
    ios = f"{rng.randint(14, 18)}_{rng.randint(0, 6)}"
    safari_v = f"{rng.randint(14, 18)}.{rng.randint(0, 6)}"
    kinds = [
        lambda: f"Mozilla/5.0 ({rng.choice([windows, mac, linux])}) AppleWebKit/{webkit} (KHTML, like Gecko) "
                f"Chrome/{chrome} Safari/{webkit}",
        lambda: f"Mozilla/5.0 ({rng.choice([windows, mac, linux])}; rv:{firefox}) Gecko/20100101 Firefox/{firefox}",
        lambda: f"Mozilla/5.0 ({mac}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{safari_v} Safari/605.1.15",
        lambda: f"Mozilla/5.0 ({windows}) AppleWebKit/{webkit} (KHTML, like Gecko) Chrome/{chrome} Safari/{webkit} "
                f"Edg/{chrome}",
        lambda: f"Mozilla/5.0 ({android}) AppleWebKit/{webkit} (KHTML, like Gecko) Chrome/{chrome} Mobile "
                f"Safari/{webkit}",
        lambda: f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"Version/{safari_v} Mobile/15E148 Safari/604.1",
        lambda: f"Mozilla/5.0 (iPad; CPU OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                f"CriOS/{chrome} Mobile/15E148 Safari/604.1",
        lambda: f"Mozilla/5.0 ({android}) AppleWebKit/{webkit} (KHTML, like Gecko) SamsungBrowser/{rng.randint(20, 26)}.0 "
                f"Chrome/{chrome} Mobile Safari/{webkit}",
        lambda: f"Mozilla/5.0 ({windows}) AppleWebKit/{webkit} (KHTML, like Gecko) Chrome/{chrome} Safari/{webkit} "
                f"OPR/{rng.randint(90, 114)}.0.0.0",
        lambda: f"Mozilla/5.0 ({android}; rv:{firefox}) Gecko/{firefox} Firefox/{firefox}",
    ]
    return rng.choice(kinds)()


def _sample(tree, rng: random.Random) -> str:
    """A string that (very likely) matches the parsed pattern: the first choice of each class,
    a random branch, the minimum repetition (+ up to 2). Anchors are left out (the callers place
    the sample at the agent's start or end)."""
    out = []
    for op, av in tree:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("x" if chr(av) != "x" else "y")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_sample_class(av, rng))
        elif name == "SUBPATTERN":
            out.append(_sample(av[-1], rng))
        elif name == "BRANCH":
            out.append(_sample(rng.choice(av[1]), rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            hi = lo + 2 if hi == sre_constants.MAXREPEAT else hi
            out.append("".join(_sample(sub, rng) for _ in range(rng.randint(lo, max(lo, min(hi, lo + 2))))))
        elif name == "ATOMIC_GROUP":
            out.append(_sample(av, rng))
        # AT (anchors, \b), ASSERT, ASSERT_NOT, GROUPREF: nothing
    return "".join(out)


def _sample_class(items, rng: random.Random) -> str:
    names = [str(op) for op, _ in items]
    if "NEGATE" in names:
        excluded = set()
        for op, av in items:
            if str(op) == "LITERAL":
                excluded.add(chr(av))
            elif str(op) == "RANGE":
                excluded.update(chr(c) for c in range(av[0], av[1] + 1))
        return next(c for c in "x _-/;.0aZ" if c not in excluded)
    op, av = rng.choice(items)
    if str(op) == "LITERAL":
        return chr(av)
    if str(op) == "RANGE":
        return chr(rng.randint(av[0], av[1]))
    if str(op) == "CATEGORY":
        return {"CATEGORY_DIGIT": "7", "CATEGORY_SPACE": " ", "CATEGORY_WORD": "w",
                "CATEGORY_NOT_DIGIT": "d", "CATEGORY_NOT_SPACE": "s", "CATEGORY_NOT_WORD": "-"}.get(str(av), "x")
    return "x"


def pattern_sample(pattern: str, rng: random.Random) -> str:
    try:
        return _sample(sre_parse.parse(pattern, re.ASCII), rng)
    except Exception:  # noqa: BLE001  (a construct the sampler does not know: the literal text instead)
        return pattern.replace("\\", "")


def bot_agent(pattern: str, rng: random.Random) -> str:
    """An agent built to match `pattern`: its sample alone, at the start or embedded in a browser-like string."""
    s = pattern_sample(pattern, rng)
    version = f"{rng.randint(1, 9)}.{rng.randint(0, 20)}"
    return rng.choice([
        s,
        f"{s}/{version}",
        f"{s} (+https://bots.example/{rng.randint(1, 999)})",
        f"Mozilla/5.0 (compatible; {s}; +http://www.example.com/bot.html)",
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        f"Safari/537.36 {s}",
    ])


def bench_corpus(n: int, bot_share: float, seed: int = 1) -> list[str]:
    """n distinct agents: browser agents and, for a share bot_share, agents built from random patterns."""
    rng = random.Random(seed)
    patterns = load_patterns()
    agents: dict[str, None] = {}
    while len(agents) < n:
        ua = bot_agent(rng.choice(patterns), rng) if rng.random() < bot_share else browser_agent(rng)
        agents[ua] = None
    return list(agents)


# --- the bench ------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=5_000, help="distinct agents (default 5000)")
    ap.add_argument("--bots", type=float, default=0.1, help="share of bot agents (default 0.1)")
    ap.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds, median printed (default 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="seconds: 600 agents, 0.3 s warm-up, 3 rounds")
    a = ap.parse_args()
    if a.smoke:
        a.agents, a.warmup, a.rounds = 600, 0.3, 3
    agents = bench_corpus(a.agents, a.bots, a.seed)
    lines = run_java("bench", agents, str(a.warmup), str(a.rounds))
    f = {k: v for line in lines for k, v in (kv.split("=", 1) for kv in line.split() if "=" in kv)}
    n, bots, disagree = int(f["agents"]), int(f["bots"]), int(f["disagree"])
    old, new = float(f["old_us"]), float(f["new_us"])
    print(f"bot_ua bench: {n} distinct agents ({bots} bots), {f['patterns']} patterns: {f['literal']} with a "
          f"literal, {f['residual']} residual; warm-up {a.warmup:g} s, median of {a.rounds} rounds, one JVM")
    print(f"cache miss, full alternation (before): {old:.2f} us/agent (fastest round {float(f['old_min_us']):.2f})")
    print(f"cache miss, literal prefilter (after): {new:.2f} us/agent (fastest round {float(f['new_min_us']):.2f})")
    print(f"new / old = {new / old:.5f}x (old / new = {old / new:.0f}x)")
    print(f"answers agree: {n - disagree} of {n} agents", flush=True)
    if disagree:
        sys.exit(f"{disagree} agents answered differently by the prefilter and the full alternation")


if __name__ == "__main__":
    main()
