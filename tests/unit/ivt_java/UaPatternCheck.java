// Cross-check of the bot_ua rule's regex semantics in java.util.regex (tests/unit/test_ivt.py runs
// it with `java UaPatternCheck.java` when a JDK is on PATH). Reads stdin: line 1 a count P, then P
// patterns, then user agents, one per line (JSON-free on purpose: patterns/UAs hold no newline;
// each line is a JSON string literal decoded by the tiny unescape below, so edge spaces survive).
// Prints, per user agent, the indexes of the matching patterns, space-separated ("-" if none);
// a pattern that does not compile is reported as "ERROR <index> <message>" first.
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.regex.*;

public class UaPatternCheck {
    static String unquote(String s) {  // a JSON string literal holding \" \\ \/ \\uXXXX escapes only
        StringBuilder b = new StringBuilder();
        for (int i = 1; i < s.length() - 1; i++) {
            char c = s.charAt(i);
            if (c != '\\') { b.append(c); continue; }
            char e = s.charAt(++i);
            switch (e) {
                case 'u': b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16)); i += 4; break;
                case 'n': b.append('\n'); break;
                case 't': b.append('\t'); break;
                case 'r': b.append('\r'); break;
                default: b.append(e);
            }
        }
        return b.toString();
    }

    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int n = Integer.parseInt(in.readLine().trim());
        Pattern[] ps = new Pattern[n];
        for (int i = 0; i < n; i++) {
            String p = unquote(in.readLine());
            try { ps[i] = Pattern.compile(p, Pattern.UNIX_LINES); }
            catch (PatternSyntaxException e) { System.out.println("ERROR " + i + " " + e.getDescription()); }
        }
        PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            String ua = unquote(line);
            StringBuilder hits = new StringBuilder();
            for (int i = 0; i < n; i++)
                if (ps[i] != null && ps[i].matcher(ua).find()) hits.append(hits.length() > 0 ? " " : "").append(i);
            out.println(hits.length() > 0 ? hits : "-");
        }
        out.flush();
    }
}
