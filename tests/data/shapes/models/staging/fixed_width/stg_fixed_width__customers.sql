{{ stage_customers_from_transactions('fixed_width') }}
