package com.clickagg.flink;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.connectors.kinesis.table.KinesisDynamicSource;
import org.apache.flink.streaming.connectors.kinesis.table.KinesisDynamicTableFactory;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedCatalogTable;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.logical.LogicalTypeRoot;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Table source {@code 'connector' = 'clickagg-kinesis'}: the Kinesis connector's own
 * {@code kinesis} source (FlinkKinesisConsumer, flink-connector-kinesis 4.3.0) with event-time
 * watermarks generated PER SHARD inside the consumer.
 *
 * <p>Why: that source does not support watermark push-down, so a SQL {@code WATERMARK FOR}
 * clause puts one watermark generator behind each source subtask, over all the shards it reads.
 * A shard whose reader falls behind (start-up, a backlog after a restore, a hot shard) then
 * sees the watermark its faster siblings made, and its clicks are judged late although they
 * are not. Here the consumer's per-shard watermark state keeps a lagging shard holding the
 * watermark back (the subtask emits the minimum over its non-idle shards), which is what the
 * FLIP-27 Kinesis source of connector 5.x does with per-split watermarks.
 *
 * <p>Options: every option of {@code 'connector' = 'kinesis'}, plus
 * {@code scan.watermark.event-time-field} (a BIGINT physical column, epoch milliseconds) and
 * {@code scan.watermark.delay} (bounded out-of-orderness). The table declares
 * {@code WATERMARK FOR rowtime AS SOURCE_WATERMARK()} with rowtime computed from that field.
 */
public class ShardWatermarkKinesisTableFactory implements DynamicTableSourceFactory {

    public static final String IDENTIFIER = "clickagg-kinesis";

    public static final ConfigOption<String> EVENT_TIME_FIELD =
            ConfigOptions.key("scan.watermark.event-time-field")
                    .stringType()
                    .noDefaultValue()
                    .withDescription("BIGINT physical column holding the event time in epoch ms.");

    public static final ConfigOption<Duration> WATERMARK_DELAY =
            ConfigOptions.key("scan.watermark.delay")
                    .durationType()
                    .defaultValue(Duration.ZERO)
                    .withDescription("Watermark = max event time seen on a shard - this delay.");

    /** The connector's own option (milliseconds without records before a shard is idle). */
    static final String SHARD_IDLE_INTERVAL = "scan.shard.idle.interval";

    static final long DEFAULT_MAX_STARTUP_IDLE_MS = 60_000L;

    private final KinesisDynamicTableFactory kinesis = new KinesisDynamicTableFactory();

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        Set<ConfigOption<?>> options = new HashSet<>(kinesis.requiredOptions());
        options.add(EVENT_TIME_FIELD);
        return options;
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        Set<ConfigOption<?>> options = new HashSet<>(kinesis.optionalOptions());
        options.add(WATERMARK_DELAY);
        return options;
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        ResolvedCatalogTable table = context.getCatalogTable();
        Map<String, String> options = new HashMap<>(table.getOptions());
        String field = options.remove(EVENT_TIME_FIELD.key());
        String delayText = options.remove(WATERMARK_DELAY.key());
        if (field == null) {
            throw new ValidationException("'" + EVENT_TIME_FIELD.key() + "' is required");
        }
        Configuration conf = new Configuration();
        if (delayText != null) {
            conf.setString(WATERMARK_DELAY.key(), delayText);
        }
        long delayMs = conf.get(WATERMARK_DELAY).toMillis();
        if (delayMs < 0) {
            throw new ValidationException("'" + WATERMARK_DELAY.key() + "' must not be negative");
        }

        List<Column> physical = table.getResolvedSchema().getColumns().stream()
                .filter(Column::isPhysical)
                .collect(Collectors.toList());
        int index = -1;
        for (int i = 0; i < physical.size(); i++) {
            if (physical.get(i).getName().equals(field)) {
                index = i;
            }
        }
        if (index < 0) {
            throw new ValidationException("'" + EVENT_TIME_FIELD.key() + "' = '" + field
                    + "' is not a physical column");
        }
        if (physical.get(index).getDataType().getLogicalType().getTypeRoot()
                != LogicalTypeRoot.BIGINT) {
            throw new ValidationException("'" + EVENT_TIME_FIELD.key() + "' = '" + field
                    + "' must be BIGINT (epoch milliseconds)");
        }

        // the connector's own factory builds the source from the remaining options
        DynamicTableFactory.Context kinesisContext = new FactoryUtil.DefaultDynamicTableContext(
                context.getObjectIdentifier(),
                table.copy(options),
                context.getEnrichmentOptions(),
                context.getConfiguration(),
                context.getClassLoader(),
                context.isTemporary());
        KinesisDynamicSource source =
                (KinesisDynamicSource) kinesis.createDynamicTableSource(kinesisContext);
        // the consumer's own idle interval also bounds how long a subtask that has read nothing
        // may hold the watermark back after a start or restore
        String idle = options.get(SHARD_IDLE_INTERVAL);
        long maxStartupIdleMs = idle == null ? DEFAULT_MAX_STARTUP_IDLE_MS : Long.parseLong(idle.trim());
        return new ShardWatermarkKinesisSource(source, index, delayMs, maxStartupIdleMs);
    }
}
