-- dune sends no customer file: its customers are derived from its accepted purchases.
{{ stage_customers_from_transactions('dune') }}
