{{ quarantine_for_client('cora') }}
