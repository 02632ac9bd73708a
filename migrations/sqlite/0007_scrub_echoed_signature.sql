-- The upstream echoes our request's `sign` back as `signature` in every answer (PROTOCOL.md,
-- "Signature"). Answers are stored without it from now on; this removes it from the answers
-- stored before. A JSON object loses the field; a body that is not valid JSON (a cut-off
-- answer) is cut where the field starts.
UPDATE exchanges SET response = json_remove(response, '$.signature')
WHERE instr(response, '"signature"') > 0
  AND CASE WHEN json_valid(response)
           THEN json_type(response) = 'object' AND json_type(response, '$.signature') IS NOT NULL
           ELSE 0 END;

UPDATE exchanges SET response = substr(response, 1, instr(response, '"signature"') - 1)
WHERE instr(response, '"signature"') > 0 AND NOT json_valid(response);

-- The duplicate purchase guard (API.md, "Cashier protections") looks up a customer number's
-- recent purchases.
CREATE INDEX transactions_purchase_guard_idx ON transactions (bill_number, created_at)
    WHERE kind = 'purchase';
