-- Every recorded call is written into the executions table and each of its
-- indexes; the two time indexes cost a third of the writer's time and serve
-- no query on the call path's behalf. Retention now finds its boundary in
-- row order (rows are written in the order calls end, so time and id agree
-- but for stragglers), and a live request's sample id is looked up after
-- the row id the shadow began at, on the replay index.
DROP INDEX executions_target_time;
DROP INDEX executions_time;
