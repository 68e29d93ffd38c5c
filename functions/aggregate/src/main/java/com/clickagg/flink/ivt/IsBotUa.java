package com.clickagg.flink.ivt;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
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
 * <p>Why a cache: the alternation of ~1500 patterns costs tens of microseconds per distinct agent,
 * while real traffic repeats a few thousand agents; an LRU map per function instance makes the
 * common case one hash lookup.
 */
public class IsBotUa extends ScalarFunction {
    public static final String RESOURCE = "/ivt/crawler_user_agents.json";
    private static final int CACHE_SIZE = 16_384;

    private transient Pattern pattern;
    private transient Map<String, Boolean> cache;

    @Override
    public void open(FunctionContext context) throws Exception {
        pattern = compile(loadPatterns());
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
        if (pattern == null) { // constant folding at planning time calls eval without open()
            try {
                open(null);
            } catch (Exception e) {
                throw new IllegalStateException("cannot load " + RESOURCE, e);
            }
        }
        Boolean hit = cache.get(userAgent);
        if (hit == null) {
            hit = pattern.matcher(userAgent).find();
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

    static Pattern compile(String[] patterns) {
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
}
