-- The raw-SQL floors: for each workload, the one statement that answers the same question on the same data.
-- bench/workloads.py runs each through django.db.connection.cursor() (the application's driver) next to
-- the application path, in the same process and run. Parameters are %s in the order given by the comment.
-- Table names are the Django defaults (app_model); aliases p, b, f, y, w, k mark the large tables.

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
-- params: library_id, lowered prefix || '%', lowered prefix || '%'
-- First page of patrons whose last or first name starts with the prefix, in the staff search order.
SELECT p.*, t.name, l.name
FROM patrons_patron p
JOIN patrons_patrontype t ON t.id = p.patron_type_id
JOIN libraries_library l ON l.id = p.library_id
WHERE p.library_id = %s AND (lower(p.last_name) LIKE %s OR lower(p.first_name) LIKE %s)
ORDER BY lower(p.last_name), lower(p.first_name), p.id
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
