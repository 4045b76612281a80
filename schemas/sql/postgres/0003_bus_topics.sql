-- cdrate schema 0003 (PostgreSQL): the next offset of each embedded bus
-- topic, kept apart from the log so pruning the log never lets offsets restart.
CREATE TABLE bus_topics (
    topic TEXT PRIMARY KEY,
    next_offset BIGINT NOT NULL
);
INSERT INTO bus_topics (topic, next_offset) SELECT topic, MAX("offset") + 1 FROM bus_log GROUP BY topic;
