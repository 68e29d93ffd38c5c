package com.clickagg.flink.ivt;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * IS_BOT_UA(user_agent): does the user agent match a pattern of the crawler-user-agents list
 * (rule bot_ua of common/ivt.py, the normative text). NULL user agent: FALSE.
 *
 * <p>The list is the classpath copy of functions/common/ivt_data/crawler_user_agents.json (Maven
 * copies it into the jar: one copy of the data). Semantics as in Python: one alternation of all
 * patterns, find() (re.search), case-sensitive, UNIX_LINES (Python's $ and ^ only know \n);
 * Java's \d \w \s \b are ASCII like Python's re.ASCII.
 *
 * <p>Why a cache: real traffic repeats a few thousand agents; an LRU map per function instance
 * makes the common case one hash lookup.
 *
 * <p>Why a prefilter ({@link Prefilter}): a cache miss used to try all ~1500 alternatives at every
 * position of the agent (15 % of the job's CPU samples; ~1.8 ms per browser-like agent in
 * bench/bot_ua.py). Nearly every pattern contains a literal (e.g. {@code Googlebot/} of
 * {@code Googlebot\/}; one per top-level alternative of {@code a|b}) that every one of its
 * matches must contain; a miss now looks up each 3-character window of the agent in an index of
 * those literals and runs only the patterns whose literal starts there, plus the patterns without
 * a literal (the "residual" ones, one alternation run on every miss). Guarantee: the answer
 * equals the full alternation's find() ({@link #compile}) for every input, because a literal is
 * derived only where certain (see {@link Prefilter#literalsOf}), otherwise the pattern is
 * residual (tests/flink/test_bot_ua_parity.py holds the function to common/ivt.py on ~26,000
 * agents; bench/bot_ua.py measures both). Hand-written because the job's dependencies hold no
 * multi-literal (Aho-Corasick) matcher.
 */
public class IsBotUa extends ScalarFunction {
    public static final String RESOURCE = "/ivt/crawler_user_agents.json";
    private static final int CACHE_SIZE = 16_384;

    private transient Prefilter matcher;
    private transient Map<String, Boolean> cache;

    @Override
    public void open(FunctionContext context) throws Exception {
        matcher = Prefilter.build(loadPatterns());
        cache = new LinkedHashMap<String, Boolean>(CACHE_SIZE, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Boolean> eldest) {
                return size() > CACHE_SIZE;
            }
        };
    }

    public Boolean eval(String userAgent) {
        if (userAgent == null) {
            return false;
        }
        if (matcher == null) { // constant folding at planning time calls eval without open()
            try {
                open(null);
            } catch (Exception e) {
                throw new IllegalStateException("cannot load " + RESOURCE, e);
            }
        }
        Boolean hit = cache.get(userAgent);
        if (hit == null) {
            hit = matcher.find(userAgent);
            cache.put(userAgent, hit);
        }
        return hit;
    }

    static String[] loadPatterns() throws IOException {
        try (InputStream in = IsBotUa.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IOException(RESOURCE + " is not on the classpath (built into the job jar)");
            }
            String[] patterns = new ObjectMapper().readValue(in, String[].class);
            if (patterns.length == 0) {
                throw new IOException(RESOURCE + " holds no pattern");
            }
            return patterns;
        }
    }

    /** The full alternation {@code (?:p1)|(?:p2)|...} (the matcher before the prefilter; the baseline of bench/bot_ua.py). */
    public static Pattern compile(String[] patterns) {
        StringBuilder any = new StringBuilder();
        for (String p : patterns) {
            if (any.length() > 0) {
                any.append('|');
            }
            any.append("(?:").append(p).append(')');
        }
        return Pattern.compile(any.toString(), Pattern.UNIX_LINES);
    }

    @Override
    public boolean isDeterministic() {
        return true;
    }

    /**
     * {@code find(ua)} == {@code compile(patterns).matcher(ua).find()} for every ua. Patterns with a
     * literal (length >= 3) are indexed by the literal's first 3 characters; patterns without one
     * are residual and run as one alternation on every call. Immutable after build: thread-safe.
     */
    public static final class Prefilter {
        static final int MIN_LITERAL = 3;

        private final String[] literals;     // per index entry (a pattern with a top-level | has several)
        private final Pattern[] patterns;    // per index entry: the whole pattern, UNIX_LINES
        private final long[] keys;           // open addressing: 3 chars packed in 48 bits (+1 bit: used)
        private final int[][] slots;         // indexes into literals/patterns per key
        private final int mask;
        private final Pattern residual;      // null: none
        private final int indexedCount;
        private final int residualCount;

        private Prefilter(List<String> literals, List<Pattern> patterns, int indexedCount, List<String> residual) {
            this.indexedCount = indexedCount;
            this.literals = literals.toArray(new String[0]);
            this.patterns = patterns.toArray(new Pattern[0]);
            int capacity = Integer.highestOneBit(Math.max(4, this.literals.length) * 4);
            keys = new long[capacity];
            slots = new int[capacity][];
            mask = capacity - 1;
            for (int i = 0; i < this.literals.length; i++) {
                String lit = this.literals[i];
                int slot = slotOf(key(lit.charAt(0), lit.charAt(1), lit.charAt(2)), true);
                int[] old = slots[slot];
                int[] grown = old == null ? new int[1] : Arrays.copyOf(old, old.length + 1);
                grown[grown.length - 1] = i;
                slots[slot] = grown;
            }
            residualCount = residual.size();
            // in the list's order, as in the full alternation
            this.residual = residual.isEmpty() ? null : compile(residual.toArray(new String[0]));
        }

        public static Prefilter build(String[] patterns) {
            List<String> literals = new ArrayList<>();
            List<Pattern> compiled = new ArrayList<>();
            List<String> residual = new ArrayList<>();
            int indexed = 0;
            for (String p : patterns) {
                String[] lits = literalsOf(p);
                if (lits == null) {
                    residual.add(p);
                } else {
                    Pattern own = Pattern.compile(p, Pattern.UNIX_LINES);
                    for (String lit : lits) {
                        literals.add(lit);
                        compiled.add(own);
                    }
                    indexed++;
                }
            }
            return new Prefilter(literals, compiled, indexed, residual);
        }

        /** Patterns with literals (indexed). */
        public int literalCount() {
            return indexedCount;
        }

        public int residualCount() {
            return residualCount;
        }

        public boolean find(String ua) {
            if (residual != null && residual.matcher(ua).find()) {
                return true;
            }
            int n = ua.length();
            if (n < MIN_LITERAL) {
                return false;
            }
            long k = ((long) ua.charAt(0) << 16) | ua.charAt(1);
            for (int i = 0; i + MIN_LITERAL <= n; i++) {
                k = ((k << 16) | ua.charAt(i + 2)) & 0xFFFF_FFFF_FFFFL;
                int slot = slotOf(k | USED, false);
                if (slot < 0) {
                    continue;
                }
                for (int j : slots[slot]) {
                    if (ua.startsWith(literals[j], i) && patterns[j].matcher(ua).find()) {
                        return true;
                    }
                }
            }
            return false;
        }

        private static final long USED = 1L << 48;

        private static long key(int c0, int c1, int c2) {
            return ((long) c0 << 32) | ((long) c1 << 16) | c2 | USED;
        }

        private int slotOf(long key, boolean insert) {
            int h = (int) (key ^ (key >>> 29));
            h ^= h >>> 15;
            h *= 0x2c1b3c6d;
            h ^= h >>> 12;
            for (int s = h & mask; ; s = (s + 1) & mask) {
                if (keys[s] == key) {
                    return s;
                }
                if (keys[s] == 0) {
                    if (!insert) {
                        return -1;
                    }
                    keys[s] = key;
                    return s;
                }
            }
        }

        /**
         * Literals such that every match of {@code pattern} contains at least one of them, or null
         * (residual): per top-level alternative of the pattern ({@code a|b}: two; one if it has no
         * top-level {@code |}), the longest run of plain characters in the alternative's top-level
         * sequence, at least {@link #MIN_LITERAL} long, else the pattern is residual. A match of
         * the pattern is a match of one of its alternatives, which holds that alternative's run.
         * Escaped ASCII punctuation ({@code \/ \. \-}) is a plain character; a quantified
         * character, a class {@code [...]}, a group, {@code .}, an anchor or a class escape
         * ({@code \d}) ends the run. Anything else (inline flags or lookaround {@code (?..)},
         * {@code \Q}, {@code \p}, a backreference, a non-ASCII character, a construct not parsed
         * with certainty) makes the pattern residual.
         */
        public static String[] literalsOf(String pattern) {
            List<String> found = new ArrayList<>();
            String best = "";
            StringBuilder run = new StringBuilder();
            int n = pattern.length();
            int i = 0;
            while (i <= n) {
                if (i == n || pattern.charAt(i) == '|') { // the end of a top-level alternative
                    if (run.length() > best.length()) {
                        best = run.toString();
                    }
                    if (best.length() < MIN_LITERAL) {
                        return null;
                    }
                    found.add(best);
                    best = "";
                    run.setLength(0);
                    i++;
                    continue;
                }
                char c = pattern.charAt(i);
                if (c >= 0x7F || c < 0x20) {
                    return null; // non-ASCII (code points of two chars) or control characters
                }
                int next; // index after the atom
                boolean plain = false; // the atom is one plain character (c, or the escaped one)
                char ch = c;
                if (c == '\\') {
                    if (i + 1 >= n) {
                        return null;
                    }
                    char e = pattern.charAt(i + 1);
                    if (LITERAL_ESCAPES.indexOf(e) >= 0) {
                        plain = true;
                        ch = e;
                    } else if (CLASS_ESCAPES.indexOf(e) < 0) {
                        return null; // \Q, \p{..}, \x.., \1, \n ...: not parsed here
                    }
                    next = i + 2;
                } else if (c == '[') {
                    next = classEnd(pattern, i);
                    if (next < 0) {
                        return null;
                    }
                } else if (c == '(') {
                    if (i + 1 < n && pattern.charAt(i + 1) == '?'
                            && !(i + 2 < n && pattern.charAt(i + 2) == ':')) {
                        return null; // inline flags, lookaround, named groups
                    }
                    next = groupEnd(pattern, i);
                    if (next < 0) {
                        return null;
                    }
                } else if (c == '.' || c == '^' || c == '$') {
                    next = i + 1;
                } else if (META.indexOf(c) >= 0) {
                    return null; // a stray ) ] { }, a quantifier without an atom
                } else {
                    plain = true;
                    next = i + 1;
                }
                int after = quantifierEnd(pattern, next);
                if (after < 0) {
                    return null;
                }
                if (plain && after == next) {
                    run.append(ch);
                } else {
                    // the atom is optional/repeated, or not one plain character: the run ends here
                    if (run.length() > best.length()) {
                        best = run.toString();
                    }
                    run.setLength(0);
                }
                i = after;
            }
            return found.toArray(new String[0]);
        }

        private static final String META = "\\^$.|?*+()[]{}";
        // escaped ASCII punctuation that both Java and Python read as the character itself
        private static final String LITERAL_ESCAPES = "/.-\\^$|?*+()[]{}!\"#%&',:;<=>@_`~ ";
        // one-character classes or zero-width assertions: an atom that ends a run
        private static final String CLASS_ESCAPES = "dDwWsSbB";

        /** index after the quantifier at i ({@code ? * + {n} {n,} {n,m}}, then an optional {@code ?}/{@code +}); i if none; -1 unsure. */
        private static int quantifierEnd(String p, int i) {
            int n = p.length();
            if (i >= n) {
                return i;
            }
            char c = p.charAt(i);
            int j;
            if (c == '?' || c == '*' || c == '+') {
                j = i + 1;
            } else if (c == '{') {
                j = i + 1;
                int digits = 0;
                while (j < n && Character.isDigit(p.charAt(j))) {
                    j++;
                    digits++;
                }
                if (digits == 0) {
                    return -1; // {,m} is Python-only; a literal { differs between the engines
                }
                if (j < n && p.charAt(j) == ',') {
                    j++;
                    while (j < n && Character.isDigit(p.charAt(j))) {
                        j++;
                    }
                }
                if (j >= n || p.charAt(j) != '}') {
                    return -1;
                }
                j++;
            } else {
                return i;
            }
            if (j < n && (p.charAt(j) == '?' || p.charAt(j) == '+')) {
                j++;
            }
            if (j < n && "?*+{".indexOf(p.charAt(j)) >= 0) {
                return -1; // stacked quantifiers
            }
            return j;
        }

        /** index after the class starting at i, or -1 (nested classes, && and []...] are not parsed). */
        private static int classEnd(String p, int i) {
            int n = p.length();
            int j = i + 1;
            if (j < n && p.charAt(j) == '^') {
                j++;
            }
            if (j < n && p.charAt(j) == ']') {
                return -1;
            }
            while (j < n) {
                char c = p.charAt(j);
                if (c == '\\') {
                    j += 2;
                } else if (c == '[' || (c == '&' && j + 1 < n && p.charAt(j + 1) == '&')) {
                    return -1;
                } else if (c == ']') {
                    return j + 1;
                } else {
                    j++;
                }
            }
            return -1;
        }

        /** index after the group starting at i, or -1. */
        private static int groupEnd(String p, int i) {
            int n = p.length();
            int depth = 0;
            int j = i;
            while (j < n) {
                char c = p.charAt(j);
                if (c == '\\') {
                    j += 2;
                } else if (c == '[') {
                    j = classEnd(p, j);
                    if (j < 0) {
                        return -1;
                    }
                } else if (c == '(') {
                    depth++;
                    j++;
                } else if (c == ')') {
                    depth--;
                    j++;
                    if (depth == 0) {
                        return j;
                    }
                } else {
                    j++;
                }
            }
            return -1;
        }
    }
}
