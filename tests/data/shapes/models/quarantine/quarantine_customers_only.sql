{{ quarantine_for_client('customers_only') }}
