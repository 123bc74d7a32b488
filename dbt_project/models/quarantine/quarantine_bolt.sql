{{ quarantine_for_client('bolt') }}
