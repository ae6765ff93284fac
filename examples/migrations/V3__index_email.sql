-- migrate:no-transaction
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction (PostgreSQL), and CockroachDB
-- advises running schema changes outside explicit transactions: the statements of this file
-- run one at a time, and a failure names the statement and resumes there next time.
CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email);

-- DOWN
DROP INDEX accounts_email_key;
