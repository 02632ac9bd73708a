-- Rows for `scripts/bench --growth`, inserted straight into the gateway's schema (far faster
-- than through the API): transactions number $2 to $3 - 1 of client $1, the i-th created at
-- $4 + i * $5 seconds, with UUIDv7 ids of that instant (id order is time order, as the gateway
-- makes them). 60% inquiries, 30% payments (1 in 20 declined), 10% prepaid purchases.
INSERT INTO transactions (
    id, kind, status, client, request_id, product, bill_number, trx_id, retrieval, amount,
    admin_fee, payment_code, inquiry_id, info1, info2, info3, sheets, balance_after,
    result_code, result_description, error_code, advice_attempts, next_advice_at,
    not_found_since, review_reason, expires_at, created_at, updated_at, completed_at)
SELECT
    (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
        || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid,
    kind,
    CASE WHEN declined THEN 'failed' ELSE 'succeeded' END,
    $1,
    'growth-' || i,
    CASE WHEN kind = 'purchase' THEN '3100' ELSE '1501' END,
    CASE WHEN kind = 'purchase' THEN '0813' || lpad((i % 100000000)::text, 8, '0')
         ELSE '8888' || lpad((i % 1000000000)::text, 9, '0') END,
    lpad((i % 99999999 + 1)::text, 8, '0'),
    to_char(ts AT TIME ZONE 'Asia/Jakarta', 'YYYYMMDDHH24MISSMS'),
    CASE WHEN kind = 'purchase' THEN 10050 ELSE 35000 * (1 + i % 4) END,
    CASE WHEN kind = 'purchase' THEN 0 ELSE 2500 END,
    md5(h),
    NULL,
    'Nama        : PESERTA ' || i || '|Jml Tagihan : Rp. ' || 35000 * (1 + i % 4) || '|',
    'BPJS KESEHATAN|##1',
    NULL,
    1,
    CASE WHEN kind <> 'inquiry' AND NOT declined THEN 900000000000000 - 100000 * i END,
    CASE WHEN declined THEN '063' ELSE '000' END,
    CASE WHEN declined THEN 'Transaksi ditolak biller' ELSE 'SUKSES' END,
    CASE WHEN declined THEN 'biller_declined' END,
    0,
    NULL,
    NULL,
    NULL,
    CASE WHEN kind = 'inquiry' THEN ts + interval '1 hour' END,
    ts,
    ts,
    ts
FROM (
    SELECT i,
           $4::timestamptz + make_interval(secs => i * $5::float8) AS ts,
           md5(i::text || '-growth') AS h,
           CASE WHEN i % 10 < 6 THEN 'inquiry' WHEN i % 10 < 9 THEN 'payment'
                ELSE 'purchase' END AS kind,
           (i % 10 BETWEEN 6 AND 8) AND i % 20 = 7 AS declined
    FROM generate_series($2::bigint, $3::bigint - 1) AS i
) AS g;
