package com.clickagg.flink;

import org.apache.flink.streaming.api.functions.AssignerWithPeriodicWatermarks;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.table.data.RowData;

/**
 * Event time from a BIGINT field (epoch ms); watermark = max event time - delay, the same bound
 * as SQL's {@code WATERMARK FOR rowtime AS rowtime - INTERVAL 'delay'}. The consumer keeps one
 * copy per shard. Before a shard's first record it reports Long.MIN_VALUE (no watermark yet),
 * so a shard that has not been read holds the subtask's watermark back until it is idle.
 */
@SuppressWarnings("deprecation")
public class EventTimeWatermarks implements AssignerWithPeriodicWatermarks<RowData> {

    private static final long serialVersionUID = 1L;

    private final int index;
    private final long delayMs;
    private long maxEventTime;

    public EventTimeWatermarks(int index, long delayMs) {
        this.index = index;
        this.delayMs = delayMs;
        this.maxEventTime = Long.MIN_VALUE + delayMs;
    }

    @Override
    public long extractTimestamp(RowData row, long previousTimestamp) {
        if (row == null || row.isNullAt(index)) {
            return previousTimestamp; // rejected downstream (the job requires event_time)
        }
        long eventTime = row.getLong(index);
        if (eventTime > maxEventTime) {
            maxEventTime = eventTime;
        }
        return eventTime;
    }

    @Override
    public Watermark getCurrentWatermark() {
        return new Watermark(maxEventTime - delayMs);
    }
}
