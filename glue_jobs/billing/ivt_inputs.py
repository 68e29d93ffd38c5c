"""What the billing job's Spark code needs from common/ivt.py, as plain values: the bot_ua
pattern as ONE java.util.regex, the data-centre ranges keyed by /16 block for an equi-join, and
the Java regexes that turn an `ip` string into its IPv4 address exactly as `ivt.ipv4_int` does.

Pure Python (no pyspark): infra tests import it from the Glue library zip.

Data files: the same ones `ivt` reads (common/ivt_data/). On Glue, `common` is imported from
the --extra-py-files zip (zipimport), where `ivt.DATA_DIR` is a path inside a zip file that
`open()` cannot read: the files are then read through the package loader (`pkgutil.get_data`),
copied once to a temporary directory, and parsed by `ivt`'s own loaders (one parser).
"""
from __future__ import annotations

import atexit
import pkgutil
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

try:  # on Glue `common` is in the --extra-py-files zip; in a checkout it is functions/common
    from common import ivt
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))
    from common import ivt

DATA_FILES = (ivt.BOT_PATTERNS_FILE.name, ivt.DATACENTER_FILE.name)
BLOCK_BITS = 16  # datacenter ranges are joined on ip >> 16 (4,326 block rows for 3,429 ranges)


@lru_cache(maxsize=None)
def data_dir() -> Path:
    """A directory holding ivt_data's files: ivt.DATA_DIR when it is a real directory (a
    checkout, or the zip unpacked), else a temporary copy read through `common`'s loader."""
    if all((ivt.DATA_DIR / name).is_file() for name in DATA_FILES):
        return ivt.DATA_DIR
    tmp = Path(tempfile.mkdtemp(prefix="clickagg-ivt-data-"))
    atexit.register(shutil.rmtree, tmp, True)
    package = ivt.__name__.rpartition(".")[0]  # "common"
    for name in DATA_FILES:
        data = pkgutil.get_data(package, f"{ivt.DATA_DIR.name}/{name}")
        if data is None:
            raise FileNotFoundError(f"{package}/{ivt.DATA_DIR.name}/{name}: not in the library")
        (tmp / name).write_bytes(data)
    return tmp


@lru_cache(maxsize=None)
def bot_patterns() -> tuple[str, ...]:
    return ivt.load_bot_patterns(data_dir() / ivt.BOT_PATTERNS_FILE.name)


@lru_cache(maxsize=None)
def datacenter_ranges() -> tuple[tuple[int, int, str], ...]:
    """Sorted, non-overlapping (checked by ivt's loader): a click matches at most one range."""
    return ivt.load_datacenter_ranges(data_dir() / ivt.DATACENTER_FILE.name)


def bot_regex(patterns=None) -> str:
    """The patterns as one java.util.regex for Spark's `rlike` (Matcher.find): the same
    alternation of non-capturing groups as ivt.BotMatcher, with `(?d)` = UNIX_LINES, so that
    `$`/`^`/`.` treat only '\\n' as a line end, like Python (docs/ivt.md, "Regex semantics")."""
    patterns = bot_patterns() if patterns is None else patterns
    return "(?d)" + "|".join(f"(?:{p})" for p in patterns)


def datacenter_blocks(ranges=None, bits: int = BLOCK_BITS) -> list[tuple[int, int, int]]:
    """(block, first, last) for every /(32-bits) block a range touches: the equi-join key of a
    broadcast hash join (block = ip >> bits) whose condition first <= ip <= last picks the one
    range holding the address, if any."""
    ranges = datacenter_ranges() if ranges is None else ranges
    return [(block, first, last) for first, last, _ in ranges
            for block in range(first >> bits, (last >> bits) + 1)]


# --- ip string -> IPv4 integer, as ivt.ipv4_int (ipaddress.ip_address(ip.strip())) ----------------
@lru_cache(maxsize=None)
def python_whitespace_class() -> str:
    """A Java character class of the characters Python's str.strip() removes (str.isspace)."""
    codes = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    return "[" + "".join(f"\\x{{{c:x}}}" for c in codes) + "]"


def strip_regex() -> str:
    """regexp_replace(ip, this, '') = ip.strip()."""
    ws = python_whitespace_class()
    return f"^{ws}+|{ws}+\\z"


# ipaddress.IPv4Address: four ASCII-decimal octets of 1-3 digits, no leading zero, <= 255.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_QUAD = f"{_OCTET}\\.{_OCTET}\\.{_OCTET}\\.{_OCTET}"
_ZERO, _FFFF, _HEX = "0{1,4}", "[fF]{4}", "[0-9a-fA-F]{1,4}"
_SCOPE = "(?:%[^%]+)?"  # ipaddress: an IPv6 scope id is non-empty and holds no '%'


def ipv4_regex() -> str:
    """A stripped string that IS an IPv4 address (anchored)."""
    return f"^{_QUAD}\\z"


def _mapped_forms(tails: list[str]) -> list[str]:
    """Texts of 0:0:0:0:0:ffff:<tail> (tail = the low 32 bits as 2 hextets or a dotted quad),
    explicit or with '::' standing for a run of >= 1 of the five zero hextets."""
    forms = [":".join([_ZERO] * 5 + [_FFFF]) + ":" + t for t in tails]
    for i in range(5):  # the run covers hextets i .. j-1 (all zero), 0 <= i < j <= 5
        for j in range(i + 1, 6):
            head = ":".join([_ZERO] * i)
            rest = ":".join([_ZERO] * (5 - j) + [_FFFF])
            forms += [f"{head}::{rest}:{t}" for t in tails]
    return forms


def mapped_quad_regex() -> str:
    """A stripped string that is an IPv4-mapped IPv6 address written with a dotted quad
    (::ffff:1.2.3.4, 0:0:0:0:0:ffff:1.2.3.4, ...), optional scope id."""
    return f"^(?:{'|'.join(_mapped_forms([_QUAD]))}){_SCOPE}\\z"


def mapped_hex_regex() -> str:
    """A stripped string that is an IPv4-mapped IPv6 address whose low 32 bits are hextets:
    ::ffff:102:304, ..., and '::' inside those low 32 bits (0:0:0:0:0:ffff::, ...:ffff::h,
    ...:ffff:h::)."""
    lead = ":".join([_ZERO] * 5 + [_FFFF])
    forms = _mapped_forms([f"{_HEX}:{_HEX}"]) + [f"{lead}::", f"{lead}::{_HEX}", f"{lead}:{_HEX}::"]
    return f"^(?:{'|'.join(forms)}){_SCOPE}\\z"


# Once a string is known to be one of the mapped forms, its low 32 bits follow the first 'ffff:'
# (the hextets before it are all zeros): the quad, or 'h1:h2' / ':' / ':h2' / 'h1:' (empty = 0).
QUAD_TAIL_REGEX = f"({_QUAD}){_SCOPE}\\z"
HEX_TAIL_REGEX = "[fF]{4}:([0-9a-fA-F:]*)" + _SCOPE + "\\z"
