-- Order names compare bytewise, as `track_user` names do. Nothing reads them in a collation's
-- order (the index serves equality, then time), and under "C" PostgreSQL compares them with
-- memcmp instead of the locale's strcoll: the name index was the dearest of order_status's six
-- to keep up, live and in a rebuild. For UTF-8, bytewise order is code point order, which is
-- what a "C.UTF-8" database sorted by already.
ALTER TABLE order_status ALTER COLUMN name TYPE text COLLATE "C";
