{{ quarantine_for_client('dune') }}
