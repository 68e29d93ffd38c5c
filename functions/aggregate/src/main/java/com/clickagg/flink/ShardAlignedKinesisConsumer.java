package com.clickagg.flink;

import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;
import org.apache.flink.streaming.connectors.kinesis.internals.KinesisDataFetcher;
import org.apache.flink.streaming.connectors.kinesis.model.KinesisStreamShardState;
import org.apache.flink.streaming.connectors.kinesis.model.SentinelSequenceNumber;
import org.apache.flink.streaming.connectors.kinesis.model.SequenceNumber;
import org.apache.flink.streaming.connectors.kinesis.serialization.KinesisDeserializationSchema;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.reflect.Field;
import java.util.List;
import java.util.Properties;
import java.util.Map;

/**
 * The connector's FlinkKinesisConsumer whose subtask emits no watermark (and so never declares
 * itself idle) until EVERY shard it reads has emitted a record, or {@code maxHoldMs} passed.
 *
 * <p>Why: the consumer's watermark is the minimum over the shards that have emitted a record;
 * a shard still waiting for its first GetRecords does not count, and a subtask none of whose
 * shards has emitted yet marks itself idle. After a start or a restore (watermarks are not part
 * of a checkpoint) the first shard to return its backlog therefore drove the watermark alone,
 * and its siblings' clicks were judged late (measured in tests/flink: whole minutes of one
 * subtask after a start, a dozen cells after a restore). Held back, the watermark stays unknown
 * until every shard has been read again (the job counts clicks as on time meanwhile). A shard
 * that stays empty longer than {@code maxHoldMs} stops holding it back (the consumer's own idle
 * rule then applies), so an empty shard cannot stall the watermark for ever.
 *
 * <p>The table source builds its consumer privately; {@link #from} copies the three fields it
 * was built with (flink-connector-kinesis 4.3.0; tests/flink runs this path). Connector 5.x's
 * FLIP-27 source has per-split watermarks of its own and makes this class unnecessary.
 */
public class ShardAlignedKinesisConsumer<T> extends FlinkKinesisConsumer<T> {

    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(ShardAlignedKinesisConsumer.class);

    private final long maxHoldMs;

    public ShardAlignedKinesisConsumer(List<String> streams, KinesisDeserializationSchema<T> deserializer,
                                       Properties configProps, long maxHoldMs) {
        super(streams, deserializer, configProps);
        this.maxHoldMs = maxHoldMs;
    }

    /** The same consumer (streams, deserializer, properties, shard assigner), aligned. */
    @SuppressWarnings("unchecked")
    public static <T> ShardAlignedKinesisConsumer<T> from(FlinkKinesisConsumer<T> consumer, long maxHoldMs) {
        ShardAlignedKinesisConsumer<T> aligned = new ShardAlignedKinesisConsumer<>(
                (List<String>) field(consumer, "streams"),
                (KinesisDeserializationSchema<T>) field(consumer, "deserializer"),
                (Properties) field(consumer, "configProps"),
                maxHoldMs);
        aligned.setShardAssigner(consumer.getShardAssigner());
        return aligned;
    }

    private static Object field(FlinkKinesisConsumer<?> consumer, String name) {
        return read(FlinkKinesisConsumer.class, consumer, name);
    }

    @Override
    protected KinesisDataFetcher<T> createFetcher(List<String> streams, SourceContext<T> sourceContext,
                                                  RuntimeContext runtimeContext, Properties configProps,
                                                  KinesisDeserializationSchema<T> deserializer) {
        return new AlignedFetcher<>(streams, sourceContext, runtimeContext, configProps, deserializer,
                getShardAssigner(), getPeriodicWatermarkAssigner(), getWatermarkTracker(), maxHoldMs);
    }

    static final class AlignedFetcher<T> extends KinesisDataFetcher<T> {
        private final long holdUntilMs;
        private volatile boolean aligned;

        AlignedFetcher(List<String> streams, SourceContext<T> sourceContext, RuntimeContext runtimeContext,
                       Properties configProps, KinesisDeserializationSchema<T> deserializer,
                       org.apache.flink.streaming.connectors.kinesis.KinesisShardAssigner shardAssigner,
                       org.apache.flink.streaming.api.functions.AssignerWithPeriodicWatermarks<T> assigner,
                       org.apache.flink.streaming.connectors.kinesis.util.WatermarkTracker tracker,
                       long maxHoldMs) {
            super(streams, sourceContext, runtimeContext, configProps, deserializer, shardAssigner,
                    assigner, tracker);
            this.holdUntilMs = System.currentTimeMillis() + maxHoldMs;
        }

        @Override
        protected void emitWatermark() {
            if (aligned) {
                super.emitWatermark();
                return;
            }
            boolean everyShard = everyShardEmitted();
            if (everyShard || getCurrentTimeMillis() >= holdUntilMs) {
                aligned = true;
                LOG.info("Watermark hold released: {}", everyShard
                        ? "every shard has emitted a record" : "hold expired with a shard not yet read");
                super.emitWatermark();
            }
        }

        /**
         * Every subscribed shard has EMITTED a record (or was finished by a reshard). Emitted, not
         * fetched: the connector queues fetched records per shard and a separate emitter thread
         * sends them on; the watermark is the minimum over the shards' last emitted watermarks, so
         * a shard whose first records are still queued would not hold it back yet (seen once in CI:
         * after a restore, whole minutes of clicks judged late; the cause read from the connector's
         * source: one shard's replayed backlog driving the watermark ahead of a sibling's queued
         * records).
         */
        private boolean everyShardEmitted() {
            List<KinesisStreamShardState> shards = getSubscribedShardsState();
            Map<?, ?> watermarks = (Map<?, ?>) read(KinesisDataFetcher.class, this, "shardWatermarks");
            for (int i = 0; i < shards.size(); i++) {
                SequenceNumber last = shards.get(i).getLastProcessedSequenceNum();
                boolean finished = SentinelSequenceNumber.SENTINEL_SHARD_ENDING_SEQUENCE_NUM.get().equals(last);
                Object state = watermarks.get(i);
                if (!finished && (state == null || read(state.getClass(), state, "lastEmittedRecordWatermark") == null)) {
                    return false;
                }
            }
            return true; // also with no shard at all: the consumer then marks the subtask idle
        }
    }

    /** A private field of the connector (4.3.0): the hold reads the per-shard state it keeps. */
    private static Object read(Class<?> owner, Object target, String name) {
        try {
            Field f = owner.getDeclaredField(name);
            f.setAccessible(true);
            return f.get(target);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(owner.getSimpleName() + "." + name
                    + " not found: this class is written for flink-connector-kinesis 4.3.0", e);
        }
    }
}
