-- The raw-SQL floors: for each workload, the one statement that answers the same question on the same data.
-- bench/workloads.py runs each through django.db.connection.cursor() (the application's driver) next to
-- the application path, in the same process and run. Parameters are %s in the order given by the comment.
-- Table names are the Django defaults (app_model); aliases p, p1, p2, b, f, y, w, k mark the large tables.
-- "-- name: x [vendor]" gives the statement for that database instead of the plain "-- name: x".

-- name: barcode
-- params: library_id, barcode number
-- The patron row (with its library, type and registered branch, as the application loads them) by barcode.
SELECT p.*, l.name, t.name, t.fine_limit, r.name
FROM patrons_barcode b
JOIN patrons_patron p ON p.id = b.patron_id
JOIN libraries_library l ON l.id = p.library_id
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_branch r ON r.id = p.registered_branch_id
WHERE b.library_id = %s AND b.number = %s;

-- name: name_prefix
-- params: library_id, lowered prefix || '%', library_id, lowered prefix || '%'
-- First page of patrons whose last or first name starts with the prefix, in the staff search order. The best
-- statement known for it: the first 25 of each alternative through its own index, then the page from those
-- (at most 50 rows). `|| ''` keeps the planner from walking the whole library's ordered name index, betting
-- that matches come early; the single-SELECT form (name conditions ORed, ORDER BY, LIMIT 25) loses that bet
-- for common surnames late in the alphabet (p95 325 ms at 1 M patrons, docs/performance.md).
SELECT p.*, t.name, l.name
FROM patrons_patron p
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_library l ON l.id = p.library_id
WHERE p.id IN (
  SELECT id FROM (SELECT p1.id FROM patrons_patron p1 WHERE p1.library_id = %s AND lower(p1.last_name) LIKE %s
                  ORDER BY lower(p1.last_name) || '', lower(p1.first_name), p1.id LIMIT 25) a
  UNION ALL
  SELECT id FROM (SELECT p2.id FROM patrons_patron p2 WHERE p2.library_id = %s AND lower(p2.first_name) LIKE %s
                  ORDER BY lower(p2.last_name), lower(p2.first_name), p2.id LIMIT 25) b)
ORDER BY lower(p.last_name) || '', lower(p.first_name), p.id
LIMIT 25;

-- name: name_prefix [sqlite]
-- params: library_id, lowered prefix, prefix successor, library_id, lowered prefix, prefix successor
-- The same on SQLite, where LIKE on lower(name) can use no index: a prefix is the range [prefix, successor) in
-- binary order, which the (library_id, lower(name)) indexes answer, the last-name one already in page order.
SELECT p.*, t.name, l.name
FROM patrons_patron p
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_library l ON l.id = p.library_id
WHERE p.id IN (
  SELECT id FROM (SELECT p1.id FROM patrons_patron p1
                  WHERE p1.library_id = %s AND lower(p1.last_name) >= %s AND lower(p1.last_name) < %s
                  ORDER BY lower(p1.last_name), lower(p1.first_name), p1.id LIMIT 25)
  UNION ALL
  SELECT id FROM (SELECT p2.id FROM patrons_patron p2
                  WHERE p2.library_id = %s AND lower(p2.first_name) >= %s AND lower(p2.first_name) < %s
                  ORDER BY lower(p2.last_name), lower(p2.first_name), p2.id LIMIT 25))
ORDER BY lower(p.last_name) || '', lower(p.first_name), p.id
LIMIT 25;

-- name: email
-- params: library_id, lowered e-mail, lowered e-mail
-- Patrons whose primary or alternate e-mail is the given address (any case), in the staff search order.
SELECT p.*, t.name, l.name
FROM patrons_patron p
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_library l ON l.id = p.library_id
WHERE p.library_id = %s AND (lower(p.primary_email) = %s OR lower(p.alternate_email) = %s)
ORDER BY lower(p.last_name), lower(p.first_name), p.id
LIMIT 25;

-- name: standing
-- params: now, patron_id
-- Every fact a standing decision needs: status, expiry, limit, currency and time zone, an active barcode,
-- the balance (fees - payments - waivers) and whether a block is in force.
SELECT p.status, p.expires_on, t.fine_limit, l.currency, l.time_zone,
       EXISTS (SELECT 1 FROM patrons_barcode b WHERE b.patron_id = p.id AND b.is_active),
       COALESCE((SELECT SUM(f.amount) FROM fines_fee f WHERE f.patron_id = p.id), 0)
         - COALESCE((SELECT SUM(y.amount) FROM fines_payment y WHERE y.patron_id = p.id), 0)
         - COALESCE((SELECT SUM(w.amount) FROM fines_waiver w WHERE w.patron_id = p.id), 0),
       EXISTS (SELECT 1 FROM blocks_block k WHERE k.patron_id = p.id AND k.lifted_at IS NULL
               AND (k.ends_at IS NULL OR k.ends_at > %s))
FROM patrons_patron p
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_library l ON l.id = p.library_id
WHERE p.id = %s;
