-- Every accepted customer record of every client, ranked newest-first per customer.
-- A customer may be re-sent (exact or near duplicate, or an updated record): rank 1 is
-- the current record, the others are superseded duplicates.
{{ customers_unioned() }}
