{{ quarantine_for_client('fixed_width') }}
