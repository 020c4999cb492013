-- flakehound PostgreSQL schema: the database's generation, a number every write that can
-- change an answer (an upload, a quarantine change) bumps in its own transaction. `serve`
-- replicas read it per request and key their read caches by it, so a replica sees every
-- other replica's writes. (SQLite has `PRAGMA data_version` for this.)

CREATE TABLE flakehound_generation (
    id int2 PRIMARY KEY CHECK (id = 1),
    n  int8 NOT NULL
);
INSERT INTO flakehound_generation (id, n) VALUES (1, 0);
