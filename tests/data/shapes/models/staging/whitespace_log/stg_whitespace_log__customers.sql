{{ stage_customers_from_transactions('whitespace_log') }}
