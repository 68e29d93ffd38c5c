package com.clickagg.flink;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * The job's output as an upsert changelog (setting {@code flink_changelog_mode = upsert}): drops
 * the {@code -U} half of every update. Every consumer of the aggregates stream keys its rows and
 * keeps the newest {@code version}: an aggregate's {@code -U} is ignored anyway, and a leaderboard
 * entry's {@code -U} is followed by its {@code +U} with a newer version, which overwrites the
 * entry. {@code -D} (an entry leaving a leaderboard) stays. In Java because a Python filter would
 * cost a Python call per row; the planner has no upsert mode for a changelog sink whose rows have
 * no declared key (the output is a UNION ALL of many aggregates).
 */
public final class DropUpdateBefore implements FilterFunction<Row> {
    private static final long serialVersionUID = 1L;

    @Override
    public boolean filter(Row row) {
        return row.getKind() != RowKind.UPDATE_BEFORE;
    }
}
