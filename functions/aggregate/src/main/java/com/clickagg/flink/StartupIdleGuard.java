package com.clickagg.flink;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RuntimeContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.source.RichParallelSourceFunction;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.connectors.kinesis.FlinkKinesisConsumer;

/**
 * The Kinesis consumer, unchanged, except that it may not declare itself idle before it has
 * emitted its first record (or before {@code maxStartupIdleMs} has passed).
 *
 * <p>Why: the consumer counts only shards that have emitted a record towards its watermark and
 * marks the subtask idle while it has none. Right after a start or a restore (the watermark is
 * not part of a checkpoint) a subtask whose first GetRecords is still under way is therefore
 * idle, downstream operators ignore it, the watermark follows the other subtasks alone, and the
 * slow subtask's first clicks are then judged late although they are not. Held back instead,
 * the watermark stays unknown until every subtask has read (the job counts clicks as on time
 * while it is unknown). A subtask whose shards stay empty longer than the limit is let go idle
 * as before, so it cannot stall the watermark for ever.
 */
@SuppressWarnings("deprecation")
public class StartupIdleGuard<T> extends RichParallelSourceFunction<T>
        implements ResultTypeQueryable<T>, CheckpointedFunction {

    private static final long serialVersionUID = 1L;

    private final FlinkKinesisConsumer<T> consumer;
    private final long maxStartupIdleMs;

    public StartupIdleGuard(FlinkKinesisConsumer<T> consumer, long maxStartupIdleMs) {
        this.consumer = consumer;
        this.maxStartupIdleMs = maxStartupIdleMs;
    }

    @Override
    public void setRuntimeContext(RuntimeContext context) {
        super.setRuntimeContext(context);
        consumer.setRuntimeContext(context);
    }

    @Override
    public void open(OpenContext context) throws Exception {
        consumer.open(context);
    }

    @Override
    public void close() throws Exception {
        consumer.close();
    }

    @Override
    public void run(SourceContext<T> context) throws Exception {
        consumer.run(new GuardedContext<>(context, maxStartupIdleMs));
    }

    @Override
    public void cancel() {
        consumer.cancel();
    }

    @Override
    public TypeInformation<T> getProducedType() {
        return consumer.getProducedType();
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        consumer.initializeState(context);
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        consumer.snapshotState(context);
    }

    /** Forwards everything; drops idleness until the first record or the start-up limit. */
    static final class GuardedContext<T> implements SourceContext<T> {
        private final SourceContext<T> context;
        private final long idleAllowedAtMs;
        private volatile boolean emitted;

        GuardedContext(SourceContext<T> context, long maxStartupIdleMs) {
            this.context = context;
            this.idleAllowedAtMs = System.currentTimeMillis() + maxStartupIdleMs;
        }

        @Override
        public void collect(T element) {
            emitted = true;
            context.collect(element);
        }

        @Override
        public void collectWithTimestamp(T element, long timestamp) {
            emitted = true;
            context.collectWithTimestamp(element, timestamp);
        }

        @Override
        public void emitWatermark(Watermark mark) {
            context.emitWatermark(mark);
        }

        @Override
        public void markAsTemporarilyIdle() {
            if (emitted || System.currentTimeMillis() >= idleAllowedAtMs) {
                context.markAsTemporarilyIdle();
            }
        }

        @Override
        public Object getCheckpointLock() {
            return context.getCheckpointLock();
        }

        @Override
        public void close() {
            context.close();
        }
    }
}
