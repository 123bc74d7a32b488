{{ quarantine_for_client('acme') }}
