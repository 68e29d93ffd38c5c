package com.clickagg.flink;

import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;
import org.apache.flink.streaming.connectors.kinesis.table.KinesisDynamicSource;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceFunctionProvider;
import org.apache.flink.table.connector.source.abilities.SupportsSourceWatermark;
import org.apache.flink.table.data.RowData;

/**
 * The connector's Kinesis source with a per-shard event-time watermark assigner set on it,
 * holding its watermark back until every shard has been read ({@link ShardAlignedKinesisConsumer}).
 */
public class ShardWatermarkKinesisSource implements ScanTableSource, SupportsSourceWatermark {

    private final KinesisDynamicSource kinesis;
    private final int eventTimeIndex;
    private final long delayMs;
    private final long maxStartupIdleMs;

    public ShardWatermarkKinesisSource(
            KinesisDynamicSource kinesis, int eventTimeIndex, long delayMs, long maxStartupIdleMs) {
        this.kinesis = kinesis;
        this.eventTimeIndex = eventTimeIndex;
        this.delayMs = delayMs;
        this.maxStartupIdleMs = maxStartupIdleMs;
    }

    @Override
    public ChangelogMode getChangelogMode() {
        return kinesis.getChangelogMode();
    }

    @Override
    @SuppressWarnings({"unchecked", "deprecation"})
    public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
        SourceFunctionProvider provider =
                (SourceFunctionProvider) kinesis.getScanRuntimeProvider(context);
        FlinkKinesisConsumer<RowData> consumer =
                (FlinkKinesisConsumer<RowData>) provider.createSourceFunction();
        ShardAlignedKinesisConsumer<RowData> aligned =
                ShardAlignedKinesisConsumer.from(consumer, maxStartupIdleMs);
        aligned.setPeriodicWatermarkAssigner(new EventTimeWatermarks(eventTimeIndex, delayMs));
        return SourceFunctionProvider.of(aligned, false);
    }

    @Override
    public void applySourceWatermark() {
        // the watermarks come from the consumer's per-shard assigner (getScanRuntimeProvider)
    }

    @Override
    public DynamicTableSource copy() {
        return new ShardWatermarkKinesisSource(
                (KinesisDynamicSource) kinesis.copy(), eventTimeIndex, delayMs, maxStartupIdleMs);
    }

    @Override
    public String asSummaryString() {
        return "Kinesis (per-shard watermarks)";
    }
}
