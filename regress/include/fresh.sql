-- Included first by every regress/sql file: a fresh install of the extension (and pgcrypto), errors
-- shown with detail and hint, and err() for statements that must fail.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS modelmine;
DROP EXTENSION IF EXISTS pgcrypto;
CREATE EXTENSION modelmine CASCADE;
RESET client_min_messages;
\set VERBOSITY default
\i regress/include/err.sql
-- No random spot-checks (issue 14): a test that settles single-replica jobs on nodes of two operators
-- must not see one of them doubled by chance; replication.sql turns them on where it tests them.
UPDATE modelmine.settings SET value = 0 WHERE name = 'spotcheck_pct';
