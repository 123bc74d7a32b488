"""The keys file: hashed keys with a client scope and roles, validated with the file named."""

from __future__ import annotations

import pytest

from serving.keys import KeysError, authenticate, hash_key, load_keys, plain_keys


def test_keys_are_stored_hashed_and_matched_by_hash(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - {{name: acme-crm, sha256: {hash_key('s3cret')}, clients: [acme], roles: [score]}}\n"
                    f"  - {{name: ops, sha256: {hash_key('ops-key')}, clients: '*', roles: [score, read_model]}}\n")
    keys = load_keys(path)
    assert "s3cret" not in path.read_text()
    acme = authenticate(keys, "s3cret")
    assert acme.name == "acme-crm" and acme.may_score("acme") and not acme.may_score("bolt")
    assert acme.roles == {"score"}
    assert authenticate(keys, "ops-key").clients is None and authenticate(keys, "nope") is None
    assert authenticate(plain_keys(["k"]), "k").roles == {"score", "read_model", "push", "admin"}  # every role


@pytest.mark.parametrize("entry, message", [
    ("{name: a, sha256: abc, clients: '*', roles: [score]}", "64 hex"),
    ("{name: a, sha256: %s, clients: [], roles: [score]}", "clients"),
    ("{name: a, sha256: %s, clients: '*', roles: [superuser]}", "roles"),
    ("{name: a, sha256: %s, clients: '*', roles: [score], key: plain}", "only name"),
])
def test_invalid_entries_are_refused_naming_the_file_and_entry(tmp_path, entry, message):
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  - " + (entry % hash_key("x") if "%s" in entry else entry) + "\n")
    with pytest.raises(KeysError, match=message) as err:
        load_keys(path)
    assert str(path) in str(err.value) and "keys[0]" in str(err.value)
