package com.clickagg.flink.ivt;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Command-line access to IS_BOT_UA for tests/flink/test_bot_ua_parity.py and bench/bot_ua.py (not
 * used by the job). Input on stdin: one user agent per line as a JSON string (so agents may hold
 * newlines; {@code null}: a NULL agent). Needs the Flink table API and Flink's shaded Jackson on the classpath besides the job
 * jar (PyFlink's lib/flink-table-api-java-uber and lib/flink-dist jars).
 *
 * <pre>
 *   check [--full]
 *             first line "patterns P literal L residual R", then per agent IS_BOT_UA's answer
 *             (the function's eval: prefilter + cache), 0 or 1; --full: followed by the full
 *             alternation's (IsBotUa.compile(patterns).find(), the matcher before the prefilter)
 *   prefilter PATTERNS.json
 *             per agent the Prefilter's answer and the full alternation's (0 or 1 each) for the
 *             patterns of the file (a JSON array) instead of the list: the residual path and the
 *             literal extraction on constructs the list may not hold
 *   literals  per pattern of the list, one JSON line [pattern, [literal, ...] or null (residual)]
 *   bench [warmup-seconds [rounds]]
 *             cache-miss cost per distinct agent, full alternation vs prefilter, in one JVM:
 *             key=value lines (old_us, new_us per agent: median of the rounds)
 * </pre>
 */
public final class BotUaCheck {
    private BotUaCheck() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "check";
        String[] patterns = IsBotUa.loadPatterns();
        PrintWriter out = new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)));
        ObjectMapper json = new ObjectMapper();
        switch (mode) {
            case "check": {
                IsBotUa.Prefilter prefilter = IsBotUa.Prefilter.build(patterns);
                out.println("patterns " + patterns.length + " literal " + prefilter.literalCount()
                        + " residual " + prefilter.residualCount());
                IsBotUa function = new IsBotUa(); // eval without open(): the constant-folding path
                Pattern full = args.length > 1 && args[1].equals("--full") ? IsBotUa.compile(patterns) : null;
                for (String ua : readAgents(json)) {
                    out.print(function.eval(ua) ? '1' : '0');
                    if (full != null) {
                        out.print(ua != null && full.matcher(ua).find() ? '1' : '0');
                    }
                    out.println();
                }
                break;
            }
            case "prefilter": {
                String[] own = json.readValue(new java.io.File(args[1]), String[].class);
                IsBotUa.Prefilter prefilter = IsBotUa.Prefilter.build(own);
                out.println("patterns " + own.length + " literal " + prefilter.literalCount()
                        + " residual " + prefilter.residualCount());
                Pattern full = IsBotUa.compile(own);
                for (String ua : readAgents(json)) {
                    out.print(prefilter.find(ua) ? '1' : '0');
                    out.println(full.matcher(ua).find() ? '1' : '0');
                }
                break;
            }
            case "literals":
                for (String p : patterns) {
                    out.println(json.writeValueAsString(new Object[] {p, IsBotUa.Prefilter.literalsOf(p)}));
                }
                break;
            case "bench":
                bench(out, patterns, readAgents(json), args.length > 1 ? Double.parseDouble(args[1]) : 3.0,
                        args.length > 2 ? Integer.parseInt(args[2]) : 7);
                break;
            default:
                throw new IllegalArgumentException("mode: check | prefilter | literals | bench, not " + mode);
        }
        out.flush();
    }

    private static List<String> readAgents(ObjectMapper json) throws Exception {
        List<String> agents = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            agents.add(json.readValue(line, String.class));
        }
        return agents;
    }

    private static void bench(PrintWriter out, String[] patterns, List<String> agents, double warmupSeconds,
                              int rounds) {
        long t0 = System.nanoTime();
        Pattern full = IsBotUa.compile(patterns);
        long t1 = System.nanoTime();
        IsBotUa.Prefilter prefilter = IsBotUa.Prefilter.build(patterns);
        long t2 = System.nanoTime();
        String[] uas = agents.toArray(new String[0]);
        int bots = 0;
        int disagree = 0;
        for (String ua : uas) {
            boolean old = full.matcher(ua).find();
            bots += old ? 1 : 0;
            disagree += old != prefilter.find(ua) ? 1 : 0;
        }
        long until = System.nanoTime() + (long) (warmupSeconds * 1e9);
        int sink = 0;
        do { // warm-up: both paths JIT-compiled before any timed round
            sink += runOld(full, uas) + runNew(prefilter, uas);
        } while (System.nanoTime() < until);
        double[] oldUs = new double[rounds];
        double[] newUs = new double[rounds];
        for (int r = 0; r < rounds; r++) { // alternating, so drift hits both
            long a = System.nanoTime();
            sink += runOld(full, uas);
            long b = System.nanoTime();
            sink += runNew(prefilter, uas);
            long c = System.nanoTime();
            oldUs[r] = (b - a) / 1e3 / uas.length;
            newUs[r] = (c - b) / 1e3 / uas.length;
        }
        Arrays.sort(oldUs);
        Arrays.sort(newUs);
        out.println("patterns=" + patterns.length + " literal=" + prefilter.literalCount()
                + " residual=" + prefilter.residualCount());
        out.println("agents=" + uas.length + " bots=" + bots + " disagree=" + disagree + " rounds=" + rounds
                + " sink=" + sink);
        out.println(String.format("build_ms old=%.1f new=%.1f", (t1 - t0) / 1e6, (t2 - t1) / 1e6));
        out.println(String.format("old_us=%.3f new_us=%.3f old_min_us=%.3f new_min_us=%.3f",
                oldUs[rounds / 2], newUs[rounds / 2], oldUs[0], newUs[0]));
    }

    private static int runOld(Pattern full, String[] uas) {
        int n = 0;
        for (String ua : uas) {
            n += full.matcher(ua).find() ? 1 : 0;
        }
        return n;
    }

    private static int runNew(IsBotUa.Prefilter prefilter, String[] uas) {
        int n = 0;
        for (String ua : uas) {
            n += prefilter.find(ua) ? 1 : 0;
        }
        return n;
    }
}
