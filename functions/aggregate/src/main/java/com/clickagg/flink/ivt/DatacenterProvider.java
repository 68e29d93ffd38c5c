package com.clickagg.flink.ivt;

import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * DATACENTER_PROVIDER(ip): the data-centre provider whose IPv4 range holds ip, else NULL (rule
 * datacenter_ip of common/ivt.py). IPv4-mapped IPv6 addresses are unwrapped; other IPv6, NULL
 * and anything that is not an address: NULL.
 *
 * <p>The ranges are the classpath copy of functions/common/ivt_data/datacenter_ipv4.csv
 * (first_ip,last_ip,provider; inclusive, sorted, non-overlapping), held as two sorted long arrays
 * and searched by bisection: O(log n) per click, no allocation.
 *
 * <p>Parsing follows Python's ipaddress.ip_address(ip.strip()): a dotted quad is exactly four
 * decimal parts 0-255 without leading zeros; a string with ':' goes to InetAddress, which for such
 * strings only parses a literal and never resolves a name (no DNS from hostile input).
 */
public class DatacenterProvider extends ScalarFunction {
    public static final String RESOURCE = "/ivt/datacenter_ipv4.csv";
    private static final Pattern IPV6_CHARS = Pattern.compile("[0-9A-Fa-f:.]+(%[0-9A-Za-z_.-]+)?");

    private transient long[] firsts;
    private transient long[] lasts;
    private transient String[] providers;

    @Override
    public void open(FunctionContext context) throws Exception {
        load();
    }

    public String eval(String ip) {
        if (firsts == null) { // constant folding at planning time calls eval without open()
            try {
                load();
            } catch (IOException e) {
                throw new IllegalStateException("cannot load " + RESOURCE, e);
            }
        }
        long n = ipv4(ip);
        if (n < 0) {
            return null;
        }
        int lo = 0, hi = firsts.length - 1, found = -1;
        while (lo <= hi) { // the last range starting at or before n
            int mid = (lo + hi) >>> 1;
            if (firsts[mid] <= n) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found >= 0 && n <= lasts[found] ? providers[found] : null;
    }

    /** The IPv4 address as 0..2^32-1, or -1. */
    static long ipv4(String raw) {
        if (raw == null) {
            return -1;
        }
        String ip = raw.strip();
        if (ip.isEmpty()) {
            return -1;
        }
        if (ip.indexOf(':') >= 0) {
            if (!IPV6_CHARS.matcher(ip).matches()) {
                return -1;
            }
            try {
                InetAddress a = InetAddress.getByName(ip);
                if (!(a instanceof Inet4Address)) { // Java unwraps IPv4-mapped (::ffff:a.b.c.d)
                    return -1;
                }
                byte[] b = a.getAddress();
                return ((b[0] & 0xFFL) << 24) | ((b[1] & 0xFFL) << 16) | ((b[2] & 0xFFL) << 8) | (b[3] & 0xFFL);
            } catch (UnknownHostException | SecurityException e) {
                return -1;
            }
        }
        return dottedQuad(ip);
    }

    static long dottedQuad(String ip) {
        String[] parts = ip.split("\\.", -1);
        if (parts.length != 4) {
            return -1;
        }
        long n = 0;
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || (p.length() > 1 && p.charAt(0) == '0')) {
                return -1;
            }
            int v = 0;
            for (int i = 0; i < p.length(); i++) {
                char c = p.charAt(i);
                if (c < '0' || c > '9') {
                    return -1;
                }
                v = v * 10 + (c - '0');
            }
            if (v > 255) {
                return -1;
            }
            n = (n << 8) | v;
        }
        return n;
    }

    private void load() throws IOException {
        List<long[]> bounds = new ArrayList<>();
        List<String> names = new ArrayList<>();
        try (InputStream in = DatacenterProvider.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IOException(RESOURCE + " is not on the classpath (built into the job jar)");
            }
            BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
            String header = r.readLine();
            if (!"first_ip,last_ip,provider".equals(header)) {
                throw new IOException(RESOURCE + ": unexpected header " + header);
            }
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isEmpty()) {
                    continue;
                }
                int a = line.indexOf(','), b = line.indexOf(',', a + 1);
                long first = dottedQuad(line.substring(0, a)), last = dottedQuad(line.substring(a + 1, b));
                if (first < 0 || last < first) {
                    throw new IOException(RESOURCE + ": bad range " + line);
                }
                bounds.add(new long[] {first, last});
                names.add(unquote(line.substring(b + 1)));
            }
        }
        firsts = new long[bounds.size()];
        lasts = new long[bounds.size()];
        providers = names.toArray(new String[0]);
        for (int i = 0; i < firsts.length; i++) {
            firsts[i] = bounds.get(i)[0];
            lasts[i] = bounds.get(i)[1];
            if (i > 0 && firsts[i] <= lasts[i - 1]) {
                throw new IOException(RESOURCE + ": ranges unsorted or overlapping at line " + (i + 2));
            }
        }
    }

    /** A CSV field: "..." with "" for a quote (RFC 4180), else as is. */
    static String unquote(String field) {
        if (field.length() >= 2 && field.charAt(0) == '"' && field.charAt(field.length() - 1) == '"') {
            return field.substring(1, field.length() - 1).replace("\"\"", "\"");
        }
        return field;
    }

    @Override
    public boolean isDeterministic() {
        return true;
    }
}
