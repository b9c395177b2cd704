-- Included by the regress/sql files (psql \i, relative to the repository root, where make runs).
-- err(statement): runs a statement that must fail; shows its SQLSTATE, message, detail and hint.
CREATE OR REPLACE FUNCTION err(stmt text, OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    code := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END
$$;
