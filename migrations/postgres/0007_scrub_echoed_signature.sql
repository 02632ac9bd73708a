-- The upstream echoes our request's `sign` back as `signature` in every answer (PROTOCOL.md,
-- "Signature"). Answers are stored without it from now on; this removes it from the answers
-- stored before. A JSON object loses the field; a body that is not valid JSON (a cut-off
-- answer) is cut where the field starts.
DO $$
DECLARE
    stored RECORD;
    answer JSONB;
BEGIN
    FOR stored IN SELECT id, response FROM exchanges WHERE strpos(response, '"signature"') > 0 LOOP
        BEGIN
            answer := stored.response::jsonb;
        EXCEPTION WHEN others THEN
            answer := NULL;
        END;
        IF answer IS NULL THEN
            UPDATE exchanges
            SET response = left(stored.response, strpos(stored.response, '"signature"') - 1)
            WHERE id = stored.id;
        ELSIF jsonb_typeof(answer) = 'object' AND answer ? 'signature' THEN
            UPDATE exchanges SET response = (answer - 'signature')::text WHERE id = stored.id;
        END IF;
    END LOOP;
END $$;

-- The duplicate purchase guard (API.md, "Cashier protections") looks up a customer number's
-- recent purchases.
CREATE INDEX transactions_purchase_guard_idx ON transactions (bill_number, created_at)
    WHERE kind = 'purchase';
