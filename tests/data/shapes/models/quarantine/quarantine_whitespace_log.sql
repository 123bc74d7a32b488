{{ quarantine_for_client('whitespace_log') }}
